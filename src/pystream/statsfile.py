"""``--stats-json FILE``: the counters, written every second and at exit.

Written atomically so a script polling the file never reads half of it.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any, Callable, Dict

log = logging.getLogger(__name__)


def write_json_atomic(path: str, data: Dict[str, Any]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True, default=str)
    os.replace(tmp, path)


class StatsFileWriter(threading.Thread):
    def __init__(self, path: str, snapshot: Callable[[], Dict[str, Any]], interval: float = 1.0):
        super().__init__(name="pystream-stats", daemon=True)
        self.path = path
        self.snapshot = snapshot
        self.interval = interval
        self._halt = threading.Event()
        self._warned = False
        self._lock = threading.Lock()  # one writer at a time: they share the temporary file

    def write_now(self) -> None:
        try:
            with self._lock:
                write_json_atomic(self.path, self.snapshot())
        except Exception as exc:  # a bad path must not take the viewer down
            if not self._warned:
                log.error("cannot write stats to %s: %s", self.path, exc)
                self._warned = True

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.write_now()

    def stop(self) -> None:
        """Stop and write the final numbers.

        The thread is joined first: a periodic write that started just before
        must not land after the final one (it could describe the viewer
        already torn down)."""
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=10)
        self.write_now()
