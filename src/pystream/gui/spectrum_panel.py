"""SpectrumPanel: latest spectrum above a waterfall, for a SpectrumReceiver.

Thin: the receiver's ``WaterfallModel`` prepares everything on its own
thread (log image, levels, axes); a QTimer at display rate takes the newest
result and hands it to pyqtgraph. ``displayed`` counts real paints: the
waterfall item reports when a new image has actually been painted.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from .image_view import PaintCountingImageItem

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

        self.log_check = QtWidgets.QCheckBox("log y")
        self.log_check.setChecked(True)
        self.status_label = QtWidgets.QLabel("waiting for spectra...")
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.status_label, 1)
        top.addWidget(self.log_check)

        self.plots = pg.GraphicsLayoutWidget()
        self.spectrum_plot = self.plots.addPlot(row=0, col=0)
        self.spectrum_plot.setLabel("left", "Power")
        self.spectrum_plot.showGrid(x=True, y=True, alpha=0.3)
        self.spectrum_plot.setLogMode(y=True)
        self.curve = self.spectrum_plot.plot(pen=pg.mkPen("#4aa3ff", width=1), connect="finite")
        self.waterfall_plot = self.plots.addPlot(row=1, col=0)
        self.waterfall_plot.setLabel("bottom", freq_label)
        self.waterfall_plot.setLabel("left", "seconds ago")
        self.waterfall_plot.invertY(True)  # newest at the top
        self.waterfall_plot.setXLink(self.spectrum_plot)
        self.image_item = PaintCountingImageItem(self._painted, axisOrder="row-major")
        self.image_item.setColorMap(pg.colormap.get(colormap))
        self.waterfall_plot.addItem(self.image_item)
        self.plots.ci.layout.setRowStretchFactor(1, 2)
        for plot in (self.spectrum_plot, self.waterfall_plot):
            plot.getAxis("left").setWidth(60)  # same width: frequencies line up

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.plots, 1)

        self.log_check.toggled.connect(self._set_log_y)
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

    def _painted(self, t_source: Optional[float]) -> None:
        if self.counters is not None:
            self.counters.painted(t_source)

    def refresh(self) -> None:
        """Show the model's newest result if it is new (GUI thread; sets, never computes)."""
        self._ticks += 1
        if self.counters is not None and self._ticks % 5 == 1:
            self._update_status()
        result = self.model.latest()
        if result is None or result.version == self._shown_version:
            return
        self._shown_version = result.version
        latest = result.latest
        self.curve.setData(result.freqs, np.where(latest > 0, latest, np.nan))
        n_time, n_freq = result.image.shape
        freqs = result.freqs
        step = (freqs[-1] - freqs[0]) / (n_freq - 1) if n_freq > 1 else 1.0
        height = result.span_s if result.span_s > 0 else float(n_time)
        self.image_item.setImage(result.image, levels=result.levels, autoLevels=False)
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
