"""Display frames → the bytes a browser draws, as the screen shows them."""
import io

import numpy as np
import pytest
from PIL import Image

from pystream.display import DisplayFrame
from pystream.web.encode import colormap_table, encode_display, spectrum_payload, to_uint8


def display(image, levels, raw=None, bin_=1):
    return DisplayFrame(image=image, levels=levels, auto_levels=True, bin=bin_, uid=7,
                        t_source=123.5, raw=image if raw is None else raw)


def test_levels_map_linearly_like_the_screen_for_every_dtype():
    ints = np.array([[0, 100, 200, 300, 65535]], np.uint16)
    assert to_uint8(ints, (100, 300)).tolist() == [[0, 0, 128, 255, 255]]
    floats = np.array([[np.nan, -1.0, 0.5, 1.0, np.inf]], np.float32)
    assert to_uint8(floats, (0.0, 1.0)).tolist() == [[0, 0, 128, 255, 255]]
    assert to_uint8(np.array([[3, 4]], np.uint8), (4, 4)).tolist() == [[0, 0]]  # zero width: no crash


@pytest.mark.parametrize("fmt, magic", [("jpeg", b"\xff\xd8"), ("png", b"\x89PNG"), ("webp", b"RIFF")])
def test_each_format_decodes_to_the_announced_size(fmt, magic):
    img = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20)
    meta, data = encode_display(display(img, (0.0, float(img.max())), bin_=2), fmt, 2)
    assert data[:4].startswith(magic)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.size == (32, 24) == (meta["width"], meta["height"])
    assert meta["bin"] == 4 and meta["bytes"] == len(data) and meta["color"] is False
    assert meta["t_source"] == 123.5 and meta["uid"] == 7


def test_rgb_frames_stay_in_colour():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255
    meta, data = encode_display(display(rgb, (0.0, 255.0)), "png", 1)
    assert meta["color"] is True
    assert np.asarray(Image.open(io.BytesIO(data)))[0, 0].tolist() == [255, 0, 0]


def test_colormaps_are_256_rgb_entries_and_spectra_little_endian_float32():
    for name in ("gray", "viridis", "turbo", "inferno"):
        table = colormap_table(name)
        assert len(table) == 768 and all(0 <= v <= 255 for v in table)
    assert colormap_table("viridis")[:3] == [68, 1, 84]  # matplotlib's first viridis entry
    payload = spectrum_payload(np.array([1.0, 2.0]), np.array([[0.5, 0.25], [3.0, 4.0]]))
    assert np.frombuffer(payload, "<f4").tolist() == [1.0, 2.0, 0.5, 0.25, 3.0, 4.0]
