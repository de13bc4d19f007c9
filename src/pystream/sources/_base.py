"""The one small interface every source adapter implements.

A source owns its thread(s) (or the library's callback thread), turns each
received message into a ``Frame`` around the raw payload, and hands it to a
sink (normally ``flow.FrameRouter``). It never decodes: decoding is the
``decode`` function it attaches to the frame, run later by whoever needs the
pixels.
"""
from __future__ import annotations

import abc
from typing import Protocol

from ..frame import Frame


class FrameSink(Protocol):
    def on_frame(self, frame: Frame) -> None: ...

    def on_state(self, state: str, message: str = "") -> None: ...

    def on_reject(self, reason: str, message: str = "") -> None: ...


class Source(abc.ABC):
    """Base class of source adapters.

    States reported to the sink: ``connecting``, ``connected``,
    ``disconnected``, ``error``, ``finished`` (a finite source that ran out),
    ``stopped``.
    """

    #: short kind name, e.g. "pva", "zmq"
    kind = "source"
    #: True when ``error`` is final, like ``finished``: the source will deliver nothing
    #: more (a user's iterator that raised); False when it may recover (a PV that returns)
    ends_on_error = False

    def __init__(self, name: str):
        self.name = name
        self.sink: FrameSink | None = None

    @abc.abstractmethod
    def start(self, sink: FrameSink) -> None:
        """Begin delivering frames to ``sink``; returns at once."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop delivering; safe to call twice and after a failure."""

    def describe(self) -> str:
        return f"{self.kind}://{self.name}"

    def stats(self) -> dict:
        """The source's own counters, merged into the session's stats (none by default)."""
        return {}
