"""Display frames → image bytes for the browser; spectra → compact binary.

Encoded once per broadcast tick for each (format, decimation) some client
asked for, and the same bytes go to every such client. The image is
rendered as the screen does it: the display frame's levels mapped linearly
to 0..255 (pyqtgraph's ImageItem rule), gray for mono frames; the page
applies the colormap LUT (the same 256-entry tables as matplotlib's) so a
colormap change costs no re-encoding.

Pillow encodes: its wheels ship libjpeg-turbo (checked: ``PIL.features``
reports ``libjpeg_turbo``), zlib for PNG and libwebp, release the GIL while
encoding, and are already a dependency; simplejpeg would add a package for
JPEG alone at about the same speed.
"""
from __future__ import annotations

import io
from functools import lru_cache
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ..display import auto_bin

JPEG_QUALITY = 85
WEBP_QUALITY = 80
PNG_COMPRESS_LEVEL = 1  # fast; PNG is asked for exactness, not size
WEB_COLORMAPS = ("gray", "viridis", "turbo", "inferno")
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@lru_cache(maxsize=8)
def _integer_lut(levels: Tuple[float, float], size: int) -> np.ndarray:
    lo, hi = levels
    values = np.arange(size, dtype=np.float64)
    return np.rint(np.clip((values - lo) * 255.0 / (hi - lo), 0.0, 255.0)).astype(np.uint8)


def to_uint8(image: np.ndarray, levels: Tuple[float, float]) -> np.ndarray:
    """``clip((x - lo) * 255 / (hi - lo), 0, 255)``, rounded: what the screen shows.

    uint8/uint16 go through a cached lookup table (exact, and one gather per
    pixel instead of four float operations); other types are computed.
    """
    lo, hi = float(levels[0]), float(levels[1])
    if not hi > lo:
        hi = lo + 1.0
    if image.dtype == np.uint8 or image.dtype == np.uint16:
        lut = _integer_lut((lo, hi), 256 if image.dtype == np.uint8 else 65536)
        return lut[image]
    scaled = (np.asarray(image, dtype=np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    np.nan_to_num(scaled, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return np.rint(scaled).astype(np.uint8)


def encode_pixels(pixels: np.ndarray, fmt: str) -> bytes:
    """uint8 (h, w) gray or (h, w, 3) RGB → JPEG / PNG / WebP bytes."""
    img = Image.fromarray(np.ascontiguousarray(pixels), "L" if pixels.ndim == 2 else "RGB")
    out = io.BytesIO()
    if fmt == "jpeg":
        img.save(out, "JPEG", quality=JPEG_QUALITY)
    elif fmt == "png":
        img.save(out, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif fmt == "webp":
        img.save(out, "WEBP", quality=WEBP_QUALITY, method=0)
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    return out.getvalue()


def decimation(image_shape: Sequence[int], canvas: Optional[Tuple[int, int]]) -> int:
    """Every Nth display pixel still leaves one image pixel per canvas pixel (as the window does)."""
    return 1 if canvas is None else auto_bin(tuple(image_shape[:2]), canvas)


def encode_display(display: Any, fmt: str, step: int) -> Tuple[Dict[str, Any], bytes]:
    """One display frame as ``(frame message data, image bytes)``."""
    image = display.image
    if step > 1:
        image = image[::step, ::step]
    if image.ndim == 3 and image.shape[2] != 3:  # not RGB: show the first plane as mono
        image = image[..., 0]
    pixels = to_uint8(image, display.levels)
    data = encode_pixels(pixels, fmt)
    raw_shape = tuple(getattr(display.raw, "shape", display.image.shape))
    meta = {
        "kind": "image",
        "uid": int(display.uid),
        "format": fmt,
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "bin": int(display.bin) * int(step),  # detector pixels per sent pixel
        "levels": [float(display.levels[0]), float(display.levels[1])],
        "color": pixels.ndim == 3,
        "source_width": int(raw_shape[1]) if len(raw_shape) > 1 else 1,
        "source_height": int(raw_shape[0]),
        "dtype": str(getattr(display.raw, "dtype", display.image.dtype)),
        "t_source": display.t_source,
        "bytes": len(data),
    }
    return meta, data


def colormap_table(name: str) -> list:
    """256 RGB entries, flattened ``[r0, g0, b0, r1, ...]``, as in matplotlib."""
    if name == "gray":
        ramp = np.arange(256, dtype=np.uint8)
        return np.repeat(ramp, 3).tolist()
    import matplotlib  # only the colour tables; no pyplot
    cmap = matplotlib.colormaps[name]
    rgb = (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255.0 + 0.5).astype(np.uint8)
    return rgb.reshape(-1).tolist()


def colormap_tables(names: Sequence[str] = WEB_COLORMAPS) -> Dict[str, list]:
    return {name: colormap_table(name) for name in names}


def spectrum_payload(latest: np.ndarray, rows_log: np.ndarray) -> bytes:
    """Binary message of a spectrum ``frame``: little-endian float32, the
    latest spectrum (linear power, ``n_freq`` values) then ``n_rows`` rows of
    log10 power for the waterfall, oldest first (``n_rows * n_freq`` values)."""
    latest = np.ascontiguousarray(latest, dtype="<f4")
    rows = np.ascontiguousarray(rows_log, dtype="<f4")
    return latest.tobytes() + rows.tobytes()
