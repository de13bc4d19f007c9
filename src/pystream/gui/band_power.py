"""BandPowerPlot: a spectrum stream's band power against time, with its rolling statistics.

Thin: the receiver's worker computes the power of every spectrum
(``spectra.BandPower``); a timer a few times a second copies the series
into a pyqtgraph curve and the rolling statistics into a label.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from ..spectra.band_power import BandPower
from .stats_panel import plot_offset


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.5g}"


class BandPowerPlot(QtWidgets.QWidget):
    """``BandPowerPlot(band_power)``: band (``all`` or ``F0,F1``), window, plot, numbers."""

    def __init__(self, band_power: BandPower, *, refresh_ms: int = 200, parent=None):
        super().__init__(parent)
        self.model = band_power
        self._shown_version = None
        self.paused = False  # frozen: the series goes on, the plot waits

        self.band_edit = QtWidgets.QLineEdit("all" if band_power.band is None
                                             else "{:g},{:g}".format(*band_power.band))
        self.band_edit.setToolTip(f"'all', or two frequencies 'F0,F1' ({band_power.unit or 'axis units'}); "
                                  "Enter applies")
        self.band_edit.setMaximumWidth(160)
        self.band_edit.returnPressed.connect(lambda: self.set_band(self.band_edit.text()))
        self.window_spin = QtWidgets.QSpinBox()
        self.window_spin.setRange(2, 1_000_000)
        self.window_spin.setValue(band_power.series.window)
        self.window_spin.setSuffix(" spectra")
        self.window_spin.setToolTip("spectra plotted and used for the rolling statistics")
        self.window_spin.editingFinished.connect(lambda: self.set_window(self.window_spin.value()))
        self.numbers_label = QtWidgets.QLabel("band power: waiting for spectra...")
        self.numbers_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("Band"))
        top.addWidget(self.band_edit)
        top.addWidget(self.window_spin)
        top.addWidget(self.numbers_label, 1)

        self.plot = pg.PlotWidget()
        # small: the spectrum and the waterfall above keep the room
        self.plot.setMinimumHeight(70)
        self.plot.setMaximumHeight(130)
        self.plot.setLabel("left", "band power")
        self.plot.setLabel("bottom", "time (s, 0 = newest spectrum)")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.getAxis("left").setWidth(60)
        self.curve = self.plot.plot(pen=pg.mkPen("#f0a040", width=1))
        self.mean_line = pg.InfiniteLine(angle=0, movable=False,
                                         pen=pg.mkPen("#dddddd", style=QtCore.Qt.DashLine))
        self.mean_line.setVisible(False)
        self.plot.addItem(self.mean_line, ignoreBounds=True)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.plot)
        self.setSizePolicy(QtWidgets.QSizePolicy.Preferred, QtWidgets.QSizePolicy.Maximum)

        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(refresh_ms)

    def set_band(self, text) -> bool:
        try:
            self.model.set_band(text)
        except ValueError as exc:
            self.numbers_label.setText(f"band not changed: {exc}")
            return False
        band = self.model.band
        self.band_edit.setText("all" if band is None else "{:g},{:g}".format(*band))
        self._refresh_now()
        return True

    def set_window(self, n: int) -> None:
        self.model.series.set_window(int(n))
        if self.window_spin.value() != n:
            self.window_spin.setValue(int(n))
        self._refresh_now()

    def _refresh_now(self) -> None:
        self._shown_version = None
        self.refresh()

    def refresh(self) -> None:
        """Copy the newest series into the plot (GUI thread; computes nothing)."""
        series = self.model.series
        if self.paused or series.version == self._shown_version or not self.isVisible():
            return
        self._shown_version = series.version
        t, _, values = series.series()
        offset = plot_offset(values[:, 0])
        if len(t):
            self.curve.setData(t - t[-1], values[:, 0] - offset)
        else:
            self.curve.setData([], [])
        self.plot.setLabel("left", f"band power − {offset:.10g}" if offset else "band power")
        r = series.rolling().get("power")
        shown = r is not None and bool(np.isfinite(r["mean"]))
        if shown:
            self.mean_line.setValue(r["mean"] - offset)
        self.mean_line.setVisible(shown)
        if self.model.problem:
            self.numbers_label.setText(self.model.problem)
        elif shown:
            self.numbers_label.setText(
                f"latest {_fmt(float(values[-1, 0]))} | rolling mean {_fmt(r['mean'])} "
                f"std {_fmt(r['std'])} min {_fmt(r['min'])} max {_fmt(r['max'])} "
                f"p-p {_fmt(r['peak_to_peak'])} over {r['n_samples']}")
        else:
            self.numbers_label.setText("band power: waiting for spectra...")

    def set_paused(self, paused: bool) -> None:
        self.paused = bool(paused)
        if not paused:
            self._refresh_now()

    def stop(self) -> None:
        self.timer.stop()


def attach_band_power(panel: QtWidgets.QWidget, source) -> Optional[BandPowerPlot]:
    """Add a band power plot below ``panel``'s contents when ``source`` (a
    ``SpectrumReceiver``) computes one; returns it (None otherwise)."""
    model = getattr(source, "band_power", None)
    if model is None:
        return None
    plot = BandPowerPlot(model, parent=panel)
    panel.layout().addWidget(plot)
    pause = getattr(panel, "pause_check", None)
    if pause is not None:  # the panel's Pause freezes this plot too
        pause.toggled.connect(plot.set_paused)
    return plot
