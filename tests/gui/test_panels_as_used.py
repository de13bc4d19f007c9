"""The side panels driven as a user drives them: real clicks, keys and wheel events, offscreen."""
import logging
import math

import numpy as np
import pytest
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from pystream.flow import Counters, FrameRouter
from pystream.gui.pipeline_panel import PipelinePanel
from pystream.gui.spectrum_panel import SpectrumPanel
from pystream.pipeline import Pipeline, load_config
from pystream.spectra.ring import SpectrumRing
from pystream.spectra.waterfall import WaterfallModel

from ..pipeline.conftest import ARITH_PLUGIN, step, write_config, write_file
from ..record.record_helpers import make_frames

pytestmark = pytest.mark.gui


def check_indicator_center(table, row, col):
    """Where Qt draws the check box of a cell (the point a user clicks)."""
    index = table.model().index(row, col)
    option = QtWidgets.QStyleOptionViewItem()
    option.initFrom(table.viewport())
    option.rect = table.visualRect(index)
    option.features |= QtWidgets.QStyleOptionViewItem.HasCheckIndicator
    rect = table.style().subElementRect(QtWidgets.QStyle.SE_ItemViewItemCheckIndicator, option, table)
    return rect.center()


@pytest.fixture
def off_pipeline(tmp_path, home):
    write_file(tmp_path / "arith.py", ARITH_PLUGIN)
    config = write_config(tmp_path / "p.json", [
        step("add", "arith", "Add", {"value": 1}, enabled=False),
        step("mul", "arith", "Mul", {"factor": 3}, enabled=False),
        step("ghost", "no_such_module", "Nothing", enabled=False),
    ])
    return Pipeline(load_config(config), check_interval=0)


def test_a_step_that_starts_disabled_is_switched_on_by_its_checkbox(qtbot, off_pipeline):
    panel = PipelinePanel(off_pipeline, refresh_ms=20)
    qtbot.addWidget(panel)
    panel.resize(500, 400)
    panel.show()
    qtbot.waitExposed(panel)
    one = np.ones((2, 2), np.float32)
    assert off_pipeline.apply(one)[0][0, 0] == 1  # nothing runs yet
    # a click on the box a user sees
    qtbot.mouseClick(panel.table.viewport(), QtCore.Qt.LeftButton,
                     pos=check_indicator_center(panel.table, 0, panel.COL_ON))
    assert [s.enabled for s in off_pipeline.steps][:2] == [True, False]
    assert off_pipeline.apply(one)[0][0, 0] == 2  # the step runs
    # Space on the current cell, as in any table
    panel.table.setFocus()
    panel.table.setCurrentCell(1, panel.COL_ON)
    qtbot.keyClick(panel.table, QtCore.Qt.Key_Space)
    assert off_pipeline.apply(one)[0][0, 0] == 6  # (1 + 1) * 3
    qtbot.keyClick(panel.table, QtCore.Qt.Key_Space)
    assert off_pipeline.apply(one)[0][0, 0] == 2


def test_a_step_that_failed_to_load_shows_failed_and_its_status_fits(qtbot, tmp_path, home, caplog):
    write_file(tmp_path / "arith.py", ARITH_PLUGIN)
    config = write_config(tmp_path / "p.json", [
        step("add", "arith", "Add", {"value": 1}),
        step("ghost_on", "no_such_module_on", "Nothing"),
        step("ghost_off", "no_such_module_off", "Nothing", enabled=False),
    ])
    with caplog.at_level(logging.INFO, logger="pystream.pipeline"):
        pipeline = Pipeline(load_config(config), check_interval=0)
    levels = {r.getMessage().split(":")[0]: r.levelno for r in caplog.records if "ghost" in r.getMessage()}
    assert levels == {"pipeline step ghost_on": logging.ERROR, "pipeline step ghost_off": logging.INFO}

    panel = PipelinePanel(pipeline, refresh_ms=20)
    qtbot.addWidget(panel)
    panel.resize(330, 400)  # a dock's width
    panel.show()
    qtbot.waitExposed(panel)
    on = panel.table.item(1, panel.COL_ON)
    assert on.text() == "failed" and "no_such_module_on" in on.toolTip()
    assert panel.table.item(0, panel.COL_ON).text() == ""
    # the Status column is on screen, whole text in the tooltip; no horizontal scrolling
    status = panel.table.item(1, panel.COL_STATUS)
    rect = panel.table.visualItemRect(status)
    assert rect.width() >= 60 and rect.right() <= panel.table.viewport().width() + 1
    assert status.toolTip().startswith("not loaded") or "no_such_module_on" in status.toolTip()
    assert panel.table.horizontalScrollBarPolicy() == QtCore.Qt.ScrollBarAlwaysOff


def test_a_switched_off_step_shows_no_stale_time(qtbot, tmp_path):
    write_file(tmp_path / "arith.py", ARITH_PLUGIN)
    pipeline = Pipeline(load_config(write_config(tmp_path / "p.json", [step("add", "arith", "Add")])),
                        check_interval=0)
    panel = PipelinePanel(pipeline, refresh_ms=20)
    qtbot.addWidget(panel)
    pipeline.apply(np.ones((4, 4), np.float32))
    qtbot.waitUntil(lambda: panel.cell_text("add", panel.COL_MS) != "—", timeout=10000)
    assert pipeline.stats()["pipeline_ms_by_step"]["add"] is not None
    qtbot.mouseClick(panel.table.viewport(), QtCore.Qt.LeftButton,
                     pos=check_indicator_center(panel.table, 0, panel.COL_ON))
    assert not pipeline.steps[0].enabled
    qtbot.waitUntil(lambda: panel.cell_text("add", panel.COL_MS) == "—", timeout=10000)
    assert pipeline.stats()["pipeline_ms_by_step"]["add"] is None


# ------------------------------------------------------------------ recording limits
@pytest.fixture
def record_panel(qtbot):
    from pystream.gui.record_panel import RecordPanel
    widget = RecordPanel(FrameRouter(Counters(), slot=None), refresh_ms=20)
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def test_recording_stops_after_the_frame_count_asked_for(record_panel, qtbot, tmp_path):
    record_panel.dir_edit.setText(str(tmp_path))
    record_panel.max_frames_spin.setValue(5)
    qtbot.mouseClick(record_panel.start_button, QtCore.Qt.LeftButton)
    for frame in make_frames(12):
        record_panel.router.on_frame(frame)
    qtbot.waitUntil(lambda: record_panel.start_button.text() == "Start Recording", timeout=30000)
    assert len(list(tmp_path.iterdir())) == 5 and record_panel.frames_label.text() == "5"


def test_recording_stops_after_the_duration_asked_for(record_panel, qtbot, tmp_path):
    record_panel.dir_edit.setText(str(tmp_path))
    record_panel.max_seconds_spin.setValue(0.3)
    qtbot.mouseClick(record_panel.start_button, QtCore.Qt.LeftButton)
    record_panel.router.on_frame(make_frames(1)[0])
    assert record_panel.is_recording
    qtbot.waitUntil(lambda: record_panel.start_button.text() == "Start Recording", timeout=30000)
    assert not record_panel.is_recording and record_panel.frames_label.text() == "1"


# ------------------------------------------------------------------ spectra
def spectra_ring(n_rows=100, n_cols=64):
    ring = SpectrumRing(n_rows, n_cols)
    x = np.linspace(0, 1, n_cols, dtype=np.float32)
    for i in range(60):  # powers over two decades
        ring.write((2e2 + 2e4 * np.exp(-((x - 0.01 * i) / 0.05) ** 2)).astype(np.float32),
                   times=1000.0 + 0.25 * i)
    return ring


@pytest.fixture
def spectra(qtbot):
    ring = spectra_ring()
    model = WaterfallModel(ring, freq_range=(14.36, 87.83))
    panel = SpectrumPanel(model, counters=Counters(), fps=30)
    qtbot.addWidget(panel)
    panel.resize(700, 500)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: panel._result is not None, timeout=30000)
    yield panel, ring
    panel.stop()


def test_log_ticks_of_a_short_spectrum_plot_do_not_pile_up(spectra, qtbot):
    panel, _ = spectra
    axis = panel.spectrum_plot.getAxis("left")
    assert panel.spectrum_plot.height() >= 140  # a readable height
    # on the 90 px plot of the report, over two decades: few enough labels to read
    ticks = axis.tickValues(math.log10(1.5e2), math.log10(3e4), 90)
    values = [v for _, level in ticks for v in level]
    assert 2 <= len(values) <= 90 // 24
    assert all(abs(v - round(v)) < 1e-9 or round(10 ** (v % 1), 6) in (2, 5) for v in values)
    # a tall plot over less than a decade keeps its 1..9 ticks
    ticks = axis.tickValues(math.log10(2e2), math.log10(9e2), 400)
    assert len([v for _, level in ticks for v in level]) >= 6


def test_waterfall_has_a_colour_bar_levels_colormap_readout_and_pause(spectra, qtbot):
    panel, ring = spectra
    # percentile levels (default) are the model's, shown on the colour bar
    qtbot.waitUntil(lambda: panel.waterfall_levels() == pytest.approx(panel._result.levels), timeout=10000)
    # auto: min/max of the (log) image
    panel.levels_combo.setCurrentText("auto")
    image = panel._result.image
    qtbot.waitUntil(lambda: panel.waterfall_levels() == pytest.approx(
        (float(image.min()), float(image.max())), abs=0.05), timeout=10000)
    # manual: dragging or typing keeps the levels whatever the data do
    panel.set_levels(2.5, 3.0)
    ring.write(np.full(64, 1e6, np.float32), times=1100.0)
    version = panel._result.version
    qtbot.waitUntil(lambda: panel._result.version != version, timeout=10000)
    assert panel.waterfall_levels() == (2.5, 3.0) and tuple(panel.image_item.levels) == (2.5, 3.0)
    # colormap choice reaches the colour bar and the image
    panel.colormap_combo.setCurrentText("inferno")
    assert panel.colorbar.colorMap().name == "inferno"
    # cursor readout: frequency, time, value of the pixel under the mouse
    rect = panel.image_item.mapRectToParent(panel.image_item.boundingRect())
    row, col = 3, 10
    point = QtCore.QPointF(rect.left() + (col + 0.5) * rect.width() / image.shape[1],
                           rect.top() + (row + 0.5) * rect.height() / panel._result.image.shape[0])
    vb = panel.waterfall_plot.getViewBox()
    widget_pos = panel.plots.mapFromScene(vb.mapViewToScene(point))
    qtbot.mouseMove(panel.plots.viewport(), widget_pos)
    qtbot.waitUntil(lambda: panel.cursor_label.text() != "", timeout=10000)
    result = panel._result
    expected = 10 ** float(result.image[row, col])
    text = panel.cursor_label.text()
    assert text.startswith(f"{result.freqs[col]:.4g}") and f"power {expected:.4g}" in text
    # pause: new spectra arrive, the plots stay
    qtbot.mouseClick(panel.pause_check, QtCore.Qt.LeftButton)
    shown = panel._result.version
    ring.write(np.full(64, 5.0, np.float32), times=1101.0)
    qtbot.waitUntil(lambda: panel.model.latest() is not None and panel.model.latest().version != shown,
                    timeout=10000)
    panel.refresh()
    assert panel._result.version == shown
    qtbot.mouseClick(panel.pause_check, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: panel._result.version != shown, timeout=10000)


def test_wheel_over_an_unfocused_box_does_not_change_it(qtbot):
    from pystream.gui.widgets import wheel_only_when_focused
    holder = QtWidgets.QScrollArea()
    inner = QtWidgets.QWidget()
    layout = QtWidgets.QVBoxLayout(inner)
    spin = QtWidgets.QDoubleSpinBox()
    spin.setValue(5.0)
    layout.addWidget(spin)
    layout.addSpacing(2000)
    holder.setWidget(inner)
    holder.resize(200, 200)
    wheel_only_when_focused(spin)
    qtbot.addWidget(holder)
    holder.show()
    qtbot.waitExposed(holder)
    wheel(spin, -120)
    assert spin.value() == 5.0 and holder.verticalScrollBar().value() > 0
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus, timeout=5000)
    wheel(spin, 120)
    assert spin.value() == 6.0


def wheel(widget, delta, pos=None):
    pos = QtCore.QPointF(pos if pos is not None else widget.rect().center())
    event = QtGui.QWheelEvent(pos, QtCore.QPointF(widget.mapToGlobal(pos.toPoint())), QtCore.QPoint(0, 0),
                              QtCore.QPoint(0, delta), QtCore.Qt.NoButton, QtCore.Qt.NoModifier,
                              QtCore.Qt.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(widget, event)
