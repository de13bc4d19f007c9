"""Helpers for tests that talk to a real pvAccess server on loopback."""
from __future__ import annotations

import threading
import time
from typing import List, Optional

from pystream.flow import Counters, FrameRouter
from pystream.frame import Frame
from pystream.sources.pva import PvaSource


class FrameCollector(FrameRouter):
    """A FrameRouter that also keeps every frame and lets a test wait for them."""

    def __init__(self):
        super().__init__(Counters(), slot=None)
        self.frames: List[Frame] = []
        self.states: List[str] = []
        self._cond = threading.Condition()

    def on_frame(self, frame: Frame) -> None:
        super().on_frame(frame)
        with self._cond:
            self.frames.append(frame)
            self._cond.notify_all()

    def on_state(self, state: str, message: str = "") -> None:
        super().on_state(state, message)
        with self._cond:
            self.states.append(state)
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wait_uid(self, uid: int, timeout: float = 30.0) -> Optional[Frame]:
        ok = self.wait_for(lambda c: any(f.uid == uid for f in c.frames), timeout)
        if not ok:
            return None
        return next(f for f in reversed(self.frames) if f.uid == uid)


def subscribe(pv_name: str, timeout: float = 10.0):
    """Start a PvaSource feeding a FrameCollector; wait for the connection."""
    collector = FrameCollector()
    source = PvaSource(pv_name)
    source.start(collector)
    if not source.connected.wait(timeout):
        source.stop()
        raise TimeoutError(f"no connection to {pv_name}")
    return source, collector
