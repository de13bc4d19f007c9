"""The image-tools engine (no Qt): orientation, probes, statistics, corrections, files."""
import itertools

import numpy as np
import pytest
import tifffile
from PIL import Image

from pystream.imaging import (EveryNth, FrameAverager, ImageCorrections, Orientation, image_info,
                                 line_profile, load_reference, pixel_box, pixel_value, render_displayed,
                                 roi_stats, save_displayed_png, save_raw_frame)
from pystream.pipeline import flat_field_correct

ALL_ORIENTATIONS = [Orientation(fh, fv, tr, k) for fh, fv, tr, k in
                    itertools.product((False, True), (False, True), (False, True), range(4))]


def numpy_oriented(arr, o):
    """Reference, written independently: rotate clockwise, transpose, mirror."""
    out = arr
    for _ in range(o.quarter_turns):
        out = np.flipud(out).T  # clockwise quarter turn as seen with row 0 at the top
    if o.transpose:
        out = out.T
    if o.flip_h:
        out = np.fliplr(out)
    if o.flip_v:
        out = np.flipud(out)
    return out


@pytest.mark.parametrize("o", ALL_ORIENTATIONS, ids=str)
def test_orientation_maps_every_pixel_exactly_both_ways(o):
    det = np.arange(5 * 7).reshape(5, 7)  # unique values: position is identity
    view = numpy_oriented(det, o)
    np.testing.assert_array_equal(o.apply(det), view)
    assert o.view_shape(det.shape) == view.shape
    for vy, vx in np.ndindex(view.shape):
        x, y = o.view_to_pixel(vx + 0.5, vy + 0.5, det.shape)
        assert det[y, x] == view[vy, vx]
        assert o.pixel_center_in_view(x, y, det.shape) == (vx + 0.5, vy + 0.5)
    # outside the frame, on every side
    for vx, vy in [(-0.5, 1), (view.shape[1] + 0.1, 1), (1, -0.01), (1, view.shape[0])]:
        assert o.view_to_pixel(vx, vy, det.shape) is None


def test_rect_maps_to_the_same_pixels():
    o = Orientation(flip_h=True, quarter_turns=1)
    det_shape = (30, 40)
    rect = (3, 5, 10, 4)
    back = o.rect_to_det(o.rect_to_view(rect, det_shape), det_shape)
    assert back == rect
    assert o.rect_to_view(rect, det_shape)[2:] == (4, 10)  # a quarter turn swaps w and h


def test_pixel_value_mono_rgb_and_outside():
    mono = np.arange(12, dtype=np.uint16).reshape(3, 4)
    rgb = np.arange(3 * 4 * 3, dtype=np.uint8).reshape(3, 4, 3)
    assert pixel_value(mono, 3, 2) == 11 and isinstance(pixel_value(mono, 3, 2), int)
    assert pixel_value(rgb, 1, 2) == tuple(rgb[2, 1])
    assert pixel_value(mono, 4, 0) is None and pixel_value(mono, -1, 0) is None


def test_image_info_matches_numpy():
    arr = np.random.default_rng(1).integers(0, 5000, (64, 48), dtype=np.uint16)
    info = image_info(arr)
    assert (info.shape, info.dtype) == ((64, 48), "uint16")
    assert (info.min, info.max) == (arr.min(), arr.max())
    assert info.mean == pytest.approx(arr.mean())
    f = arr.astype(np.float32)
    f[0, 0] = np.nan
    assert np.isfinite(image_info(f).mean)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int32])
def test_roi_stats_equal_numpy(dtype):
    arr = np.random.default_rng(2).integers(-100, 5000, (50, 60)).astype(dtype)
    if dtype == np.uint16:
        arr = np.abs(arr.astype(np.int64)).astype(dtype)
    s = roi_stats(arr, (10.2, 5.6, 20.0, 15.3))  # edges round to whole pixels
    region = arr[6:21, 10:30]
    assert (s.x, s.y, s.width, s.height, s.count) == (10, 6, 20, 15, region.size)
    assert (s.min, s.max) == (region.min(), region.max())
    assert s.sum == pytest.approx(region.astype(np.float64).sum())
    assert s.mean == pytest.approx(region.astype(np.float64).mean())
    assert s.std == pytest.approx(region.astype(np.float64).std())


def test_roi_stats_rgb_per_channel_clipped_and_empty():
    rgb = np.random.default_rng(3).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    s = roi_stats(rgb, (-5, -5, 10, 10))  # clipped to the frame
    region = rgb[0:5, 0:5].reshape(-1, 3)
    assert (s.x, s.y, s.width, s.height) == (0, 0, 5, 5)
    assert s.max == tuple(region.max(axis=0))
    np.testing.assert_allclose(s.mean, region.mean(axis=0))
    empty = roi_stats(rgb, (100, 100, 5, 5))
    assert empty.count == 0 and empty.mean is None
    assert pixel_box((2.4, 2.6, 0.2, 0.1), rgb.shape) == (2, 3, 3, 3)  # 1 wide, 0 high


def test_line_profile_samples_real_pixels_length_and_angle():
    arr = np.arange(100, dtype=np.float32).reshape(10, 10)
    p = line_profile(arr, (0.5, 2.5), (9.5, 2.5))  # along row 2
    np.testing.assert_array_equal(p.values, arr[2])
    assert p.length == 9 and p.angle == 0
    diag = line_profile(arr, (0.5, 0.5), (3.5, 3.5))
    assert diag.angle == pytest.approx(45) and diag.length == pytest.approx(np.hypot(3, 3))
    assert set(diag.values) <= set(arr.ravel())
    assert diag.values[0] == arr[0, 0] and diag.values[-1] == arr[3, 3]
    out = line_profile(arr, (-3.5, 0.5), (2.5, 0.5))
    assert np.isnan(out.values[0]) and out.values[-1] == arr[0, 2]
    assert line_profile(arr, (0.5, 5), (0.5, 0)).angle == pytest.approx(-90)


def test_a_line_far_off_the_frame_samples_only_its_part_on_it():
    arr = np.arange(100, dtype=np.float32).reshape(10, 10)
    far = line_profile(arr, (-1e7 + 0.5, 4.5), (1e7 + 0.5, 4.5))  # 20 million pixels long
    assert far.length == 2e7 and len(far.values) < 20
    on = ~np.isnan(far.values)
    np.testing.assert_array_equal(far.values[on], arr[4])  # row 4, every pixel once, in order
    assert np.isnan(far.values[0]) and np.isnan(far.values[-1]) and far.distance[-1] == 2e7
    # the same samples as the plain sampling wherever they are taken
    part = line_profile(arr, (-20.5, -10.5), (30.5, 20.5))
    n = int(np.ceil(part.length)) + 1
    t = part.distance / part.length
    np.testing.assert_allclose(t * (n - 1), np.round(t * (n - 1)), atol=1e-6)  # on the plain grid
    full = np.linspace(0, 1, n)  # every sample of the plain grid that lands on the frame is there
    fx, fy = np.floor(-20.5 + full * 51), np.floor(-10.5 + full * 31)
    assert np.count_nonzero(~np.isnan(part.values)) == np.count_nonzero(
        (fx >= 0) & (fx < 10) & (fy >= 0) & (fy < 10)) > 0
    missed = line_profile(arr, (20.5, 0.5), (30.5, 0.5))
    assert len(missed.values) == 2 and np.isnan(missed.values).all()


def test_every_nth_and_arm():
    due = EveryNth(3)
    assert [due() for _ in range(7)] == [True, False, False, True, False, False, True]
    due.arm()
    assert due() is True


def test_saved_raw_frames_read_back_equal(tmp_path):
    for arr in (np.random.default_rng(4).integers(0, 65535, (17, 23), dtype=np.uint16),
                np.random.default_rng(5).random((8, 9)).astype(np.float32),
                np.random.default_rng(6).integers(0, 255, (6, 7, 3), dtype=np.uint8)):
        for ext in (".npy", ".tiff"):
            path = save_raw_frame(tmp_path / f"f{arr.dtype}{arr.ndim}{ext}", arr)
            back = np.load(path) if ext == ".npy" else tifffile.imread(path)
            assert back.dtype == arr.dtype
            np.testing.assert_array_equal(back, arr)
    with pytest.raises(ValueError, match="npy or .tiff"):
        save_raw_frame(tmp_path / "x.jpg", arr)


def test_png_is_rendered_with_levels_lut_and_orientation(tmp_path):
    arr = np.array([[0, 50], [100, 200]], dtype=np.uint16)
    lut = np.zeros((256, 3), np.uint8)
    lut[:, 1] = np.arange(256)  # green ramp
    o = Orientation(flip_h=True)
    path = save_displayed_png(tmp_path / "f.png", arr, (0, 100), lut, o)
    png = np.asarray(Image.open(path))
    assert png.shape == (2, 2, 3)
    assert png[0, 1, 1] == 0 and png[0, 0, 1] == 128  # flipped: 50 → half of the ramp
    assert png[1, 0, 1] == 255 and png[1, 1, 1] == 255  # 200 clips at the top level
    assert not png[..., 0].any() and not png[..., 2].any()
    rgb = render_displayed(np.full((2, 2, 3), 50, np.uint8), (0, 100), None)
    assert rgb[0, 0, 0] == 128


def test_load_reference_reasons(tmp_path):
    good = tmp_path / "flat.npy"
    np.save(good, np.ones((4, 5), np.float32))
    assert load_reference(good).shape == (4, 5)
    (tmp_path / "bad.npy").write_bytes(b"not numpy at all")
    with pytest.raises(ValueError, match="cannot read flat from bad.npy: not a NumPy .npy file"):
        load_reference(tmp_path / "bad.npy")
    np.save(tmp_path / "vec.npy", np.ones(7))
    with pytest.raises(ValueError, match="2-D"):
        load_reference(tmp_path / "vec.npy")
    np.save(tmp_path / "mask.npy", np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="numeric 2-D image; mask.npy holds bool"):
        load_reference(tmp_path / "mask.npy")
    with pytest.raises(ValueError, match="not found"):
        load_reference(tmp_path / "missing.npy", "dark")
    with pytest.raises(ValueError, match="cannot read dark from .*: Is a directory"):
        load_reference(tmp_path, "dark")


def test_frame_averager_restarts_on_shape_change():
    avg = FrameAverager(2)
    assert avg.add(np.ones((3, 3))) is None
    assert avg.add(np.ones((4, 4))) is None and avg.restarts == 1
    np.testing.assert_array_equal(avg.add(np.full((4, 4), 3.0)), np.full((4, 4), 2.0, np.float32))


def _frames(seed, n, shape=(12, 16)):
    rng = np.random.default_rng(seed)
    return [rng.integers(100, 4000, shape, dtype=np.uint16) for _ in range(n)]


def test_corrections_capture_flat_and_dark_then_equal_numpy_reference():
    captured = []
    c = ImageCorrections(on_captured=lambda kind, arr: captured.append(kind))
    darks, flats = _frames(1, 3), _frames(2, 4)
    darks = [d // 20 for d in darks]
    c.capture("dark", 3)
    for d in darks:
        out, meta = c(d, {})
        assert out is d  # nothing applied while only capturing
    c.capture("flat", 4)
    for f in flats:
        c(f, {})
    assert captured == ["dark", "flat"] and c.capturing is None
    dark = np.mean(darks, axis=0).astype(np.float32)
    flat = np.mean(flats, axis=0).astype(np.float32)
    np.testing.assert_allclose(c.dark, dark, rtol=1e-6)
    np.testing.assert_allclose(c.flat, flat, rtol=1e-6)

    raw = _frames(3, 1)[0]
    c.set_applied("flat", True)
    out, meta = c(raw, {})
    assert out.dtype == np.float32 and meta["corrections"] == "flat"
    np.testing.assert_allclose(out, raw / flat * flat.mean(), rtol=1e-5)
    c.set_applied("dark", True)
    out, meta = c(raw, {})
    den = flat - dark
    np.testing.assert_allclose(out, (raw - dark) / den * den.mean(), rtol=1e-4)
    np.testing.assert_array_equal(out, flat_field_correct(raw, flat, dark))  # the one home of the math
    c.set_applied("flat", False)
    out, meta = c(raw, {})
    np.testing.assert_array_equal(out, raw.astype(np.float32) - dark)
    assert meta["corrections"] == "dark"


def test_zero_or_negative_denominators_are_masked_and_counted():
    c = ImageCorrections()
    flat = np.full((4, 4), 10.0, np.float32)
    flat[0, 0], flat[1, 1] = 0, -3
    c.set_reference("flat", flat)
    c.set_applied("flat", True)
    out, meta = c(np.full((4, 4), 7, np.uint16), {})
    assert np.isfinite(out).all() and out[0, 0] == 0 and out[1, 1] == 0
    assert c.masked_pixels == 2 and meta["flat_masked_pixels"] == 2


def test_shape_mismatch_is_not_applied_and_is_reported_once():
    problems = []
    c = ImageCorrections(on_problem=problems.append)
    c.set_reference("flat", np.ones((8, 8), np.float32))
    c.set_applied("flat", True)
    raw = np.full((12, 16), 5, np.uint16)
    for _ in range(3):
        out, meta = c(raw, {})
        assert out is raw and "does not match" in meta["corrections_problem"]
    assert c.not_applied == 3 and len(problems) == 1 and "(8, 8)" in problems[0]
    out, meta = c(np.full((8, 8), 5, np.uint16), {})  # the stream comes back to the flat's size
    assert c.problem == "" and meta["corrections"] == "flat"


def test_flat_and_dark_of_different_shapes_are_refused():
    problems = []
    c = ImageCorrections(on_problem=problems.append)
    c.set_reference("flat", np.ones((8, 8), np.float32))
    c.set_reference("dark", np.ones((4, 4), np.float32))
    c.set_applied("flat", True)
    c.set_applied("dark", True)
    raw = np.ones((8, 8), np.uint16)
    out, meta = c(raw, {})
    assert out is raw and "does not match dark shape (4, 4)" in problems[-1]
