"""RecordPanel offscreen: settings → start → frames through a FrameRouter → stop → files."""
import os

import h5py
import numpy as np
import pytest
import tifffile

from pystream.flow import Counters, FrameRouter

from .record_helpers import make_frames

pytestmark = pytest.mark.gui


@pytest.fixture
def panel(qtbot):
    from pystream.gui.record_panel import RecordPanel

    router = FrameRouter(Counters(), slot=None)
    widget = RecordPanel(router, refresh_ms=20)
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def test_record_tiff_sequence_from_the_panel(panel, qtbot, tmp_path):
    states = []
    panel.stateChanged.connect(states.append)
    panel.dir_edit.setText(str(tmp_path))
    panel.prefix_edit.setText("sample")
    assert panel.format_combo.currentText() == "TIFF sequence"
    assert not panel.mode_combo.model().item(1).isEnabled()  # no processing: raw only
    qtbot.mouseClick(panel.start_button, 1)  # Qt.LeftButton
    assert panel.is_recording and panel.start_button.text() == "Stop Recording"
    assert not panel.dir_edit.isEnabled()
    frames = make_frames(12)
    for frame in frames:
        panel.router.on_frame(frame)
    qtbot.waitUntil(lambda: panel.frames_label.text() == "12", timeout=30000)
    assert panel.drops_label.text() == "0"
    qtbot.mouseClick(panel.start_button, 1)
    qtbot.waitUntil(lambda: panel.start_button.text() == "Start Recording", timeout=30000)
    assert not panel.is_recording and panel.dir_edit.isEnabled()
    names = sorted(os.listdir(tmp_path))
    assert names == [f"sample_{i:06d}.tiff" for i in range(1, 13)]
    for name, frame in zip(names, frames):
        np.testing.assert_array_equal(tifffile.imread(tmp_path / name), frame.array)
    assert any(s.startswith("REC ") for s in states)
    assert "recorded 12 frames" in states[-1]
    # frames after stop are not recorded: the tap was removed
    panel.router.on_frame(make_frames(1, start_uid=99)[0])
    assert len(os.listdir(tmp_path)) == 12


def test_processed_hdf5_from_the_panel(qtbot, tmp_path):
    from pystream.gui.record_panel import RecordPanel

    router = FrameRouter(Counters(), slot=None)
    panel = RecordPanel(router, process=lambda a, meta: a.astype(np.float32) / 2, refresh_ms=20)
    qtbot.addWidget(panel)
    panel.dir_edit.setText(str(tmp_path))
    panel.format_combo.setCurrentIndex(2)  # HDF5
    panel.mode_combo.setCurrentIndex(1)  # processed
    assert panel.start_recording()
    frames = make_frames(5)
    for frame in frames:
        router.on_frame(frame)
    panel.shutdown()  # window close: drains and closes the file
    with h5py.File(tmp_path / "frame_000001.h5", "r") as f:
        data = f["/entry/data/data"][()]
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, np.stack([fr.array.astype(np.float32) / 2 for fr in frames]))


def test_panel_shows_a_start_error(panel, qtbot, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    panel.dir_edit.setText(str(blocker))
    states = []
    panel.stateChanged.connect(states.append)
    assert panel.start_recording() is False
    assert "Cannot record" in panel.error_label.text() and states[-1].startswith("REC error")
    assert panel.start_button.text() == "Start Recording"
    # the window's status bar says it too (from the stats), until a start succeeds
    from pystream.gui.main_window import format_status
    assert f"rec error: not a directory: {blocker}" in format_status(panel.stats())
    panel.dir_edit.setText(str(tmp_path / "good"))
    assert panel.start_recording()
    assert "rec error" not in format_status(panel.stats()) and panel.error_label.text() == ""
    panel.stop_recording(wait=True)


def test_panel_shows_a_disk_error_and_returns_to_idle(panel, qtbot, small_tmpfs):
    panel.dir_edit.setText(str(small_tmpfs))
    assert panel.start_recording()
    for frame in make_frames(40, shape=(256, 256)):
        panel.router.on_frame(frame)
        qtbot.wait(2)
    qtbot.waitUntil(lambda: panel.start_button.text() == "Start Recording", timeout=30000)
    assert "disk full" in panel.error_label.text()
    assert int(panel.frames_label.text()) == len(os.listdir(small_tmpfs)) > 0
