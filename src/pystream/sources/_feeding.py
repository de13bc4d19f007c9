"""What the sources fed by a user's program share: one delivery thread, one end.

``FeedingSource`` runs ``_deliver()`` on its own thread once started, and
reports exactly one final state (``finished``, ``error`` or ``stopped``):
whichever comes first (the stream running out, a failure, ``stop()``) wins.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Optional

import numpy as np

from ..frame import Frame
from ._base import FrameSink, Source

log = logging.getLogger(__name__)

#: seconds ``stop()`` waits for the delivery thread (a user's iterator may block longer)
STOP_JOIN_TIMEOUT = 2.0


class FeedingSource(Source):
    """A source with one delivery thread and a single, final end state."""

    ends_on_error = True

    def __init__(self, name: str):
        super().__init__(name)
        self.state = "idle"
        self.message = ""
        self.ended = threading.Event()  # set once the final state was reported
        self._halt = threading.Event()
        self._end_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._next_uid = 1

    def start(self, sink: FrameSink) -> None:
        """Begin delivering to ``sink``; returns at once. A source plays once."""
        if self._thread is not None or self.ended.is_set():
            raise RuntimeError(f"{self.describe()} was already started; make a new one")
        self.sink = sink
        self.state = "connected"
        sink.on_state("connected", "")
        self._thread = threading.Thread(target=self._run, name=f"pystream-{self.kind}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering (safe twice, after the end, and from a state listener)."""
        self._halt.set()
        self._on_stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_JOIN_TIMEOUT)
        self._end("stopped")

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the stream has ended (finished, error or stopped)."""
        return self.ended.wait(timeout)

    # -- for subclasses ----------------------------------------------------------------------
    def _deliver(self) -> None:
        """Deliver frames until the end (runs on the delivery thread)."""
        raise NotImplementedError

    def _on_stop(self) -> None:
        """Wake the delivery thread (called by ``stop()`` before joining it)."""

    def _run(self) -> None:
        try:
            self._deliver()
        except Exception as exc:  # a failing sink (or a bug here) ends the stream, said once
            log.debug("%s: delivery failed", self.describe(), exc_info=True)
            self._end("error", f"delivering frames failed: {type(exc).__name__}: {exc}")
        finally:
            self._end("stopped" if self._halt.is_set() else "finished")

    def _end(self, state: str, message: str = "") -> bool:
        """Report the final state, once; False if the stream had already ended."""
        with self._end_lock:
            if self.ended.is_set():
                return False
            self.state, self.message = state, message
            self.ended.set()
        sink = self.sink
        if sink is not None:
            try:
                sink.on_state(state, message)
            except Exception:
                log.exception("%s: the sink failed on state %s", self.describe(), state)
        if state == "error":
            log.error("%s: %s", self.describe(), message)
        return True

    def _frame(self, array: np.ndarray, uid: Optional[int], timestamp: Optional[float],
               attributes: Optional[dict] = None) -> Frame:
        """A Frame, with the next uid and the current time where none is given."""
        if uid is None:
            uid = self._next_uid
        self._next_uid = int(uid) + 1
        if timestamp is None or not np.isfinite(timestamp):
            timestamp = time.time()
        return Frame.from_array(array, uid=int(uid), source=self.describe(),
                                t_source=float(timestamp), attributes=attributes)
