"""Headless recording: run_recording with any Source, progress, summary, Ctrl-C."""
import _thread
import io
import json
import os
import re
import threading
import time

import h5py
import pytest
import tifffile

from pystream.record import parse_size, run_recording

from .record_helpers import ListSource, make_frames


@pytest.mark.parametrize("text,size", [
    ("2GiB", 2 << 30), ("512MiB", 512 << 20), ("1.5G", int(1.5 * (1 << 30))), ("500MB", 500_000_000),
    ("1048576", 1 << 20), ("64k", 64 << 10), (" 3 gib ", 3 << 30), (4096, 4096), ("1TiB", 1 << 40),
])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "GiB", "2 parsecs", "-1GiB", "0", "1.2.3G"])
def test_parse_size_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def uids_of_sequence(directory):
    out = []
    for name in sorted(os.listdir(directory)):
        with tifffile.TiffFile(os.path.join(directory, name)) as tif:
            out.append(json.loads(tif.pages[0].description)["uid"])
    return out


def test_records_a_finite_source_to_the_end(tmp_path):
    frames = make_frames(25)
    err = io.StringIO()
    summary = run_recording(ListSource(frames), tmp_path, stream=err)
    assert summary.ok and summary.frames == 25 and summary.drops == 0
    assert summary.received == 25 and summary.stop_reason == "source finished"
    assert summary.files == 25 and summary.path.endswith("frame_000025.tiff")
    assert uids_of_sequence(tmp_path) == list(range(1, 26))
    out = err.getvalue()
    assert "\r" in out and "recorded 25 frames" in out and "drops 0" in out


def test_frames_limit_records_exactly_n(tmp_path):
    source = ListSource(make_frames(20), rate=0, repeat=True)
    summary = run_recording(source, tmp_path, fmt="hdf5", frames=50, prefix="scan",
                            stream=io.StringIO())
    assert summary.frames == 50 and summary.stop_reason == "50 frames"
    with h5py.File(tmp_path / "scan_000001.h5", "r") as f:
        assert f["/entry/data/data"].shape[0] == 50
        assert list(f["/entry/data/uid"][:21]) == list(range(1, 21)) + [1]


def test_seconds_limit(tmp_path):
    source = ListSource(make_frames(10), rate=200, repeat=True)
    summary = run_recording(source, tmp_path, seconds=0.5, stack=True, progress=False,
                            stream=io.StringIO())
    assert summary.ok and summary.stop_reason == "0.5 s"
    assert 0 < summary.frames <= 0.5 * 200 + 20
    assert len(tifffile.imread(summary.path)) == summary.frames
    assert summary.frames + summary.drops == summary.offered


def after_frames(source, n, action):
    """Run ``action`` from another thread once ``source`` has sent ``n`` frames
    (so it always lands inside the recording, however loaded the machine)."""
    def run():
        deadline = time.monotonic() + 60
        while source.sent < n and time.monotonic() < deadline:
            time.sleep(0.01)
        action()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_drains_and_leaves_valid_files(tmp_path):
    source = ListSource(make_frames(10, shape=(64, 64)), rate=500, repeat=True)
    after_frames(source, 20, _thread.interrupt_main)  # Ctrl-C, as the user would
    summary = run_recording(source, tmp_path, fmt="hdf5", stream=io.StringIO())
    assert summary.interrupted and summary.ok and summary.frames > 0
    assert "interrupted" in summary.stop_reason
    assert summary.frames + summary.drops + summary.rejected == summary.offered
    with h5py.File(summary.path, "r") as f:
        assert f["/entry/data/data"].shape[0] == summary.frames
        assert len(f["/entry/data/uid"]) == summary.frames


def test_stop_event_and_summary_dict(tmp_path):
    stop = threading.Event()
    source = ListSource(make_frames(5), rate=100, repeat=True)
    after_frames(source, 10, stop.set)
    summary = run_recording(source, tmp_path, stop_event=stop, stream=io.StringIO())
    assert summary.stop_reason == "stop requested" and summary.frames > 0
    d = summary.as_dict()
    assert d["frames"] == summary.frames and "mb_per_s" in d


def test_unusable_directory_is_a_clear_reason_not_a_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = io.StringIO()
    summary = run_recording(ListSource(make_frames(3)), blocker / "sub", stream=err)
    assert not summary.ok and summary.frames == 0
    # only why: nothing was recorded, so no summary of nothing
    assert err.getvalue() == f"cannot record: cannot create the output directory {blocker / 'sub'}: Not a directory\n"
    err = io.StringIO()
    summary = run_recording(ListSource(make_frames(3)), blocker, stream=err)
    assert not summary.ok and err.getvalue() == f"cannot record: not a directory: {blocker}\n"


def test_progress_says_why_no_frame_comes(tmp_path):
    from pystream.record import Recorder
    from pystream.record.headless import progress_text
    recorder = Recorder(str(tmp_path), fmt="tiff")
    assert progress_text(recorder, None, 10.0, 2.0, "connecting").endswith("(connecting)")
    assert progress_text(recorder, None, 10.0, 2.0, "disconnected").endswith("(disconnected)")
    assert "(" not in progress_text(recorder, None, 10.0, 2.0, "connected").split("]", 1)[1]


def test_disk_error_ends_the_run(small_tmpfs):
    source = ListSource(make_frames(10, shape=(256, 256)), rate=0, repeat=True)
    err = io.StringIO()
    summary = run_recording(source, small_tmpfs, stream=err)
    assert not summary.ok and "disk full" in summary.error and summary.stop_reason == "disk error"
    assert summary.frames == len(os.listdir(small_tmpfs)) > 0
    assert "ERROR: disk full" in err.getvalue()
    # the margin it keeps is said, or "1.0 MB free" next to a 0.1 MB frame reads as a bug
    assert re.search(r"disk full: \d+\.\d MB free in .+, 1 MB is kept free, "
                     r"a frame needs \d+\.\d MB", summary.error), summary.error
