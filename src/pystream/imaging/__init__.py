"""The image tools' engine (no Qt), always in *detector* pixel coordinates.

- ``geometry``: orientation (flips, quarter turns), view <-> detector coordinates
- ``measurements``: pixel values, image info, ROI statistics, line profiles
- ``corrections``: flat-field and dark correction, reference capture
- ``files``: raw frames, frames as displayed, flat/dark references
- ``tools``: ``ImageToolsModel``, the state of all of them, usable from a script

The window's panel (``gui/image_tools.py``) draws and clicks; the arithmetic is here.
"""
from .corrections import FrameAverager, ImageCorrections
from .files import PathLike, load_reference, render_displayed, save_displayed_png, save_raw_frame
from .geometry import Orientation, Rect
from .measurements import (EveryNth, ImageInfo, LineProfile, PixelProbe, RoiStats, image_info,
                           line_profile, pixel_box, pixel_value, probe, roi_stats)

__all__ = [
    "Orientation", "Rect", "pixel_box",
    "EveryNth", "ImageInfo", "LineProfile", "PixelProbe", "RoiStats", "image_info",
    "line_profile", "pixel_value", "probe", "roi_stats",
    "FrameAverager", "ImageCorrections",
    "PathLike", "load_reference", "render_displayed", "save_displayed_png", "save_raw_frame",
]
