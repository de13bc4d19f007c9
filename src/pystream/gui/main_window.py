"""The main window: toolbar, image view, status bar. Thin by design.

The window is one consumer of a long-lived engine ``Session`` (it outlives
connections: switching PV keeps the processors, analyses, taps and stats).
Frames arrive display-ready from the session's worker thread through a queued
Qt signal; the GUI thread only sets them on the ImageItem and paints, then
tells the session (``consumed``) so the next frame is prepared.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional

from pyqtgraph.Qt import QtCore, QtWidgets

from ..display import DisplayFrame
from ..session import Session
from ..sources._base import Source
from .image_view import COLORMAPS, ImageView

log = logging.getLogger(__name__)


class DisplayBridge(QtCore.QObject):
    """Carries display-ready frames from the worker thread to the GUI thread."""

    frameReady = QtCore.pyqtSignal(object)

    def deliver(self, display: DisplayFrame) -> None:  # worker thread
        self.frameReady.emit(display)


def format_status(s: Dict[str, Any]) -> str:
    """One line that tells the truth: state, rates, losses, latency, last error."""
    parts = [s.get("state", "idle")]
    parts.append(f"recv {s.get('recv_fps', 0):.1f} fps")
    parts.append(f"shown {s.get('display_fps', 0):.1f} fps")
    parts.append(f"received {s.get('received', 0)}")
    parts.append(f"dropped {s.get('dropped_upstream', 0)}")
    parts.append(f"skipped {s.get('skipped', 0)}")
    if s.get("rejected"):
        parts.append(f"rejected {s['rejected']}")
    if s.get("latency_ms_p50") is not None:
        parts.append(f"latency {s['latency_ms_p50']:.0f} ms")
    if s.get("recording"):
        rejected = s.get("record_rejected", 0)
        parts.append(f"rec {s.get('recorded', 0)} ({s.get('record_drops', 0)} drops"
                     + (f", {rejected} rejected)" if rejected else ")"))
    elif s.get("record_state") == "error" and s.get("record_error"):
        parts.append(f"rec error: {s['record_error']}")
    if s.get("last_error"):
        parts.append(f"error: {s['last_error']}")
    return "  |  ".join(parts)


class MainWindow(QtWidgets.QMainWindow):
    """Panels attach through ``add_dock``, the session's ``processors`` and
    ``analyses``, and the ``frameShown`` / ``sessionChanged`` signals."""

    frameShown = QtCore.pyqtSignal(object)  # DisplayFrame, after it is set on the image
    # the session when a source is connected, None when it is disconnected
    sessionChanged = QtCore.pyqtSignal(object)

    def __init__(self, *, max_fps: float = 0.0, display_bin: int = 0, colormap: str = "gray",
                 source_factory: Optional[Callable[[str], Source]] = None,
                 on_connect: Optional[Callable[[str], None]] = None):
        super().__init__()
        self.setWindowTitle("pystream")
        self.resize(1200, 860)
        self.max_fps = max_fps
        self.display_bin = display_bin
        self.session = Session(max_fps=max_fps, display_bin=display_bin)
        # the session's own list and dict: panels add corrections/analyses here
        self.processors: List[Callable] = self.session.processors
        self.analyses: Dict[str, Callable] = self.session.analyses
        self.source_factory = source_factory
        self.on_connect = on_connect
        self.current: Optional[DisplayFrame] = None
        self.platform_note = ""
        # the panels, attached by gui.assemble.build_window (None when not attached)
        self.image_tools = None  # gui.image_tools.ImageTools
        self.pipeline = None  # pipeline.Pipeline, run by the session's worker
        self.record_panel = None  # gui.record_panel.RecordPanel
        self.spectra = None  # spectra.SpectrumReceiver of a --zmq stream
        self.snapshots = None  # snapshots.SnapshotWriter of --snapshot-interval

        self.bridge = DisplayBridge()
        self.bridge.frameReady.connect(self._show_frame, QtCore.Qt.QueuedConnection)
        self.session.add_display_listener(self.bridge.deliver, paced=True)

        self.image_view = ImageView(self._first_paint)
        self.image_view.sigViewResized.connect(self._view_resized)
        # image on top, other live views (spectra) below, resizable
        self.views = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        self.views.addWidget(self.image_view)
        self.setCentralWidget(self.views)
        self.nested_stats: Dict[str, Callable[[], Dict[str, Any]]] = {}
        self._docks: List[QtWidgets.QDockWidget] = []
        self._build_toolbar(colormap)

        self.status_label = QtWidgets.QLabel("idle")
        self.status_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.statusBar().addWidget(self.status_label, 1)
        self._status_timer = QtCore.QTimer(self)
        self._status_timer.timeout.connect(self.refresh_status)
        self._status_timer.start(250)

    # ------------------------------------------------------------ toolbar
    def _build_toolbar(self, colormap: str) -> None:
        tb = self.addToolBar("Stream")
        tb.setObjectName("stream-toolbar")
        tb.addWidget(QtWidgets.QLabel(" PV "))
        self.pv_edit = QtWidgets.QLineEdit()
        self.pv_edit.setPlaceholderText("NTNDArray PV name, e.g. 13SIM1:Pva1:Image")
        self.pv_edit.setMinimumWidth(260)
        self.pv_edit.returnPressed.connect(self._connect_clicked)
        tb.addWidget(self.pv_edit)
        self.connect_action = tb.addAction("Connect", self._connect_clicked)
        tb.addSeparator()
        self.pause_action = tb.addAction("Pause")
        self.pause_action.setCheckable(True)
        self.pause_action.toggled.connect(self.set_paused)
        self.auto_levels_box = QtWidgets.QCheckBox("Auto levels")
        self.auto_levels_box.setChecked(True)
        self.auto_levels_box.toggled.connect(self._auto_levels_toggled)
        tb.addWidget(self.auto_levels_box)
        # dragging a histogram level line is a manual choice: stop auto levels
        for line in self.image_view.histogram.item.region.lines:
            line.sigDragged.connect(lambda *_: self.auto_levels_box.setChecked(False))
        tb.addWidget(QtWidgets.QLabel(" Colormap "))
        self.colormap_combo = QtWidgets.QComboBox()
        self.colormap_combo.addItems(COLORMAPS)
        self.colormap_combo.currentTextChanged.connect(self.image_view.set_colormap)
        self.colormap_combo.setCurrentText(colormap if colormap in COLORMAPS else "gray")
        self.image_view.set_colormap(self.colormap_combo.currentText())
        tb.addWidget(self.colormap_combo)
        tb.addAction("Home", self.image_view.reset_view)

    def _connect_clicked(self) -> None:
        name = self.pv_edit.text().strip()
        if name and self.source_factory is not None:
            self.connect_source(self.source_factory(name))
            if self.on_connect:
                self.on_connect(name)

    def _auto_levels_toggled(self, on: bool) -> None:
        self.session.display.auto_levels = on

    def set_paused(self, paused: bool) -> None:
        """While paused nothing is decoded; frames are still received and counted."""
        self.pause_action.setText("Resume" if paused else "Pause")
        (self.session.pause if paused else self.session.resume)()

    # ------------------------------------------------------------ sources
    @property
    def connected(self) -> bool:
        """A source is connected (the session itself always exists)."""
        return self.session.source is not None

    def connect_source(self, source: Source) -> Session:
        self.disconnect_source()
        if source.kind == "pva":
            self.pv_edit.setText(source.name)
        self.session.display.auto_levels = self.auto_levels_box.isChecked()
        self._view_resized(*self._view_size())
        self.image_view.show()
        self.session.connect(source)
        self.setWindowTitle(f"pystream — {source.describe()}")
        log.info("watching %s", source.describe())
        self.sessionChanged.emit(self.session)
        return self.session

    def disconnect_source(self) -> None:
        if self.session.source is not None:
            self.session.disconnect()
            self.sessionChanged.emit(None)

    def add_stats_provider(self, provider: Callable[[], Dict[str, Any]]) -> None:
        self.session.add_stats(provider)

    # ------------------------------------------------------------ frames
    def _show_frame(self, display: DisplayFrame) -> None:
        self.current = display
        self.image_view.show_frame(display)
        self.frameShown.emit(display)

    def _first_paint(self, display: DisplayFrame) -> None:
        if display.frame is None:
            return
        self.session.counters.painted(display.t_source)
        self.session.consumed()

    def _view_size(self):
        rect = self.image_view.view.sceneBoundingRect()
        return int(rect.height()), int(rect.width())

    def _view_resized(self, h: int, w: int) -> None:
        if h > 10 and w > 10:
            self.session.display.target_size = (h, w)

    def add_dock(self, widget: QtWidgets.QWidget, title: str,
                 area=QtCore.Qt.RightDockWidgetArea) -> QtWidgets.QDockWidget:
        """Attach a panel. Panels share one side as tabs (the image keeps the
        room); the user can drag them out, move or close them."""
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        same_side = [d for d in self._docks if self.dockWidgetArea(d) == area]
        if same_side:
            self.tabifyDockWidget(same_side[0], dock)
            same_side[0].raise_()  # the first panel attached stays in front
        self._docks.append(dock)
        self.resizeDocks([dock], [360], QtCore.Qt.Horizontal)
        return dock

    # ------------------------------------------------------------ status
    def add_view(self, widget: QtWidgets.QWidget, name: str,
                 stats: Optional[Callable[[], Dict[str, Any]]] = None) -> None:
        """Another live view beside the image (e.g. a spectrum stream); its
        counters appear in ``stats()`` under ``name`` (and at the top level
        while no image stream is open)."""
        self.views.addWidget(widget)
        if stats is not None:
            self.nested_stats[name] = stats
        if not self.connected:
            self.image_view.hide()

    def stats(self) -> Dict[str, Any]:
        snap: Dict[str, Any] = self.session.stats()
        for name, provider in self.nested_stats.items():
            nested = provider()
            snap[name] = nested
            if not self.connected:  # the only stream: its counters are the top level
                snap.update(nested)
        return snap

    def refresh_status(self) -> None:
        text = format_status(self.stats())
        if self.platform_note:
            text += f"  |  {self.platform_note}"
        self.status_label.setText(text)

    def closeEvent(self, event) -> None:
        self.disconnect_source()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the source and the engine's threads (at exit)."""
        self.disconnect_source()
        self.session.close()
