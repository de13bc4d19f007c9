"""SpectrumPanel: latest spectrum above a waterfall, for a SpectrumReceiver.

Thin: the receiver's ``WaterfallModel`` prepares everything on its own
thread (log image, levels, axes); a QTimer at display rate takes the newest
result and hands it to pyqtgraph. ``displayed`` counts real paints: the
waterfall item reports when a new image has actually been painted.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from .band_power import attach_band_power
from .image_view import COLORMAPS, PaintCountingImageItem, get_colormap
from .widgets import ElidedLabel, wheel_only_when_focused

SPECTRUM_HEIGHT = 140  # px: the spectrum plot's least height, room for readable log ticks
LEVEL_MODES = ("percentile", "auto", "manual")  # waterfall colour levels
TICK_ROOM_PX = 24  # vertical room one tick label needs


class LogAxis(pg.AxisItem):
    """A log axis that stays readable on a short plot: when the 1..9 ticks of
    each decade would pile up, only 1-2-5 or only whole decades are labelled."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802 (pyqtgraph's name)
        ticks = super().logTickValues(minVal, maxVal, size, stdTicks)
        room = max(2, int(size / TICK_ROOM_PX))
        values = sorted(v for _, level in ticks for v in level)
        if len(values) <= room:
            return ticks
        for keep in ((1, 2, 5), (1,)):
            chosen = [v for v in values if round(10 ** (v - math.floor(v + 1e-9)), 6) in keep]
            if len(chosen) <= room and len(chosen) >= 2:
                return [(None, chosen)]
        # many decades: every n-th decade
        decades = [float(d) for d in range(math.ceil(minVal), math.floor(maxVal) + 1)]
        step = max(1, math.ceil(len(decades) / room))
        return [(None, decades[::step])]


class SpectrumPanel(QtWidgets.QWidget):
    """Latest spectrum (lin/log y) over a waterfall (frequency x seconds ago).

    ``source`` is a ``SpectrumReceiver`` (uses its ``waterfall``, ``counters``
    and frequency label) or a ``WaterfallModel`` (pass ``counters``).
    The panel starts the model's worker at ``fps`` and stops it in ``stop()``
    / on close if it started it.
    """

    def __init__(self, source, *, counters=None, fps: float = 10.0, colormap: str = "viridis",
                 freq_label: Optional[str] = None, parent=None):
        super().__init__(parent)
        self.model = getattr(source, "waterfall", source)
        self.counters = counters if counters is not None else getattr(source, "counters", None)
        freq_label = freq_label or getattr(source, "frequency_label", "Channel")
        self._shown_version = None
        self._ticks = 0
        self._started_model = False

        self._result = None  # the waterfall shown (for the cursor readout)
        self._model_percentiles = tuple(getattr(self.model, "percentiles", (1.0, 99.5)))
        self._hover_point: Optional[Tuple[float, float]] = None

        self.log_check = QtWidgets.QCheckBox("log y")
        self.log_check.setChecked(True)
        self.pause_check = QtWidgets.QCheckBox("Pause")
        self.pause_check.setToolTip("freeze the plots (spectra are still received and counted)")
        self.levels_combo = QtWidgets.QComboBox()
        self.levels_combo.addItems(LEVEL_MODES)
        self.levels_combo.setToolTip("waterfall colour levels: percentile (1-99.5 %), auto "
                                     "(min/max), or manual (drag the colour bar's ends)")
        self.colormap_combo = QtWidgets.QComboBox()
        self.colormap_combo.addItems(COLORMAPS)
        self.colormap_combo.setCurrentText(colormap if colormap in COLORMAPS else "viridis")
        wheel_only_when_focused(self.levels_combo, self.colormap_combo)
        self.status_label = ElidedLabel("waiting for spectra...")
        self.cursor_label = QtWidgets.QLabel("")
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.status_label, 1)
        top.addWidget(self.cursor_label)
        top.addWidget(self.log_check)
        top.addWidget(self.pause_check)
        top.addWidget(QtWidgets.QLabel("Levels"))
        top.addWidget(self.levels_combo)
        top.addWidget(self.colormap_combo)

        self.plots = pg.GraphicsLayoutWidget()
        self.spectrum_plot = self.plots.addPlot(row=0, col=0, axisItems={"left": LogAxis("left")})
        self.spectrum_plot.setLabel("left", "Power")
        self.spectrum_plot.showGrid(x=True, y=True, alpha=0.3)
        self.spectrum_plot.setLogMode(y=True)
        self.spectrum_plot.setMinimumHeight(SPECTRUM_HEIGHT)
        self.curve = self.spectrum_plot.plot(pen=pg.mkPen("#4aa3ff", width=1), connect="finite")
        self.waterfall_plot = self.plots.addPlot(row=1, col=0)
        self.waterfall_plot.setLabel("bottom", freq_label)
        self.waterfall_plot.setLabel("left", "seconds ago")
        self.waterfall_plot.invertY(True)  # newest at the top
        self.waterfall_plot.setXLink(self.spectrum_plot)
        self.image_item = PaintCountingImageItem(self._painted, axisOrder="row-major")
        self.waterfall_plot.addItem(self.image_item)
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=get_colormap(self.colormap_combo.currentText()),
                                        width=14, interactive=True, colorMapMenu=False)
        self.colorbar.setImageItem(self.image_item)
        self.plots.addItem(self.colorbar, row=1, col=1)
        self.colorbar.sigLevelsChangeFinished.connect(self._levels_dragged)
        self.plots.ci.layout.setRowStretchFactor(0, 2)
        self.plots.ci.layout.setRowStretchFactor(1, 3)
        for plot in (self.spectrum_plot, self.waterfall_plot):
            axis = plot.getAxis("left")
            axis.setWidth(72)  # same width: frequencies line up; the label clears the ticks
            axis.setStyle(tickTextOffset=4)
        self.setMinimumHeight(SPECTRUM_HEIGHT + 120)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.plots, 1)
        self.band_power = attach_band_power(self, source)  # below the waterfall

        self.log_check.toggled.connect(self._set_log_y)
        self.levels_combo.currentTextChanged.connect(self._levels_mode_changed)
        self.colormap_combo.currentTextChanged.connect(self.set_colormap)
        self.plots.scene().sigMouseMoved.connect(self._hover)
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        # poll twice per model update: a new waterfall is shown within half a
        # period, and two timers at the same rate cannot beat against each other
        self.timer.start(max(1, int(500 / max(fps, 0.1))))
        if not self.model.running:
            self.model.start(fps)
            self._started_model = True

    def _set_log_y(self, enabled: bool) -> None:
        self.spectrum_plot.setLogMode(y=bool(enabled))

    # -- waterfall colours
    def set_colormap(self, name: str) -> None:
        if self.colormap_combo.currentText() != name:
            self.colormap_combo.setCurrentText(name)  # re-enters through the signal
            return
        self.colorbar.setColorMap(get_colormap(name))

    def levels_mode(self) -> str:
        return self.levels_combo.currentText()

    def set_levels_mode(self, mode: str) -> None:
        self.levels_combo.setCurrentText(mode)

    def _levels_mode_changed(self, mode: str) -> None:
        # the model computes the levels on its thread: min/max is percentiles 0-100
        self.model.percentiles = (0.0, 100.0) if mode == "auto" else self._model_percentiles
        self._shown_version = None  # redraw with the new levels now

    def set_levels(self, low: float, high: float) -> None:
        """Manual waterfall levels (in the image's units: log10 power when log)."""
        self.set_levels_mode("manual")
        self.colorbar.setLevels((low, high))

    def waterfall_levels(self) -> Tuple[float, float]:
        return tuple(float(v) for v in self.colorbar.levels())

    def _levels_dragged(self, *_):
        if self.levels_mode() != "manual":
            self.set_levels_mode("manual")  # the user chose these

    # -- cursor readout
    def _hover(self, scene_pos) -> None:
        vb = self.waterfall_plot.getViewBox()
        if vb.sceneBoundingRect().contains(scene_pos):
            p = vb.mapSceneToView(scene_pos)
            self._hover_point = (p.x(), p.y())
        else:
            self._hover_point = None
        self.cursor_label.setText(self.readout())

    def readout(self) -> str:
        """Frequency, time and value under the mouse on the waterfall ("" elsewhere)."""
        result, point = self._result, self._hover_point
        if result is None or point is None:
            return ""
        n_time, n_freq = result.image.shape
        rect = self.image_item.mapRectToParent(self.image_item.boundingRect())
        if rect.width() <= 0 or rect.height() <= 0:
            return ""
        col = int(math.floor((point[0] - rect.left()) / rect.width() * n_freq))
        row = int(math.floor((point[1] - rect.top()) / rect.height() * n_time))
        if not (0 <= col < n_freq and 0 <= row < n_time):
            return ""
        value = float(result.image[row, col])
        power = 10 ** value if result.log else value
        return f"{result.freqs[col]:.4g}  {point[1]:.2f} s ago  power {power:.4g}"

    def _painted(self, t_source: Optional[float]) -> None:
        if self.counters is not None:
            self.counters.painted(t_source)

    def refresh(self) -> None:
        """Show the model's newest result if it is new (GUI thread; sets, never computes)."""
        self._ticks += 1
        if self.counters is not None and self._ticks % 5 == 1:
            self._update_status()
        if self.pause_check.isChecked():
            return
        result = self.model.latest()
        if result is None or result.version == self._shown_version:
            return
        self._shown_version = result.version
        self._result = result
        latest = result.latest
        self.curve.setData(result.freqs, np.where(latest > 0, latest, np.nan))
        n_time, n_freq = result.image.shape
        freqs = result.freqs
        step = (freqs[-1] - freqs[0]) / (n_freq - 1) if n_freq > 1 else 1.0
        height = result.span_s if result.span_s > 0 else float(n_time)
        if self.levels_mode() == "manual":
            self.image_item.setImage(result.image, autoLevels=False)
        else:
            self.image_item.setImage(result.image, levels=result.levels, autoLevels=False)
            if self.waterfall_levels() != tuple(result.levels):
                self.colorbar.setLevels(result.levels)
        self.image_item.expect_paint(result.t_source)
        # pixel centres on the frequencies; rows spread evenly over the time span
        self.image_item.setRect(QtCore.QRectF(freqs[0] - step / 2, 0.0, step * n_freq, height))

    def _update_status(self) -> None:
        snap = self.counters.snapshot()
        delay = snap.get("delay_s")
        parts = [snap["state"], f"{snap['recv_fps']:.1f} spectra/s", f"received {snap['received']}"]
        if delay is not None:
            parts.append(f"delay {delay:.2f} s")
        if snap["rejected"]:
            reasons = ", ".join(f"{k} {v}" for k, v in snap["rejected_by_reason"].items())
            parts.append(f"rejected {snap['rejected']} ({reasons})")
        self.status_label.setText(" | ".join(parts))

    def stop(self) -> None:
        self.timer.stop()
        if self._started_model:
            self.model.stop()
            self._started_model = False

    def closeEvent(self, event) -> None:
        self.stop()
        super().closeEvent(event)
