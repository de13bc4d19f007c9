"""Image tools engine: orientation, pixel probes, ROI/line statistics, corrections, saving.

No Qt here: the image-tools panel (``gui/image_tools.py``) draws and clicks,
this module does the arithmetic, always in *detector* pixel coordinates.

Coordinates: a detector pixel ``(x, y)`` (column, row) covers the square
``[x, x+1) x [y, y+1)``; ``arr[y, x]`` is its value. The *view* is the
oriented picture on screen, in the same units (one detector pixel = one view
unit), whatever the display binning.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .pipeline.processors import DarkSubtract, FlatField

PathLike = Union[str, "os.PathLike[str]"]
Rect = Tuple[float, float, float, float]  # x, y, width, height


# ---------------------------------------------------------------- orientation
@dataclass(frozen=True)
class Orientation:
    """How the detector image is shown: ``quarter_turns`` clockwise rotations
    first, then ``transpose``, then ``flip_h`` / ``flip_v`` (mirrors of what
    is on screen, so Flip H always mirrors left-right whatever else is set).

    The map is ``view = M @ det + t`` with ``M`` a signed permutation, so it
    and its inverse are exact on pixel coordinates.
    """

    flip_h: bool = False
    flip_v: bool = False
    transpose: bool = False
    quarter_turns: int = 0  # clockwise on screen (rows go down)

    def toggled(self, name: str) -> "Orientation":
        return replace(self, **{name: not getattr(self, name)})

    def rotated(self) -> "Orientation":
        return replace(self, quarter_turns=(self.quarter_turns + 1) % 4)

    def affine(self, det_shape: Sequence[int]) -> Tuple[int, int, int, int, int, int]:
        """``(a, b, c, d, tx, ty)``: ``vx = a*x + b*y + tx``, ``vy = c*x + d*y + ty``
        for continuous coordinates on a detector of ``det_shape`` (rows, cols)."""
        a, b, c, d, tx, ty = 1, 0, 0, 1, 0, 0
        w, h = int(det_shape[1]), int(det_shape[0])

        def then(a2, b2, c2, d2, tx2, ty2):  # compose: new = step ∘ current
            nonlocal a, b, c, d, tx, ty
            a, b, c, d, tx, ty = (a2 * a + b2 * c, a2 * b + b2 * d, c2 * a + d2 * c, c2 * b + d2 * d,
                                  a2 * tx + b2 * ty + tx2, c2 * tx + d2 * ty + ty2)

        for _ in range(self.quarter_turns % 4):  # clockwise: (x, y) -> (h - y, x)
            then(0, -1, 1, 0, h, 0)
            w, h = h, w
        if self.transpose:
            then(0, 1, 1, 0, 0, 0)
            w, h = h, w
        if self.flip_h:
            then(-1, 0, 0, 1, w, 0)
        if self.flip_v:
            then(1, 0, 0, -1, 0, h)
        return a, b, c, d, tx, ty

    def view_shape(self, det_shape: Sequence[int]) -> Tuple[int, int]:
        h, w = int(det_shape[0]), int(det_shape[1])
        swapped = (self.quarter_turns % 2 == 1) != self.transpose
        return (w, h) if swapped else (h, w)

    def det_to_view(self, x: float, y: float, det_shape: Sequence[int]) -> Tuple[float, float]:
        a, b, c, d, tx, ty = self.affine(det_shape)
        return a * x + b * y + tx, c * x + d * y + ty

    def view_to_det(self, vx: float, vy: float, det_shape: Sequence[int]) -> Tuple[float, float]:
        a, b, c, d, tx, ty = self.affine(det_shape)
        # M is orthogonal (a signed permutation): its inverse is its transpose
        ux, uy = vx - tx, vy - ty
        return a * ux + c * uy, b * ux + d * uy

    def view_to_pixel(self, vx: float, vy: float, det_shape: Sequence[int]) -> Optional[Tuple[int, int]]:
        """The detector pixel ``(x, y)`` under a view point, or None outside the frame."""
        # the view pixel holding the point (half-open on screen), then its centre:
        # a mirrored axis would otherwise flip which edge belongs to the pixel
        ivx, ivy = int(np.floor(vx)), int(np.floor(vy))
        vh, vw = self.view_shape(det_shape)
        if not (0 <= ivx < vw and 0 <= ivy < vh):
            return None
        x, y = self.view_to_det(ivx + 0.5, ivy + 0.5, det_shape)
        return int(np.floor(x)), int(np.floor(y))

    def pixel_center_in_view(self, x: int, y: int, det_shape: Sequence[int]) -> Tuple[float, float]:
        return self.det_to_view(x + 0.5, y + 0.5, det_shape)

    def rect_to_view(self, rect: Rect, det_shape: Sequence[int]) -> Rect:
        return _map_rect(rect, lambda x, y: self.det_to_view(x, y, det_shape))

    def rect_to_det(self, rect: Rect, det_shape: Sequence[int]) -> Rect:
        return _map_rect(rect, lambda x, y: self.view_to_det(x, y, det_shape))

    def apply(self, arr: np.ndarray) -> np.ndarray:
        """The array as it is seen on screen (a numpy view, no copy)."""
        out = np.rot90(arr, -(self.quarter_turns % 4), axes=(0, 1))
        if self.transpose:
            out = out.swapaxes(0, 1)
        if self.flip_h:
            out = out[:, ::-1]
        if self.flip_v:
            out = out[::-1]
        return out


def _map_rect(rect: Rect, point_map: Callable[[float, float], Tuple[float, float]]) -> Rect:
    x, y, w, h = rect
    xs, ys = zip(point_map(x, y), point_map(x + w, y + h))
    return min(xs), min(ys), abs(xs[1] - xs[0]), abs(ys[1] - ys[0])


# ---------------------------------------------------------------- measurements
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


# ---------------------------------------------------------------- files
def save_raw_frame(path: PathLike, arr: np.ndarray) -> Path:
    """``.npy`` or ``.tif[f]`` with the frame's own values and dtype."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, arr, allow_pickle=False)
    elif suffix in (".tif", ".tiff"):
        import tifffile
        rgb = arr.ndim == 3 and arr.shape[2] in (3, 4)
        tifffile.imwrite(path, np.ascontiguousarray(arr), photometric="rgb" if rgb else "minisblack")
    else:
        raise ValueError(f"raw frames are saved as .npy or .tiff, not {suffix or 'no extension'!r}")
    return path


def render_displayed(arr: np.ndarray, levels: Tuple[float, float], lut: Optional[np.ndarray],
                     orientation: Orientation = Orientation()) -> np.ndarray:
    """uint8 RGB image of ``arr`` as the screen shows it: levels, colour map, orientation.

    ``lut`` is (n, 3|4) uint8 (pyqtgraph's); mono frames are scaled to its
    length, RGB frames are scaled per channel and ignore it.
    """
    lo, hi = float(levels[0]), float(levels[1])
    span = hi - lo if hi > lo else 1.0
    data = orientation.apply(arr).astype(np.float32)
    if data.ndim == 3:
        scaled = np.clip((data[..., :3] - lo) / span, 0.0, 1.0)
        return np.ascontiguousarray(np.nan_to_num(scaled) * 255 + 0.5).astype(np.uint8)
    if lut is None:
        lut = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    n = len(lut)
    index = np.clip(np.nan_to_num((data - lo) / span * n), 0, n - 1).astype(np.intp)
    return np.ascontiguousarray(np.asarray(lut, np.uint8)[index][..., :3])


def save_displayed_png(path: PathLike, arr: np.ndarray, levels: Tuple[float, float],
                       lut: Optional[np.ndarray], orientation: Orientation = Orientation()) -> Path:
    from PIL import Image
    path = Path(path)
    Image.fromarray(render_displayed(arr, levels, lut, orientation), "RGB").save(path)
    return path


def load_reference(path: PathLike, what: str = "flat") -> np.ndarray:
    """A flat or dark frame from ``.npy``; ValueError with the reason if unusable."""
    path = Path(os.path.expanduser(os.fspath(path)))
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except FileNotFoundError:
        raise ValueError(f"{what} file not found: {path}") from None
    except OSError as exc:  # a directory, no permission...
        raise ValueError(f"cannot read {what} from {path}: {exc.strerror or exc}") from None
    if magic != b"\x93NUMPY":  # else numpy blames pickled data for any other file
        raise ValueError(f"cannot read {what} from {path.name}: not a NumPy .npy file")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # not a .npy, truncated, pickled objects...
        raise ValueError(f"cannot read {what} from {path.name}: {exc}") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path.name} holds several arrays ({type(arr).__name__}), not one {what} image")
    if arr.ndim != 2 or arr.size == 0 or arr.dtype.kind not in "iuf":  # a bool mask is no flat
        raise ValueError(f"{what} must be a non-empty numeric 2-D image; {path.name} holds "
                         f"{arr.dtype} {arr.shape}")
    return arr


# ---------------------------------------------------------------- corrections
class FrameAverager:
    """Mean of ``n`` frames (float32), accumulated in float64. Restarts if the shape changes."""

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self.count = 0
        self.restarts = 0
        self._sum: Optional[np.ndarray] = None

    def add(self, arr: np.ndarray) -> Optional[np.ndarray]:
        """Add a frame; the average once ``n`` frames are in, else None."""
        image = arr if arr.ndim == 2 else arr.mean(axis=2)  # references are 2-D
        if self._sum is None or self._sum.shape != image.shape:
            if self._sum is not None:
                self.restarts += 1
            self._sum = np.zeros(image.shape, np.float64)
            self.count = 0
        self._sum += image
        self.count += 1
        if self.count >= self.n:
            return (self._sum / self.count).astype(np.float32)
        return None


@dataclass(frozen=True)
class _Stage:
    """What the worker applies; replaced whole (one reference swap) on any change."""

    processor: Any = None  # FlatField or DarkSubtract (the pipeline's own processors)
    shape: Optional[Tuple[int, int]] = None  # the reference's shape
    kind: str = ""  # "flat", "flat+dark", "dark"


class ImageCorrections:
    """Flat-field / dark correction as a display-worker step ``(arr, meta) -> (arr, meta)``.

    The math is the pipeline's ``FlatField`` (with or without dark) or
    ``DarkSubtract`` (dark only). Capturing averages the next ``n`` frames
    *before* correction, in the worker thread. A reference whose shape does
    not match the frames is not applied: the frame passes uncorrected,
    ``meta["corrections_problem"]`` says why, ``problem`` keeps the message,
    ``not_applied`` counts the frames, and ``on_problem(message)`` is called
    once per new message (with "" once it is resolved). ``meta["raw_frame"]`` keeps the frame as received.
    """

    def __init__(self, on_captured: Optional[Callable[[str, np.ndarray], None]] = None,
                 on_problem: Optional[Callable[[str], None]] = None):
        self.flat: Optional[np.ndarray] = None
        self.dark: Optional[np.ndarray] = None
        self.apply_flat = False
        self.apply_dark = False
        self.on_captured = on_captured
        self.on_problem = on_problem
        self.problem = ""
        self.not_applied = 0
        self.masked_pixels = 0
        self._stage = _Stage()
        self._capture: Optional[Tuple[str, FrameAverager]] = None
        self._lock = threading.Lock()

    # -- control (GUI thread, or the worker when a capture completes)
    def set_reference(self, kind: str, arr: Optional[np.ndarray]) -> None:
        if kind not in ("flat", "dark"):
            raise ValueError(f"unknown reference {kind!r}")
        with self._lock:
            setattr(self, kind, None if arr is None else np.asarray(arr))
            self._rebuild()

    def set_applied(self, kind: str, on: bool) -> None:
        with self._lock:
            setattr(self, f"apply_{kind}", bool(on))
            self._rebuild()

    def capture(self, kind: str, n: int) -> None:
        """Average the next ``n`` frames the worker sees into the ``kind`` reference."""
        self._capture = (kind, FrameAverager(n))

    def cancel_capture(self) -> None:
        self._capture = None

    @property
    def capturing(self) -> Optional[Tuple[str, int, int]]:
        cap = self._capture
        return None if cap is None else (cap[0], cap[1].count, cap[1].n)

    def _rebuild(self) -> None:
        flat = self.flat if self.apply_flat else None
        dark = self.dark if self.apply_dark else None
        try:
            if flat is not None:
                processor = FlatField(flat=flat, dark=dark)
                stage = _Stage(processor, flat.shape, "flat+dark" if dark is not None else "flat")
                self.masked_pixels = processor.masked_pixels
            elif dark is not None:
                stage = _Stage(DarkSubtract(dark=dark), dark.shape, "dark")
                self.masked_pixels = 0
            else:
                stage, self.masked_pixels = _Stage(), 0
            self._set_problem("")
        except ValueError as exc:  # flat vs dark shapes, a flat with no usable pixel
            stage = _Stage()
            self._set_problem(f"correction not applied: {exc}")
        self._stage = stage

    def _set_problem(self, message: str) -> None:
        if message != self.problem:
            self.problem = message
            if self.on_problem is not None:  # "" when the problem is gone
                self.on_problem(message)

    # -- the step (worker thread)
    def _prepare(self, arr: np.ndarray, meta: Dict[str, Any]) -> Optional["_Stage"]:
        """Per-frame bookkeeping (capture, shape check); the stage to apply, or None."""
        meta.setdefault("raw_frame", arr)  # the frame as received, for probes, info and saving
        cap = self._capture
        if cap is not None:
            kind, averager = cap
            average = averager.add(arr)
            meta["capturing"] = (kind, averager.count, averager.n)
            if average is not None and self._capture is cap:
                self._capture = None
                self.set_reference(kind, average)
                if self.on_captured is not None:
                    self.on_captured(kind, average)
        stage = self._stage
        if stage.processor is None:
            if self.problem:
                meta["corrections_problem"] = self.problem
            return None
        if tuple(arr.shape[:2]) != stage.shape:
            self.not_applied += 1
            message = (f"{stage.kind} not applied: reference shape {stage.shape} does not match "
                       f"frame shape {tuple(arr.shape[:2])}; capture or load one of the frame's size")
            self._set_problem(message)
            meta["corrections_problem"] = message
            return None
        if self.problem.startswith(f"{stage.kind} not applied"):
            self._set_problem("")  # the stream came back to the reference's shape
        meta["corrections"] = stage.kind
        if isinstance(stage.processor, FlatField):
            meta["flat_masked_pixels"] = stage.processor.masked_pixels
        return stage

    def __call__(self, arr: np.ndarray, meta: Dict[str, Any]) -> Tuple[np.ndarray, Dict[str, Any]]:
        stage = self._prepare(arr, meta)
        if stage is None:
            return arr, meta
        return stage.processor.apply(arr, meta), meta

    def deferred(self, arr: np.ndarray, meta: Dict[str, Any]) -> Optional[Callable[[Any, Any], np.ndarray]]:
        """The display worker's cheaper form: bookkeeping now, and a function
        ``(part, key) -> corrected part`` so only the pixels that are shown or
        measured get corrected (the correction is pixel-wise)."""
        stage = self._prepare(arr, meta)
        return None if stage is None else stage.processor.correct_part
