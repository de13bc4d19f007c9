"""The main window with its image tools, used as a scientist uses it: clicks, typing,
wheel, shortcuts, small windows. Offscreen, watching a real PvaServer."""
import numpy as np
import pytest
from pyqtgraph.Qt import QtCore, QtWidgets

from pystream.gui.image_tools import PLOT_HEIGHT, ImageTools

from .test_image_tools import show, start, widget_pos
from .test_panels_as_used import wheel

pytestmark = [pytest.mark.gui, pytest.mark.pva]


@pytest.fixture
def tools(window):
    tools = ImageTools(window)
    window.resize(1600, 1000)
    window.activateWindow()
    return tools


def ramp(scale=1):
    return (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * scale).astype(np.uint16)


def type_into(qtbot, spin, text):
    """Click into a box, select all, type, leave it with Tab (as a user does)."""
    edit = spin.lineEdit()
    qtbot.mouseClick(edit, QtCore.Qt.LeftButton)
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=5000)
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, QtCore.Qt.Key_Tab)


def test_a_typed_minimum_is_applied_while_auto_levels_was_on(window, tools, publisher, qtbot):
    start(window, publisher, qtbot, ramp())
    assert window.auto_levels_box.isChecked()
    type_into(qtbot, tools.level_min_spin, "2000")
    assert not window.auto_levels_box.isChecked()  # typing a level is a manual choice, at once
    for _ in range(3):  # frames and panel refreshes come and go while the user types on
        show(window, publisher, qtbot, ramp())
        tools.refresh_panel()
    type_into(qtbot, tools.level_max_spin, "40000")
    tools.refresh_panel()
    qtbot.mouseClick(tools.set_levels_button, QtCore.Qt.LeftButton)
    assert tuple(window.image_view.levels()) == (2000, 40000)
    show(window, publisher, qtbot, ramp(3))
    assert tuple(window.image_view.levels()) == (2000, 40000)
    assert "Manual" in tools.contrast_mode_label.text()


def test_the_wheel_scrolls_the_tools_panel_not_its_boxes_and_plots(window, tools, publisher, qtbot):
    start(window, publisher, qtbot, ramp())
    tools.set_line_enabled(True)
    tools.dock.raise_()
    scroll = tools.dock.widget()
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().maximum() > 0, timeout=5000)
    bar = scroll.verticalScrollBar()
    before = tools.pct_high_spin.value()
    wheel(tools.pct_high_spin, 120)
    wheel(tools.pct_high_spin, -120)
    wheel(tools.pct_high_spin, -120)
    assert tools.pct_high_spin.value() == before and bar.value() > 0
    # the profile plot: scrolled past, not zoomed, until clicked into
    vb = tools.profile_plot.getViewBox()
    bar.setValue(0)
    range_before = vb.viewRange()
    wheel(tools.profile_plot.viewport(), -120)
    assert vb.viewRange() == range_before and bar.value() > 0
    assert vb.autoRangeEnabled()[1] and not tools.profile_autorange_button.isEnabled()
    tools.profile_plot.setFocus()
    qtbot.waitUntil(tools.profile_plot.hasFocus, timeout=5000)
    wheel(tools.profile_plot.viewport(), 120)
    assert vb.viewRange() != range_before
    assert not vb.autoRangeEnabled()[1] and tools.profile_autorange_button.isEnabled()
    qtbot.mouseClick(tools.profile_autorange_button, QtCore.Qt.LeftButton)
    assert all(vb.autoRangeEnabled())


def test_an_error_leaves_the_status_when_its_cause_is_gone(window, tools, publisher, qtbot):
    start(window, publisher, qtbot, ramp())
    tools.set_reference("flat", np.ones((512, 512), np.float32))
    tools.apply_flat_box.setChecked(True)
    show(window, publisher, qtbot, ramp())
    window.refresh_status()
    assert "error:" in window.status_label.text() and "(512, 512)" in window.stats()["last_error"]
    qtbot.mouseClick(tools.apply_flat_box, QtCore.Qt.LeftButton)  # the cause is gone
    show(window, publisher, qtbot, ramp())
    qtbot.waitUntil(lambda: window.stats()["last_error"] == "", timeout=5000)
    window.refresh_status()
    assert "error" not in window.status_label.text()
    # the flat applies again to frames of its shape: the "not applied" problem clears too
    tools.set_reference("flat", np.full((48, 64), 2.0, np.float32))
    tools.apply_flat_box.setChecked(True)
    publisher.publish(np.ones((10, 10), np.uint16))
    qtbot.waitUntil(lambda: "not applied" in window.stats()["last_error"], timeout=10000)
    show(window, publisher, qtbot, ramp())
    qtbot.waitUntil(lambda: window.stats()["last_error"] == "", timeout=10000)


def test_a_long_status_is_elided_with_the_whole_text_in_its_tooltip(window, qtbot):
    window.resize(600, 400)
    long = "error: " + "x" * 400
    window.status_label.setText(long)
    assert window.status_label.text() == long and window.status_label.toolTip() == long
    shown = window.status_label.shown_text()
    assert shown.endswith("…") and len(shown) < len(long)
    assert window.status_label.width() <= window.width()


def test_pause_is_said_in_the_status(window, publisher, qtbot):
    start(window, publisher, qtbot, ramp())
    window.pause_action.trigger()
    window.refresh_status()
    assert "paused" in window.status_label.text().split("  |  ")[:2]
    assert window.stats()["paused"] is True
    window.pause_action.trigger()
    window.refresh_status()
    assert "paused" not in window.status_label.text()


@pytest.mark.parametrize("size", [(500, 350), (800, 500)])
def test_in_a_small_window_the_docks_give_way_before_the_image(window, tools, publisher, qtbot, size):
    from pystream.gui.record_panel import RecordPanel
    window.add_dock(RecordPanel(window), "Recording").raise_()
    start(window, publisher, qtbot, ramp())
    window.resize(*size)
    qtbot.waitUntil(lambda: window.width() == size[0], timeout=5000)
    qtbot.wait(50)
    rect = window.image_view.view.sceneBoundingRect()
    assert rect.width() >= 0.3 * size[0] and rect.height() >= 0.45 * size[1]
    for dock in window._docks:
        assert isinstance(dock.widget(), QtWidgets.QScrollArea)  # panels scroll, never overprint
        if dock.isVisible() and not dock.visibleRegion().isEmpty():
            inside = dock.widget().geometry()
            assert inside.bottom() <= dock.height() and inside.right() <= dock.width()
    status = window.statusBar().geometry()
    docks_bottom = max(d.geometry().bottom() for d in window._docks if d.isVisible())
    assert docks_bottom < status.top()


def test_capturing_a_flat_does_not_grow_the_profile_plot(window, tools, publisher, qtbot):
    start(window, publisher, qtbot, ramp())
    tools.dock.raise_()
    tools.set_line_enabled(True)
    heights = [tools.profile_plot.height()]
    qtbot.mouseClick(next(b for b in tools.panel.findChildren(QtWidgets.QPushButton)
                          if b.text() == "Capture flat"), QtCore.Qt.LeftButton)
    for _ in range(12):
        show(window, publisher, qtbot, ramp())
        tools.refresh_panel()
        heights.append(tools.profile_plot.height())
    assert set(heights) == {PLOT_HEIGHT}


def test_readouts_clear_when_their_tool_is_switched_off(window, tools, publisher, qtbot):
    start(window, publisher, qtbot, ramp())
    tools.crosshair_action.trigger()
    tools.set_crosshair_pixel(5, 7)
    tools.roi_action.trigger()
    tools.line_action.trigger()
    show(window, publisher, qtbot, ramp())
    show(window, publisher, qtbot, ramp())
    qtbot.waitUntil(lambda: (tools.refresh_panel() or True) and tools.roi_labels["mean"].text() != "—"
                    and tools.line_length_label.text() != "—", timeout=10000)
    assert tools.cross_value_label.text() == str(7 * 64 + 5)
    for action in (tools.crosshair_action, tools.roi_action, tools.line_action):
        action.trigger()
    show(window, publisher, qtbot, ramp())
    tools.refresh_panel()
    labels = [tools.cross_x_label, tools.cross_y_label, tools.cross_value_label,
              *tools.roi_labels.values(), tools.line_length_label, tools.line_angle_label]
    assert {lab.text() for lab in labels} == {"—"}
    assert all(curve.getData()[0] is None for curve in tools.profile_curves)


def test_value_under_the_mouse_is_in_the_status_bar(window, tools, publisher, qtbot):
    start(window, publisher, qtbot, ramp())
    tools.set_orientation(tools.orientation.toggled("flip_h"))
    qtbot.wait(20)
    # view pixel (10.5, 20.5) is detector pixel (64 - 1 - 10, 20) when mirrored
    qtbot.mouseMove(window.image_view.graphics.viewport(), widget_pos(window, 10.5, 20.5))
    qtbot.waitUntil(lambda: window.cursor_label.text() != "", timeout=5000)
    assert window.cursor_label.text() == f"x 53  y 20  value {20 * 64 + 53}"


def test_keyboard_shortcuts_do_what_the_help_says(window, tools, publisher, qtbot):
    start(window, publisher, qtbot, ramp())
    window.image_view.graphics.setFocus()
    keys = dict(window.shortcuts)
    assert set(keys) >= {"Space", "C", "A", "H", "Ctrl+S", "F"}
    qtbot.keyClick(window.image_view.graphics, QtCore.Qt.Key_Space)
    assert window.pause_action.isChecked()
    qtbot.keyClick(window.image_view.graphics, QtCore.Qt.Key_Space)
    assert not window.pause_action.isChecked()
    qtbot.keyClick(window.image_view.graphics, QtCore.Qt.Key_C)
    assert tools.crosshair_action.isChecked()
    tools.set_levels(1.0, 2.0)
    qtbot.keyClick(window.image_view.graphics, QtCore.Qt.Key_A)  # auto levels once
    assert tuple(window.image_view.levels()) == pytest.approx(window.current.levels)
    window.image_view.view.scaleBy((4, 4))
    zoomed = window.image_view.view.viewRange()
    qtbot.keyClick(window.image_view.graphics, QtCore.Qt.Key_H)
    assert window.image_view.view.viewRange() != zoomed
    qtbot.keyClick(window.image_view.graphics, QtCore.Qt.Key_F)
    assert window.fullscreen_action.isChecked() and not tools.toolbar.isVisible()
    qtbot.keyClick(window.image_view.graphics, QtCore.Qt.Key_F)
    assert tools.toolbar.isVisible() and tools.dock.isVisible()
    # typing a PV name types letters; it does not pause or switch tools
    window.pv_edit.setFocus()
    qtbot.waitUntil(window.pv_edit.hasFocus, timeout=5000)
    qtbot.keyClicks(window.pv_edit, "CAF H")
    assert window.pv_edit.text().endswith("CAF H") and tools.crosshair_action.isChecked()
    assert not window.pause_action.isChecked()
    assert "Ctrl+S" in window.shortcuts_text() and "pause" in window.shortcuts_text()


def test_rotate_keeps_its_size_and_turbo_has_no_hatched_tick_strip(window, tools):
    button = tools.toolbar.widgetForAction(tools.rotate_action)
    widths = set()
    for _ in range(4):
        widths.add(button.width())
        widths.add(button.sizeHint().expandedTo(button.minimumSize()).width())
        tools.rotate()
    assert len(widths) == 1
    window.colormap_combo.setCurrentText("turbo")
    gradient = window.image_view.histogram.item.gradient
    assert len(gradient.ticks) > 100 and not any(t.isVisible() for t in gradient.ticks)
    window.colormap_combo.setCurrentText("gray")
    assert all(t.isVisible() for t in gradient.ticks)


def test_percentiles_are_the_default_and_apply_once_with_auto_off(window, tools, publisher, qtbot):
    image = ramp()
    image[0, :2] = 65000  # a few hot pixels (< 0.1 %) must not set the range
    start(window, publisher, qtbot, image)
    frame = show(window, publisher, qtbot, image)
    assert frame.levels[1] < 4000
    assert "percentiles 0.1–99.9 %" in tools.contrast_mode_label.text()
    tools.set_levels(0.0, 10.0)
    qtbot.mouseClick(tools.percentile_box, QtCore.Qt.LeftButton)  # off: min/max ...
    frame = show(window, publisher, qtbot, image)
    assert frame.auto_levels and frame.levels[1] == 65000  # ... applied once, Auto being off
    assert "applied once" in tools.message_label.text()
    frame = show(window, publisher, qtbot, image)
    assert not frame.auto_levels


def test_window_layout_is_saved_and_put_back(window, qtbot):
    from pystream.gui.record_panel import RecordPanel
    dock = window.add_dock(RecordPanel(window), "Recording")
    window.resize(900, 700)
    qtbot.waitUntil(dock.isVisible, timeout=5000)
    window.fullscreen_action.setChecked(True)  # quitting while full screen
    assert dock.isHidden()
    saved = window.save_layout()
    assert not window.fullscreen_action.isChecked() and not dock.isHidden()
    dock.close()
    assert window.restore_layout(saved)
    qtbot.waitUntil(dock.isVisible, timeout=5000)  # the docks as they were before full screen
    window.resize(500, 400)
    assert window.restore_layout(saved)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == (900, 700), timeout=5000)
    assert not window.restore_layout({"window_geometry": "not base64!", "window_state": 3})
