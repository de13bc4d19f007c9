"""Recorder: the lossless record path, from a FrameRouter tap to files on disk.

    source thread ── tap(frame) ──► ByteBoundedQueue ──► writer thread(s): decode → process → write

``tap`` runs on the source's thread and only puts the frame (raw, undecoded)
into a queue bounded in bytes; when the disk cannot keep up the queue fills,
``put`` is refused, and the frame is counted as a record drop. The writer
thread decodes, optionally processes, and writes. Memory never exceeds the
byte budget plus the frames being written (one per writer thread).

A TIFF sequence (one file per frame) is written by several threads
(``writer_threads``, default ``TiffSequenceWriter.default_threads``): a
single thread creating, writing and closing one file after another cannot
keep the disk busy (on the test VM one thread reaches 0.3-4 GB/s, two or
three reach 6-8 GB/s). Each thread takes the next frame from the queue and a
ticket with it (queue order); decoding runs in parallel; then, strictly in
ticket order, ``process`` runs and the next file name is created (so files
are numbered in frame order and ``process`` is never called concurrently);
the pixel write and close run in parallel. One-file formats (HDF5, BigTIFF
stack) keep one writer thread.

Accounting, exact at any moment once stopped::

    offered == recorded + record_drops + record_rejected
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import Any, Callable, Deque, Dict, Optional, Tuple

import numpy as np

from ..flow import ByteBoundedQueue
from ..frame import Frame, FrameRejected
from .writers import FrameWriter, RecordIOError, check_compression, make_writer

log = logging.getLogger(__name__)

ProcessFn = Callable[[np.ndarray, Dict[str, Any]], np.ndarray]

#: stats() keys, part of the user interface (--stats-json, status bar)
STAT_KEYS = ("recording", "recorded", "record_drops", "record_rejected", "record_mb_per_s",
             "record_queue_fill", "record_state", "record_error", "record_path")


class RecordError(Exception):
    """A recording that cannot start (bad directory, format, codec)."""


class ByteRate:
    """Bytes per second over a sliding window."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self._events: Deque[Tuple[float, int]] = collections.deque()
        self._lock = threading.Lock()

    def add(self, nbytes: int, now: Optional[float] = None) -> None:
        with self._lock:
            self._events.append((time.monotonic() if now is None else now, nbytes))

    def rate(self, now: Optional[float] = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events
            while events and events[0][0] < now - self.window:
                events.popleft()
            if not events:
                return 0.0
            span = max(now - events[0][0], 1e-3)
            if span < self.window:
                # the first event's bytes were written before the window opened
                return sum(n for _, n in list(events)[1:]) / span if len(events) > 1 else 0.0
            return sum(n for _, n in events) / self.window


def _payload_nbytes(frame: Frame) -> int:
    """Size to charge against the budget; O(1), never decodes."""
    if frame.nbytes:
        return frame.nbytes
    payload = frame.payload
    size = getattr(payload, "nbytes", None)
    if isinstance(size, int):
        return size
    try:
        return len(payload)
    except TypeError:
        return 1  # unknown: a source should set Frame.nbytes


class Recorder:
    """Records every frame it is offered, losslessly up to ``buffer_bytes`` in flight.

    ``fmt``: ``"tiff"`` (a sequence, or one BigTIFF with ``stack=True``),
    ``"tiff-stack"`` or ``"hdf5"``. ``process(array, meta) -> array`` makes a
    processed recording (it runs on the writer thread and must not modify its
    input in place). ``max_frames`` ends the recording after that many
    frames were offered (the rest are ignored, not dropped).
    ``writer_threads``: threads writing a TIFF sequence (None: the writer's
    default; one-file formats always use one). ``process`` is called in
    frame order, one frame at a time, whatever the number of threads.

    States: ``idle`` → ``recording`` → ``stopping`` → ``stopped``, or
    ``error`` (the disk refused; ``error`` says why; files written so far
    are complete).
    """

    def __init__(self, out_dir: str, fmt: str = "tiff", prefix: str = "frame",
                 buffer_bytes: int = 1 << 30, stack: bool = False,
                 compression: Optional[str] = None, process: Optional[ProcessFn] = None,
                 max_frames: Optional[int] = None, flush_interval: float = 1.0,
                 check_space: bool = True, writer_threads: Optional[int] = None):
        self.out_dir = str(out_dir)
        self.fmt = fmt
        self.prefix = prefix
        self.buffer_bytes = int(buffer_bytes)
        self.stack = stack
        self.compression = compression
        self.process = process
        self.max_frames = max_frames
        self.flush_interval = flush_interval
        self.check_space = check_space
        self.writer_threads = writer_threads
        self.n_threads = 1  # threads actually writing, set by start()

        self.queue = ByteBoundedQueue(self.buffer_bytes)
        self.writer: Optional[FrameWriter] = None
        self.state = "idle"
        self.error = ""
        self.rejected_by_reason: Dict[str, int] = {}
        self.offered = 0
        self.recorded = 0
        self.drops = 0
        self.rejected = 0
        self.bytes_written = 0
        self._rate = ByteRate()
        self._lock = threading.Lock()  # counts touched by both threads
        self._accepting = False
        self._abort = threading.Event()
        self._closing = threading.Event()  # stop() was asked: finish when the queue is empty
        self._thread: Optional[threading.Thread] = None
        self._failed = threading.Event()  # a disk error: writer threads stop taking frames
        self._take_lock = threading.Lock()  # queue order == ticket order
        self._turn = threading.Condition(threading.Lock())  # the in-order stage
        self._next_ticket = 0
        self._turn_ticket = 0
        self._t_first: Optional[float] = None
        self._t_start: Optional[float] = None
        self._t_end: Optional[float] = None
        self.done = threading.Event()  # set when the writer thread has closed the files

    # -- control -----------------------------------------------------------------------------
    def start(self) -> "Recorder":
        """Check the directory and format, open the output, start the writer thread.

        Raises RecordError (state ``error``) when recording cannot begin.
        """
        if self.state != "idle":
            raise RecordError(f"recorder already {self.state}")
        try:
            self.writer = make_writer(self.out_dir, self.fmt, self.prefix, self.stack,
                                      self.compression, self.check_space, self.flush_interval)
            check_compression(self.writer)
            self.writer.open()
        except (OSError, ValueError) as exc:
            self.state = "error"
            self.error = str(exc)
            self.done.set()
            raise RecordError(self.error) from exc
        self.out_dir = self.writer.out_dir
        wanted = self.writer.default_threads if self.writer_threads is None else self.writer_threads
        self.n_threads = max(1, min(int(wanted), self.writer.max_threads))
        self._t_start = time.monotonic()
        self.state = "recording"
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="pystream-recorder", daemon=True)
        self._thread.start()
        log.info("recording %s to %s", self.writer.kind, self.writer.path or self.out_dir)
        return self

    def tap(self, frame: Frame) -> None:
        """The FrameRouter tap. Source thread: O(1), no decoding, never blocks."""
        if not self._accepting:
            return
        with self._lock:
            if self.max_frames is not None and self.offered >= self.max_frames:
                self._accepting = False
                return
            self.offered += 1
            if not self.queue.put(frame, _payload_nbytes(frame)):
                self.drops += 1

    __call__ = tap

    def stop(self, drain: bool = True, timeout: Optional[float] = None) -> bool:
        """Stop accepting frames; write what is queued (``drain``) or drop it; close files.

        Returns True when the files are closed. ``timeout=0`` only asks and
        returns at once (poll ``finished`` or call ``wait``): a GUI does not
        block while a large queue drains.
        """
        self._accepting = False
        if self.state == "recording":
            self.state = "stopping"
        if not drain:
            self._abort.set()
        self._closing.set()
        self.queue.close()
        if self._thread is None:
            if self.state in ("idle", "stopping"):
                self.state = "stopped"
            self.done.set()
            return True
        return self.wait(timeout)

    def wait(self, timeout: Optional[float] = None) -> bool:
        if timeout is not None and timeout <= 0:
            return self.done.is_set()
        return self.done.wait(timeout)

    @property
    def finished(self) -> bool:
        return self.done.is_set()

    @property
    def target_reached(self) -> bool:
        return self.max_frames is not None and self.offered >= self.max_frames

    # -- writer threads ----------------------------------------------------------------------
    def _run(self) -> None:
        writer = self.writer
        assert writer is not None
        helpers = [threading.Thread(target=self._work, args=(writer,), daemon=True,
                                    name=f"pystream-recorder-{i}")
                   for i in range(1, self.n_threads)]
        try:
            for helper in helpers:
                helper.start()
            self._work(writer)
        finally:
            for helper in helpers:
                helper.join()
            self._accepting = False
            self.queue.close()
            self._discard_queued()
            try:
                writer.close()
            except Exception as exc:
                if self.state != "error":
                    self._fail(f"closing {writer.path}: {exc}")
            self._t_end = time.monotonic()
            if self.state != "error":
                self.state = "stopped"
            log.info("recording %s: %d frames, %d drops, %d rejected -> %s", self.state,
                     self.recorded, self.drops, self.rejected, writer.path or self.out_dir)
            self.done.set()

    def _work(self, writer: FrameWriter) -> None:
        """One writer thread: take frames in queue order until closed, aborted or failed."""
        try:
            while not self._abort.is_set() and not self._failed.is_set():
                with self._take_lock:
                    frame = self.queue.get(timeout=0.25)
                    if frame is not None:
                        ticket = self._next_ticket
                        self._next_ticket += 1
                if frame is None:
                    if self._closing.is_set() and len(self.queue) == 0:
                        break
                    if self.n_threads == 1:
                        self._idle_flush(writer)
                    continue
                self._write_one(writer, frame, ticket)
        except RecordIOError as exc:
            self._fail(exc.message)
        except Exception as exc:  # a writer bug must stop the recording, not vanish
            log.exception("recorder writer thread failed")
            self._fail(f"recording failed: {type(exc).__name__}: {exc}")

    def _idle_flush(self, writer: FrameWriter) -> None:
        flush = getattr(writer, "flush", None)
        if flush is not None:
            try:
                flush()
            except OSError as exc:
                raise RecordIOError(str(exc)) from exc

    def _wait_turn(self, ticket: int) -> None:
        with self._turn:
            while self._turn_ticket != ticket:
                self._turn.wait()

    def _end_turn(self) -> None:
        with self._turn:
            self._turn_ticket += 1
            self._turn.notify_all()

    def _write_one(self, writer: FrameWriter, frame: Frame, ticket: int) -> None:
        """Decode (in parallel), then in ticket order: process, reserve the file; then write.

        Every ticket is served exactly once, whatever fails, so no thread waits forever
        and every frame taken is counted exactly once (recorded, rejected or dropped).
        """
        array = meta = None
        early: Optional[BaseException] = None
        try:
            array = frame.decode().array
            meta = frame.metadata()
        except Exception as exc:  # re-raised in turn: the ticket must be served
            early = exc
        slot = None
        skipped = False
        try:
            self._wait_turn(ticket)
            try:
                if early is not None:
                    raise early
                if self._failed.is_set() or self._abort.is_set():
                    # a disk error or stop(drain=False) came after this frame was taken from
                    # the queue but before its turn: it was still waiting, like a queued frame
                    skipped = True
                else:
                    if self.process is not None:
                        try:
                            array = self.process(array, meta)
                        except Exception as exc:
                            raise FrameRejected("process_error",
                                                f"{type(exc).__name__}: {exc}") from exc
                        if not isinstance(array, np.ndarray):
                            raise FrameRejected("process_error", f"process returned "
                                                f"{type(array).__name__}, not an array")
                    if self.n_threads > 1:
                        slot = writer.reserve(array.nbytes)  # next name, in frame order
                    else:
                        writer.write(array, meta)
            finally:
                self._end_turn()
            if slot is not None:
                writer.write_reserved(slot, array, meta)  # in parallel with the other threads
        except FrameRejected as exc:
            with self._lock:
                self.rejected += 1
                self.rejected_by_reason[exc.reason] = self.rejected_by_reason.get(exc.reason, 0) + 1
            log.warning("frame %s not recorded: %s: %s", frame.uid, exc.reason, exc.message)
            return
        except BaseException:
            with self._lock:
                self.drops += 1  # the frame that hit the error was not written
            raise
        if skipped:
            with self._lock:
                self.drops += 1
            return
        now = time.monotonic()
        with self._lock:
            self.recorded += 1
            self.bytes_written += array.nbytes
            if self._t_first is None:
                self._t_first = now
        self._rate.add(array.nbytes, now)

    def _discard_queued(self) -> None:
        """Frames still queued after an error or an abort are drops, counted one by one."""
        while True:
            frame = self.queue.get(timeout=0)
            if frame is None:
                return
            with self._lock:
                self.drops += 1

    def _fail(self, message: str) -> None:
        with self._lock:
            first = not self._failed.is_set()
            self._failed.set()
            if first:  # with several writer threads, the first error is the one to report
                self.error = message
                self.state = "error"
        self._accepting = False
        if first:
            log.error("recording stopped: %s", message)

    # -- numbers -----------------------------------------------------------------------------
    def mean_mb_per_s(self) -> float:
        """Average write rate from start to the end (or now)."""
        if self._t_start is None:
            return 0.0
        end = self._t_end if self._t_end is not None else time.monotonic()
        return self.bytes_written / max(end - self._t_start, 1e-6) / 1e6

    def elapsed(self) -> float:
        if self._t_start is None:
            return 0.0
        end = self._t_end if self._t_end is not None else time.monotonic()
        return end - self._t_start

    @property
    def path(self) -> str:
        if self.writer is None:
            return ""
        return self.writer.path or self.out_dir

    def stats(self) -> Dict[str, Any]:
        """Numbers for the status bar and ``--stats-json`` (keys: STAT_KEYS)."""
        with self._lock:
            recorded, drops, rejected = self.recorded, self.drops, self.rejected
        live = self.state in ("recording", "stopping")
        rate = self._rate.rate() / 1e6 if live else self.mean_mb_per_s()
        return {
            "recording": live,
            "recorded": recorded,
            "record_drops": drops,
            "record_rejected": rejected,
            "record_mb_per_s": round(rate, 2),
            "record_queue_fill": round(min(self.queue.fill, 1.0), 4),
            "record_state": self.state,
            "record_error": self.error or "",
            "record_path": self.path,
        }

    def attach(self, counters) -> None:
        """Publish stats() keys through ``Counters.extra`` (so ``snapshot()`` has them)."""
        cache: Dict[str, Any] = {"t": 0.0, "stats": {}}

        def value(key: str):
            now = time.monotonic()
            # one stats() per snapshot, not one per key; once the recording has
            # ended the numbers are final and always read afresh
            if now - cache["t"] > 0.05 or self.state not in ("recording", "stopping"):
                cache["stats"], cache["t"] = self.stats(), now
            return cache["stats"][key]

        for key in STAT_KEYS:
            counters.extra[key] = (lambda k=key: value(k))

    def status_text(self) -> str:
        """One line for a status bar."""
        s = self.stats()
        if s["record_state"] == "error":
            return f"REC error: {s['record_error']}"
        name = os.path.basename(s["record_path"]) if s["record_path"] else ""
        if s["recording"]:
            text = (f"REC {s['recorded']} frames, {s['record_mb_per_s']:.1f} MB/s, "
                    f"queue {s['record_queue_fill'] * 100:.0f}%, drops {s['record_drops']}")
            if s["record_state"] == "stopping":
                text = "REC finishing: " + text[4:]
            return text
        if s["record_state"] == "stopped":
            return (f"recorded {s['recorded']} frames ({s['record_drops']} drops) "
                    f"to {name or self.out_dir}")
        return "not recording"
