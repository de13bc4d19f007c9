"""The main window: toolbar, image view, status bar. Thin by design.

The window is one consumer of a long-lived engine ``Session`` (it outlives
connections: switching PV keeps the processors, analyses, taps and stats).
Frames arrive display-ready from the session's worker thread through a queued
Qt signal; the GUI thread only sets them on the ImageItem and paints, then
tells the session (``consumed``) so the next frame is prepared.
"""
from __future__ import annotations

import base64
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from ..display import DisplayFrame
from ..session import Session
from ..sources._base import Source
from .image_view import COLORMAPS, ImageView
from .widgets import ElidedLabel, scrolling

log = logging.getLogger(__name__)


class DisplayBridge(QtCore.QObject):
    """Carries display-ready frames from the worker thread to the GUI thread."""

    frameReady = QtCore.pyqtSignal(object)

    def deliver(self, display: DisplayFrame) -> None:  # worker thread
        self.frameReady.emit(display)


def format_status(s: Dict[str, Any]) -> str:
    """One line that tells the truth: state, rates, losses, latency, last error."""
    parts = [s.get("state", "idle")]
    if s.get("paused"):
        parts.append("paused")
    if s.get("receive_mode") == "paced":  # the server drops what the display cannot show
        parts.append(f"paced: showing what the screen can ({s.get('skipped_upstream', 0)} not sent)")
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
    if s.get("scale_consumers"):  # --scale-status: the consumers' own status channels
        parts.append(f"scale {s.get('scale_processed_fps', 0):.1f} fps "
                     f"({s.get('scale_consumers_reporting', 0)}/{s['scale_consumers']} consumers, "
                     f"{s.get('scale_step_errors', 0)} errors)")
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
        self.resize(1400, 900)
        self.setDockOptions(QtWidgets.QMainWindow.AnimatedDocks | QtWidgets.QMainWindow.AllowTabbedDocks)
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
        # the docks and the spectra give way (scroll, shrink) before the image does
        self.image_view.setMinimumSize(160, 120)
        # image on top, other live views (spectra) below, resizable
        self.views = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        self.views.setObjectName("views-splitter")
        self.views.setChildrenCollapsible(False)
        self.views.addWidget(self.image_view)
        self.views.setStretchFactor(0, 3)
        self.setCentralWidget(self.views)
        self.nested_stats: Dict[str, Callable[[], Dict[str, Any]]] = {}
        self._docks: List[QtWidgets.QDockWidget] = []
        self.shortcuts: List[Tuple[str, str]] = []  # (keys, what), listed in Help
        self._fullscreen_hidden: List[QtWidgets.QWidget] = []
        self._build_menus()
        self._build_toolbar(colormap)

        # one line, elided (the whole text in its tooltip): never widens the window
        self.status_label = ElidedLabel("idle")
        self.status_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.statusBar().addWidget(self.status_label, 1)
        # value under the mouse, detector pixels (filled by the image tools)
        self.cursor_label = QtWidgets.QLabel("")
        self.cursor_label.setMinimumWidth(10)
        self.statusBar().addPermanentWidget(self.cursor_label)
        self.statusBar().setSizeGripEnabled(False)
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
        self.add_shortcut(self.pause_action, "Space", "pause / resume the display")
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
        self.home_action = tb.addAction("Home", self.image_view.reset_view)
        self.add_shortcut(self.home_action, "H", "home: the whole image in view")
        self.fullscreen_action = QtWidgets.QAction("Full-screen image", self)
        self.fullscreen_action.setCheckable(True)
        self.fullscreen_action.toggled.connect(self.set_fullscreen_image)
        self.add_shortcut(self.fullscreen_action, "F", "full-screen image (F or Esc to leave)")
        self.view_menu.addAction(self.fullscreen_action)
        leave = QtWidgets.QShortcut(QtGui.QKeySequence("Esc"), self)
        leave.activated.connect(lambda: self.fullscreen_action.setChecked(False))

    # ------------------------------------------------------------ menus and shortcuts
    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.view_menu = bar.addMenu("&View")
        self.help_menu = bar.addMenu("&Help")
        self.help_menu.addAction("Keyboard shortcuts", self.show_shortcuts)

    def add_shortcut(self, action: QtWidgets.QAction, keys: str, what: str) -> None:
        """Give ``action`` a window-wide key (typing in a text box still types)
        and list it in Help > Keyboard shortcuts."""
        action.setShortcut(QtGui.QKeySequence(keys))
        action.setShortcutContext(QtCore.Qt.WindowShortcut)
        if action not in self.actions():
            self.addAction(action)  # works while its toolbar is hidden (full-screen image)
        tip = action.toolTip() or action.text()
        action.setToolTip(f"{tip} ({keys})")
        self.shortcuts.append((keys, what))

    def shortcuts_text(self) -> str:
        return "\n".join(f"{keys:<8} {what}" for keys, what in self.shortcuts)

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{keys}</b>&nbsp;&nbsp;</td><td>{what}</td></tr>"
                       for keys, what in self.shortcuts)
        QtWidgets.QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def set_fullscreen_image(self, on: bool) -> None:
        """Only the image (and its histogram), full screen; everything comes back after."""
        if on:
            # not hidden (rather than visible): a dock just added is shown a moment later
            others = [self.views.widget(i) for i in range(1, self.views.count())]
            candidates = (self.findChildren(QtWidgets.QToolBar) + self._docks + others
                          + [self.menuBar(), self.statusBar()])
            self._fullscreen_hidden = [w for w in candidates if not w.isHidden()]
            for widget in self._fullscreen_hidden:
                widget.hide()
            self.showFullScreen()
        else:
            for widget in self._fullscreen_hidden:
                widget.show()
            self._fullscreen_hidden = []
            self.showNormal()

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

    DOCK_WIDTH = 330  # px: the panels' first width; the image keeps the rest

    def add_dock(self, widget: QtWidgets.QWidget, title: str,
                 area=QtCore.Qt.RightDockWidgetArea) -> QtWidgets.QDockWidget:
        """Attach a panel. Panels share one side as tabs (the image keeps the
        room), scroll when the window is small; the user can drag them out,
        move or close them (View menu brings them back)."""
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(scrolling(widget))
        dock.setMinimumWidth(100)
        self.view_menu.addAction(dock.toggleViewAction())
        self.addDockWidget(area, dock)
        same_side = [d for d in self._docks if self.dockWidgetArea(d) == area]
        if same_side:
            self.tabifyDockWidget(same_side[0], dock)
            same_side[0].raise_()  # the first panel attached stays in front
        self._docks.append(dock)
        self.resizeDocks([dock], [self.DOCK_WIDTH], QtCore.Qt.Horizontal)
        return dock

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit_docks()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._fit_docks()

    def _fit_docks(self) -> None:
        """Qt shrinks the central widget first: in a small window the docks give
        way instead (their panels scroll), to at most DOCK_SHARE of the width."""
        room = int(self.width() * self.DOCK_SHARE)
        side = [d for d in self._docks if d.isVisible() and not d.isFloating()
                and self.dockWidgetArea(d) in (QtCore.Qt.RightDockWidgetArea, QtCore.Qt.LeftDockWidgetArea)]
        wide = [d for d in side if d.width() > room]
        if wide:
            self.resizeDocks(wide, [max(room, 100)] * len(wide), QtCore.Qt.Horizontal)

    DOCK_SHARE = 0.3

    # ------------------------------------------------------------ layout memory
    def save_layout(self) -> Dict[str, str]:
        """Window geometry, docks and the image/spectra split, as text for the settings file."""
        def text(data) -> str:
            return base64.b64encode(bytes(data)).decode("ascii")
        if self.fullscreen_action.isChecked():  # save the docks and bars, not their absence
            self.fullscreen_action.setChecked(False)
        # the image/spectra split is kept per number of views (image alone, image + spectra)
        return {"window_geometry": text(self.saveGeometry()), "window_state": text(self.saveState()),
                f"views_split_{self.views.count()}": text(self.views.saveState())}

    def restore_layout(self, saved: Dict[str, Any]) -> bool:
        """Put back what ``save_layout`` gave (a missing or broken entry is skipped)."""
        done = False
        for key, restore in (("window_geometry", self.restoreGeometry),
                             ("window_state", self.restoreState),
                             (f"views_split_{self.views.count()}", self.views.restoreState)):
            value = saved.get(key)
            if not isinstance(value, str) or not value:
                continue
            try:
                ok = restore(QtCore.QByteArray(base64.b64decode(value)))
            except (ValueError, TypeError):
                ok = False
            if not ok:
                log.info("window layout: ignoring a saved %s that does not fit", key)
            done = done or bool(ok)
        return done

    # ------------------------------------------------------------ status
    def add_view(self, widget: QtWidgets.QWidget, name: str,
                 stats: Optional[Callable[[], Dict[str, Any]]] = None) -> None:
        """Another live view beside the image (e.g. a spectrum stream); its
        counters appear in ``stats()`` under ``name`` (and at the top level
        while no image stream is open)."""
        self.views.addWidget(widget)
        # the image keeps most of the height until the user moves the split (remembered)
        self.views.setStretchFactor(self.views.indexOf(widget), 2)
        total = max(self.views.height(), 500)
        sizes = [int(total * 0.58)] + [int(total * 0.42 / (self.views.count() - 1))] * (self.views.count() - 1)
        self.views.setSizes(sizes)
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
