"""Frame: one image (or spectrum) travelling through pystream.

A source creates a Frame around the *raw* payload it received (a pvAccess
PvObject, a ZMQ message, a user's array) and a decode function. Nothing is
decoded until someone asks for ``frame.array``: the display path decodes only
the frames it will show; the record path decodes every frame on its own
thread.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np


class FrameRejected(Exception):
    """A frame that cannot be turned into an array.

    ``reason`` is a short stable key used for counting (e.g. ``"size_mismatch"``),
    the message explains it to a human.
    """

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason


@dataclass
class Decoded:
    """What a decode function returns."""

    array: np.ndarray
    t_source: Optional[float] = None  # producer timestamp, POSIX seconds
    attributes: dict = field(default_factory=dict)
    color: str = "mono"  # "mono" or "rgb" (array is (ny, nx, 3))
    notice: str = ""  # one-time information for the user, e.g. "Bayer shown raw"


class Frame:
    """A received frame: raw payload plus metadata, decoded on demand."""

    __slots__ = (
        "payload", "uid", "t_recv", "source", "nbytes", "_decode",
        "_decoded", "_error", "meta",
    )

    def __init__(
        self,
        payload: Any,
        *,
        uid: int,
        source: str,
        decode: Optional[Callable[[Any], Decoded]] = None,
        t_recv: Optional[float] = None,
        nbytes: int = 0,
    ):
        self.payload = payload
        self.uid = uid
        self.t_recv = time.time() if t_recv is None else t_recv
        self.source = source
        self.nbytes = nbytes
        self._decode = decode
        self._decoded: Optional[Decoded] = None
        self._error: Optional[FrameRejected] = None
        self.meta: dict = {}  # what pipeline steps add

    @classmethod
    def from_array(cls, array: np.ndarray, *, uid: int, source: str,
                   t_source: Optional[float] = None, attributes: Optional[dict] = None,
                   t_recv: Optional[float] = None) -> "Frame":
        """A frame whose payload is already a numpy array (push, iter, replay)."""
        array = np.asarray(array)
        frame = cls(array, uid=uid, source=source, t_recv=t_recv, nbytes=array.nbytes)
        color = "rgb" if array.ndim == 3 and array.shape[-1] == 3 else "mono"
        frame._decoded = Decoded(array, t_source, dict(attributes or {}), color)
        return frame

    def decode(self) -> Decoded:
        """Decode once (thread-safe enough: decoding twice gives the same result).

        Raises FrameRejected, and keeps raising the same one on later calls.
        """
        if self._decoded is not None:
            return self._decoded
        if self._error is not None:
            raise self._error
        try:
            if self._decode is None:
                raise FrameRejected("no_decoder", f"no decoder for source {self.source}")
            self._decoded = self._decode(self.payload)
        except FrameRejected as exc:
            self._error = exc
            raise
        except Exception as exc:  # a decoder bug must not kill a worker thread
            self._error = FrameRejected("decode_error", f"{type(exc).__name__}: {exc}")
            raise self._error from exc
        return self._decoded

    @property
    def decoded(self) -> bool:
        return self._decoded is not None

    @property
    def array(self) -> np.ndarray:
        return self.decode().array

    @property
    def t_source(self) -> Optional[float]:
        return self._decoded.t_source if self._decoded is not None else None

    @property
    def attributes(self) -> dict:
        return self._decoded.attributes if self._decoded is not None else {}

    def metadata(self) -> dict:
        """The ``meta`` dict handed to processor plugins."""
        d = self.decode()
        meta = {
            "uid": self.uid,
            "timestamp": d.t_source if d.t_source is not None else self.t_recv,
            "t_recv": self.t_recv,
            "source": self.source,
            "attributes": d.attributes,
            "color": d.color,
        }
        meta.update(self.meta)
        return meta

    def __repr__(self) -> str:
        return f"Frame(uid={self.uid}, source={self.source!r}, decoded={self.decoded})"
