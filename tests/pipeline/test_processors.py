"""Built-in processors against plain numpy references."""
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from pystream.pipeline import (Bin, BackgroundSubtract, Clip, DarkSubtract, FlatField, Invert,
                               MedianFilter, Normalize, PluginError, ProcessorSpec, Threshold,
                               flat_field_correct, load_module, median_filter, open_pipeline)
from pystream.pipeline import processors as builtins
from pystream.pipeline.loader import build_processor

from .conftest import step, write_config

REPO = Path(__file__).resolve().parents[2]
rng = np.random.default_rng(1234)


def read_only(a):
    a = a.view()
    a.flags.writeable = False
    return a


def median_reference(img, k):
    """Slow, obvious median: edge-mirrored padding, np.median over every window."""
    r = k // 2
    pad = [(r, r), (r, r)] + [(0, 0)] * (img.ndim - 2)
    win = sliding_window_view(np.pad(img, pad, mode="symmetric"), (k, k), axis=(0, 1))
    return np.median(win.reshape(win.shape[:-2] + (k * k,)), axis=-1).astype(img.dtype)


# ---------------------------------------------------------------- median
@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int32])
def test_median_matches_reference(k, dtype):
    img = rng.integers(0, 5000, (23, 31)).astype(dtype)
    out = MedianFilter(kernel_size=k).apply(read_only(img), {})
    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(out, median_reference(img, k))


def test_median_on_rgb_filters_each_channel():
    img = rng.integers(0, 255, (12, 9, 3)).astype(np.uint8)
    for k in (3, 5):
        np.testing.assert_array_equal(median_filter(img, k), median_reference(img, k))


def test_median_chunked_path_matches_unchunked():
    img = rng.random((40, 17)).astype(np.float32)
    np.testing.assert_array_equal(builtins._median_partition(img, 5, chunk_elements=100),
                                  median_reference(img, 5))


def test_median_matches_scipy_when_available():
    ndimage = pytest.importorskip("scipy.ndimage")
    img = rng.integers(0, 4000, (64, 48)).astype(np.uint16)
    for k in (3, 5):
        np.testing.assert_array_equal(median_filter(img, k), ndimage.median_filter(img, size=k))


def test_median_removes_a_hot_pixel_and_validates_kernel():
    img = np.zeros((5, 5), np.uint16)
    img[2, 2] = 60000
    assert MedianFilter().apply(img, {}).max() == 0
    np.testing.assert_array_equal(MedianFilter(kernel_size=1).apply(img, {}), img)
    for bad in (2, 0, -3):
        with pytest.raises(ValueError, match="odd integer"):
            MedianFilter(kernel_size=bad)


# ---------------------------------------------------------------- background
@pytest.mark.parametrize("method, reduce", [("rolling", np.mean), ("mean", np.mean), ("median", np.median)])
def test_background_is_the_previous_window_of_frames(method, reduce):
    frames = [rng.integers(0, 100, (4, 5)).astype(np.uint16) for _ in range(8)]
    proc = BackgroundSubtract(method=method, window=3)
    for i, frame in enumerate(frames):
        meta = {}
        out = proc.apply(read_only(frame), meta)
        assert out.dtype == np.float32
        previous = frames[max(0, i - 3):i]
        assert meta["background_frames"] == len(previous)
        expected = frame.astype(np.float32) if not previous else \
            frame - reduce(np.stack(previous).astype(np.float64), axis=0)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-3)


def test_background_resets_on_shape_change_and_clips():
    proc = BackgroundSubtract(window=2, clip_negative=True)
    proc.apply(np.full((2, 2), 10, np.uint8), {})
    assert proc.apply(np.full((2, 2), 4, np.uint8), {}).max() == 0  # 4 - 10 clipped to 0
    meta = {}
    out = proc.apply(np.full((3, 3), 5, np.uint8), meta)
    assert meta["background_frames"] == 0 and np.all(out == 5)
    with pytest.raises(ValueError):
        BackgroundSubtract(method="mode")
    with pytest.raises(ValueError):
        BackgroundSubtract(window=0)


# ---------------------------------------------------------------- flat field
def test_flat_field_formula_without_dark():
    raw = rng.integers(100, 4000, (6, 7)).astype(np.uint16)
    flat = rng.uniform(500, 1500, (6, 7)).astype(np.float32)
    out = FlatField(flat=flat).apply(read_only(raw), {})
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, raw / flat.astype(np.float64) * flat.mean(dtype=np.float64), rtol=1e-5)
    np.testing.assert_allclose(flat_field_correct(raw, flat), out, rtol=1e-6)


def test_flat_field_formula_with_dark():
    raw = rng.integers(200, 4000, (6, 7)).astype(np.uint16)
    flat = rng.uniform(800, 1500, (6, 7))
    dark = rng.uniform(50, 100, (6, 7))
    out = FlatField(flat=flat, dark=dark).apply(raw, {})
    np.testing.assert_allclose(out, (raw - dark) / (flat - dark) * (flat - dark).mean(), rtol=1e-5)


def test_flat_field_masks_zero_and_negative_denominators():
    flat = np.full((3, 4), 100.0)
    flat[0, 0] = 0
    dark = np.full((3, 4), 10.0)
    dark[1, 1] = 200  # flat - dark < 0
    raw = np.full((3, 4), 55, np.uint16)
    proc = FlatField(flat=flat, dark=dark)
    meta = {}
    out = proc.apply(raw, meta)
    assert np.isfinite(out).all()
    assert out[0, 0] == 0 and out[1, 1] == 0
    assert proc.masked_pixels == 2 and meta["flat_masked_pixels"] == 2
    valid = np.ones_like(flat, bool)
    valid[0, 0] = valid[1, 1] = False
    np.testing.assert_allclose(out[valid], 45.0, rtol=1e-6)  # (55-10)/(90)*mean(90)


def test_flat_field_shape_mismatch_is_a_clear_error():
    proc = FlatField(flat=np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"flat shape \(4, 4\) does not match frame shape \(5, 4\)"):
        proc.apply(np.ones((5, 4)), {})
    with pytest.raises(ValueError, match="dark shape"):
        FlatField(flat=np.ones((4, 4)), dark=np.ones((3, 3)))
    with pytest.raises(ValueError, match="no usable pixel"):
        FlatField(flat=np.zeros((2, 2)))


def test_flat_field_mismatch_in_a_pipeline_is_counted_not_ignored(workdir):
    np.save(workdir / "flat.npy", np.ones((4, 4), np.float32))
    config = write_config(workdir / "p.json", [
        step("flat", "pystream.pipeline.processors", "FlatField", {"flat": str(workdir / "flat.npy")})])
    pipeline = open_pipeline(config)
    frame = np.full((5, 5), 3, np.uint16)
    out, _ = pipeline.apply(frame)
    assert out.shape == (5, 5)
    assert pipeline.stats()["pipeline_errors_by_step"]["flat"] == 1
    assert "does not match frame shape" in pipeline.stats()["pipeline_last_error"]


def test_flat_and_dark_load_from_npy_paths(workdir):
    flat = rng.uniform(100, 200, (3, 3))
    dark = rng.uniform(1, 10, (3, 3))
    np.save(workdir / "cwd" / "flat.npy", flat)  # relative paths are from the current directory
    np.save(workdir / "dark.npy", dark)
    proc = FlatField(flat="flat.npy", dark=str(workdir / "dark.npy"))
    np.testing.assert_array_equal(proc.flat, flat)
    np.testing.assert_array_equal(proc.dark, dark)
    with pytest.raises(FileNotFoundError, match="flat file not found"):
        FlatField(flat="missing.npy")
    loaded = load_module("pystream.pipeline.processors", [])
    with pytest.raises(PluginError, match="flat file not found"):
        build_processor(ProcessorSpec("f", "m", "FlatField", {"flat": "missing.npy"}), loaded)


def test_flat_set_capture_save_and_rgb(workdir):
    proc = FlatField()
    frame = np.full((3, 3), 7, np.uint16)
    meta = {}
    assert proc.apply(frame, meta) is frame and "no flat set" in meta["flat_field"]
    proc.set_flat(np.full((3, 3), 2.0))
    proc.save_flat(workdir / "saved.npy")
    assert np.load(workdir / "saved.npy").shape == (3, 3)
    rgb = np.full((3, 3, 3), 4, np.uint8)
    np.testing.assert_allclose(proc.apply(rgb, {}), 4.0)
    proc.set_dark(np.ones((3, 3)))
    np.testing.assert_allclose(proc.correct(frame), 6.0)  # (7-1)/(2-1)*1


def test_dark_subtract():
    dark = np.full((2, 3), 5.0)
    out = DarkSubtract(dark=dark, clip_negative=True).apply(np.array([[1, 5, 9]] * 2, np.uint16), {})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 4]] * 2)
    with pytest.raises(ValueError, match="dark shape"):
        DarkSubtract(dark=dark).apply(np.ones((3, 3)), {})
    frame = np.ones((2, 2))
    assert DarkSubtract().apply(frame, {}) is frame


# ---------------------------------------------------------------- point operations
def test_threshold():
    img = np.array([[1, 5], [10, 3]], np.uint16)
    np.testing.assert_array_equal(Threshold(level=5).apply(img, {}), [[0, 5], [10, 0]])
    assert Threshold(level=5).apply(img, {}).dtype == np.uint16
    binary = Threshold(level=5, mode="binary").apply(img, {})
    assert binary.dtype == np.uint8
    np.testing.assert_array_equal(binary, [[0, 1], [1, 0]])
    with pytest.raises(ValueError):
        Threshold(level=1, mode="soft")


def test_clip_absolute_and_percentile():
    img = np.arange(101, dtype=np.uint16).reshape(1, 101)
    out = Clip(low=10.5, high=90).apply(img, {})
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, np.clip(img, 11, 90))
    out = Clip(low=5, high=95, percentile=True).apply(img.astype(np.float32), {})
    np.testing.assert_allclose(out, np.clip(img, *np.percentile(img, [5, 95])))
    np.testing.assert_array_equal(Clip(high=3).apply(img, {})[0, :6], [0, 1, 2, 3, 3, 3])
    assert Clip().apply(img, {}) is img
    with pytest.raises(ValueError):
        Clip(low=5, high=1)


def test_normalize():
    img = np.array([[2, 4], [6, 10]], np.uint16)
    out = Normalize().apply(img, {})
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (img - 2) / 8)
    const = Normalize().apply(np.full((2, 2), 3, np.uint8), {})
    assert np.isfinite(const).all() and np.all(const == 0)
    data = rng.random((50, 50)).astype(np.float32)
    out = Normalize(mode="percentile", low=1, high=99).apply(data, {})
    lo, hi = np.percentile(data, [1, 99])
    np.testing.assert_allclose(out, np.clip((data - lo) / (hi - lo), 0, 1), atol=1e-5)


def test_invert():
    np.testing.assert_array_equal(Invert().apply(np.array([[0, 65535, 100]], np.uint16), {}),
                                  [[65535, 0, 65435]])
    np.testing.assert_allclose(Invert().apply(np.array([[1.0, 3.0]], np.float32), {}), [[3.0, 1.0]])
    signed = np.array([[-30000, 30000, 0]], np.int16)
    np.testing.assert_array_equal(Invert().apply(signed, {}), [[30000, -30000, 0]])
    np.testing.assert_allclose(Invert(max_value=10).apply(np.array([[1, 4]], np.uint8), {}), [[9, 6]])


def test_bin():
    img = np.arange(5 * 7, dtype=np.uint16).reshape(5, 7)
    out = Bin(factor=2).apply(img, {})
    assert out.shape == (2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, img[:4, :6].reshape(2, 2, 3, 2).mean(axis=(1, 3)))
    summed = Bin(factor=[1, 7], mode="sum").apply(img, {})
    np.testing.assert_allclose(summed[:, 0], img.sum(axis=1))
    rgb = np.ones((4, 4, 3), np.uint8)
    assert Bin(factor=2).apply(rgb, {}).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="smaller than one"):
        Bin(factor=8).apply(img, {})
    with pytest.raises(ValueError):
        Bin(factor=0)


@pytest.mark.parametrize("proc", [
    MedianFilter(), MedianFilter(kernel_size=5), BackgroundSubtract(), FlatField(flat=np.ones((8, 8)) * 2),
    DarkSubtract(dark=np.ones((8, 8))), Threshold(level=3), Clip(low=1, high=5), Normalize(), Invert(),
    Bin(),
], ids=lambda p: type(p).__name__)
def test_builtins_accept_read_only_input_and_never_write_it(proc):
    img = rng.integers(0, 10, (8, 8)).astype(np.uint16)
    original = img.copy()
    out = proc.apply(read_only(img), {})
    assert isinstance(out, np.ndarray) and out.dtype.kind in "uif"
    np.testing.assert_array_equal(img, original)


# ---------------------------------------------------------------- shipped plugins
def test_myfilter_example_from_the_readme():
    loaded = load_module("processors.myfilter", [REPO])
    proc = build_processor(ProcessorSpec("my", "processors.myfilter", "MyFilter", {"param": 2.5}), loaded)
    np.testing.assert_allclose(proc.apply(np.array([[2, 4]], np.uint16), {"uid": 1}), [[5.0, 10.0]])
    assert build_processor(ProcessorSpec("my", "x", "MyFilter"), loaded).param == 1.0


def test_seed_module_names_re_export_the_builtins():
    filters = load_module("processors.filters", [REPO]).module
    background = load_module("processors.background", [REPO]).module
    assert filters.MedianFilter is MedianFilter
    assert background.BackgroundSubtract is BackgroundSubtract
    assert background.FlatField is FlatField
