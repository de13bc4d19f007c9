"""A user's chunk of frames → the frames in it, one rule for push, pull and replay.

Accepted shapes (any integer, float or bool dtype):

- ``(L,)``: one spectrum;
- ``(H, W)``: one image;
- ``(H, W, 3)``: one RGB image (a last axis of 3 always means colour);
- ``(N, H, W)``: N images;
- ``(N, H, W, 3)``: N RGB images.

A stack of N images only 3 pixels wide is therefore read as one RGB image:
give such a stack one frame at a time.
"""
from __future__ import annotations

from typing import Any, List

import numpy as np

#: dtype kinds the viewer shows: bool, signed/unsigned integers, floats
SHOWN_KINDS = "biuf"


class FrameArrayError(ValueError):
    """A chunk that is not a frame or a stack of frames (shape or dtype); says why."""


def is_rgb(shape) -> bool:
    return len(shape) >= 3 and shape[-1] == 3


def check_dtype(dtype: np.dtype) -> None:
    if dtype.kind not in SHOWN_KINDS:
        raise FrameArrayError(f"cannot show {dtype} frames: use an integer, float or bool array")


def split_frames(chunk: Any) -> List[np.ndarray]:
    """The frames in ``chunk`` (views, no copy), in order. Raises FrameArrayError."""
    array = chunk if isinstance(chunk, np.ndarray) else np.asarray(chunk)
    check_dtype(array.dtype)
    if array.ndim in (1, 2) or (array.ndim == 3 and is_rgb(array.shape)):
        frames = [array]
    elif array.ndim == 3 or (array.ndim == 4 and is_rgb(array.shape)):
        frames = list(array)
    else:
        raise FrameArrayError(
            f"expected (H, W), (H, W, 3), (N, H, W), (N, H, W, 3) or a 1-D spectrum, "
            f"not an array of shape {array.shape}")
    if frames and frames[0].size == 0:
        raise FrameArrayError(f"empty frames: shape {array.shape}")
    return frames
