"""Per-frame statistics over time: mean, std, min, max, sum of a frame or a ROI.

``frame_stats(arr, rect=None)`` measures one frame (the arithmetic is
``imagetools.roi_stats``); ``FrameStatistics`` is the analysis the display
worker runs on each shown frame, at most ``rate`` times a second, feeding a
``TimeSeries`` (the newest ``window`` samples and their rolling statistics)
that a panel plots and ``--stats-json`` writes. No Qt here.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Set, Tuple

import numpy as np

from .imaging import Rect, pixel_box, roi_stats
from .imaging.tools import RateLimit
from .stats import TimeSeries

QUANTITIES = ("mean", "std", "min", "max", "sum")


@dataclass(frozen=True)
class FrameStats:
    """Statistics of the pixels of one frame inside ``rect`` (whole pixels, clipped)."""

    mean: float
    std: float  # population (ddof=0)
    min: float
    max: float
    sum: float
    count: int  # pixels (x channels for RGB)
    rect: Tuple[int, int, int, int]  # x, y, width, height actually measured

    def values(self) -> Tuple[float, ...]:
        return tuple(getattr(self, q) for q in QUANTITIES)


def frame_stats(arr: Any, rect: Optional[Rect] = None) -> FrameStats:
    """Mean, std, min, max and sum of ``arr`` (the whole frame, or the pixels of
    ``rect`` = (x, y, width, height) in detector coordinates). RGB channels are
    pooled. An empty region (a ROI outside the frame) gives NaNs and count 0."""
    shape = arr.shape
    x0, y0, x1, y1 = pixel_box(rect if rect is not None else (0, 0, shape[1], shape[0]), shape)
    region = np.asarray(arr[y0:y1, x0:x1])  # a PixelwiseDeferred corrects only this part
    box = (x0, y0, x1 - x0, y1 - y0)
    if region.size == 0:
        nan = float("nan")
        return FrameStats(nan, nan, nan, nan, 0.0, 0, box)
    if region.ndim == 3:  # RGB: every channel value is a sample
        region = region.reshape(region.shape[0], -1)
    s = roi_stats(region, (0, 0, region.shape[1], region.shape[0]))
    return FrameStats(float(s.mean), float(s.std), float(s.min), float(s.max), float(s.sum),
                      int(region.size), box)


class FrameStatistics:
    """The statistics analysis: ``analysis(arr, meta)`` on the display worker.

    At most ``rate`` frames a second (0 = every frame it is given) are
    measured, over ``region()`` (a rect in detector coordinates, or None for
    the whole frame), and added to ``series`` at the frame's timestamp. Returns
    the ``FrameStats`` (None when not due, or when ``region()`` says
    ``FrameStatistics.SKIP``). A frame from another source than the last
    starts a fresh series. ``threads`` records which threads computed.
    """

    SKIP = object()  # a region() result: measure nothing now (e.g. the ROI is off)

    def __init__(self, *, window: int = 600, rate: float = 5.0,
                 region: Optional[Callable[[], Any]] = None):
        self.series = TimeSeries(QUANTITIES, window)
        self.set_rate(rate)
        self.region = region
        self.threads: Set[int] = set()
        self.last: Optional[FrameStats] = None
        self._source: Any = None
        self._generation = 0  # bumped by restart(): a frame measured before it is dropped
        self._lock = threading.Lock()

    def set_rate(self, rate: float) -> None:
        """At most ``rate`` frames measured a second (0 = every frame given)."""
        self.rate = max(0.0, float(rate))
        self.limit = RateLimit(self.rate)

    def restart(self) -> None:
        """Start a fresh series (e.g. another region): a frame being measured
        now, under the old settings, is not added to it."""
        with self._lock:
            self._generation += 1
            self.series.clear()
            self.last = None

    def __call__(self, arr: Any, meta: dict) -> Optional[FrameStats]:
        if not self.limit.due():
            return None
        generation = self._generation
        rect = self.region() if self.region is not None else None
        if rect is FrameStatistics.SKIP:
            return None
        self.threads.add(threading.get_ident())
        stats = frame_stats(arr, rect)
        t = meta.get("timestamp")
        with self._lock:
            if generation != self._generation:
                return None
            source = meta.get("source")
            if source != self._source:  # another stream: its numbers are another series
                self._source = source
                self.series.clear()
            self.series.add(time.time() if t is None else t, meta.get("uid", -1), stats.values())
            self.last = stats
        return stats

    def summary(self) -> Dict[str, Any]:
        """``--stats-json``'s ``frame_stats``: the latest frame's numbers, the
        rolling statistics of each over the window, and what was measured."""
        out = self.series.summary()
        last = self.last
        out["region"] = None if last is None else {"x": last.rect[0], "y": last.rect[1],
                                                   "width": last.rect[2], "height": last.rect[3],
                                                   "pixels": last.count}
        out["rate_hz"] = self.rate
        return out
