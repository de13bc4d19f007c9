"""Frames to and from files: the raw frame (TIFF/.npy), the frame as displayed (PNG),
flat and dark references."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from .geometry import Orientation

PathLike = Union[str, "os.PathLike[str]"]


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
