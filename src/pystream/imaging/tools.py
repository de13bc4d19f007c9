"""ImageToolsModel: the image tools' state and measurements, with no Qt.

The window's panel draws a crosshair, a ROI and a line and shows the
numbers; this model holds where they are, the flat/dark corrections and the
auto-contrast schedule, and measures in the display worker. A script uses
the same model::

    tools = ImageToolsModel()
    tools.attach(session)                 # corrections + measurements run in the worker
    tools.roi_rect = (100, 100, 64, 64)   # detector pixels: x, y, width, height
    tools.crosshair_pixel = (200, 150)
    for display in session.frames():
        roi = tools.result(display, "roi_stats")   # a Measured(uid, RoiStats) or None
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np

from .corrections import ImageCorrections
from .geometry import Orientation, Rect
from .measurements import EveryNth, image_info, line_profile, probe, roi_stats

#: the measurements, by the name their results carry in ``DisplayFrame.analysis``
ANALYSES = ("crosshair", "image_info", "roi_stats", "line_profile")

Line = Tuple[Tuple[float, float], Tuple[float, float]]


class Measured(NamedTuple):
    """A measurement and the frame (uid) it was made on."""

    uid: int
    value: Any


class RateLimit:
    """Due at most ``rate`` times a second, and at once after ``touch()`` (geometry changed)."""

    def __init__(self, rate: float):
        self.period = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    def touch(self) -> None:
        self._next = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.period
        return True


class ImageToolsModel:
    """Crosshair, ROI, line, orientation, flat/dark and auto contrast of one session.

    Geometry is read by the worker thread: each attribute is a whole tuple,
    replaced at once (never mutated), so the worker sees an old or a new value,
    never half of one. ``None`` switches a measurement off.
    ``stats_rate``: image info and ROI statistics at most this often (a panel
    cannot show more); ``profile_rate``: line profiles.
    """

    def __init__(self, *, auto_every: int = 1, stats_rate: float = 5.0,
                 profile_rate: float = 10.0,
                 on_captured: Optional[Callable[[str, np.ndarray], None]] = None,
                 on_problem: Optional[Callable[[str], None]] = None):
        self.orientation = Orientation()
        self._crosshair: Optional[Tuple[int, int]] = None
        self._roi: Optional[Rect] = None
        self._line: Optional[Line] = None
        self.limits = {"image_info": RateLimit(stats_rate), "roi_stats": RateLimit(stats_rate),
                       "line_profile": RateLimit(profile_rate)}
        self.auto_schedule = EveryNth(auto_every)
        self.auto_levels = True  # apply levels every auto_every frames (else only when armed)
        self.corrections = ImageCorrections(on_captured=on_captured, on_problem=on_problem)
        self._session = None

    # ------------------------------------------------------------ geometry (detector pixels)
    @property
    def crosshair_pixel(self) -> Optional[Tuple[int, int]]:
        return self._crosshair

    @crosshair_pixel.setter
    def crosshair_pixel(self, pixel: Optional[Tuple[int, int]]) -> None:
        self._crosshair = None if pixel is None else (int(pixel[0]), int(pixel[1]))

    @property
    def roi_rect(self) -> Optional[Rect]:
        return self._roi

    @roi_rect.setter
    def roi_rect(self, rect: Optional[Rect]) -> None:
        self._roi = None if rect is None else tuple(float(v) for v in rect)
        self.limits["roi_stats"].touch()

    @property
    def line_points(self) -> Optional[Line]:
        return self._line

    @line_points.setter
    def line_points(self, points: Optional[Line]) -> None:
        self._line = None if points is None else (tuple(map(float, points[0])),
                                                  tuple(map(float, points[1])))
        self.limits["line_profile"].touch()

    # ------------------------------------------------------------ session
    def attach(self, session, measurements=ANALYSES) -> None:
        """Run the corrections first in ``session``'s worker, and ``measurements``
        on every shown frame (``enable``/``disable`` change them later); the
        worker asks ``auto_levels_due`` once per frame."""
        session.processors.insert(0, self.corrections)
        self._session = session
        for name in measurements:
            self.enable(name)
        session.display.auto_levels_schedule = self.auto_levels_due

    def enable(self, name: str) -> None:
        """Measure ``name`` (one of ANALYSES) on every shown frame of the attached session."""
        if self._session is not None:
            self._session.analyses[name] = self.analyses()[name]

    def disable(self, name: str) -> None:
        if self._session is not None:
            self._session.analyses.pop(name, None)

    def detach(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        if self.corrections in session.processors:
            session.processors.remove(self.corrections)
        for name in ANALYSES:
            session.analyses.pop(name, None)
        session.display.auto_levels_schedule = None

    def analyses(self) -> Dict[str, Callable]:
        return {"crosshair": self.measure_crosshair, "image_info": self.measure_info,
                "roi_stats": self.measure_roi, "line_profile": self.measure_line}

    # ------------------------------------------------------------ worker side
    # ``arr`` is the full-resolution processed frame; meta["raw_frame"], when
    # present, the frame before the corrections
    def measure_crosshair(self, arr, meta: dict) -> Optional[Measured]:
        pixel = self._crosshair
        if pixel is None:
            return None
        raw = meta.get("raw_frame", arr)
        corrected = probe(arr, pixel) if raw is not arr else None
        return Measured(meta.get("uid", -1), (probe(raw, pixel), corrected))

    def measure_info(self, arr, meta: dict) -> Optional[Measured]:
        if not self.limits["image_info"].due():
            return None
        return Measured(meta.get("uid", -1), image_info(meta.get("raw_frame", arr)))

    def measure_roi(self, arr, meta: dict) -> Optional[Measured]:
        rect = self._roi
        if rect is None or not self.limits["roi_stats"].due():
            return None
        return Measured(meta.get("uid", -1), roi_stats(arr, rect))

    def measure_line(self, arr, meta: dict) -> Optional[Measured]:
        points = self._line
        if points is None or not self.limits["line_profile"].due():
            return None
        return Measured(meta.get("uid", -1), line_profile(arr, *points))

    def auto_levels_due(self) -> bool:
        """Whether the worker applies this frame's levels (every N frames with
        auto levels on; once after ``auto_contrast_once`` otherwise)."""
        return self.auto_schedule() if self.auto_levels else self.auto_schedule.take_armed()

    def auto_contrast_once(self) -> None:
        self.auto_schedule.arm()

    # ------------------------------------------------------------ reading results
    @staticmethod
    def result(display, name: str) -> Optional[Measured]:
        """The measurement ``name`` of a shown frame, once the worker has made it
        (a moment after the frame was delivered); None if not (yet) made."""
        value = display.analysis.get(name)
        return value if isinstance(value, Measured) else None

    def measure(self, arr: np.ndarray, uid: int = -1) -> Dict[str, Measured]:
        """Every measurement of one frame now, ignoring the rate limits (scripts, tests)."""
        meta = {"uid": uid}
        out: Dict[str, Measured] = {}
        for limit in self.limits.values():
            limit.touch()
        for name, measure in self.analyses().items():
            value = measure(arr, meta)
            if value is not None:
                out[name] = value
        return out
