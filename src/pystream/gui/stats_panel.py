"""StatisticsPanel: per-frame mean / std / min / max / sum against time.

Thin: the numbers come from a ``FrameStatistics`` analysis that the display
worker runs on the shown frames (never on the GUI thread), at most ``rate``
times a second, over the whole frame or the image tools' ROI. A timer a few
times a second copies the series and the rolling statistics the worker
computed into a pyqtgraph plot and a table.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from ..framestats import QUANTITIES, FrameStatistics

ANALYSIS = "frame_stats"
ROLLING = ("mean", "std", "min", "max", "peak_to_peak")
WIDTH = 15  # characters per column: "-1000000002.953" fits


def _fmt(value: Optional[float]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.10g}"  # a drift of 3 on 1e9 must still show


def plot_offset(y: np.ndarray) -> float:
    """A round number to subtract from ``y`` when its spread is tiny next to
    its size (1e9 ± 3): pyqtgraph's tick labels keep 6 digits and would all
    read 1e+09. 0 when the values are readable as they are."""
    finite = y[np.isfinite(y)]
    if finite.size == 0:
        return 0.0
    lo, hi = float(finite.min()), float(finite.max())
    size = max(abs(lo), abs(hi))
    if size == 0 or hi - lo > 1e-3 * size:
        return 0.0
    digits = math.floor(math.log10(hi - lo)) + 1 if hi > lo else math.floor(math.log10(size)) - 2
    return float(np.round((lo + hi) / 2, -digits))


class StatisticsPanel(QtWidgets.QWidget):
    """``StatisticsPanel(window, tools=None)``; ``tools`` (the window's
    ``ImageTools``) gives the ROI. Collects as soon as it is attached, at most
    ``rate`` frames a second: by default as often as it refreshes (``refresh_ms``)."""

    def __init__(self, window, *, tools=None, window_samples: int = 600, rate: float = 2.0,
                 refresh_ms: int = 500, parent=None):
        super().__init__(parent)
        self.window = window
        self.tools = tools
        self.analysis = FrameStatistics(window=window_samples, rate=rate, region=self._region)
        self._use_roi = False  # read by the worker: a bool, replaced whole
        self._shown_version = None
        self._build(window_samples, rate)

        window.analyses[ANALYSIS] = self.analysis
        if tools is not None:
            tools.roi_action.toggled.connect(self._roi_toggled)
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(refresh_ms)

    # ------------------------------------------------------------ building
    def _build(self, window_samples: int, rate: float) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        form = QtWidgets.QFormLayout()
        layout.addLayout(form)

        self.region_combo = QtWidgets.QComboBox()
        self.region_combo.addItems(["Whole frame", "ROI"])
        self.region_combo.setToolTip("statistics of every pixel, or of the image tools' ROI "
                                     "(choosing ROI turns it on)")
        self.region_combo.currentIndexChanged.connect(self._region_changed)
        self.collect_box = QtWidgets.QCheckBox("Collect")
        self.collect_box.setChecked(True)
        self.collect_box.setToolTip("measure the shown frames (off: no cost, the series stays)")
        self.collect_box.toggled.connect(self.set_collecting)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.region_combo, 1)
        row.addWidget(self.collect_box)
        form.addRow("Region", row)

        self.plot_combo = QtWidgets.QComboBox()
        self.plot_combo.addItems(QUANTITIES)
        self.plot_combo.currentIndexChanged.connect(lambda *_: self._force_refresh())
        form.addRow("Plot", self.plot_combo)

        self.window_spin = QtWidgets.QSpinBox()
        self.window_spin.setRange(2, 1_000_000)
        self.window_spin.setValue(window_samples)
        self.window_spin.setSuffix(" samples")
        self.window_spin.setToolTip("samples plotted and used for the rolling statistics")
        self.window_spin.editingFinished.connect(lambda: self.set_window(self.window_spin.value()))
        self.rate_spin = QtWidgets.QDoubleSpinBox()
        self.rate_spin.setRange(0.0, 1000.0)
        self.rate_spin.setDecimals(1)
        self.rate_spin.setSpecialValueText("every frame")
        self.rate_spin.setSuffix(" /s")
        self.rate_spin.setValue(rate)
        self.rate_spin.setToolTip("frames measured per second at most (0 = every shown frame)")
        self.rate_spin.valueChanged.connect(self.set_rate)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.window_spin, 1)
        row.addWidget(self.rate_spin, 1)
        clear = QtWidgets.QPushButton("Clear")
        clear.clicked.connect(self.clear)
        row.addWidget(clear)
        form.addRow("Window", row)

        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(180)
        self.plot.setLabel("bottom", "time (s, 0 = newest sample)")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # values as they are, e.g. 1.00005e9
        self.curve = self.plot.plot(pen=pg.mkPen("#4aa3ff", width=1), symbol=None)
        self.mean_line = pg.InfiniteLine(angle=0, movable=False,
                                         pen=pg.mkPen("#f0c040", style=QtCore.Qt.DashLine))
        self.band_lines = [pg.InfiniteLine(angle=0, movable=False,
                                           pen=pg.mkPen("#f0c040", style=QtCore.Qt.DotLine))
                           for _ in range(2)]
        for line in (self.mean_line, *self.band_lines):
            line.setVisible(False)
            self.plot.addItem(line, ignoreBounds=True)
        layout.addWidget(self.plot, 1)

        # one monospace label for the whole table: 30 labels cost 6x more to
        # update, and their changing widths re-laid out the window (measured)
        self.table_label = QtWidgets.QLabel(self._table({}, None))
        self.table_label.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.FixedFont))
        self.table_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        layout.addWidget(self.table_label)
        self.info_label = QtWidgets.QLabel("waiting for frames...")
        self.info_label.setWordWrap(True)
        layout.addWidget(self.info_label)

    # ------------------------------------------------------------ worker side
    def _region(self) -> Any:
        """The rect to measure (worker thread): None = whole frame."""
        if not self._use_roi:
            return None
        rect = self.tools.roi_rect if self.tools is not None else None
        return FrameStatistics.SKIP if rect is None else rect

    # ------------------------------------------------------------ controls
    def set_collecting(self, on: bool) -> None:
        if self.collect_box.isChecked() != on:
            self.collect_box.setChecked(on)
            return
        if on:
            self.window.analyses[ANALYSIS] = self.analysis
        else:
            self.window.analyses.pop(ANALYSIS, None)

    def set_region(self, roi: bool) -> None:
        """Whole frame (False) or the image tools' ROI (True, turned on if off)."""
        self.region_combo.setCurrentIndex(1 if roi else 0)

    def _region_changed(self, index: int) -> None:
        roi = index == 1
        if roi and self.tools is None:
            self.info_label.setText("no ROI here: the image tools are not attached")
            self.region_combo.setCurrentIndex(0)
            return
        if roi and not self.tools.roi_action.isChecked():
            self.tools.set_roi_enabled(True)
        if roi != self._use_roi:
            self._use_roi = roi
            self.clear()  # a series mixing two regions would mean nothing

    def _roi_toggled(self, on: bool) -> None:
        if not on and self._use_roi:
            self.set_region(False)

    def set_window(self, n: int) -> None:
        self.analysis.series.set_window(int(n))
        if self.window_spin.value() != n:
            self.window_spin.setValue(int(n))
        self._force_refresh()

    def set_rate(self, rate: float) -> None:
        self.analysis.set_rate(rate)
        if abs(self.rate_spin.value() - rate) > 1e-9:
            self.rate_spin.setValue(rate)

    def clear(self) -> None:
        self.analysis.restart()
        self._force_refresh()

    def stats(self) -> Dict[str, Any]:
        """``--stats-json``'s ``frame_stats``."""
        return {"frame_stats": self.analysis.summary()}

    def detach(self) -> None:
        self.timer.stop()
        self.window.analyses.pop(ANALYSIS, None)
        if self.tools is not None:
            self.tools.roi_action.toggled.disconnect(self._roi_toggled)

    # ------------------------------------------------------------ GUI: showing
    def _force_refresh(self) -> None:
        self._shown_version = None
        self.refresh()

    def plotted(self):
        """``(t, uid, y)`` of the plotted quantity over the window (the curve shows
        ``y - plot_offset(y)`` against ``t - t[-1]``)."""
        t, uid, values = self.analysis.series.series()
        return t, uid, values[:, QUANTITIES.index(self.plot_combo.currentText())]

    def refresh(self) -> None:
        """Copy the worker's newest series and rolling statistics into the widgets."""
        series = self.analysis.series
        version = (series.version, self.plot_combo.currentIndex())
        if version == self._shown_version or not self.isVisible():
            return
        self._shown_version = version
        quantity = self.plot_combo.currentText()
        t, uid, y = self.plotted()
        rolling = series.rolling()
        latest = series.latest()
        offset = plot_offset(y)
        if len(t):
            self.curve.setData(t - t[-1], y - offset)
        else:
            self.curve.setData([], [])
        self.plot.setLabel("left", f"{quantity} − {offset:.10g}" if offset else quantity)
        r = rolling.get(quantity)
        lines_on = bool(r is not None and np.isfinite(r["mean"]) and np.isfinite(r["std"]))
        if lines_on:
            self.mean_line.setValue(r["mean"] - offset)
            for line, sign in zip(self.band_lines, (-1, 1)):
                line.setValue(r["mean"] - offset + sign * r["std"])
        for line in (self.mean_line, *self.band_lines):
            line.setVisible(lines_on)
        self.table_label.setText(self._table(rolling, latest, quantity))
        self._show_info(t, uid)

    @staticmethod
    def _table(rolling: Dict[str, Dict[str, float]], latest: Optional[Dict[str, float]],
               quantity: str = "mean") -> str:
        """Two fixed-width columns: the latest frame's numbers, and the rolling
        statistics of the plotted quantity over the window."""
        r = rolling.get(quantity, {})
        lines = [f"{'latest':<{5 + WIDTH}}  rolling {quantity}"]
        for q, k in zip(QUANTITIES, ROLLING):
            value = latest.get(q) if latest else None
            lines.append(f"{q:<5}{_fmt(value):>{WIDTH}}  {k.replace('peak_to_peak', 'p-p'):<5}"
                         f"{_fmt(r.get(k)):>{WIDTH}}")
        return "\n".join(lines)

    def _show_info(self, t: np.ndarray, uid: np.ndarray) -> None:
        last = self.analysis.last
        if not len(t) or last is None:
            self.info_label.setText("waiting for frames..." if self.collect_box.isChecked()
                                    else "not collecting")
            return
        x, y, w, h = last.rect
        region = "ROI" if self._use_roi else "whole frame"
        span = float(t[-1] - t[0])
        self.info_label.setText(f"{region} {w} × {h} at ({x}, {y}) | {len(t)} samples over "
                                f"{span:.1f} s | frames {uid[0]}–{uid[-1]}")


def attach_statistics(window, args) -> StatisticsPanel:
    """The Statistics dock of the viewer; ``--frame-stats`` also writes its
    numbers to ``--stats-json`` (``frame_stats``)."""
    panel = StatisticsPanel(window, tools=window.image_tools)
    window.add_dock(panel, "Statistics")
    if getattr(args, "frame_stats", False):
        window.add_stats_provider(panel.stats)
    window.stats_panel = panel
    return panel
