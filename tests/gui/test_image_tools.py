"""Image tools on the real window, offscreen, watching a real PvaServer: clicks, corrections, files."""
import itertools

import numpy as np
import pytest
import tifffile
from PIL import Image
from pyqtgraph.Qt import QtCore

from pystream.display import compute_levels
from pystream.gui.image_tools import ImageTools
from pystream.imaging import Orientation
from pystream.sources.pva import PvaSource

from ..test_imaging import numpy_oriented

pytestmark = [pytest.mark.gui, pytest.mark.pva]

ORIENTATIONS = [Orientation(fh, fv, tr, k) for k, tr, fh, fv in
                itertools.product(range(4), (False, True), (False, True), (False, True))]


@pytest.fixture
def tools(window):
    return ImageTools(window)


def start(window, publisher, qtbot, image, **kw):
    publisher.publish(image, **kw)
    window.connect_source(PvaSource(publisher.pv_name))
    qtbot.waitUntil(lambda: window.current is not None, timeout=10000)


def show(window, publisher, qtbot, image, **kw):
    uid = publisher.publish(image, **kw)
    qtbot.waitUntil(lambda: window.current is not None and window.current.uid == uid, timeout=10000)
    return window.current


def analysed(qtbot, frame, name):
    """The worker's result for ``frame`` (analyses run while it is painted)."""
    qtbot.waitUntil(lambda: name in frame.analysis, timeout=10000)
    return frame.analysis[name]


def view_center_of(det_shape, o, x, y):
    """Where detector pixel (x, y) is in view coordinates, found with numpy alone."""
    out = numpy_oriented(np.arange(det_shape[0] * det_shape[1]).reshape(det_shape), o)
    vy, vx = np.argwhere(out == y * det_shape[1] + x)[0]
    return vx + 0.5, vy + 0.5


def widget_pos(window, vx, vy):
    view = window.image_view
    return view.graphics.mapFromScene(view.view.mapViewToScene(QtCore.QPointF(vx, vy)))


def click(qtbot, window, vx, vy):
    qtbot.mouseClick(window.image_view.graphics.viewport(), QtCore.Qt.LeftButton,
                     pos=widget_pos(window, vx, vy))


def labels(tools):
    return (tools.cross_x_label.text(), tools.cross_y_label.text(), tools.cross_value_label.text())


@pytest.mark.parametrize("display_bin", [1, 3])
def test_crosshair_click_reports_detector_pixel_and_value_in_every_orientation(
        window, tools, publisher, qtbot, display_bin):
    shape = (18, 25)  # not multiples of the binning: the last display pixel overhangs
    rng = np.random.default_rng(11)
    image = (rng.permutation(shape[0] * shape[1]).reshape(shape) * 100).astype(np.uint16)
    tools.set_display_bin(display_bin)
    start(window, publisher, qtbot, image)
    qtbot.waitUntil(lambda: window.current.bin == display_bin, timeout=10000)
    tools.crosshair_action.setChecked(True)
    pixels = [(0, 0), (24, 17), (7, 3), (13, 11), (2, 16)]
    shown = image
    for n, o in enumerate(ORIENTATIONS):
        tools.set_orientation(o)
        qtbot.wait(5)
        grab = window.image_view.graphics.grab().toImage() if display_bin == 1 else None
        for x, y in pixels:
            vx, vy = view_center_of(shape, o, x, y)
            click(qtbot, window, vx, vy)
            assert labels(tools) == (str(x), str(y), str(shown[y, x])), (o, x, y)
            if grab is not None:  # what is painted there is that pixel
                lo, hi = window.current.levels
                # off-centre: the crosshair lines run through the centre
                gray = grab.pixelColor(widget_pos(window, vx + 0.25, vy + 0.25)).red()
                assert abs(gray - (shown[y, x] - lo) / (hi - lo) * 255) <= 3, (o, x, y)
        # the next frame's value comes from the worker's analysis for the same pixel
        shown = image + n + 1
        frame = show(window, publisher, qtbot, shown)
        assert analysed(qtbot, frame, "crosshair").value[0].value == shown[y, x]
        tools.refresh_panel()
        assert labels(tools) == (str(x), str(y), str(shown[y, x]))
    # a click outside the frame leaves the crosshair where it was
    click(qtbot, window, -3.0, -3.0)
    assert tools.crosshair_pixel == (x, y)


def test_crosshair_shows_three_values_for_rgb(window, tools, publisher, qtbot):
    image = np.random.default_rng(3).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    start(window, publisher, qtbot, image, color_mode="rgb3")
    tools.crosshair_action.setChecked(True)
    tools.set_orientation(Orientation(transpose=True))
    click(qtbot, window, *view_center_of((12, 16), Orientation(transpose=True), 9, 4))
    assert labels(tools) == ("9", "4", "({}, {}, {})".format(*image[4, 9]))


def test_flat_and_dark_capture_apply_equal_numpy(window, tools, publisher, qtbot):
    rng = np.random.default_rng(5)
    shape = (20, 30)
    darks = [rng.integers(90, 110, shape, dtype=np.uint16) for _ in range(3)]
    flats = [rng.integers(1000, 3000, shape, dtype=np.uint16) for _ in range(2)]
    flats[0][4, 5] = flats[1][4, 5] = 0  # flat - dark < 0 there: masked, never inf/NaN
    start(window, publisher, qtbot, darks[0])
    tools.capture("dark", 3)
    for d in darks:
        show(window, publisher, qtbot, d)
    qtbot.waitUntil(lambda: tools.corrections.dark is not None, timeout=30000)
    tools.capture_n_spin.setValue(2)
    tools.capture("flat", 2)
    for f in flats:
        show(window, publisher, qtbot, f)
    qtbot.waitUntil(lambda: "20 float32" in tools.reference_labels["flat"].text(), timeout=30000)
    dark = np.mean(darks, axis=0, dtype=np.float64).astype(np.float32)
    flat = np.mean(flats, axis=0, dtype=np.float64).astype(np.float32)
    np.testing.assert_allclose(tools.corrections.dark, dark, rtol=1e-6)
    np.testing.assert_allclose(tools.corrections.flat, flat, rtol=1e-6)

    raw = rng.integers(500, 2500, shape, dtype=np.uint16)
    tools.apply_flat_box.setChecked(True)
    frame = show(window, publisher, qtbot, raw)
    valid = flat > 0
    expected = np.where(valid, raw / np.where(valid, flat, 1) * flat[valid].mean(), 0)
    assert frame.raw.dtype == np.float32 and frame.meta["corrections"] == "flat"
    np.testing.assert_allclose(frame.raw, expected, rtol=1e-5)

    tools.apply_dark_box.setChecked(True)
    frame = show(window, publisher, qtbot, raw)
    den = flat - dark
    valid = den > 0
    expected = np.where(valid, (raw - dark) / np.where(valid, den, 1) * den[valid].mean(), 0)
    assert frame.meta["corrections"] == "flat+dark" and frame.meta["flat_masked_pixels"] == 1
    assert np.isfinite(frame.raw).all() and frame.raw[4, 5] == 0
    np.testing.assert_allclose(frame.raw, expected, rtol=1e-4)
    # float32 shown with its own range (auto levels hold still within 1 % of it)
    lo, hi = compute_levels(frame.image, tools.percentiles())  # the default: percentiles
    assert tools.percentiles() == (0.1, 99.9)
    assert frame.levels == pytest.approx((lo, hi), abs=0.011 * (hi - lo))
    assert window.image_view.levels()[1] == pytest.approx(hi, rel=0.011)
    # the crosshair shows the received value and the corrected one
    tools.crosshair_action.setChecked(True)
    tools.set_crosshair_pixel(7, 9)
    assert tools.cross_value_label.text() == str(raw[9, 7])
    assert float(tools.cross_shown_label.text()) == pytest.approx(expected[9, 7], rel=1e-5)
    tools.refresh_panel()
    assert "1 masked" in tools.reference_labels["flat"].text()

    tools.clear_reference("flat")
    frame = show(window, publisher, qtbot, raw)
    assert frame.meta["corrections"] == "dark"
    np.testing.assert_array_equal(frame.raw, raw.astype(np.float32) - dark)


def test_flat_of_wrong_shape_or_bad_file_is_refused_loudly(window, tools, publisher, qtbot, tmp_path):
    image = np.full((16, 24), 1000, np.uint16)
    start(window, publisher, qtbot, image)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones((8, 8), np.float32))
    assert tools.load_reference_file("flat", wrong)
    assert "its shape (8, 8) does not match the stream's frames (16, 24)" in tools.message_label.text()
    tools.apply_flat_box.setChecked(True)
    assert "does not match" in tools.corrections_label.text()
    frame = show(window, publisher, qtbot, image + 1)
    assert frame.raw.dtype == np.uint16 and "does not match" in frame.meta["corrections_problem"]
    stats = window.stats()
    assert stats["corrections_not_applied"] >= 1 and "does not match" in stats["last_error"]
    window.refresh_status()
    assert "(8, 8)" in window.status_label.text()

    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    assert not tools.load_reference_file("dark", bad)
    assert "cannot read dark" in tools.corrections_label.text()
    assert "cannot read dark" in window.stats()["last_error"]
    assert tools.corrections.dark is None

    good = tmp_path / "good.npy"
    np.save(good, np.full((16, 24), 2.0, np.float32))
    assert tools.load_reference_file("flat", good)
    frame = show(window, publisher, qtbot, image)
    assert frame.meta["corrections"] == "flat" and frame.raw.dtype == np.float32
    saved = tmp_path / "saved_flat.npy"
    assert tools.save_reference_file("flat", saved)
    np.testing.assert_array_equal(np.load(saved), np.full((16, 24), 2.0, np.float32))
    # the dark's earlier failure left the panel with that success
    assert tools.corrections_label.text() == ""
    # a name without .npy: saved where numpy puts it, and the message says so
    assert tools.save_reference_file("flat", tmp_path / "flat.tiff")
    assert tools.message_label.text() == f"flat saved to {tmp_path / 'flat.tiff.npy'}"
    np.testing.assert_array_equal(np.load(tmp_path / "flat.tiff.npy"), np.full((16, 24), 2.0, np.float32))
    text = tmp_path / "notes.npy"
    text.write_text("a text file, renamed")
    assert not tools.load_reference_file("flat", text)
    assert "not a NumPy .npy file" in tools.corrections_label.text()


def test_a_capture_is_cancelled_when_the_stream_changes(window, tools, publisher, qtbot):
    image = np.full((16, 24), 1000, np.uint16)
    tools.capture("flat", 1)  # asked for before any stream: it waits for the first one
    start(window, publisher, qtbot, image)
    qtbot.waitUntil(lambda: tools.corrections.flat is not None, timeout=30000)
    np.testing.assert_array_equal(tools.corrections.flat, image)
    tools.capture("flat", 50)
    show(window, publisher, qtbot, image + 1)
    assert tools.corrections.capturing[0] == "flat"
    tools.capture("dark", 50)  # replaces it, and says so
    assert "flat capture cancelled after" in tools.message_label.text()
    show(window, publisher, qtbot, image + 2)
    window.disconnect_source()
    assert tools.corrections.capturing is None and tools.corrections.dark is None
    assert "dark capture cancelled after" in tools.message_label.text()
    assert "the stream changed" in tools.message_label.text()
    assert tools.reference_labels["dark"].text() == "none"


def test_percentiles_low_above_high_fall_back_to_min_max_and_say_so(window, tools):
    tools.percentile_box.setChecked(True)
    tools.pct_low_spin.setValue(99.0)
    tools.pct_high_spin.setValue(1.0)
    assert tools.percentiles() is None
    assert "percentiles need low < high" in tools.message_label.text()
    tools.pct_high_spin.setValue(99.5)
    assert tools.percentiles() == (99.0, 99.5)


def test_saved_frames_read_back_equal_and_png_as_displayed(window, tools, publisher, qtbot, tmp_path):
    image = np.random.default_rng(8).integers(0, 4000, (14, 22), dtype=np.uint16)
    start(window, publisher, qtbot, image)
    tools.set_reference("flat", np.full(image.shape, 3.0, np.float32))
    tools.apply_flat_box.setChecked(True)
    show(window, publisher, qtbot, image)
    for name in ("f.npy", "f.tiff"):
        path = tools.save_frame(tmp_path / name)
        back = np.load(path) if name.endswith("npy") else tifffile.imread(path)
        assert back.dtype == np.uint16  # the frame as received, not the corrected one
        np.testing.assert_array_equal(back, image)
    tools.set_orientation(Orientation(flip_h=True))
    tools.set_levels(0.0, 2000.0)
    png = np.asarray(Image.open(tools.save_frame(tmp_path / "f.png")))
    assert png.shape == (14, 22, 3)
    expected = np.clip(image[:, ::-1] / 2000.0 * 256, 0, 255).astype(int)  # gray LUT, flipped
    assert np.abs(png[..., 0].astype(int) - expected).max() <= 2


def test_roi_statistics_equal_numpy_under_orientation(window, tools, publisher, qtbot):
    image = np.random.default_rng(9).integers(0, 60000, (30, 40), dtype=np.uint16)
    start(window, publisher, qtbot, image)
    tools.roi_action.setChecked(True)
    tools.set_roi_rect((5, 3, 12, 9))
    frame = show(window, publisher, qtbot, image)
    region = image[3:12, 5:17].astype(np.float64)
    s = analysed(qtbot, frame, "roi_stats").value
    assert (s.x, s.y, s.width, s.height) == (5, 3, 12, 9)
    assert (s.min, s.max, s.sum) == (region.min(), region.max(), region.sum())
    assert s.mean == pytest.approx(region.mean()) and s.std == pytest.approx(region.std())
    tools.refresh_panel()
    assert tools.roi_labels["position"].text() == "5, 3"
    assert tools.roi_labels["std"].text() == f"{region.std():.6g}"
    # the ROI drawn on a flipped + rotated view covers the same detector pixels
    o = Orientation(flip_h=True, quarter_turns=1)
    tools.set_orientation(o)
    size = tools.roi.size()
    assert (size.x(), size.y()) == (9, 12)
    # moving the drawn ROI (view coordinates) measures the detector pixels under it
    tools.roi.setPos((0, 0))
    det_shape = image.shape
    corner = [view_center_of(det_shape, o, x, y) for x, y in itertools.product(range(40), range(30))]
    inside = [(x, y) for (x, y), (vx, vy) in zip(itertools.product(range(40), range(30)), corner)
              if vx < 9 and vy < 12]
    xs, ys = zip(*inside)
    assert tools.roi_rect == (min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)
    frame = show(window, publisher, qtbot, image)
    region = image[min(ys):max(ys) + 1, min(xs):max(xs) + 1]
    s = analysed(qtbot, frame, "roi_stats").value
    assert (s.min, s.max, s.mean) == (region.min(), region.max(), pytest.approx(region.mean()))
    # a ROI off the frame measures nothing, and says why
    tools.set_orientation(Orientation())
    tools.set_roi_rect((100, 100, 5, 5))
    frame = show(window, publisher, qtbot, image)
    assert analysed(qtbot, frame, "roi_stats").value.count == 0
    tools.refresh_panel()
    assert tools.roi_labels["size"].text() == "0 × 0  (outside the frame)"


def test_line_profile_plot_length_and_angle(window, tools, publisher, qtbot):
    image = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
    start(window, publisher, qtbot, image)
    tools.line_action.setChecked(True)
    tools.set_line((2.5, 4.5), (2.5, 16.5))  # down column 2
    show(window, publisher, qtbot, image)
    tools.refresh_panel()
    xdata, ydata = tools.profile_curves[0].getData()
    np.testing.assert_array_equal(ydata, image[4:17, 2])
    assert tools.line_length_label.text() == "12.00 px" and tools.line_angle_label.text() == "90.00°"
    # the drawn line follows the detector pixels when the view is transposed
    tools.set_orientation(Orientation(transpose=True))
    p0 = tools.line.mapToParent(tools.line.getHandles()[0].pos())
    assert (p0.x(), p0.y()) == (4.5, 2.5)


def test_line_outline_follows_the_line_and_the_zoom(window, tools, publisher, qtbot):
    """The line's outline (its hit band) is kept between paints (rebuilding
    it cost 0.6 ms per frame): it must still hold a moved line, and stay a
    few screen pixels wide when the view zooms in."""
    image = np.zeros((40, 60), np.uint16)
    start(window, publisher, qtbot, image)
    tools.line_action.setChecked(True)
    line = tools.line

    def endpoints_inside():
        rect = line.boundingRect()
        return all(rect.contains(h.pos()) for h in line.getHandles())

    def band_px():  # outline height beyond the line's own, in screen pixels
        dev = line.deviceTransform_()
        ends = [dev.map(h.pos()) for h in line.getHandles()]
        return dev.mapRect(line.boundingRect()).height() - abs(ends[1].y() - ends[0].y())

    tools.set_line((5.5, 5.5), (20.5, 10.5))
    qtbot.waitUntil(endpoints_inside, timeout=30000)
    tools.set_line((30.5, 20.5), (50.5, 35.5))  # the outline of the old place would not hold it
    assert endpoints_inside()
    qtbot.wait(50)
    assert 0 < band_px() <= 20
    window.image_view.view.setRange(xRange=(37, 43), yRange=(26, 30), padding=0)  # about 10x
    qtbot.wait(50)
    assert 0 < band_px() <= 20  # a kept outline would be 10x wider on screen


def test_auto_contrast_every_n_frames_once_percentiles_and_manual(window, tools, publisher, qtbot):
    shown = []
    window.frameShown.connect(lambda d: shown.append(d.auto_levels))
    image = np.arange(100, dtype=np.uint16).reshape(10, 10)
    start(window, publisher, qtbot, image)
    tools.set_auto_every(3)
    shown.clear()
    for k in range(1, 8):
        show(window, publisher, qtbot, image * k)
    assert shown.count(True) in (2, 3) and shown[:7] in (
        [True, False, False, True, False, False, True], [False, True, False, False, True, False, False],
        [False, False, True, False, False, True, False])
    last_due = max(k for k, due in zip(range(1, 8), shown) if due)
    assert tuple(window.image_view.levels()) == pytest.approx(
        compute_levels(image * last_due, tools.percentiles()))

    tools.set_levels(10.0, 20.0)  # manual: auto levels off, and stays
    assert not window.auto_levels_box.isChecked()
    show(window, publisher, qtbot, image * 9)
    assert tuple(window.image_view.levels()) == (10, 20)
    # typed as a user would, scientific notation included
    for spin, text in ((tools.level_min_spin, "5"), (tools.level_max_spin, "1.5e2")):
        spin.lineEdit().setText(text)
        spin.editingFinishedEvent()
    assert (tools.level_min_spin.value(), tools.level_max_spin.value()) == (5.0, 150.0)
    qtbot.mouseClick(tools.set_levels_button, QtCore.Qt.LeftButton)
    assert tuple(window.image_view.levels()) == (5, 150)
    tools.set_levels(10.0, 20.0)
    tools.percentile_box.setChecked(True)
    tools.pct_low_spin.setValue(10.0)
    tools.pct_high_spin.setValue(90.0)
    tools.auto_contrast_once()
    frame = show(window, publisher, qtbot, image * 2)
    assert frame.auto_levels and frame.levels == compute_levels(image * 2, (10.0, 90.0))
    assert tuple(window.image_view.levels()) == pytest.approx(frame.levels)
    frame = show(window, publisher, qtbot, image * 3)  # once means once
    assert not frame.auto_levels
