"""RecordPanel: the window's recording controls (thin: the work is in pystream.record).

Output directory, prefix, format, raw or processed frames, Start/Stop, and
live numbers (frames written, MB/s, queue fill, drops, error) refreshed by a
timer. The panel adds the recorder's tap to the session on start and
removes it on stop; ``stateChanged`` carries a one-line text for the main
window's status bar.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Optional

from pyqtgraph.Qt import QtCore, QtWidgets

from ..record import Recorder, RecordError
from .widgets import wheel_only_when_focused

FORMATS = (
    ("TIFF sequence", "tiff", False),
    ("BigTIFF stack", "tiff", True),
    ("HDF5", "hdf5", False),
)


class RecordPanel(QtWidgets.QWidget):
    """Recording controls bound to one session (anything with ``add_tap``/``remove_tap``)."""

    stateChanged = QtCore.Signal(str)

    def __init__(self, router, process: Optional[Callable] = None,
                 buffer_bytes: int = 1 << 30, out_dir: str = "", prefix: str = "frame",
                 refresh_ms: int = 250, parent=None):
        super().__init__(parent)
        self.router = router
        self.process = process
        self.buffer_bytes = buffer_bytes
        self.recorder: Optional[Recorder] = None
        self._tap_added = False
        self._last_text = ""
        self.start_error = ""  # why the last Start failed (until one succeeds)

        self.dir_edit = QtWidgets.QLineEdit(out_dir or os.getcwd())
        self.browse_button = QtWidgets.QPushButton("Browse...")
        self.prefix_edit = QtWidgets.QLineEdit(prefix)
        self.format_combo = QtWidgets.QComboBox()
        for label, _, _ in FORMATS:
            self.format_combo.addItem(label)
        self.mode_combo = QtWidgets.QComboBox()
        self.mode_combo.addItems(["Raw frames", "Processed frames"])
        # like `pystream record --frames/--seconds`; 0 = until Stop
        self.max_frames_spin = QtWidgets.QSpinBox()
        self.max_frames_spin.setRange(0, 1_000_000_000)
        self.max_frames_spin.setSpecialValueText("no limit")
        self.max_frames_spin.setSuffix(" frames")
        self.max_seconds_spin = QtWidgets.QDoubleSpinBox()
        self.max_seconds_spin.setRange(0.0, 7 * 24 * 3600.0)
        self.max_seconds_spin.setDecimals(1)
        self.max_seconds_spin.setSpecialValueText("no limit")
        self.max_seconds_spin.setSuffix(" s")
        wheel_only_when_focused(self.format_combo, self.mode_combo, self.max_frames_spin,
                                self.max_seconds_spin)
        self._started_at = 0.0
        self._seconds_limit = 0.0
        self.start_button = QtWidgets.QPushButton("Start Recording")
        self.frames_label = QtWidgets.QLabel("0")
        self.rate_label = QtWidgets.QLabel("0.0 MB/s")
        self.queue_label = QtWidgets.QLabel("0%")
        self.drops_label = QtWidgets.QLabel("0")
        self.path_label = QtWidgets.QLabel("")
        self.path_label.setWordWrap(True)
        self.error_label = QtWidgets.QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b;")

        dir_row = QtWidgets.QHBoxLayout()
        dir_row.addWidget(self.dir_edit, 1)
        dir_row.addWidget(self.browse_button)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Directory", dir_row)
        form.addRow("Prefix", self.prefix_edit)
        form.addRow("Format", self.format_combo)
        form.addRow("Frames", self.mode_combo)
        limit_row = QtWidgets.QHBoxLayout()
        limit_row.addWidget(self.max_frames_spin)
        limit_row.addWidget(self.max_seconds_spin)
        form.addRow("Stop after", limit_row)
        form.addRow(self.start_button)
        form.addRow("Written", self.frames_label)
        form.addRow("Rate", self.rate_label)
        form.addRow("Queue", self.queue_label)
        form.addRow("Drops", self.drops_label)
        form.addRow("File", self.path_label)
        form.addRow(self.error_label)

        self.browse_button.clicked.connect(self._browse)
        self.start_button.clicked.connect(self._toggle)
        self.set_process(process)

        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.refresh)

    # -- public ------------------------------------------------------------------------------
    def set_process(self, process: Optional[Callable]) -> None:
        """The callable used for processed recordings (None: raw only)."""
        self.process = process
        item = self.mode_combo.model().item(1)
        if item is not None:
            item.setEnabled(process is not None)
        if process is None:
            self.mode_combo.setCurrentIndex(0)

    @property
    def is_recording(self) -> bool:
        return self.recorder is not None and not self.recorder.finished

    def start_recording(self) -> bool:
        """Start with the panel's settings; False (and the reason shown) if it cannot."""
        if self.is_recording:
            return True
        _, fmt, stack = FORMATS[self.format_combo.currentIndex()]
        processed = self.mode_combo.currentIndex() == 1 and self.process is not None
        prefix = self.prefix_edit.text().strip() or "frame"
        max_frames = self.max_frames_spin.value() or None
        recorder = Recorder(self.dir_edit.text().strip() or os.getcwd(), fmt=fmt, prefix=prefix,
                            buffer_bytes=self.buffer_bytes, stack=stack,
                            process=self.process if processed else None, max_frames=max_frames)
        self.error_label.setText("")
        try:
            recorder.start()
        except RecordError as exc:
            self.error_label.setText(f"Cannot record: {exc}")
            self.start_error = str(exc)  # in stats(), so the status bar says it too
            self._emit(f"REC error: {exc}")
            return False
        self.start_error = ""
        self.recorder = recorder
        self._started_at = time.monotonic()
        self._seconds_limit = self.max_seconds_spin.value()
        self.router.add_tap(recorder.tap)
        self._tap_added = True
        self._set_editing(False)
        self.start_button.setText("Stop Recording")
        self.timer.start()
        self.refresh()
        return True

    def stop_recording(self, wait: bool = False) -> None:
        """Stop taking frames; the queue drains in the background (``wait``: block until closed)."""
        if self.recorder is None:
            return
        self._remove_tap()
        self.recorder.stop(drain=True, timeout=None if wait else 0)
        self.start_button.setEnabled(False)  # re-enabled once the files are closed
        self.refresh()

    def shutdown(self) -> None:
        """Window closing / program exit: write what is queued and close the files."""
        if self.recorder is not None:
            self._remove_tap()
            self.recorder.stop(drain=True)
        self.refresh()
        self.timer.stop()

    def status_text(self) -> str:
        return self.recorder.status_text() if self.recorder is not None else "not recording"

    def stats(self) -> dict:
        if self.start_error and not self.is_recording:
            return {"recording": False, "record_state": "error", "record_error": self.start_error}
        return self.recorder.stats() if self.recorder is not None else {}

    # -- internals ---------------------------------------------------------------------------
    def _toggle(self) -> None:
        if self.is_recording:
            self.stop_recording()
        else:
            self.start_recording()

    def _browse(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Recording directory",
                                                          self.dir_edit.text())
        if path:
            self.dir_edit.setText(path)

    def _remove_tap(self) -> None:
        if self._tap_added and self.recorder is not None:
            self.router.remove_tap(self.recorder.tap)
            self._tap_added = False

    def _set_editing(self, enabled: bool) -> None:
        for widget in (self.dir_edit, self.browse_button, self.prefix_edit, self.format_combo,
                       self.mode_combo, self.max_frames_spin, self.max_seconds_spin):
            widget.setEnabled(enabled)

    def _emit(self, text: str) -> None:
        if text != self._last_text:
            self._last_text = text
            self.stateChanged.emit(text)

    def refresh(self) -> None:
        recorder = self.recorder
        if recorder is None:
            return
        if (self._seconds_limit and not recorder.finished and self._tap_added
                and time.monotonic() - self._started_at >= self._seconds_limit):
            self.stop_recording()  # the duration asked for is over
            return
        if recorder.target_reached and self._tap_added:
            self._remove_tap()  # the frame count asked for is written: close the files
            recorder.stop(drain=True, timeout=0)
        s = recorder.stats()
        self.frames_label.setText(str(s["recorded"]))
        self.rate_label.setText(f"{s['record_mb_per_s']:.1f} MB/s")
        self.queue_label.setText(f"{s['record_queue_fill'] * 100:.0f}%")
        drops = s["record_drops"]
        rejected = s["record_rejected"]
        self.drops_label.setText(f"{drops}" + (f" (+{rejected} rejected)" if rejected else ""))
        self.path_label.setText(s["record_path"])
        if s["record_state"] == "error":
            self.error_label.setText(f"Recording stopped: {s['record_error']}")
        if recorder.finished:
            # stopped by the user, a frame target or a disk error: back to idle controls
            self._remove_tap()
            self.timer.stop()
            self.start_button.setText("Start Recording")
            self.start_button.setEnabled(True)
            self._set_editing(True)
        self._emit(recorder.status_text())
