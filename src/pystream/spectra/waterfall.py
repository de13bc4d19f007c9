"""WaterfallModel: ring contents → a display-ready image, computed off the GUI thread.

The GUI only calls ``latest()`` and hands the arrays to pyqtgraph: float32,
C-contiguous, row-major ``(time, freq)`` with the newest spectrum in row 0,
log10 already applied (when ``log``), levels already computed from
percentiles of a subsample. ``start(rate_hz)`` runs ``update()`` on a worker
thread; a result is recomputed only when the ring has new rows.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .processing import frequency_axis
from .ring import SpectrumRing

log = logging.getLogger(__name__)

LEVELS_INTERVAL_S = 0.2  # colour levels follow the data 5 times a second


@dataclass(frozen=True)
class WaterfallImage:
    """One display-ready state of the waterfall and the latest spectrum."""

    image: np.ndarray         # (n_time, n_freq) float32, row 0 = newest, log10 if ``log``
    levels: Tuple[float, float]
    freqs: np.ndarray         # x value of each column (MHz or channel number)
    span_s: float             # seconds from the oldest row to the newest
    latest: np.ndarray        # newest spectrum, linear power
    t_source: Optional[float]  # producer time of the newest spectrum
    version: int              # ring.total when computed (changes with every new row)
    log: bool


def to_log_image(rows: np.ndarray) -> np.ndarray:
    """log10 of power with non-positive values raised to the smallest positive one."""
    rows = np.asarray(rows, dtype=np.float32)
    positive = rows[rows > 0]
    floor = positive.min() if positive.size else np.float32(1.0)
    out = np.maximum(rows, floor)
    np.log10(out, out=out)
    return out


def robust_levels(image: np.ndarray, percentiles: Sequence[float] = (1.0, 99.5),
                  max_samples: int = 50_000) -> Tuple[float, float]:
    """Percentile levels from an evenly strided subsample (cheap on big images)."""
    flat = image.reshape(-1)
    step = max(1, flat.size // max_samples)
    sample = flat[::step]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, list(percentiles))
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


class WaterfallModel:
    """Computes ``WaterfallImage`` from a ``SpectrumRing``; thread-safe ``latest()``."""

    def __init__(self, ring: SpectrumRing, *, freq_range: Optional[Sequence[float]] = None,
                 log_scale: bool = True, percentiles: Sequence[float] = (1.0, 99.5),
                 max_rows: Optional[int] = None):
        self.ring = ring
        self.freq_range = tuple(freq_range) if freq_range is not None else None
        self.log_scale = bool(log_scale)
        self.percentiles = tuple(percentiles)
        self.max_rows = max_rows
        self.updates = 0
        self.errors = 0
        self._latest: Optional[WaterfallImage] = None
        self._computed_for: Optional[Tuple[int, int, bool]] = None
        self._levels: Optional[Tuple[Tuple[float, float], bool, float]] = None  # (levels, log, when)
        self._stop_event = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def compute(self) -> Optional[WaterfallImage]:
        """Build a fresh image from the ring now (None when the ring is empty)."""
        version, resets = self.ring.total, self.ring.resets
        rows, times = self.ring.latest_with_times(self.max_rows)
        if rows.shape[0] == 0:
            return None
        latest = rows[-1].copy()
        newest_first = rows[::-1]
        image = to_log_image(newest_first) if self.log_scale else np.ascontiguousarray(newest_first)
        # percentiles are the costliest step and levels need not follow every
        # row: recompute them at most LEVELS_INTERVAL_S apart (and on a change of scale)
        now = time.monotonic()
        previous = self._levels
        if previous is None or previous[1] != self.log_scale or now - previous[2] >= LEVELS_INTERVAL_S:
            self._levels = (robust_levels(image, self.percentiles), self.log_scale, now)
        levels = self._levels[0]
        span = float(times[-1] - times[0]) if rows.shape[0] > 1 and np.isfinite(times).all() else 0.0
        t_source = float(times[-1]) if np.isfinite(times[-1]) else None
        freqs = frequency_axis(rows.shape[1], self.freq_range)
        self._computed_for = (version, resets, self.log_scale)
        return WaterfallImage(np.ascontiguousarray(image, dtype=np.float32), levels, freqs,
                              max(span, 0.0), latest, t_source, version, self.log_scale)

    def update(self) -> bool:
        """Recompute if the ring changed since the last result; True when it did."""
        if self._computed_for == (self.ring.total, self.ring.resets, self.log_scale):
            return False
        result = self.compute()
        if result is None:
            return False
        self._latest = result  # one reference swap: readers see old or new, never half
        self.updates += 1
        return True

    def latest(self) -> Optional[WaterfallImage]:
        return self._latest

    def set_log_scale(self, enabled: bool) -> None:
        self.log_scale = bool(enabled)  # the worker picks it up on its next tick

    # -- worker thread ---------------------------------------------------------
    def start(self, rate_hz: float = 10.0) -> None:
        """Recompute at most ``rate_hz`` times a second on a daemon thread."""
        if self._thread is not None:
            return
        period = 1.0 / max(float(rate_hz), 0.1)
        self._stop_event.clear()

        def run():
            # a fixed timetable: the compute time does not lower the rate
            next_t = time.monotonic() + period
            while not self._stop_event.wait(max(0.0, next_t - time.monotonic())):
                next_t = max(next_t + period, time.monotonic())
                try:
                    self.update()
                except Exception:  # keep drawing later frames
                    self.errors += 1
                    log.exception("waterfall update failed")

        self._thread = threading.Thread(target=run, name="waterfall-model", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop_event.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
