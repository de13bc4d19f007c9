"""ImageTools: crosshair, orientation, contrast, ROI, line profile, flat/dark, saving.

Attaches itself to an existing ``MainWindow``: a second toolbar, a side-panel
dock, a correction step at the head of ``window.processors`` and measurement
steps in ``window.analyses``. Everything is in detector pixel coordinates
(the arithmetic is in ``pystream.imaging``); every per-frame computation
runs in the display worker, and the GUI thread only reads the results (the
panel refreshes a few times a second, not per frame).

Orientation is a view transform: the ImageItem is moved into an item group
whose QTransform is the ``Orientation``'s exact affine map, so frames are
never copied to be flipped and detector coordinates stay exact.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from ..display import DisplayFrame
from ..imaging import Orientation, Rect, load_reference, probe, save_displayed_png, save_raw_frame
from ..imaging.tools import ANALYSES, ImageToolsModel, Measured
from .widgets import plot_scrolls_panel, wheel_only_when_focused

log = logging.getLogger(__name__)

# ImageJ's auto-contrast: a few bright (or dead) pixels do not set the range
DEFAULT_PERCENTILES = (0.1, 99.9)
PLOT_HEIGHT = 150  # px: plots in the panel keep one modest height, whatever they show


def format_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, tuple):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class _LineROI(pg.LineSegmentROI):
    """pyqtgraph's line ROI rebuilds its hit shape (a band a few screen
    pixels wide) from the view transform every time Qt asks for its bounding
    rect, twice per painted frame: 0.6 ms per frame (profiled at 100 fps). The
    shape changes only when the line or the view moves, so it is kept until then."""

    _cached_shape = None

    def shape(self):
        if self._cached_shape is None:
            self._cached_shape = super().shape()
        return self._cached_shape

    def stateChanged(self, finish=True):
        self._cached_shape = None
        super().stateChanged(finish)

    def viewTransformChanged(self):
        self._cached_shape = None
        super().viewTransformChanged()


class _ViewportClicks(QtCore.QObject):
    """Left click/drag on the image sets the crosshair (instead of panning) while it is on."""

    def __init__(self, tools: "ImageTools"):
        super().__init__(tools)
        self.tools = tools
        self._dragging = False

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        tools = self.tools
        if kind == QtCore.QEvent.MouseButtonPress and event.button() == QtCore.Qt.LeftButton:
            if tools.crosshair_action.isChecked() and not tools._roi_handle_at(event.pos()):
                self._dragging = True
                tools._crosshair_at_widget(event.pos())
                return True
        elif kind == QtCore.QEvent.MouseMove and self._dragging:
            tools._crosshair_at_widget(event.pos())
            return True
        elif kind == QtCore.QEvent.MouseButtonRelease and self._dragging:
            self._dragging = False
            return True
        elif kind == QtCore.QEvent.Leave:  # no pixel under the mouse any more
            tools._hover_pixel = None
            tools._show_hover()
        return False


class ImageTools(QtCore.QObject):
    """The image tools of one MainWindow. ``ImageTools(window, auto_every=N)``."""

    _captured = QtCore.pyqtSignal(str)  # worker thread → GUI
    _problem = QtCore.pyqtSignal(str)

    def __init__(self, window, *, auto_every: int = 1, stats_rate: float = 5.0,
                 refresh_ms: int = 100):
        super().__init__(window)
        self.window = window
        self.view = window.image_view
        self.det_shape: Optional[Tuple[int, int]] = None
        self.latest: Optional[DisplayFrame] = None
        self.results: Dict[str, Measured] = {}
        # the state and the measurements, Qt-free (the worker measures); the
        # line profile is redrawn once per panel refresh: no more profiles than that
        self.model = ImageToolsModel(auto_every=auto_every, stats_rate=stats_rate,
                                     profile_rate=1000.0 / refresh_ms,
                                     on_captured=lambda kind, _: self._captured.emit(kind),
                                     on_problem=self._problem.emit)
        self.model.auto_levels = window.auto_levels_box.isChecked()
        self.corrections = self.model.corrections
        self._placing = False  # programmatic moves of ROI/line must not feed back
        self._worker_problem = ""
        self._session = None

        self._captured.connect(self._on_captured, QtCore.Qt.QueuedConnection)
        self._problem.connect(self._on_problem, QtCore.Qt.QueuedConnection)

        self._build_scene_items()
        self._build_toolbar(auto_every)
        self._build_panel()

        # corrections come before any pipeline step; analyses see the corrected frame
        self.model.attach(window.session, measurements=("image_info",))
        window.add_stats_provider(self._stats)
        window.frameShown.connect(self._on_frame)
        window.sessionChanged.connect(self._on_session)
        window.auto_levels_box.toggled.connect(self._auto_levels_toggled)
        if window.session is not None:
            self._on_session(window.session)

        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self.refresh_panel)
        self._timer.start(refresh_ms)

    # ================================================================ building
    def _build_scene_items(self) -> None:
        vb = self.view.view
        # the image moves into a group carrying the orientation transform; it
        # stays in the view box's item list, so Home/autoRange see it oriented
        self.oriented = pg.ItemGroup()
        vb.addItem(self.oriented, ignoreBounds=True)
        self.view.image.setParentItem(self.oriented)
        pen = pg.mkPen((255, 60, 60), width=1)
        self.cross_v = pg.InfiniteLine(angle=90, movable=False, pen=pen)
        self.cross_h = pg.InfiniteLine(angle=0, movable=False, pen=pen)
        self.roi = pg.RectROI((0, 0), (1, 1), pen=pg.mkPen((60, 220, 60), width=1),
                              translateSnap=True, scaleSnap=True)
        self.line = _LineROI([(0, 0), (1, 1)], pen=pg.mkPen((255, 200, 0), width=1))
        for item in (self.cross_v, self.cross_h, self.roi, self.line):
            item.setVisible(False)
            vb.addItem(item, ignoreBounds=True)
        self.roi.sigRegionChanged.connect(self._roi_moved)
        self.line.sigRegionChanged.connect(self._line_moved)
        self._clicks = _ViewportClicks(self)
        self.view.graphics.viewport().installEventFilter(self._clicks)
        self.view.graphics.scene().sigMouseMoved.connect(self._hover)
        self._hover_pixel: Optional[Tuple[int, int]] = None

    def _build_toolbar(self, auto_every: int) -> None:
        w = self.window
        w.addToolBarBreak()
        tb = self.toolbar = w.addToolBar("Image tools")
        tb.setObjectName("image-tools-toolbar")

        def toggle(text, slot, tip):
            action = tb.addAction(text)
            action.setCheckable(True)
            action.setToolTip(tip)
            action.toggled.connect(slot)
            return action

        self.crosshair_action = toggle("Crosshair", self.set_crosshair_enabled,
                                       "click or drag on the image: X, Y and value in the side panel")
        w.add_shortcut(self.crosshair_action, "C", "crosshair on / off")
        tb.addSeparator()
        self.flip_h_action = toggle("Flip H", lambda on: self._orient("flip_h", on), "mirror left-right")
        self.flip_v_action = toggle("Flip V", lambda on: self._orient("flip_v", on), "mirror top-bottom")
        self.transpose_action = toggle("Transpose", lambda on: self._orient("transpose", on),
                                       "swap rows and columns")
        self.rotate_action = tb.addAction("Rotate 90", self.rotate)
        self.rotate_action.setToolTip("rotate the view 90° clockwise (cycles 0/90/180/270)")
        button = tb.widgetForAction(self.rotate_action)
        if button is not None:  # as wide as its widest label: the toolbar does not shift
            self.rotate_action.setText("Rotate 90 (270°)")
            button.setFixedWidth(button.sizeHint().width())
            self.rotate_action.setText("Rotate 90")
        tb.addSeparator()
        self.roi_action = toggle("ROI", self.set_roi_enabled, "rectangle with live statistics")
        self.line_action = toggle("Line", self.set_line_enabled, "line with a live profile")
        tb.addSeparator()
        tb.addWidget(QtWidgets.QLabel(" Bin "))
        self.bin_spin = QtWidgets.QSpinBox()
        self.bin_spin.setRange(0, 64)
        self.bin_spin.setSpecialValueText("auto")
        self.bin_spin.setValue(w.display_bin)
        self.bin_spin.setToolTip("display binning (every Nth pixel); auto = to screen size. "
                                 "Tools always use full resolution.")
        self.bin_spin.valueChanged.connect(self.set_display_bin)
        tb.addWidget(self.bin_spin)
        wheel_only_when_focused(self.bin_spin)
        tb.addWidget(QtWidgets.QLabel(" Auto every "))
        self.auto_every_spin = QtWidgets.QSpinBox()
        self.auto_every_spin.setRange(1, 100000)
        self.auto_every_spin.setValue(max(1, int(auto_every)))
        self.auto_every_spin.setSuffix(" fr")
        self.auto_every_spin.setToolTip("with Auto levels on: recompute levels every N frames")
        self.auto_every_spin.valueChanged.connect(self.set_auto_every)
        tb.addWidget(self.auto_every_spin)
        wheel_only_when_focused(self.auto_every_spin)
        self.auto_once_action = tb.addAction("Auto once", self.auto_contrast_once)
        self.auto_once_action.setToolTip("levels of the shown frame, once")
        w.add_shortcut(self.auto_once_action, "A", "auto levels once")
        tb.addSeparator()
        self.save_action = tb.addAction("Save frame…", self._save_dialog)
        w.add_shortcut(self.save_action, "Ctrl+S", "save the frame (TIFF/NumPy raw, PNG as shown)")

    def _build_panel(self) -> None:
        panel = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(panel)

        def group(title):
            box = QtWidgets.QGroupBox(title)
            form = QtWidgets.QFormLayout(box)
            layout.addWidget(box)
            return box, form

        def label(form, name):
            lab = QtWidgets.QLabel("—")
            lab.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
            form.addRow(name, lab)
            return lab

        _, f = group("Crosshair")
        self.cross_x_label = label(f, "X")
        self.cross_y_label = label(f, "Y")
        self.cross_value_label = label(f, "Value")
        self.cross_shown_label = label(f, "Processed")

        _, f = group("Image")
        self.info_labels = {k: label(f, k.capitalize()) for k in ("shape", "dtype", "min", "max", "mean")}

        _, f = group("Contrast")
        # pyqtgraph's SpinBox: takes 1e5 and 3.2e-4 as typed, and steps by
        # decades (levels of float frames span many orders of magnitude)
        self.level_min_spin, self.level_max_spin = (pg.SpinBox(value=0.0, dec=True, decimals=6)
                                                    for _ in range(2))
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.level_min_spin)
        row.addWidget(self.level_max_spin)
        self.set_levels_button = QtWidgets.QPushButton("Set")
        self.set_levels_button.clicked.connect(lambda: self.set_levels(self.level_min_spin.value(),
                                                                       self.level_max_spin.value()))
        f.addRow("Min / max", row)
        for spin in (self.level_min_spin, self.level_max_spin):
            # typing a level is a manual choice: Auto stops at once, so the box
            # no longer follows the live levels and what is typed is what is applied
            spin.lineEdit().textEdited.connect(self._level_typed)
        self.percentile_box = QtWidgets.QCheckBox("Percentiles")
        self.percentile_box.setChecked(True)
        self.pct_low_spin, self.pct_high_spin = (QtWidgets.QDoubleSpinBox() for _ in range(2))
        for spin, value in zip((self.pct_low_spin, self.pct_high_spin), DEFAULT_PERCENTILES):
            spin.setRange(0.0, 100.0)
            spin.setDecimals(2)
            spin.setValue(value)
            spin.setSuffix(" %")
            spin.valueChanged.connect(self._percentiles_changed)
        self.percentile_box.toggled.connect(self._percentiles_changed)
        wheel_only_when_focused(self.level_min_spin, self.level_max_spin, self.pct_low_spin,
                                self.pct_high_spin)
        for spin in (self.level_min_spin, self.level_max_spin, self.pct_low_spin, self.pct_high_spin):
            # share the row's width instead of asking for room for their longest value
            spin.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Fixed)
            spin.setMinimumWidth(64)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.pct_low_spin)
        row.addWidget(self.pct_high_spin)
        f.addRow(self.percentile_box, row)
        self.contrast_mode_label = QtWidgets.QLabel()
        self.contrast_mode_label.setWordWrap(True)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.contrast_mode_label, 1)
        row.addWidget(self.set_levels_button)
        f.addRow(row)

        _, f = group("ROI")
        self.roi_labels = {k: label(f, k.capitalize()) for k in ("position", "size", "min", "max", "mean",
                                                                  "std", "sum")}
        _, f = group("Line profile")
        self.line_length_label = label(f, "Length")
        self.line_angle_label = label(f, "Angle")
        self.profile_plot = pg.PlotWidget()
        self.profile_plot.setFixedHeight(PLOT_HEIGHT)  # a long profile must not make the panel jump
        self.profile_plot.setLabel("bottom", "distance (pixels)")
        self.profile_curves = [self.profile_plot.plot(pen=pen) for pen in ("w", "r", "g", "b")]
        plot_scrolls_panel(self.profile_plot)
        f.addRow(self.profile_plot)
        self.profile_autorange_button = QtWidgets.QPushButton("Auto range")
        self.profile_autorange_button.setToolTip("the plot follows the profile again")
        self.profile_autorange_button.setEnabled(False)
        self.profile_autorange_button.clicked.connect(self._profile_autorange)
        self.profile_plot.getViewBox().sigRangeChangedManually.connect(
            lambda *_: self.profile_autorange_button.setEnabled(True))
        f.addRow(self.profile_autorange_button)

        box, f = group("Flat field / dark")
        self.capture_n_spin = QtWidgets.QSpinBox()
        self.capture_n_spin.setRange(1, 10000)
        self.capture_n_spin.setValue(10)
        self.capture_n_spin.setSuffix(" frames")
        wheel_only_when_focused(self.capture_n_spin)
        f.addRow("Average", self.capture_n_spin)
        self.reference_labels = {}
        for kind in ("flat", "dark"):
            # two short rows, not one wide one: the panel stays narrow
            row = QtWidgets.QHBoxLayout()
            capture = QtWidgets.QPushButton(f"Capture {kind}")
            capture.clicked.connect(lambda _=False, k=kind: self.capture(k, self.capture_n_spin.value()))
            apply_box = QtWidgets.QCheckBox(f"Apply {kind.capitalize()}")
            apply_box.toggled.connect(lambda on, k=kind: self.set_applied(k, on))
            setattr(self, f"apply_{kind}_box", apply_box)
            row.addWidget(capture)
            row.addWidget(apply_box)
            f.addRow(row)
            row = QtWidgets.QHBoxLayout()
            for text, slot in (("Load…", self._load_dialog), ("Save…", self._save_reference_dialog),
                               ("Clear", self.clear_reference)):
                button = QtWidgets.QPushButton(text)
                button.clicked.connect(lambda _=False, k=kind, s=slot: s(k))
                row.addWidget(button)
            f.addRow(row)
            self.reference_labels[kind] = label(f, kind.capitalize())
        self.corrections_label = QtWidgets.QLabel("")
        self.corrections_label.setWordWrap(True)
        self.corrections_label.setStyleSheet("color: #c0392b;")
        f.addRow(self.corrections_label)
        self.message_label = QtWidgets.QLabel("")
        self.message_label.setWordWrap(True)
        layout.addWidget(self.message_label)
        layout.addStretch(1)

        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        self.panel = panel
        self.dock = self.window.add_dock(scroll, "Image tools")
        self._show_contrast_mode()

    def detach(self) -> None:
        """Remove every hook from the window (toolbar, dock, steps)."""
        w = self.window
        self._timer.stop()
        self.model.detach()
        w.session.display.auto_levels = w.auto_levels_box.isChecked()
        self.view.graphics.scene().sigMouseMoved.disconnect(self._hover)
        w.frameShown.disconnect(self._on_frame)
        w.sessionChanged.disconnect(self._on_session)
        self.view.graphics.viewport().removeEventFilter(self._clicks)
        w.removeToolBar(self.toolbar)
        w.removeDockWidget(self.dock)

    # the geometry lives in the model (the worker reads it there)
    orientation = property(lambda self: self.model.orientation,
                           lambda self, value: setattr(self.model, "orientation", value))
    crosshair_pixel = property(lambda self: self.model.crosshair_pixel,
                               lambda self, value: setattr(self.model, "crosshair_pixel", value))
    roi_rect = property(lambda self: self.model.roi_rect,
                        lambda self, value: setattr(self.model, "roi_rect", value))
    line_points = property(lambda self: self.model.line_points,
                           lambda self, value: setattr(self.model, "line_points", value))

    # ================================================================ GUI: frames
    def _on_session(self, session) -> None:
        capturing = self.corrections.capturing
        # an average over two streams is no reference; one not begun yet waits for the new one
        if capturing is not None and (session is None or capturing[1] > 0):
            self.corrections.cancel_capture()
            kind, done, n = capturing
            self._message(f"{kind} capture cancelled after {done} of {n} frames: the stream changed")
            self._show_references()
        self._session = session
        if session is not None and session.worker is not None:
            session.worker.level_percentiles = self.percentiles()
            session.worker.display_bin = self.window.display_bin
            session.worker.auto_levels_schedule = self.model.auto_levels_due

    def _on_frame(self, display: DisplayFrame) -> None:
        # the worker analysed the previous frame while it was painted, and
        # finished before it took this one: all its results are in
        self._collect()
        self.latest = display
        shape = tuple(display.raw.shape[:2])
        if shape != self.det_shape:
            self.det_shape = shape
            self._apply_orientation(reset_view=False)

    def _collect(self) -> None:
        """Keep the worker's results for the shown frame (those ready so far)."""
        if self.latest is None:
            return
        for name, result in list(self.latest.analysis.items()):  # the worker may be adding
            if isinstance(result, Measured):
                self.results[name] = result
                if self.message_label.text().startswith(f"{name} failed: "):
                    self.message_label.setText("")  # it works again
            elif isinstance(result, Exception) and name in ANALYSES:
                self.message_label.setText(f"{name} failed: {result}")

    def refresh_panel(self) -> None:
        """Labels and plot from the latest results (timer, a few times a second)."""
        display = self.latest
        if display is None:
            return
        self._collect()
        self._show_crosshair()
        info = self.results.get("image_info")
        if info is not None:
            i = info.value
            for key, text in (("shape", " × ".join(map(str, i.shape))), ("dtype", i.dtype),
                              ("min", format_value(i.min)), ("max", format_value(i.max)),
                              ("mean", format_value(i.mean))):
                self.info_labels[key].setText(text)
        roi = self.results.get("roi_stats")
        if roi is not None and self.roi_action.isChecked():
            s = roi.value
            self.roi_labels["position"].setText(f"{s.x}, {s.y}")
            outside = "" if s.count else "  (outside the frame)"
            self.roi_labels["size"].setText(f"{s.width} × {s.height}{outside}")
            for key in ("min", "max", "mean", "std", "sum"):
                self.roi_labels[key].setText(format_value(getattr(s, key)))
        line = self.results.get("line_profile")
        if line is not None and self.line_action.isChecked() and line is not self._plotted_line:
            self._plotted_line = line
            p = line.value
            self.line_length_label.setText(f"{p.length:.2f} px")
            self.line_angle_label.setText(f"{p.angle:.2f}°")
            if p.values.ndim == 1:
                self.profile_curves[0].setData(p.distance, p.values)
                for curve in self.profile_curves[1:]:
                    curve.clear()
            else:  # RGB: one curve per channel
                self.profile_curves[0].clear()
                for curve, values in zip(self.profile_curves[1:], p.values.T):
                    curve.setData(p.distance, values)
        self._show_references()
        self._show_hover()
        if self.window.auto_levels_box.isChecked():
            lo, hi = (float(v) for v in display.levels)
            for spin, value in ((self.level_min_spin, lo), (self.level_max_spin, hi)):
                if not spin.hasFocus():  # never under the user's cursor
                    spin.setValue(value)

    _plotted_line = None

    # ================================================================ crosshair
    def set_crosshair_enabled(self, on: bool) -> None:
        if self.crosshair_action.isChecked() != on:
            self.crosshair_action.setChecked(on)  # re-enters through toggled
            return
        if on:
            self.model.enable("crosshair")
        else:
            self.model.disable("crosshair")
            self.results.pop("crosshair", None)
            for lab in (self.cross_x_label, self.cross_y_label, self.cross_value_label,
                        self.cross_shown_label):
                lab.setText("—")  # no reading of a tool that is off
        self._place_crosshair()

    def set_crosshair_pixel(self, x: int, y: int) -> None:
        """Put the crosshair on detector pixel (x, y)."""
        self.crosshair_pixel = (int(x), int(y))
        self._place_crosshair()
        self._show_crosshair()

    def _crosshair_at_widget(self, pos: QtCore.QPoint) -> None:
        if self.det_shape is None:
            return
        point = self.view.view.mapSceneToView(self.view.graphics.mapToScene(pos))
        pixel = self.orientation.view_to_pixel(point.x(), point.y(), self.det_shape)
        if pixel is not None:
            self.set_crosshair_pixel(*pixel)

    def _roi_handle_at(self, pos: QtCore.QPoint) -> bool:
        """Pressing on the ROI or the line keeps moving them, crosshair or not."""
        scene_pos = self.view.graphics.mapToScene(pos)
        for item in self.view.graphics.scene().items(scene_pos):
            if item in (self.roi, self.line) or isinstance(item, pg.graphicsItems.ROI.Handle):
                return item.isVisible()
        return False

    def _place_crosshair(self) -> None:
        on = self.crosshair_action.isChecked() and self.crosshair_pixel is not None
        if on and self.det_shape is not None:
            vx, vy = self.orientation.pixel_center_in_view(*self.crosshair_pixel, self.det_shape)
            self.cross_v.setPos(vx)
            self.cross_h.setPos(vy)
        for item in (self.cross_v, self.cross_h):
            item.setVisible(on and self.det_shape is not None)

    def crosshair_reading(self) -> Optional[Tuple[int, int, Any, Any]]:
        """(x, y, raw value, corrected value or None) for the crosshair on the shown frame.

        The worker's result when it is for the current position; right after
        a click (before the next frame) a single-pixel lookup in the shown frame.
        """
        pixel, display = self.crosshair_pixel, self.latest
        if pixel is None or display is None:
            return None
        self._collect()
        measured = self.results.get("crosshair")
        if measured is not None and measured.uid == display.uid and measured.value[0] is not None \
                and (measured.value[0].x, measured.value[0].y) == pixel:
            raw, corrected = measured.value
            return pixel[0], pixel[1], raw.value, None if corrected is None else corrected.value
        raw_frame = display.meta.get("raw_frame", display.raw)
        raw = probe(raw_frame, pixel).value
        corrected = probe(display.raw, pixel).value if raw_frame is not display.raw else None
        return pixel[0], pixel[1], raw, corrected

    def _show_crosshair(self) -> None:
        reading = self.crosshair_reading() if self.crosshair_action.isChecked() else None
        if reading is None:
            return
        x, y, raw, corrected = reading
        self.cross_x_label.setText(str(x))
        self.cross_y_label.setText(str(y))
        self.cross_value_label.setText(format_value(raw) if raw is not None else "outside the frame")
        self.cross_shown_label.setText(format_value(corrected) if corrected is not None else "—")

    # ================================================================ orientation
    def _orient(self, name: str, on: bool) -> None:
        if getattr(self.orientation, name) != on:
            self.orientation = self.orientation.toggled(name)
            self._apply_orientation()

    def set_orientation(self, orientation: Orientation) -> None:
        for action, name in ((self.flip_h_action, "flip_h"), (self.flip_v_action, "flip_v"),
                             (self.transpose_action, "transpose")):
            action.blockSignals(True)
            action.setChecked(getattr(orientation, name))
            action.blockSignals(False)
        self.orientation = orientation
        self._apply_orientation()

    def rotate(self) -> None:
        self.orientation = self.orientation.rotated()
        self._apply_orientation()

    def _apply_orientation(self, reset_view: bool = True) -> None:
        o = self.orientation
        self.rotate_action.setText(f"Rotate 90 ({o.quarter_turns * 90}°)" if o.quarter_turns else "Rotate 90")
        if self.det_shape is None:
            return
        a, b, c, d, tx, ty = o.affine(self.det_shape)
        self.oriented.setTransform(QtGui.QTransform(a, c, b, d, tx, ty))
        self._place_crosshair()
        self._place_roi()
        self._place_line()
        if reset_view:
            self.view.reset_view()

    # ================================================================ ROI and line
    def set_roi_enabled(self, on: bool) -> None:
        if self.roi_action.isChecked() != on:
            self.roi_action.setChecked(on)
            return
        if on:
            if self.roi_rect is None and self.det_shape is not None:
                h, w = self.det_shape
                self.roi_rect = (w // 4, h // 4, max(1, w // 2), max(1, h // 2))
            self.model.enable("roi_stats")
        else:
            self.model.disable("roi_stats")
            self.results.pop("roi_stats", None)
            for lab in self.roi_labels.values():
                lab.setText("—")
        self._place_roi()

    def set_roi_rect(self, rect: Rect) -> None:
        """ROI in detector coordinates ``(x, y, width, height)``."""
        self.roi_rect = tuple(float(v) for v in rect)
        self.model.limits["roi_stats"].touch()
        self._place_roi()

    def _place_roi(self) -> None:
        visible = self.roi_action.isChecked() and self.roi_rect is not None and self.det_shape is not None
        if visible:
            x, y, w, h = self.orientation.rect_to_view(self.roi_rect, self.det_shape)
            self._placing = True
            try:
                self.roi.setPos((x, y), update=False)
                self.roi.setSize((w, h))
            finally:
                self._placing = False
        self.roi.setVisible(visible)

    def _roi_moved(self, *_):
        if self._placing or self.det_shape is None:
            return
        pos, size = self.roi.pos(), self.roi.size()
        view_rect = (pos.x(), pos.y(), size.x(), size.y())
        self.roi_rect = self.orientation.rect_to_det(view_rect, self.det_shape)
        self.model.limits["roi_stats"].touch()

    def set_line_enabled(self, on: bool) -> None:
        if self.line_action.isChecked() != on:
            self.line_action.setChecked(on)
            return
        if on:
            if self.line_points is None and self.det_shape is not None:
                h, w = self.det_shape
                self.line_points = ((w * 0.1, h * 0.5), (w * 0.9, h * 0.5))
            self.model.enable("line_profile")
        else:
            self.model.disable("line_profile")
            self.results.pop("line_profile", None)
            self._plotted_line = None
            self.line_length_label.setText("—")
            self.line_angle_label.setText("—")
            for curve in self.profile_curves:
                curve.clear()
        self._place_line()

    def set_line(self, start: Tuple[float, float], end: Tuple[float, float]) -> None:
        """Line from ``start`` to ``end``, detector coordinates."""
        self.line_points = (tuple(map(float, start)), tuple(map(float, end)))
        self.model.limits["line_profile"].touch()
        self._place_line()

    def _place_line(self) -> None:
        visible = self.line_action.isChecked() and self.line_points is not None and self.det_shape is not None
        if visible:
            self._placing = True
            try:
                self.line.setPos((0, 0), update=False)
                for handle, point in zip(self.line.getHandles(), self.line_points):
                    vx, vy = self.orientation.det_to_view(*point, self.det_shape)
                    self.line.movePoint(handle, QtCore.QPointF(vx, vy), finish=False)
            finally:
                self._placing = False
        self.line.setVisible(visible)

    def _line_moved(self, *_):
        if self._placing or self.det_shape is None:
            return
        points = []
        for handle in self.line.getHandles():
            p = self.line.mapToParent(handle.pos())
            points.append(self.orientation.view_to_det(p.x(), p.y(), self.det_shape))
        self.line_points = (points[0], points[1])
        self.model.limits["line_profile"].touch()

    # ================================================================ contrast and binning
    def percentiles(self) -> Optional[Tuple[float, float]]:
        """The auto-contrast percentiles; None (min/max) when off or low >= high."""
        if not self.percentile_box.isChecked():
            return None
        low, high = self.pct_low_spin.value(), self.pct_high_spin.value()
        return (low, high) if low < high else None

    def _percentiles_changed(self, *_):
        if self.percentile_box.isChecked() and self.percentiles() is None:
            self._message(f"percentiles need low < high (got {self.pct_low_spin.value():g} and "
                          f"{self.pct_high_spin.value():g}): min/max used")
        elif not self.window.auto_levels_box.isChecked():
            self._message("Auto levels is off: applied once to the next frame "
                          "(and always while Auto levels is on)")
        if self._session is not None and self._session.worker is not None:
            self._session.worker.level_percentiles = self.percentiles()
        self.model.auto_schedule.arm()
        self._show_contrast_mode()

    def _auto_levels_toggled(self, on: bool) -> None:
        self.model.auto_levels = on
        self._show_contrast_mode()

    def _show_contrast_mode(self) -> None:
        """Say in the contrast box which levels the image has now."""
        pct = self.percentiles()
        rule = f"percentiles {pct[0]:g}–{pct[1]:g} %" if pct else "min / max of the frame"
        if self.window.auto_levels_box.isChecked():
            text = f"Auto levels: {rule}"
        else:
            text = f"Manual levels (Auto once / A uses {rule})"
        self.contrast_mode_label.setText(text)

    def _level_typed(self, _text: str) -> None:
        self.window.auto_levels_box.setChecked(False)

    def set_auto_every(self, n: int) -> None:
        self.model.auto_schedule.n = max(1, int(n))
        self.auto_every_spin.setValue(self.model.auto_schedule.n)

    def auto_contrast_once(self) -> None:
        """Levels of the shown frame now, and the worker's levels on the next frame."""
        if self.latest is not None:
            self.view.histogram.item.setLevels(*self.latest.levels)
        self.model.auto_schedule.arm()

    def set_levels(self, low: float, high: float) -> None:
        """Manual contrast: stops auto levels."""
        self.window.auto_levels_box.setChecked(False)
        if high <= low:
            self.message_label.setText(f"levels need min < max (got {low} and {high})")
            return
        self.view.histogram.item.setLevels(low, high)
        for spin, value in ((self.level_min_spin, low), (self.level_max_spin, high)):
            if spin.value() != value:
                spin.setValue(value)

    def set_display_bin(self, n: int) -> None:
        self.window.display_bin = int(n)
        if self._session is not None and self._session.worker is not None:
            self._session.worker.display_bin = int(n)
        if self.bin_spin.value() != n:
            self.bin_spin.setValue(n)

    # ================================================================ flat / dark
    def capture(self, kind: str, n: int) -> None:
        running = self.corrections.capturing
        self.corrections.capture(kind, n)
        note = ""
        if running is not None:
            note = f" ({running[0]} capture cancelled after {running[1]} of {running[2]} frames)"
        self._message(f"capturing {kind}: averaging the next {n} frames{note}")

    def set_reference(self, kind: str, arr: Optional[np.ndarray]) -> None:
        self.corrections.set_reference(kind, arr)
        self._check_stream_shape(kind)
        self._show_references()

    def set_applied(self, kind: str, on: bool) -> None:
        box = getattr(self, f"apply_{kind}_box")
        if box.isChecked() != on:
            box.setChecked(on)
            return
        self.corrections.set_applied(kind, on)
        if on:
            self._check_stream_shape(kind)
        elif self._reported.startswith(f"{kind} "):  # not applied any more: no problem with it
            self._clear_report()
        self._show_references()

    def load_reference_file(self, kind: str, path) -> bool:
        try:
            arr = load_reference(path, kind)
        except ValueError as exc:
            self._report(f"{kind} not loaded: {exc}")
            return False
        self._clear_report()
        self.set_reference(kind, arr)
        note = ""
        frame_shape = self._stream_shape()
        if frame_shape is not None and tuple(arr.shape) != frame_shape:  # said now, not only at Apply
            note = f"; its shape {tuple(arr.shape)} does not match the stream's frames {frame_shape}"
        self._message(f"{kind} loaded from {Path(path).name}{note}")
        return True

    def save_reference_file(self, kind: str, path) -> bool:
        arr = getattr(self.corrections, kind)
        if arr is None:
            self._report(f"no {kind} to save")
            return False
        path = Path(path)
        if path.suffix.lower() != ".npy":  # np.save would add it: say where it really went
            path = path.with_name(path.name + ".npy")
        try:
            np.save(path, arr, allow_pickle=False)
        except OSError as exc:
            self._report(f"{kind} not saved: {exc}")
            return False
        self._clear_report()
        self._message(f"{kind} saved to {path}")
        return True

    def clear_reference(self, kind: str) -> None:
        self.corrections.cancel_capture()
        self.set_reference(kind, None)
        self._clear_report()
        self._message(f"{kind} cleared")

    def _check_stream_shape(self, kind: str) -> None:
        """A reference of another size than the stream: say so now, not at the next frame."""
        arr = getattr(self.corrections, kind)
        frame_shape = self._stream_shape()
        if arr is None or frame_shape is None or not getattr(self.corrections, f"apply_{kind}"):
            return
        if tuple(arr.shape) != frame_shape:
            self._report(f"{kind} shape {tuple(arr.shape)} does not match the stream's frames "
                         f"{frame_shape}: not applied")

    def _stream_shape(self) -> Optional[Tuple[int, int]]:
        """(rows, columns) of the stream's frames as received, None before the first."""
        if self.latest is None:
            return None
        return tuple(self.latest.meta.get("raw_frame", self.latest.raw).shape[:2])

    def _show_references(self) -> None:
        capturing = self.corrections.capturing
        for kind, lab in self.reference_labels.items():
            arr = getattr(self.corrections, kind)
            if capturing is not None and capturing[0] == kind:
                text = f"capturing {capturing[1]}/{capturing[2]}"
            elif arr is None:
                text = "none"
            else:
                text = f"{arr.shape[1]} × {arr.shape[0]} {arr.dtype}"
                if kind == "flat" and self.corrections.masked_pixels:
                    text += f", {self.corrections.masked_pixels} masked pixels (flat - dark <= 0)"
            lab.setText(text)

    def _on_captured(self, kind: str) -> None:
        self._clear_report()
        self._message(f"{kind} captured")
        self._check_stream_shape(kind)
        self._show_references()

    def _on_problem(self, message: str) -> None:
        if message:
            self._report(message)
            self._worker_problem = message
        else:
            if self.corrections_label.text() == self._worker_problem:
                self.corrections_label.setText("")  # the worker applies the correction again
            self._retract(self._worker_problem)

    def _report(self, message: str) -> None:
        """A problem: in the panel and in the window's status (counted as the last error)."""
        self.corrections_label.setText(message)
        log.warning("%s", message)
        self._reported = message
        if self._session is not None:
            self._session.counters.error(message)
            self._session.counters.add("image_tools_errors")

    def _clear_report(self) -> None:
        """After a success, an older failure leaves the panel (a live problem,
        e.g. a shape mismatch, stays)."""
        self.corrections_label.setText(self.corrections.problem)
        if self._reported and self._reported != self.corrections.problem:
            self._retract(self._reported)

    _reported = ""

    def _retract(self, message: str) -> None:
        """The cause of ``message`` is gone: it leaves the status bar and
        ``last_error`` (unless another error came since)."""
        if message and self._session is not None:
            self._session.counters.clear_error(message)
        if message == self._reported:
            self._reported = ""

    def _message(self, text: str) -> None:
        self.message_label.setText(text)

    def _stats(self) -> Dict[str, Any]:
        c = self.corrections
        return {"corrections_not_applied": c.not_applied, "flat_masked_pixels": c.masked_pixels,
                "corrections_problem": c.problem}

    # ================================================================ value under the cursor
    def _hover(self, scene_pos) -> None:
        """x, y and value of the detector pixel under the mouse, in the status bar."""
        if self.det_shape is None or not self.view.view.sceneBoundingRect().contains(scene_pos):
            self._hover_pixel = None
        else:
            point = self.view.view.mapSceneToView(scene_pos)
            self._hover_pixel = self.orientation.view_to_pixel(point.x(), point.y(), self.det_shape)
        self._show_hover()

    def hover_text(self) -> str:
        pixel, display = self._hover_pixel, self.latest
        if pixel is None or display is None:
            return ""
        value = probe(display.meta.get("raw_frame", display.raw), pixel).value
        return f"x {pixel[0]}  y {pixel[1]}  value {format_value(value)}"

    def _show_hover(self) -> None:
        self.window.cursor_label.setText(self.hover_text())

    def _profile_autorange(self) -> None:
        self.profile_plot.enableAutoRange()
        self.profile_autorange_button.setEnabled(False)

    # ================================================================ saving
    def save_frame(self, path) -> Path:
        """``.npy`` / ``.tiff``: the raw frame (values and dtype as received);
        ``.png``: the frame as displayed (orientation, levels, colour map), full resolution."""
        display = self.latest
        if display is None:
            raise ValueError("no frame to save yet")
        path = Path(path)
        if path.suffix.lower() == ".png":
            return save_displayed_png(path, display.raw, *self.displayed_look(display))
        return save_raw_frame(path, display.meta.get("raw_frame", display.raw))

    def displayed_look(self, display):
        """``(levels, lut, orientation)``: how ``display`` is shown now (GUI thread)."""
        levels = self.view.levels()
        levels = display.levels if levels is None else (float(levels[0]), float(levels[1]))
        lut = self.view.histogram.item.gradient.getLookupTable(256, alpha=False)
        return levels, lut, self.orientation

    def _save_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self.window, "Save frame", f"frame_{self.latest.uid if self.latest else 0}.tiff",
            "TIFF, raw values (*.tiff *.tif);;NumPy, raw values (*.npy);;PNG, as displayed (*.png)")
        if path:
            try:
                self._message(f"saved {self.save_frame(path)}")
                self._clear_report()
            except (ValueError, OSError) as exc:
                self._report(f"frame not saved: {exc}")

    def _load_dialog(self, kind: str) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.window, f"Load {kind}", "", "NumPy (*.npy)")
        if path:
            self.load_reference_file(kind, path)

    def _save_reference_dialog(self, kind: str) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.window, f"Save {kind}", f"{kind}.npy",
                                                        "NumPy (*.npy)")
        if path:
            self.save_reference_file(kind, path)
