"""Pull mode: frames taken from a user's iterator, paced to a capture rate.

    def frames():
        for path in sorted(glob.glob("run42/*.npy")):
            yield np.load(path)            # (H, W) or a (N, H, W) chunk

    source = pystream.IterSource(frames(), fps=50)

The pacing keeps a fixed timetable: frame k is delivered at ``t0 + k / fps``
(``t0`` when the first frame is ready). A frame that comes late (a slow
iterator, a busy machine) goes out at once and the frames after it keep
their own slots, so the mean rate over a long run is exactly ``fps``, with
no drift from sleeping once per frame.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional, Tuple, Union

import numpy as np

from ._arrays import FrameArrayError, split_frames
from ._feeding import FeedingSource

log = logging.getLogger(__name__)


@dataclass
class Rejected:
    """An item that is not a frame: counted by reason at the sink, the stream goes on."""

    reason: str
    message: str


#: what ``_records`` yields: (array, uid or None, timestamp or None, attributes or None)
Record = Tuple[np.ndarray, Optional[int], Optional[float], Optional[dict]]


class IterSource(FeedingSource):
    """Frames taken from an iterator, paced to ``fps`` on a fixed timetable.

    ``frames``: any iterable (a generator, a list, a ``h5py`` dataset...) of
    arrays, each one frame or a chunk of frames: ``(H, W)``, ``(H, W, 3)``,
    ``(N, H, W)``, ``(N, H, W, 3)``, or a 1-D spectrum; any integer, float
    or bool dtype. Arrays are handed on without a copy: do not change an
    array after yielding it (yield a new one, or a copy).

    ``fps``: frames per second; ``0`` or ``None`` = as fast as they are taken.

    Each frame gets the next uid (1, 2, 3...) and the time it was handed on
    as its timestamp. An item that is not a frame (a string, a 4-D mono
    array) is rejected (counted by reason, ``bad_array``) and the stream
    goes on. When the iterator ends, the state is ``finished``; if it raises,
    the state is ``error`` with the exception's message (``iter_errors``
    counts it). ``stop()`` ends it early (``stopped``).

    ``stats()``: ``iter_delivered``, ``iter_late`` (frames handed on more
    than one period after their slot), ``iter_errors``, ``iter_fps``.
    """

    kind = "iter"
    stat_prefix = "iter"

    def __init__(self, frames: Iterable[Any], fps: Optional[float] = None, *, name: str = "frames"):
        super().__init__(name)
        if fps is not None and (not np.isfinite(fps) or fps < 0):
            raise ValueError(f"fps must be >= 0 (0 = as fast as taken), not {fps}")
        self.fps = float(fps or 0.0)
        self._iterator: Iterator[Any] = iter(frames)  # "not iterable" is said here, at once
        self.delivered = 0
        self.late = 0
        self.errors = 0

    def _records(self) -> Iterator[Union[Record, Rejected]]:
        """The frames to deliver, in order (a subclass reads them from a file)."""
        try:
            for chunk in self._iterator:
                try:
                    frames = split_frames(chunk)
                except FrameArrayError as exc:
                    yield Rejected("bad_array", str(exc))
                    continue
                for array in frames:
                    yield array, None, None, None
        finally:
            close = getattr(self._iterator, "close", None)
            if close is not None:
                close()  # the stream owns the iterator: a generator's own cleanup runs now

    def _deliver(self) -> None:
        sink = self.sink
        period = 1.0 / self.fps if self.fps else 0.0
        records = self._records()
        t0: Optional[float] = None
        k = 0
        try:
            while not self._halt.is_set():
                try:
                    record = next(records)
                except StopIteration:
                    return
                except Exception as exc:  # the user's iterator (or file) failed: say so
                    self.errors += 1
                    self._end("error", self._failure(exc))
                    return
                if isinstance(record, Rejected):
                    sink.on_reject(record.reason, record.message)
                    continue
                if period:
                    now = time.monotonic()
                    if t0 is None:
                        t0 = now
                    slot = t0 + k * period
                    k += 1
                    if slot > now:
                        if self._halt.wait(slot - now):
                            return
                    elif now - slot > period:
                        self.late += 1
                array, uid, timestamp, attributes = record
                frame = self._frame(array, uid, timestamp, attributes)
                if self._halt.is_set():
                    return
                sink.on_frame(frame)
                self.delivered += 1
        finally:
            try:
                records.close()  # generators' finally blocks run here (a replay closes its file)
            except Exception:
                log.exception("%s: closing the iterator failed", self.describe())

    def _failure(self, exc: Exception) -> str:
        return f"the iterator raised {type(exc).__name__}: {exc}"

    def stats(self) -> dict:
        p = self.stat_prefix
        return {f"{p}_delivered": self.delivered, f"{p}_late": self.late,
                f"{p}_errors": self.errors, f"{p}_fps": self.fps}
