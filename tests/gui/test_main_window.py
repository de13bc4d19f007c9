"""The real main window, offscreen, watching a real PvaServer."""
import numpy as np
import pytest
from pyqtgraph.Qt import QtCore

from pystream.sources.ntndarray import build_ntndarray
from pystream.sources.pva import PvaSource

pytestmark = [pytest.mark.gui, pytest.mark.pva]


def screen_value(window, grab, x, y):
    """Gray level painted at the centre of detector pixel (x, y)."""
    view = window.image_view
    scene = view.view.mapViewToScene(QtCore.QPointF(x + 0.5, y + 0.5))
    pt = view.graphics.mapFromScene(scene)
    return grab.pixelColor(pt).red()


def test_window_paints_the_published_pixels(window, publisher, qtbot):
    rng = np.random.default_rng(7)
    image = rng.integers(0, 4000, (24, 32), dtype=np.uint16)
    image[0, 0], image[-1, -1] = 0, 4000  # known levels: min 0, max 4000
    publisher.publish(image)
    window.connect_source(PvaSource(publisher.pv_name))
    qtbot.waitUntil(lambda: window.stats()["displayed"] >= 1, timeout=10000)
    assert window.current.levels == (0.0, 4000.0)
    qtbot.wait(50)
    grab = window.image_view.graphics.grab().toImage()
    for y, x in [(0, 0), (23, 31), (5, 7), (12, 20), (20, 3), (1, 30)]:
        expected = image[y, x] / 4000 * 255
        assert abs(screen_value(window, grab, x, y) - expected) <= 3, (x, y)


def test_status_bar_counters_move_and_bad_frames_are_shown(window, publisher, qtbot):
    image = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)
    publisher.publish(image)
    window.connect_source(PvaSource(publisher.pv_name))
    qtbot.waitUntil(lambda: window.stats()["displayed"] >= 1, timeout=10000)
    window.refresh_status()
    first = window.status_label.text()
    assert "connected" in first and "received 1" in first

    bad = build_ntndarray(image, uid=50, codec="lz4")
    bad["uncompressedSize"] = 7  # a lie about the size
    publisher.publish_object(bad)
    qtbot.waitUntil(lambda: window.stats()["rejected"] == 1, timeout=10000)
    window.refresh_status()
    assert "decompressed_size" in window.status_label.text()  # why, while it is the news
    displayed = window.stats()["displayed"]
    publisher.publish(image + 1, uid=51)  # the stream goes on
    qtbot.waitUntil(lambda: window.stats()["displayed"] > displayed, timeout=10000)
    assert window.current.uid == 51
    window.refresh_status()
    text = window.status_label.text()
    # the count stays; the error leaves once frames decode again
    assert "rejected 1" in text and "decompressed_size" not in text and "received 3" in text
    assert window.stats()["rejected_by_reason"] == {"decompressed_size": 1}


def test_pause_stops_decoding_but_not_receiving(window, publisher, qtbot):
    image = np.zeros((16, 16), np.uint8)
    publisher.publish(image)
    window.connect_source(PvaSource(publisher.pv_name))
    qtbot.waitUntil(lambda: window.stats()["displayed"] >= 1, timeout=10000)
    window.pause_action.setChecked(True)  # nothing is in flight: frame 1 was painted
    decoded = window.stats()["decoded"]
    for uid in range(2, 12):
        publisher.publish(image + uid, uid=uid)
    # pvAccess may coalesce quick updates: wait for the last one, not for a count
    qtbot.waitUntil(lambda: window.session.router.uids.last == 11, timeout=30000)
    assert window.stats()["received"] > 1
    assert window.stats()["decoded"] == decoded
    window.pause_action.setChecked(False)
    qtbot.waitUntil(lambda: window.current is not None and window.current.uid == 11, timeout=10000)


def test_rgb_frames_are_shown_in_colour(window, publisher, qtbot):
    image = np.zeros((20, 30, 3), np.uint8)
    image[..., 0] = 200  # red everywhere
    image[:, 15:, 2] = 250  # right half also blue → magenta
    image[0, 0] = 0
    image[-1, -1] = 255
    publisher.publish(image, color_mode="rgb3")
    window.connect_source(PvaSource(publisher.pv_name))
    qtbot.waitUntil(lambda: window.stats()["displayed"] >= 1, timeout=10000)
    qtbot.wait(50)
    grab = window.image_view.graphics.grab().toImage()
    view = window.image_view
    left = grab.pixelColor(view.graphics.mapFromScene(view.view.mapViewToScene(QtCore.QPointF(5.5, 10.5))))
    right = grab.pixelColor(view.graphics.mapFromScene(view.view.mapViewToScene(QtCore.QPointF(25.5, 10.5))))
    assert left.red() > 150 and left.blue() < 30 and left.green() < 30
    assert right.red() > 150 and right.blue() > 200


def test_a_pv_typed_in_the_toolbar_gets_the_pva_queue_option(publisher, qtbot, home, monkeypatch):
    from pystream.cli import build_viewer_parser
    from pystream.gui.assemble import build_window
    from pystream.gui.app import make_app

    monkeypatch.chdir(home)  # the packaged pipeline, not one in the current directory or ~/.pystream

    make_app()
    window = build_window(build_viewer_parser().parse_args(["--pva-queue", "6"]))
    qtbot.addWidget(window)
    window.show()
    image = np.arange(12 * 16, dtype=np.uint16).reshape(12, 16)
    publisher.publish(image)
    window.pv_edit.setText(publisher.pv_name)
    window.connect_action.trigger()
    try:
        qtbot.waitUntil(lambda: window.stats()["displayed"] >= 1, timeout=10000)
        assert window.session.source.queue_size == 6
        np.testing.assert_array_equal(window.current.raw, image)
    finally:
        window.disconnect_source()


def test_status_line_tells_recording_drops_rejections_and_errors():
    from pystream.gui.main_window import format_status
    line = format_status({"state": "connected", "recording": True, "recorded": 47, "record_drops": 2,
                          "record_rejected": 40})
    assert "rec 47 (2 drops, 40 rejected)" in line
    assert "rec 5 (0 drops)" in format_status({"recording": True, "recorded": 5, "record_drops": 0})
    line = format_status({"recording": False, "record_state": "error", "record_error": "disk full"})
    assert "rec error: disk full" in line
    assert "rec " not in format_status({"recording": False, "record_state": "finished"})


def test_status_line_shows_the_scale_out_consumers():
    from pystream.gui.main_window import format_status
    line = format_status({"state": "connected", "scale_consumers": 4, "scale_consumers_reporting": 3,
                          "scale_processed_fps": 96.9, "scale_step_errors": 2})
    assert "scale 96.9 fps (3/4 consumers, 2 errors)" in line
    assert "scale" not in format_status({"state": "connected"})


def test_status_line_says_when_the_display_paces_the_stream():
    from pystream.gui.main_window import format_status
    line = format_status({"state": "connected", "receive_mode": "paced", "skipped_upstream": 120})
    assert "paced: showing what the screen can (120 not sent)" in line
    assert "paced" not in format_status({"state": "connected", "receive_mode": "lossless"})
