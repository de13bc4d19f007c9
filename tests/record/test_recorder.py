"""Recorder: lossless up to a byte budget, drops counted exactly, disk errors stop cleanly."""
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tifffile

from pystream.flow import Counters, FrameRouter
from pystream.record import STAT_KEYS, Hdf5Writer, Recorder, RecordError
from .record_helpers import lazy_frame, make_frames, rejected_frame, wait_for


def router_with(recorder):
    router = FrameRouter(Counters(), slot=None)
    router.add_tap(recorder.tap)
    return router


def read_sequence(directory, prefix="frame"):
    names = sorted(n for n in os.listdir(directory) if n.startswith(prefix + "_") and n.endswith(".tiff"))
    out = []
    for name in names:
        with tifffile.TiffFile(os.path.join(directory, name)) as tif:
            out.append((json.loads(tif.pages[0].description)["uid"], tif.asarray()))
    return out


@pytest.mark.parametrize("fmt,stack", [("tiff", False), ("tiff", True), ("hdf5", False)])
def test_every_frame_recorded_in_order(tmp_path, fmt, stack):
    frames = make_frames(30)
    recorder = Recorder(tmp_path, fmt=fmt, stack=stack).start()
    router = router_with(recorder)
    for frame in frames:
        router.on_frame(frame)
    assert recorder.stop(drain=True) is True
    stats = recorder.stats()
    assert stats["recorded"] == 30 and stats["record_drops"] == 0 and stats["record_state"] == "stopped"
    expected = np.stack([f.array for f in frames])
    if fmt == "hdf5":
        with h5py.File(recorder.path, "r") as f:
            np.testing.assert_array_equal(f["/entry/data/data"][()], expected)
            np.testing.assert_array_equal(f["/entry/data/uid"][()], np.arange(1, 31))
    elif stack:
        np.testing.assert_array_equal(tifffile.imread(recorder.path), expected)
    else:
        got = read_sequence(tmp_path)
        assert [uid for uid, _ in got] == list(range(1, 31))
        np.testing.assert_array_equal(np.stack([a for _, a in got]), expected)


def test_slow_disk_drops_are_counted_exactly_and_memory_stays_bounded(tmp_path, slow):
    frames = make_frames(20, shape=(32, 32))
    frame_bytes = frames[0].nbytes
    # one writer thread: exact numbers (with several, each holds one more frame, see below)
    recorder = Recorder(tmp_path, buffer_bytes=3 * frame_bytes, process=slow,
                        writer_threads=1).start()
    router = router_with(recorder)
    router.on_frame(frames[0])
    assert slow.entered.wait(10)  # the writer holds frame 1; the queue is empty
    for frame in frames[1:]:
        router.on_frame(frame)
    stats = recorder.stats()
    assert stats["record_drops"] == 16  # 3 frames fit the budget, 16 do not
    assert stats["record_queue_fill"] == pytest.approx(1.0)
    assert recorder.queue.peak_bytes <= 3 * frame_bytes
    slow.release.set()
    recorder.stop(drain=True)
    stats = recorder.stats()
    assert stats["recorded"] == 4 and stats["record_drops"] == 16
    assert stats["recorded"] + stats["record_drops"] == len(frames) == router.counters.get("received")
    assert [uid for uid, _ in read_sequence(tmp_path)] == [1, 2, 3, 4]


def test_tap_never_decodes(tmp_path, slow):
    recorder = Recorder(tmp_path, process=slow, writer_threads=1).start()  # no parallel decode
    router = router_with(recorder)
    array = np.arange(64, dtype=np.uint16).reshape(8, 8)
    first = lazy_frame(array, 1)
    router.on_frame(first)
    assert slow.entered.wait(10)
    queued = [lazy_frame(array + i, i) for i in range(2, 6)]
    for frame in queued:
        router.on_frame(frame)
    assert not any(frame.decoded for frame in queued)  # the source thread did no decoding
    slow.release.set()
    recorder.stop()
    assert recorder.stats()["recorded"] == 5
    assert [uid for uid, _ in read_sequence(tmp_path)] == [1, 2, 3, 4, 5]


def test_rejected_frames_are_counted_and_recording_carries_on(tmp_path):
    good = make_frames(4)
    recorder = Recorder(tmp_path).start()
    for frame in (good[0], rejected_frame(90), good[1], rejected_frame(91, "bad_codec"), good[2], good[3]):
        recorder.tap(frame)
    recorder.stop()
    stats = recorder.stats()
    assert stats["recorded"] == 4 and stats["record_rejected"] == 2 and stats["record_drops"] == 0
    assert recorder.rejected_by_reason == {"size_mismatch": 1, "bad_codec": 1}
    assert [uid for uid, _ in read_sequence(tmp_path)] == [1, 2, 3, 4]


def test_processed_recording(tmp_path):
    frames = make_frames(3, dtype="float32")

    def double(array, meta):
        assert "uid" in meta and "attributes" in meta
        return array * 2

    recorder = Recorder(tmp_path, fmt="hdf5", process=double).start()
    for frame in frames:
        recorder.tap(frame)
    recorder.stop()
    with h5py.File(recorder.path, "r") as f:
        np.testing.assert_array_equal(f["/entry/data/data"][()], np.stack([fr.array * 2 for fr in frames]))


def test_failing_process_is_a_reject_not_a_crash(tmp_path):
    def broken(array, meta):
        if meta["uid"] == 2:
            raise ZeroDivisionError("plugin bug")
        return array

    recorder = Recorder(tmp_path, process=broken).start()
    for frame in make_frames(3):
        recorder.tap(frame)
    recorder.stop()
    assert recorder.stats()["recorded"] == 2
    assert recorder.rejected_by_reason == {"process_error": 1}


def test_stop_without_drain_drops_the_queue(tmp_path, slow):
    frames = make_frames(10)
    recorder = Recorder(tmp_path, process=slow).start()
    recorder.tap(frames[0])
    assert slow.entered.wait(10)
    for frame in frames[1:]:
        recorder.tap(frame)
    assert recorder.stop(drain=False, timeout=0) is False  # asks, does not block
    slow.release.set()
    assert recorder.wait(10)
    stats = recorder.stats()
    assert stats["recorded"] == 1 and stats["record_drops"] == 9
    assert [uid for uid, _ in read_sequence(tmp_path)] == [1]


def test_stop_drains_in_the_background(tmp_path, slow):
    recorder = Recorder(tmp_path, process=slow).start()
    for frame in make_frames(5):
        recorder.tap(frame)
    assert slow.entered.wait(10)
    assert recorder.stop(drain=True, timeout=0) is False
    assert recorder.stats()["record_state"] == "stopping" and recorder.stats()["recording"]
    recorder.tap(make_frames(1, start_uid=99)[0])  # after stop: ignored, not counted
    slow.release.set()
    assert recorder.wait(10)
    assert recorder.stats()["recorded"] == 5 and recorder.offered == 5


def test_stats_keys_and_counters(tmp_path):
    recorder = Recorder(tmp_path, fmt="hdf5").start()
    counters = Counters()
    recorder.attach(counters)
    for frame in make_frames(3):
        recorder.tap(frame)
    assert wait_for(lambda: recorder.stats()["recorded"] == 3)
    stats = recorder.stats()
    assert tuple(stats) == STAT_KEYS
    assert stats["recording"] is True and stats["record_state"] == "recording"
    assert stats["record_path"].endswith("frame_000001.h5")
    snap = counters.snapshot()
    assert snap["recorded"] == 3 and snap["recording"] is True
    assert "REC 3 frames" in recorder.status_text()
    recorder.stop()
    assert recorder.stats()["recording"] is False and recorder.stats()["record_mb_per_s"] > 0
    assert "recorded 3 frames" in recorder.status_text()


def test_the_counters_read_the_final_numbers_at_once_after_stop(tmp_path):
    """A snapshot taken just before the last frames were written must not be
    served again after the recording ended (the final stats of a run)."""
    recorder = Recorder(tmp_path, fmt="hdf5").start()
    counters = Counters()
    recorder.attach(counters)
    for frame in make_frames(2):
        recorder.tap(frame)
    assert wait_for(lambda: recorder.stats()["recorded"] == 2)
    assert counters.snapshot()["recorded"] == 2  # fills the per-snapshot cache
    for frame in make_frames(3, start_uid=3):
        recorder.tap(frame)
    recorder.stop(drain=True)
    snap = counters.snapshot()  # well within the cache's lifetime
    assert snap["recorded"] == 5 and snap["recording"] is False


def test_max_frames(tmp_path):
    recorder = Recorder(tmp_path, max_frames=5).start()
    for frame in make_frames(8):
        recorder.tap(frame)
    assert recorder.target_reached
    recorder.stop()
    assert recorder.stats()["recorded"] == 5 and recorder.stats()["record_drops"] == 0


def test_start_errors_are_reported(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(RecordError) as info:
        Recorder(not_a_dir).start()
    assert str(not_a_dir) in str(info.value)
    with pytest.raises(RecordError, match="unknown record format"):
        Recorder(tmp_path, fmt="avi").start()
    with pytest.raises(RecordError, match="compression"):
        Recorder(tmp_path, fmt="hdf5", compression="bzip9").start()
    recorder = Recorder(tmp_path, fmt="tiff", compression="no-such-codec")
    with pytest.raises(RecordError, match="compression"):
        recorder.start()
    assert recorder.stats()["record_state"] == "error"


def test_creates_the_output_directory(tmp_path):
    target = tmp_path / "new" / "run1"
    recorder = Recorder(target).start()
    recorder.tap(make_frames(1)[0])
    recorder.stop()
    assert (target / "frame_000001.tiff").exists()


# ------------------------------------------------------------------ disk errors

def feed_until_error(recorder, router, frames):
    for frame in frames:
        router.on_frame(frame)
        if recorder.state == "error":
            break
        wait_for(lambda: len(recorder.queue) == 0 or recorder.state == "error", timeout=5)
    assert wait_for(lambda: recorder.state == "error", timeout=10)
    recorder.stop()


@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.parametrize("check_space", [True, False], ids=["preflight", "real-ENOSPC"])
def test_disk_full_tiff_sequence(small_tmpfs, check_space, threads):
    frames = make_frames(40, shape=(256, 256))  # 128 KiB each: 2 MiB fills after ~15
    recorder = Recorder(small_tmpfs, check_space=check_space, writer_threads=threads).start()
    router = router_with(recorder)
    feed_until_error(recorder, router, frames)
    stats = recorder.stats()
    assert stats["record_state"] == "error" and "disk full" in stats["record_error"]
    assert recorder.finished and not stats["recording"]
    got = read_sequence(small_tmpfs)  # every file left behind is a complete frame
    assert len(got) == stats["recorded"] > 0
    assert len(os.listdir(small_tmpfs)) == stats["recorded"]  # no half-written file
    for uid, array in got:
        np.testing.assert_array_equal(array, frames[uid - 1].array)
    assert stats["recorded"] + stats["record_drops"] == recorder.offered
    # the rest of the program carries on: the router still takes frames
    before = router.counters.get("received")
    router.on_frame(make_frames(1, start_uid=500)[0])
    assert router.counters.get("received") == before + 1


@pytest.mark.parametrize("check_space", [True, False], ids=["preflight", "real-ENOSPC"])
def test_disk_full_tiff_stack_keeps_complete_pages(small_tmpfs, check_space):
    frames = make_frames(40, shape=(256, 256))
    recorder = Recorder(small_tmpfs, stack=True, check_space=check_space).start()
    feed_until_error(recorder, router_with(recorder), frames)
    stats = recorder.stats()
    assert "disk full" in stats["record_error"]
    with tifffile.TiffFile(recorder.path) as tif:
        pages = [json.loads(page.description)["uid"] for page in tif.pages]
        stack = tif.asarray()
    assert pages == list(range(1, stats["recorded"] + 1))
    np.testing.assert_array_equal(stack, np.stack([f.array for f in frames[:stats["recorded"]]]))


def check_hdf5_after_disk_full(path, frames, recorded):
    with h5py.File(path, "r") as f:
        assert f["/entry/data/data"].shape[0] == recorded > 0
        np.testing.assert_array_equal(f["/entry/data/uid"][()], np.arange(1, recorded + 1))
        np.testing.assert_array_equal(f["/entry/data/data"][()],
                                      np.stack([fr.array for fr in frames[:recorded]]))
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # reserve file gone


def test_disk_full_hdf5_keeps_what_was_written(small_tmpfs, monkeypatch):
    monkeypatch.setattr(Hdf5Writer, "reserve_bytes", 256 << 10)  # the tmpfs is only 2 MiB
    frames = make_frames(40, shape=(256, 256))
    recorder = Recorder(small_tmpfs, fmt="hdf5").start()
    feed_until_error(recorder, router_with(recorder), frames)
    stats = recorder.stats()
    assert "disk full" in stats["record_error"]
    check_hdf5_after_disk_full(recorder.path, frames, stats["recorded"])


REAL_ENOSPC_HDF5 = """
import sys
sys.path.insert(0, sys.argv[2])
from pystream.record import Hdf5Writer, Recorder
from tests.record.record_helpers import make_frames, wait_for
from tests.record.test_recorder import check_hdf5_after_disk_full
Hdf5Writer.reserve_bytes = 256 << 10
frames = make_frames(40, shape=(256, 256))
recorder = Recorder(sys.argv[1], fmt="hdf5", check_space=False).start()
for frame in frames:
    recorder.tap(frame)
    wait_for(lambda: len(recorder.queue) == 0 or recorder.finished, timeout=5)
recorder.stop()
stats = recorder.stats()
assert "disk full" in stats["record_error"], stats
check_hdf5_after_disk_full(recorder.path, frames, stats["recorded"])
print("OK", stats["recorded"])
"""


def test_real_enospc_under_hdf5_neither_crashes_nor_corrupts(small_tmpfs):
    """HDF5 itself crashes on close after ENOSPC unless it has room: the reserve gives it room.

    In a subprocess, so a regression is a failed test, not a dead test session.
    """
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", REAL_ENOSPC_HDF5, str(small_tmpfs), repo],
                            capture_output=True, text=True, timeout=60, cwd=repo)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("OK")


@pytest.mark.parametrize("fmt,stack", [("tiff", False), ("tiff", True), ("hdf5", False)])
def test_output_directory_removed_mid_recording(tmp_path, fmt, stack, monkeypatch):
    import pystream.record.writers as writers

    monkeypatch.setattr(writers, "FILE_CHECK_INTERVAL", 0.0)
    out = tmp_path / "out"
    frames = make_frames(10)
    recorder = Recorder(out, fmt=fmt, stack=stack).start()
    router = router_with(recorder)
    for frame in frames[:3]:
        router.on_frame(frame)
    assert wait_for(lambda: recorder.stats()["recorded"] == 3)
    shutil.rmtree(out)
    for frame in frames[3:]:
        router.on_frame(frame)
    assert wait_for(lambda: recorder.finished)
    stats = recorder.stats()
    assert stats["record_state"] == "error"
    assert "removed" in stats["record_error"] or "No such file" in stats["record_error"]
    assert stats["recorded"] == 3 and stats["recorded"] + stats["record_drops"] == 10
