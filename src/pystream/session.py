"""A stream session: one source wired to counters, the display slot and worker.

GUI-free: the window, the headless commands and the tests all use it.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional

from .display import DisplayFrame, DisplayWorker
from .flow import Counters, FrameRouter, LatestFrameSlot
from .sources._base import Source

log = logging.getLogger(__name__)


class StreamSession:
    def __init__(self, source: Source, *, deliver: Optional[Callable[[DisplayFrame], None]] = None,
                 max_fps: float = 0.0, display_bin: int = 0,
                 processors: Optional[List[Callable]] = None,
                 analyses: Optional[Dict[str, Callable]] = None):
        self.source = source
        self.counters = Counters()
        self.slot = LatestFrameSlot()
        self.router = FrameRouter(self.counters, self.slot)
        self.worker: Optional[DisplayWorker] = None
        if deliver is not None:
            self.worker = DisplayWorker(self.slot, self.counters, deliver, max_fps=max_fps,
                                        display_bin=display_bin, processors=processors,
                                        analyses=analyses)
        self._stats_sources: List[Callable[[], Dict[str, Any]]] = []

    def add_stats(self, provider: Callable[[], Dict[str, Any]]) -> None:
        """Merge another part's numbers (pipeline, recorder) into ``stats()``."""
        self._stats_sources.append(provider)

    def stats(self) -> Dict[str, Any]:
        snap = self.counters.snapshot()
        snap["source"] = self.source.describe()
        snap.update(self.source.stats())
        for provider in self._stats_sources:
            try:
                snap.update(provider())
            except Exception as exc:
                log.debug("stats provider failed: %s", exc)
        return snap

    def start(self) -> None:
        if self.worker is not None:
            self.worker.start()
        try:
            self.source.start(self.router)
        except Exception as exc:
            self.counters.set_state("error")
            self.counters.error(f"cannot start {self.source.describe()}: {exc}")
            log.error("cannot start %s: %s", self.source.describe(), exc)

    def stop(self) -> None:
        try:
            self.source.stop()
        finally:
            self.slot.close()
            if self.worker is not None:
                self.worker.stop()
                self.worker.join(timeout=2.0)
