"""Where a pixel is: detector and view coordinates, orientation (flips, quarter turns).

Coordinates: a detector pixel ``(x, y)`` (column, row) covers the square
``[x, x+1) x [y, y+1)``; ``arr[y, x]`` is its value. The *view* is the
oriented picture on screen, in the same units (one detector pixel = one view
unit), whatever the display binning.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

Rect = Tuple[float, float, float, float]  # x, y, width, height


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
