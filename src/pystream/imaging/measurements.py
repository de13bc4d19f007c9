"""Measurements in detector pixels: a pixel's value, image info, ROI statistics,
line profiles; and the auto-contrast schedule."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from .geometry import Rect


def _plain(value: Any) -> Any:
    """numpy scalars/arrays → Python numbers/tuples (labels, JSON)."""
    if isinstance(value, np.ndarray):
        return tuple(v.item() for v in value.ravel())
    return value.item() if isinstance(value, np.generic) else value


def pixel_value(arr: np.ndarray, x: int, y: int) -> Any:
    """``arr[y, x]``: a number, or a tuple (one per channel) for RGB; None outside."""
    if 0 <= y < arr.shape[0] and 0 <= x < arr.shape[1]:
        return _plain(arr[y, x])
    return None


@dataclass(frozen=True)
class PixelProbe:
    x: int
    y: int
    value: Any  # number, tuple for RGB, None outside the frame


def probe(arr: np.ndarray, position: Optional[Tuple[int, int]]) -> Optional[PixelProbe]:
    if position is None:
        return None
    x, y = position
    return PixelProbe(x, y, pixel_value(arr, x, y))


@dataclass(frozen=True)
class ImageInfo:
    shape: Tuple[int, ...]
    dtype: str
    min: float
    max: float
    mean: float


def image_info(arr: np.ndarray) -> ImageInfo:
    """Shape, dtype, min, max, mean (NaN ignored) of a full-resolution frame."""
    if arr.dtype.kind == "f":
        lo, hi, mean = np.nanmin(arr), np.nanmax(arr), np.nanmean(arr, dtype=np.float64)
    else:
        lo, hi, mean = arr.min(), arr.max(), arr.mean(dtype=np.float64)
    return ImageInfo(tuple(arr.shape), str(arr.dtype), float(lo), float(hi), float(mean))


def pixel_box(rect: Rect, det_shape: Sequence[int]) -> Tuple[int, int, int, int]:
    """Whole pixels covered by ``rect`` (edges rounded to the nearest pixel
    boundary), clipped to the frame: ``(x0, y0, x1, y1)``, end exclusive."""
    x, y, w, h = rect
    ny, nx = int(det_shape[0]), int(det_shape[1])
    x0, x1 = int(np.clip(round(x), 0, nx)), int(np.clip(round(x + w), 0, nx))
    y0, y1 = int(np.clip(round(y), 0, ny)), int(np.clip(round(y + h), 0, ny))
    return x0, y0, max(x0, x1), max(y0, y1)


@dataclass(frozen=True)
class RoiStats:
    x: int
    y: int
    width: int
    height: int
    min: Any = None  # numbers (tuples for RGB); None for an empty region
    max: Any = None
    mean: Any = None
    std: Any = None
    sum: Any = None

    @property
    def count(self) -> int:
        return self.width * self.height


def roi_stats(arr: np.ndarray, rect: Rect) -> RoiStats:
    """Statistics of the pixels inside ``rect`` (detector coordinates), per channel for RGB."""
    x0, y0, x1, y1 = pixel_box(rect, arr.shape)
    region = arr[y0:y1, x0:x1]
    stats = RoiStats(x0, y0, x1 - x0, y1 - y0)
    if region.size == 0:
        return stats
    axes = (0, 1)
    total = region.sum(axis=axes, dtype=np.float64)
    mean = total / (region.shape[0] * region.shape[1])
    return replace(stats, min=_plain(region.min(axis=axes)), max=_plain(region.max(axis=axes)),
                   mean=_plain(mean), std=_plain(_std_about(region, mean)), sum=_plain(total))


_STD_BLOCK = 1 << 16  # pixels per block: the float64 temporaries stay in cache


def _std_about(region: np.ndarray, mean) -> Any:
    """Population std of ``region`` over its first two axes, given the mean.

    Same result as ``np.std(..., dtype=float64)``, computed in row blocks so
    a large ROI never needs a full-size float64 copy (that copy was most of
    the worker's time for a 1024² ROI).
    """
    h, w = region.shape[:2]
    rows = max(1, _STD_BLOCK // max(w, 1))
    squares = np.zeros(np.shape(mean))
    spec = "ijc,ijc->c" if region.ndim == 3 else "ij,ij->"
    for r in range(0, h, rows):
        dev = region[r:r + rows].astype(np.float64)
        dev -= mean
        squares += np.einsum(spec, dev, dev)
    return np.sqrt(squares / (h * w))


@dataclass(frozen=True)
class LineProfile:
    start: Tuple[float, float]
    end: Tuple[float, float]
    length: float  # detector pixels
    angle: float  # degrees from +x towards +y (rows go down), in (-180, 180]
    distance: np.ndarray  # along the line, from start
    values: np.ndarray  # float64, (n,) or (n, channels); NaN outside the frame


def _inside_range(x0: float, y0: float, dx: float, dy: float, w: int, h: int) -> Optional[Tuple[float, float]]:
    """The part ``[t0, t1]`` of the segment ``(x0, y0) + t (dx, dy)``, t in [0, 1],
    inside the frame ``[0, w] x [0, h]`` (Liang-Barsky); None if it misses it."""
    lo, hi = 0.0, 1.0
    for p, q in ((-dx, x0), (dx, w - x0), (-dy, y0), (dy, h - y0)):
        if p == 0:
            if q < 0:
                return None
        elif p < 0:
            lo = max(lo, q / p)
        else:
            hi = min(hi, q / p)
    return (lo, hi) if lo <= hi else None


def line_profile(arr: np.ndarray, start: Tuple[float, float], end: Tuple[float, float]) -> LineProfile:
    """Values along the segment, one sample per detector pixel of length
    (nearest pixel: no interpolation, so every value is a real pixel value).

    Only the part over the frame is sampled, plus the two ends (NaN when
    outside): a line dragged far off the image costs no more than its part on it."""
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    length = float(np.hypot(dx, dy))
    angle = float(np.degrees(np.arctan2(dy, dx)))
    n = max(2, int(np.ceil(length)) + 1)
    span = _inside_range(x0, y0, dx, dy, arr.shape[1], arr.shape[0])
    if span is None:
        k = np.array([0, n - 1])
    else:  # the samples over the frame, one more each side for rounding, and both ends
        k_lo = max(0, int(np.floor(span[0] * (n - 1))) - 1)
        k_hi = min(n - 1, int(np.ceil(span[1] * (n - 1))) + 1)
        k = np.unique(np.r_[0, np.arange(k_lo, k_hi + 1), n - 1])
    t = k / (n - 1)
    ix = np.floor(x0 + t * dx).astype(np.intp)
    iy = np.floor(y0 + t * dy).astype(np.intp)
    inside = (ix >= 0) & (ix < arr.shape[1]) & (iy >= 0) & (iy < arr.shape[0])
    values = np.full((len(t),) + arr.shape[2:], np.nan)
    values[inside] = arr[iy[inside], ix[inside]]
    return LineProfile((x0, y0), (x1, y1), length, angle, t * length, values)


class EveryNth:
    """True for the first call and then every ``n``-th one (auto contrast every N frames)."""

    def __init__(self, n: int = 1):
        self.n = max(1, int(n))
        self._count = 0
        self._armed = False

    def arm(self) -> None:
        """Make the next call True (e.g. "auto contrast once")."""
        self._armed = True

    def take_armed(self) -> bool:
        """True once after ``arm()`` (without counting a frame)."""
        armed, self._armed = self._armed, False
        return armed

    def __call__(self) -> bool:
        due = self._armed or self._count % self.n == 0
        self._armed = False
        self._count += 1
        return due
