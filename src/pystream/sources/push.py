"""Push (callback) mode: a user's acquisition code hands frames over as they come.

    source = pystream.PushSource()

    def on_new_frames(chunk):          # called by the camera SDK, or a loop of yours
        source.push(chunk)             # returns at once

    with source:                       # leaving the block = end of the stream
        camera.acquire(callback=on_new_frames)

``push`` copies the frames into a queue bounded in bytes (default 1 GiB) and
returns; a delivery thread hands them to the viewer, the recorder or a
script (whoever started the source). When the queue is full, a push drops
the frames that do not fit, counts them (``push_drops``) and still returns
at once: the acquisition is never held up.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from ..flow import ByteBoundedQueue
from ._arrays import split_frames
from ._feeding import FeedingSource

log = logging.getLogger(__name__)

#: the queue's default budget, as ``--record-buffer``
DEFAULT_MAX_BYTES = 1 << 30

#: how often the delivery thread looks up when no frame comes
_POLL = 0.25


def _per_frame(value: Any, n: int, what: str) -> List[Any]:
    """``None``, one value for the chunk, or one per frame → a list of ``n``."""
    if value is None or np.isscalar(value):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"{len(values)} {what} for {n} frames")
    return values


class PushSource(FeedingSource):
    """Frames pushed by a user's program (callback mode).

    ``push(frames)`` takes one frame or a chunk of frames: ``(H, W)``,
    ``(H, W, 3)``, ``(N, H, W)``, ``(N, H, W, 3)`` or a 1-D spectrum, any
    integer, float or bool dtype, and returns at once. Frames are copied
    (``copy=True``), so the caller may reuse its buffer right after the
    call; with ``copy=False`` the caller gives the arrays away and must not
    change them afterwards (saves one copy per frame).

    Frames wait in a queue bounded in bytes (``max_bytes``, default 1 GiB)
    until the delivery thread takes them; a frame that does not fit is
    dropped and counted in ``push_drops``, never silently.

    ``finalize()`` ends the stream: no more pushes, wait until every frame
    in the queue has been taken, then the state is ``finished``. It is also
    what leaving a ``with source:`` block does. A program that finalizes
    before anything consumes the source (no viewer or recorder started it
    yet) waits until one does: start the consumer first, or push and
    finalize from another thread, as in ``examples/push.py``.

    ``stop()`` (called by the consumer, e.g. when its window closes) ends
    the stream at once; frames still queued are discarded and counted in
    ``push_discarded``; later pushes return 0 and count as drops, so an
    acquisition loop runs on unharmed.

    ``stats()``: ``pushed`` (frames given to ``push``), ``push_delivered``,
    ``push_drops``, ``push_discarded``, ``push_queued`` (frames waiting),
    ``push_queue_fill`` (0..1 of ``max_bytes``). Once the stream has ended,
    ``pushed == push_delivered + push_drops + push_discarded``.
    """

    kind = "push"

    def __init__(self, name: str = "frames", *, max_bytes: int = DEFAULT_MAX_BYTES,
                 copy: bool = True):
        super().__init__(name)
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.queue = ByteBoundedQueue(max_bytes)
        self.copy = copy
        self.pushed = 0
        self.delivered = 0
        self.drops = 0
        self.discarded = 0
        self._lock = threading.Lock()  # pushes may come from several threads
        self._finalizing = threading.Event()
        self._end_error = ""  # set when a ``with`` block is left by an exception

    # -- the feeding program's side ----------------------------------------------------------
    def push(self, frames: Any, uids: Union[None, int, Sequence[int]] = None,
             timestamps: Union[None, float, Sequence[float]] = None,
             attributes: Optional[dict] = None) -> int:
        """Queue one frame or a chunk of frames; return how many were queued (the rest
        were dropped: queue full, or the stream stopped).

        ``uids``: one per frame, or the first one of the chunk (the next ones
        follow), or None: the next numbers after the last uid (1, 2, 3...);
        a dropped frame keeps its uid, so drops show as gaps downstream.
        ``timestamps``: POSIX seconds, one per frame or one for the whole
        chunk, or None: the time of this call. ``attributes``: a dict stored
        with every frame of the chunk (recorded in TIFF/HDF5 metadata).

        Raises ``ValueError`` (``FrameArrayError``) for an array that is not
        a frame or a chunk of frames, and ``RuntimeError`` after ``finalize``.
        """
        if self._finalizing.is_set():
            raise RuntimeError(f"{self.describe()}: push after finalize (the stream has ended)")
        arrays = split_frames(frames)
        n = len(arrays)
        if isinstance(uids, (int, np.integer)):
            uids = list(range(int(uids), int(uids) + n))
        uid_list = _per_frame(uids, n, "uids")
        stamp_list = _per_frame(timestamps, n, "timestamps")
        now = time.time()
        queued = 0
        queue = self.queue
        with self._lock:
            for array, uid, stamp in zip(arrays, uid_list, stamp_list):
                self.pushed += 1
                # refuse before copying: a full queue must cost the caller nothing
                full = len(queue) and queue.nbytes + array.nbytes > queue.max_bytes
                if full or self.ended.is_set():
                    self.drops += 1
                    # a dropped frame still takes its uid: the gap shows where it was
                    self._next_uid = (self._next_uid if uid is None else int(uid)) + 1
                    continue
                data = np.array(array, order="C", copy=True) if self.copy else array
                frame = self._frame(data, uid, now if stamp is None else stamp, attributes)
                if queue.put(frame, frame.nbytes):
                    queued += 1
                else:
                    self.drops += 1
        return queued

    def finalize(self, timeout: Optional[float] = None) -> bool:
        """End the stream and wait until every queued frame has been taken.

        Returns True when the stream finished with every queued frame handed
        on; False on timeout (the stream still ends once the consumer has
        taken the rest), or if the consumer stopped or failed first (then it
        returns at once, and the frames it never took are counted in
        ``push_discarded``). Safe to call twice, and after a failure.
        """
        self._finalizing.set()
        self.queue.close()  # the delivery thread finishes once it has emptied it
        if not self.ended.wait(timeout):
            return False
        return self.state == "finished"

    def __enter__(self) -> "PushSource":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:  # what was pushed is still delivered; the stream ends in error
            self._end_error = f"the feeding program raised {exc_type.__name__}: {exc}"
        self.finalize()

    # -- the delivery thread -----------------------------------------------------------------
    def _deliver(self) -> None:
        sink = self.sink
        try:
            while not self._halt.is_set():
                frame = self.queue.get(timeout=_POLL)
                if frame is None:
                    if self._finalizing.is_set() and len(self.queue) == 0:
                        if self._end_error:
                            self._end("error", self._end_error)
                        return
                    continue
                if self._halt.is_set():
                    with self._lock:
                        self.discarded += 1
                    return
                try:
                    sink.on_frame(frame)
                except Exception:  # the consumer failed: this frame was not taken either
                    with self._lock:
                        self.discarded += 1
                    raise
                self.delivered += 1
        finally:
            self._discard_queued()  # empty after a normal end; after a failure, counted

    def _on_stop(self) -> None:
        self.queue.close()  # wakes the delivery thread; later pushes count as drops

    def stop(self) -> None:
        super().stop()
        self._discard_queued()  # also when the source was never started

    def _discard_queued(self) -> None:
        self.queue.close()
        while True:
            frame = self.queue.get(timeout=0)
            if frame is None:
                return
            with self._lock:
                self.discarded += 1

    def stats(self) -> dict:
        with self._lock:
            return {"pushed": self.pushed, "push_delivered": self.delivered,
                    "push_drops": self.drops, "push_discarded": self.discarded,
                    "push_queued": len(self.queue),
                    "push_queue_fill": round(min(self.queue.fill, 1.0), 4)}
