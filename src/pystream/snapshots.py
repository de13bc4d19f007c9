"""Periodic snapshots: the image as displayed, as a timestamped PNG every S seconds.

``--snapshot-interval S --snapshot-dir DIR`` (``--snapshot-raw`` adds the raw
frame as TIFF). Whoever shows frames (the window, on screen or offscreen) asks
``due()`` for each shown frame, a clock comparison, and only when it is true
hands the frame over with how it is shown (levels, colour map LUT,
orientation) to ``offer``. Rendering and writing happen on the writer's own
thread, as the spectrum plots do, so a slow disk never holds up the display.

Files are ``snapshot_YYYYMMDD_HHMMSS.png`` (``_2``, ``_3``... when a second
has two); nothing is ever overwritten. A failed write is counted
(``snapshot_errors``) with its reason, and the next one is tried on time.
Qt-free.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .imaging import Orientation, save_displayed_png, save_raw_frame

log = logging.getLogger(__name__)


class SnapshotWriter:
    """Writes at most one snapshot every ``interval`` seconds, on its own thread."""

    def __init__(self, out_dir: str, interval: float, *, raw: bool = False,
                 prefix: str = "snapshot"):
        if interval <= 0:
            raise ValueError(f"snapshot interval must be > 0 s, not {interval}")
        self.out_dir = Path(os.path.expanduser(out_dir))
        self.interval = float(interval)
        self.raw = raw
        self.prefix = prefix
        self.written = 0
        self.errors = 0
        self.last_path = ""
        self.last_error = ""
        self._next_due = 0.0  # the first shown frame is written at once
        self._pending: Optional[Tuple[Any, Tuple[float, float], Any, Orientation]] = None
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None

    # -- the display side (any thread; O(1)) ------------------------------------------
    def due(self) -> bool:
        """True when the next shown frame should be offered."""
        return self._pending is None and time.monotonic() >= self._next_due

    def offer(self, display, levels: Tuple[float, float], lut: Optional[np.ndarray],
              orientation: Orientation = Orientation()) -> None:
        """Hand over a shown frame (a DisplayFrame) and how it is shown."""
        with self._cond:
            self._next_due = time.monotonic() + self.interval
            self._pending = (display, (float(levels[0]), float(levels[1])), lut, orientation)
            self._cond.notify()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "SnapshotWriter":
        self._thread = threading.Thread(target=self._run, name="pystream-snapshots", daemon=True)
        self._thread.start()
        log.info("a snapshot every %g s in %s", self.interval, self.out_dir)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Write a snapshot still pending, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def stats(self) -> Dict[str, Any]:
        return {"snapshots_written": self.written, "snapshot_errors": self.errors,
                "snapshot_last_path": self.last_path, "snapshot_last_error": self.last_error}

    # -- the writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stopping)
                pending, self._pending = self._pending, None
                stopping = self._stopping
            if pending is not None:
                self._write(*pending)
            if stopping:
                return

    def _write(self, display, levels, lut, orientation: Orientation) -> None:
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            stem = self._free_stem(time.strftime("%Y%m%d_%H%M%S"))
            path = save_displayed_png(stem.with_suffix(".png"), display.raw, levels, lut,
                                      orientation)
            if self.raw:
                save_raw_frame(stem.with_suffix(".tiff"),
                               np.asarray(display.meta.get("raw_frame", display.raw)))
        except Exception as exc:  # a full disk, a removed directory: counted, said, next one tried
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("snapshot not written: %s", self.last_error)
            return
        self.written += 1
        self.last_path = str(path)

    def _free_stem(self, stamp: str) -> Path:
        stem = self.out_dir / f"{self.prefix}_{stamp}"
        n = 1
        while stem.with_suffix(".png").exists() or stem.with_suffix(".tiff").exists():
            n += 1
            stem = self.out_dir / f"{self.prefix}_{stamp}_{n}"
        return stem
