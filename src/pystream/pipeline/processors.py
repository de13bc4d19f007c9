"""Built-in processors. Each is a plugin like any other: ``__init__(**kwargs)``
and ``apply(img, meta) -> img``.

They never modify their input in place (the pipeline hands the frame's array
read-only: the recorder may share it). Images are ``(ny, nx)`` or
``(ny, nx, channels)``; spatial operations act on the first two axes.

The flat-field / dark math lives only here (``flat_field_correct``,
``FlatField``, ``DarkSubtract``); the image-tools panel uses the same classes.
"""
from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any, Deque, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ArrayOrPath = Union[np.ndarray, str, "os.PathLike[str]", None]

__all__ = [
    "MedianFilter", "BackgroundSubtract", "FlatField", "DarkSubtract", "Threshold", "Clip",
    "Bin", "Normalize", "Invert", "median_filter", "flat_field_correct", "flat_field_gain",
]


# ---------------------------------------------------------------- median filter
# scipy is not a dependency, so the median is numpy only:
# - 3x3 (the common case): the 19 compare-exchange median-of-9 network applied
#   to whole shifted images with np.minimum/np.maximum (about 3x faster than
#   scipy.ndimage.median_filter on a 2048x2048 uint16 frame);
# - other sizes: sliding_window_view + np.partition, in row chunks so the
#   window copy stays around 16 M elements.
# Borders mirror the edge pixel (numpy "symmetric" == scipy.ndimage "reflect",
# scipy's default), so results match scipy.ndimage.median_filter(img, size).

_MEDIAN9_NETWORK = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8),
                    (0, 3), (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))


def _pad_spatial(img: np.ndarray, r: int) -> np.ndarray:
    pad = [(r, r), (r, r)] + [(0, 0)] * (img.ndim - 2)
    return np.pad(img, pad, mode="symmetric")


def _median3x3(img: np.ndarray) -> np.ndarray:
    padded = _pad_spatial(img, 1)
    ny, nx = img.shape[:2]
    v = [padded[i:i + ny, j:j + nx].copy() for i in range(3) for j in range(3)]
    for a, b in _MEDIAN9_NETWORK:
        low = np.minimum(v[a], v[b])
        np.maximum(v[a], v[b], out=v[b])
        v[a] = low
    return v[4]


def _median_partition(img: np.ndarray, k: int, chunk_elements: int = 16_000_000) -> np.ndarray:
    r = k // 2
    padded = _pad_spatial(img, r)
    ny, nx = img.shape[:2]
    out = np.empty_like(img)
    per_row = max(1, nx * k * k * int(np.prod(img.shape[2:], dtype=np.int64)))
    rows = max(1, chunk_elements // per_row)
    mid = k * k // 2
    for y0 in range(0, ny, rows):
        y1 = min(ny, y0 + rows)
        # window axes are appended last: (rows, nx, [channels,] k, k)
        win = sliding_window_view(padded[y0:y1 + 2 * r], (k, k), axis=(0, 1))
        win = win.reshape(win.shape[:-2] + (k * k,))
        out[y0:y1] = np.partition(win, mid, axis=-1)[..., mid]
    return out


def median_filter(img: np.ndarray, kernel_size: int = 3) -> np.ndarray:
    """Median over a ``kernel_size`` square window (odd), same dtype as ``img``."""
    if img.ndim < 2:
        raise ValueError(f"median filter needs a 2-D image, got shape {img.shape}")
    if kernel_size == 1:
        return img.copy()
    if kernel_size == 3:
        return _median3x3(img)
    return _median_partition(img, kernel_size)


class MedianFilter:
    """Median filter over a square window. kwargs: ``kernel_size`` (odd, default 3)."""

    def __init__(self, kernel_size: int = 3, **_ignored: Any):
        kernel_size = int(kernel_size)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd integer >= 1, got {kernel_size}")
        self.kernel_size = kernel_size

    def apply(self, img: np.ndarray, meta: Optional[dict] = None) -> np.ndarray:
        return median_filter(img, self.kernel_size)


# -------------------------------------------------------- background subtraction
class BackgroundSubtract:
    """Subtract a rolling background made of the previous ``window`` frames.

    kwargs: ``method`` = ``"rolling"`` or ``"mean"`` (rolling mean) or
    ``"median"`` (rolling median); ``window`` (frames, default 10);
    ``clip_negative`` (default False). The current frame is *not* part of its
    own background (so window=1 shows the frame-to-frame difference). The first
    frame, and the first after a shape change, has no background yet and is
    passed through as float32. Result is float32. ``meta["background_frames"]``
    says how many frames the background held.
    """

    METHODS = ("rolling", "mean", "median")

    def __init__(self, method: str = "rolling", window: int = 10, clip_negative: bool = False,
                 **_ignored: Any):
        if method not in self.METHODS:
            raise ValueError(f"method must be one of {self.METHODS}, got {method!r}")
        window = int(window)
        if window < 1:
            raise ValueError(f"window must be >= 1 frame, got {window}")
        self.method = "median" if method == "median" else "mean"
        self.window = window
        self.clip_negative = bool(clip_negative)
        self.reset()

    def reset(self) -> None:
        self._frames: Deque[np.ndarray] = collections.deque()
        self._sum: Optional[np.ndarray] = None  # float64 running sum for the mean
        self._shape: Optional[Tuple[int, ...]] = None

    def background(self) -> Optional[np.ndarray]:
        """The current background estimate (float32), or None before the first frame."""
        if not self._frames:
            return None
        if self.method == "mean":
            return (self._sum / len(self._frames)).astype(np.float32)
        return np.median(np.stack(self._frames), axis=0).astype(np.float32)

    def apply(self, img: np.ndarray, meta: Optional[dict] = None) -> np.ndarray:
        current = np.asarray(img, dtype=np.float32)
        if current.shape != self._shape:
            self.reset()
            self._shape = current.shape
        bg = self.background()
        if meta is not None:
            meta["background_frames"] = len(self._frames)
        out = current.copy() if bg is None else current - bg
        if self.clip_negative:
            np.maximum(out, 0, out=out)
        # add the current frame after using the background built without it
        stored = current.copy() if current is img else current
        self._frames.append(stored)
        if self.method == "mean":
            if self._sum is None:
                self._sum = np.zeros(current.shape, np.float64)
            self._sum += stored
        if len(self._frames) > self.window:
            oldest = self._frames.popleft()
            if self.method == "mean":
                self._sum -= oldest
        return out


# ------------------------------------------------------------ flat field / dark
def _load_array(value: ArrayOrPath, what: str) -> Optional[np.ndarray]:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        path = Path(os.path.expanduser(os.fspath(value)))
        try:
            value = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise FileNotFoundError(f"{what} file not found: {path.resolve()}") from None
    array = np.asarray(value)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{what} must be a non-empty 2-D image, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be numeric, got dtype {array.dtype}")
    return array


def _check_shape(reference: np.ndarray, img: np.ndarray, what: str) -> None:
    # a (ny, nx) reference also applies to each channel of a (ny, nx, c) frame
    if img.shape[:2] != reference.shape or img.ndim not in (2, 3):
        raise ValueError(f"{what} shape {reference.shape} does not match frame shape {img.shape}; "
                         f"capture or load a {what} of the frame's size")


def flat_field_gain(flat: np.ndarray, dark: Optional[np.ndarray] = None) -> Tuple[np.ndarray, int]:
    """Per-pixel gain ``mean(F - D) / (F - D)`` (float32) and the number of masked pixels.

    Pixels where ``F - D`` is zero, negative or not finite are masked: their
    gain is 0, so the corrected value is 0, never inf or NaN. The mean is taken
    over the valid pixels only (identical to the plain formula when there are
    none masked) so dead pixels do not bias the overall scale.
    """
    den = flat.astype(np.float32)
    if dark is not None:
        if dark.shape != flat.shape:
            raise ValueError(f"dark shape {dark.shape} does not match flat shape {flat.shape}")
        den = den - dark.astype(np.float32)
    valid = np.isfinite(den) & (den > 0)
    n_masked = int(den.size - np.count_nonzero(valid))
    if n_masked == den.size:
        raise ValueError("flat field has no usable pixel (flat - dark <= 0 everywhere)")
    scale = np.float32(den[valid].mean(dtype=np.float64))
    gain = np.zeros_like(den)
    np.divide(scale, den, out=gain, where=valid)
    return gain, n_masked


def flat_field_correct(raw: np.ndarray, flat: np.ndarray, dark: Optional[np.ndarray] = None) -> np.ndarray:
    """``(raw - D) / (F - D) * mean(F - D)`` (``raw / F * mean(F)`` without a dark), float32.

    One-shot form of ``FlatField``; masked pixels (``F - D <= 0``) give 0.
    """
    _check_shape(flat, raw, "flat")
    if dark is not None:
        _check_shape(dark, raw, "dark")
    gain, _ = flat_field_gain(flat, dark)
    return _apply_gain(raw, gain, dark)


def _apply_gain(raw: np.ndarray, gain: np.ndarray, dark: Optional[np.ndarray]) -> np.ndarray:
    if raw.ndim == 3:
        gain = gain[..., None]
        dark = None if dark is None else dark[..., None]
    out = raw.astype(np.float32)  # a new array: never writes into the frame
    if dark is not None:
        out -= dark
    out *= gain
    return out


def _correct_part(part: Any, key: Any, cache: dict, dark: Optional[np.ndarray],
                  gain: Optional[np.ndarray] = None, clip_negative: bool = False) -> Any:
    """``(part - dark[key]) * gain[key]`` as float32, for ``part = frame[key]``
    (the shared body of FlatField and DarkSubtract ``correct_part``).

    A decimated view (every n-th pixel) is gathered into a contiguous block
    first: numpy converts a contiguous block about twice as fast as it
    converts through a strided view. One pixel gives a scalar, as indexing does.
    """
    if isinstance(part, np.ndarray) and part.ndim and part.strides[-1] != part.itemsize:
        part = np.ascontiguousarray(part)
    out = np.array(part, dtype=np.float32)
    if dark is not None:
        out -= _reference_part(dark, key, part, cache)
    if clip_negative:
        np.maximum(out, 0, out=out)
    if gain is not None:
        out *= _reference_part(gain, key, part, cache)
    return out if out.ndim else out[()]


def _slice_key(key: Any) -> Optional[tuple]:
    """A hashable form of a key made of slices only (the display's decimation)."""
    if isinstance(key, tuple) and all(isinstance(k, slice) for k in key):
        return tuple((k.start, k.stop, k.step) for k in key)
    return None


def _reference_part(ref: np.ndarray, key: Any, part: Any, cache: Optional[dict] = None) -> np.ndarray:
    """The reference values (2-D flat/dark/gain) for the pixels ``part = frame[key]``.

    Pixel-wise corrections commute with slicing, decimation and fancy indexing,
    so the display can correct only the pixels it shows (``part``) instead
    of the whole frame.
    """
    if isinstance(key, tuple) and len(key) > 2:
        key = key[:2]  # the channel index of an RGB frame does not index the reference
    hashable = _slice_key(key) if cache is not None else None
    if hashable is not None:
        # the display asks for the same decimation every frame: keep it contiguous
        ref_part = cache.get((id(ref), hashable))
        if ref_part is None:
            if len(cache) > 8:
                cache.clear()
            ref_part = cache[(id(ref), hashable)] = np.ascontiguousarray(ref[key])
    else:
        ref_part = ref[key]
    if np.ndim(part) == np.ndim(ref_part) + 1:  # RGB: one reference value for 3 channels
        ref_part = ref_part[..., None]
    return ref_part


class FlatField:
    """Flat-field correction: ``I = (I_raw - D) / (F - D) * mean(F - D)``.

    kwargs: ``flat`` and ``dark``: an array or a path to a ``.npy`` file
    (relative paths are relative to the current directory); both optional.
    ``set_flat`` / ``set_dark`` / ``load_flat`` / ``save_flat`` change them
    later (the image-tools panel's Capture/Load/Save). Without a flat the
    frame passes through unchanged and ``meta["flat_field"]`` says why. A flat
    or dark whose shape differs from the frame raises ValueError (the pipeline
    counts it and shows it). Masked pixels (``F - D <= 0``) become 0 and are
    counted in ``masked_pixels`` and ``meta["flat_masked_pixels"]``.
    Result is float32.
    """

    def __init__(self, flat: ArrayOrPath = None, dark: ArrayOrPath = None, **_ignored: Any):
        self.flat: Optional[np.ndarray] = None
        self.dark: Optional[np.ndarray] = None
        self.masked_pixels = 0
        self._gain: Optional[np.ndarray] = None
        self._dark32: Optional[np.ndarray] = None
        self._parts: dict = {}
        self.set_dark(_load_array(dark, "dark"), _update=False)
        self.set_flat(_load_array(flat, "flat"))

    # the gain is computed once per flat/dark, so a frame costs one subtract and one multiply
    def _update(self) -> None:
        self._parts = {}  # decimated references, for correct_part
        if self.flat is None:
            self._gain, self.masked_pixels = None, 0
            return
        self._gain, self.masked_pixels = flat_field_gain(self.flat, self.dark)
        self._dark32 = None if self.dark is None else self.dark.astype(np.float32)

    def set_flat(self, flat: Optional[np.ndarray]) -> None:
        flat = _load_array(flat, "flat")
        if flat is not None and self.dark is not None and flat.shape != self.dark.shape:
            raise ValueError(f"flat shape {flat.shape} does not match dark shape {self.dark.shape}")
        self.flat = None if flat is None else np.array(flat, copy=True)
        self._update()

    def set_dark(self, dark: Optional[np.ndarray], _update: bool = True) -> None:
        dark = _load_array(dark, "dark")
        if dark is not None and self.flat is not None and dark.shape != self.flat.shape:
            raise ValueError(f"dark shape {dark.shape} does not match flat shape {self.flat.shape}")
        self.dark = None if dark is None else np.array(dark, copy=True)
        if _update:
            self._update()

    def load_flat(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self.set_flat(_load_array(path, "flat"))

    def load_dark(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self.set_dark(_load_array(path, "dark"))

    def save_flat(self, path: Union[str, "os.PathLike[str]"]) -> None:
        if self.flat is None:
            raise ValueError("no flat to save")
        np.save(path, self.flat)

    def correct(self, raw: np.ndarray) -> np.ndarray:
        """The corrected frame (float32); raises ValueError without a flat or on a shape mismatch."""
        if self.flat is None or self._gain is None:
            raise ValueError("no flat field set")
        _check_shape(self.flat, raw, "flat")
        return _apply_gain(raw, self._gain, self._dark32)

    def correct_part(self, part: Any, key: Any) -> np.ndarray:
        """``correct(raw)[key]`` computed from ``part = raw[key]`` alone (float32)."""
        return _correct_part(part, key, self._parts, self._dark32, self._gain)

    def apply(self, img: np.ndarray, meta: Optional[dict] = None) -> np.ndarray:
        if self.flat is None:
            if meta is not None:
                meta["flat_field"] = "no flat set: frame not corrected"
            return img
        out = self.correct(img)
        if meta is not None:
            meta["flat_masked_pixels"] = self.masked_pixels
        return out


class DarkSubtract:
    """``I - D`` as float32. kwargs: ``dark`` (array or ``.npy`` path), ``clip_negative``.

    Without a dark the frame passes through; a dark of another shape raises ValueError.
    """

    def __init__(self, dark: ArrayOrPath = None, clip_negative: bool = False, **_ignored: Any):
        self.dark: Optional[np.ndarray] = None
        self._dark32: Optional[np.ndarray] = None
        self.clip_negative = bool(clip_negative)
        self.set_dark(dark)

    def set_dark(self, dark: ArrayOrPath) -> None:
        dark = _load_array(dark, "dark")
        self.dark = None if dark is None else np.array(dark, copy=True)
        self._dark32 = None if dark is None else self.dark.astype(np.float32)
        self._parts: dict = {}

    def load_dark(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self.set_dark(path)

    def correct_part(self, part: Any, key: Any) -> np.ndarray:
        """``apply(raw)[key]`` computed from ``part = raw[key]`` alone (float32)."""
        return _correct_part(part, key, self._parts, self._dark32, clip_negative=self.clip_negative)

    def apply(self, img: np.ndarray, meta: Optional[dict] = None) -> np.ndarray:
        if self._dark32 is None:
            if meta is not None:
                meta["dark_subtract"] = "no dark set: frame not corrected"
            return img
        _check_shape(self._dark32, img, "dark")
        dark = self._dark32[..., None] if img.ndim == 3 else self._dark32
        out = img.astype(np.float32)
        out -= dark
        if self.clip_negative:
            np.maximum(out, 0, out=out)
        return out


# ------------------------------------------------------------ point operations
class Threshold:
    """Pixels below ``level`` become 0.

    kwargs: ``level`` (required), ``mode``: ``"zero"`` (default: keep values at
    or above level, same dtype) or ``"binary"`` (uint8 mask, 1 where >= level).
    """

    def __init__(self, level: float, mode: str = "zero", **_ignored: Any):
        if mode not in ("zero", "binary"):
            raise ValueError(f"mode must be 'zero' or 'binary', got {mode!r}")
        self.level = float(level)
        self.mode = mode

    def apply(self, img: np.ndarray, meta: Optional[dict] = None) -> np.ndarray:
        above = img >= self.level
        if self.mode == "binary":
            return above.astype(np.uint8)
        return np.where(above, img, np.zeros((), img.dtype))


class Clip:
    """Clip values to ``[low, high]`` (either may be None).

    kwargs: ``low``, ``high``; ``percentile`` (default False): when True they
    are percentiles of each frame (e.g. 1 and 99). Integer frames keep their
    dtype (bounds are rounded into the dtype's range); float frames stay float.
    """

    def __init__(self, low: Optional[float] = None, high: Optional[float] = None,
                 percentile: bool = False, **_ignored: Any):
        if low is not None and high is not None and float(low) > float(high):
            raise ValueError(f"low ({low}) must not exceed high ({high})")
        if percentile and any(v is not None and not 0 <= float(v) <= 100 for v in (low, high)):
            raise ValueError("percentile bounds must be within 0..100")
        self.low = None if low is None else float(low)
        self.high = None if high is None else float(high)
        self.percentile = bool(percentile)

    def bounds(self, img: np.ndarray) -> Tuple[Optional[float], Optional[float]]:
        if not self.percentile:
            return self.low, self.high
        wanted = [v for v in (self.low, self.high) if v is not None]
        values = iter(np.percentile(img, wanted)) if wanted else iter(())
        low = float(next(values)) if self.low is not None else None
        high = float(next(values)) if self.high is not None else None
        return low, high

    def apply(self, img: np.ndarray, meta: Optional[dict] = None) -> np.ndarray:
        low, high = self.bounds(img)
        if low is None and high is None:
            return img
        if img.dtype.kind in "iu":
            info = np.iinfo(img.dtype)
            low = None if low is None else img.dtype.type(min(max(np.ceil(low), info.min), info.max))
            high = None if high is None else img.dtype.type(min(max(np.floor(high), info.min), info.max))
        elif img.dtype.kind == "f":
            low = None if low is None else img.dtype.type(low)
            high = None if high is None else img.dtype.type(high)
        return np.clip(img, low, high)


class Normalize:
    """Scale to ``[out_min, out_max]`` (default 0..1), float32.

    kwargs: ``mode``: ``"minmax"`` (frame min/max) or ``"percentile"``
    (``low``/``high`` percentiles, default 1 and 99, values beyond are
    clipped). A constant frame gives ``out_min`` everywhere, never NaN.
    """

    def __init__(self, mode: str = "minmax", low: float = 1.0, high: float = 99.0,
                 out_min: float = 0.0, out_max: float = 1.0, **_ignored: Any):
        if mode not in ("minmax", "percentile"):
            raise ValueError(f"mode must be 'minmax' or 'percentile', got {mode!r}")
        if not 0 <= low < high <= 100:
            raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
        self.mode, self.low, self.high = mode, float(low), float(high)
        self.out_min, self.out_max = float(out_min), float(out_max)

    def apply(self, img: np.ndarray, meta: Optional[dict] = None) -> np.ndarray:
        data = img.astype(np.float32)
        finite = data[np.isfinite(data)]
        if finite.size == 0:
            return np.full(data.shape, self.out_min, np.float32)
        if self.mode == "minmax":
            lo, hi = float(finite.min()), float(finite.max())
        else:
            lo, hi = (float(v) for v in np.percentile(finite, [self.low, self.high]))
        span = hi - lo
        if span <= 0:
            return np.full(data.shape, self.out_min, np.float32)
        data -= lo
        data *= (self.out_max - self.out_min) / span
        data += self.out_min
        if self.mode == "percentile":
            np.clip(data, min(self.out_min, self.out_max), max(self.out_min, self.out_max), out=data)
        return data


class Invert:
    """Invert intensities.

    kwargs: ``max_value``: when given, ``max_value - img`` (float32).
    Otherwise unsigned integers use their dtype's range (``iinfo.max - img``,
    same dtype), booleans are negated, and signed/float frames are mirrored
    within their own range (``max + min - img``, same dtype).
    """

    def __init__(self, max_value: Optional[float] = None, **_ignored: Any):
        self.max_value = None if max_value is None else float(max_value)

    def apply(self, img: np.ndarray, meta: Optional[dict] = None) -> np.ndarray:
        if self.max_value is not None:
            return np.float32(self.max_value) - img.astype(np.float32)
        kind = img.dtype.kind
        if kind == "b":
            return ~img
        if kind == "u":
            return np.iinfo(img.dtype).max - img
        lo, hi = img.min(), img.max()
        if kind == "i":  # hi - img can overflow the dtype; the result cannot
            return (hi.astype(np.int64) + lo - img.astype(np.int64)).astype(img.dtype)
        return (hi + lo) - img


class Bin:
    """Bin (downsample) by ``factor`` (int, or ``[fy, fx]``), float32.

    kwargs: ``factor`` (default 2), ``mode``: ``"mean"`` (default) or
    ``"sum"``. Rows/columns that do not fill a whole bin are dropped.
    """

    def __init__(self, factor: Union[int, Sequence[int]] = 2, mode: str = "mean", **_ignored: Any):
        if isinstance(factor, (list, tuple)):
            if len(factor) != 2:
                raise ValueError(f"factor must be an int or [fy, fx], got {factor!r}")
            fy, fx = (int(f) for f in factor)
        else:
            fy = fx = int(factor)
        if fy < 1 or fx < 1:
            raise ValueError(f"bin factors must be >= 1, got {(fy, fx)}")
        if mode not in ("mean", "sum"):
            raise ValueError(f"mode must be 'mean' or 'sum', got {mode!r}")
        self.fy, self.fx, self.mode = fy, fx, mode

    def apply(self, img: np.ndarray, meta: Optional[dict] = None) -> np.ndarray:
        fy, fx = self.fy, self.fx
        ny, nx = img.shape[0] // fy, img.shape[1] // fx
        if ny == 0 or nx == 0:
            raise ValueError(f"frame {img.shape} is smaller than one {fy}x{fx} bin")
        trimmed = img[:ny * fy, :nx * fx]
        blocks = trimmed.reshape((ny, fy, nx, fx) + img.shape[2:])
        reduce = np.mean if self.mode == "mean" else np.sum
        return reduce(blocks, axis=(1, 3), dtype=np.float64).astype(np.float32)
