"""A TIFF sequence written by several threads: order, numbering, counts, errors."""
import errno
import json
import os
import random
import threading
import time

import numpy as np
import pytest
import tifffile

from pystream.record import Recorder, TiffSequenceWriter
from pystream.record.writers import INDEX_WIDTH

from .record_helpers import make_frames, rejected_frame, wait_for
from .test_recorder import read_sequence

REAL_IMWRITE = tifffile.imwrite


def uid_of(description):
    return json.loads(description)["uid"]


@pytest.fixture
def jittery_writes(monkeypatch):
    """File writes finish out of order (each sleeps 0-4 ms first)."""
    rng = random.Random(7)

    def imwrite(fh, array, description=None, **kwargs):
        time.sleep(rng.random() * 0.004)
        return REAL_IMWRITE(fh, array, description=description, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", imwrite)


def check_files(directory, frames_by_uid, expected_uids, prefix="frame"):
    """Files prefix_000001.. hold exactly the expected uids, in order, bit for bit."""
    names = sorted(n for n in os.listdir(directory) if n.startswith(prefix + "_"))
    assert names == [f"{prefix}_{i:0{INDEX_WIDTH}d}.tiff" for i in range(1, len(expected_uids) + 1)]
    got = read_sequence(directory, prefix)
    assert [uid for uid, _ in got] == expected_uids
    for uid, array in got:
        expected = frames_by_uid[uid].array
        assert array.dtype == expected.dtype
        np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize("threads", [2, 4])
def test_several_threads_keep_frame_order_and_numbering(tmp_path, jittery_writes, threads):
    frames = make_frames(60, shape=(24, 32))
    recorder = Recorder(tmp_path, writer_threads=threads).start()
    assert recorder.n_threads == threads
    for frame in frames:
        recorder.tap(frame)
    assert recorder.stop(drain=True) is True  # everything queued is written, then closed
    stats = recorder.stats()
    assert stats["recorded"] == 60 and stats["record_drops"] == 0 and stats["record_state"] == "stopped"
    check_files(tmp_path, {f.uid: f for f in frames}, list(range(1, 61)))
    writer = recorder.writer
    assert writer.file_count == writer.frames_written == 60
    assert writer.first_path.endswith("frame_000001.tiff")
    assert writer.path.endswith("frame_000060.tiff")
    assert recorder.bytes_written == sum(f.array.nbytes for f in frames)


def test_rejected_frames_take_no_number_with_several_threads(tmp_path, jittery_writes):
    good = make_frames(12, dtype="float32")
    sequence = []
    for i, frame in enumerate(good):
        sequence.append(frame)
        if i % 3 == 1:
            sequence.append(rejected_frame(1000 + i))
    recorder = Recorder(tmp_path, writer_threads=4).start()
    for frame in sequence:
        recorder.tap(frame)
    recorder.stop()
    stats = recorder.stats()
    assert stats["recorded"] == 12 and stats["record_rejected"] == 4 and stats["record_drops"] == 0
    assert recorder.offered == stats["recorded"] + stats["record_rejected"] + stats["record_drops"]
    check_files(tmp_path, {f.uid: f for f in good}, list(range(1, 13)))


def test_process_runs_in_frame_order_one_at_a_time(tmp_path, jittery_writes):
    seen = []
    busy = threading.Lock()

    def process(array, meta):
        assert busy.acquire(blocking=False), "process called concurrently"
        try:
            seen.append(meta["uid"])
            time.sleep(0.001)
            return array + 1
        finally:
            busy.release()

    frames = make_frames(30, dtype="int32")
    recorder = Recorder(tmp_path, writer_threads=4, process=process).start()
    for frame in frames:
        recorder.tap(frame)
    recorder.stop()
    assert seen == list(range(1, 31))
    got = read_sequence(tmp_path)
    assert [uid for uid, _ in got] == list(range(1, 31))
    for (uid, array), frame in zip(got, frames):
        np.testing.assert_array_equal(array, frame.array + 1)


def test_disk_error_mid_way_leaves_only_complete_files(tmp_path, monkeypatch):
    """Frame 9's write fails half-way (ENOSPC) while other threads are writing."""
    frames = make_frames(40, shape=(64, 64))
    started = threading.Event()

    def imwrite(fh, array, description=None, **kwargs):
        if uid_of(description) == 9:
            fh.write(b"II*\0" + bytes(1000))  # half a frame, then the disk says no
            fh.flush()
            started.set()
            raise OSError(errno.ENOSPC, "No space left on device")
        time.sleep(0.002)
        return REAL_IMWRITE(fh, array, description=description, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", imwrite)
    recorder = Recorder(tmp_path, writer_threads=4).start()
    for frame in frames:
        recorder.tap(frame)
    assert recorder.wait(20)
    stats = recorder.stats()
    assert started.is_set()
    assert stats["record_state"] == "error" and "disk full" in stats["record_error"]
    assert recorder.offered == 40
    assert stats["recorded"] + stats["record_drops"] + stats["record_rejected"] == 40
    got = read_sequence(tmp_path)  # every file is a complete frame: no half-written one
    assert len(got) == len(os.listdir(tmp_path)) == stats["recorded"] >= 8
    uids = [uid for uid, _ in got]
    assert 9 not in uids and uids == sorted(uids) and uids[:8] == list(range(1, 9))
    for uid, array in got:
        np.testing.assert_array_equal(array, frames[uid - 1].array)
    # numbered in frame order; the failed frame's number is not reused by a later frame
    for name in os.listdir(tmp_path):
        with tifffile.TiffFile(tmp_path / name) as tif:
            assert int(name[len("frame_"):-len(".tiff")]) == uid_of(tif.pages[0].description)


def test_stop_without_drain_writes_only_the_frame_in_hand(tmp_path, slow):
    frames = make_frames(10)
    recorder = Recorder(tmp_path, process=slow, writer_threads=4).start()
    recorder.tap(frames[0])
    assert slow.entered.wait(10)
    for frame in frames[1:]:
        recorder.tap(frame)
    assert wait_for(lambda: len(recorder.queue) <= 6)  # the other threads took theirs
    recorder.stop(drain=False, timeout=0)
    slow.release.set()
    assert recorder.wait(10)
    stats = recorder.stats()
    assert stats["recorded"] == 1 and stats["record_drops"] == 9
    assert [uid for uid, _ in read_sequence(tmp_path)] == [1]


def test_memory_stays_bounded_with_several_threads(tmp_path, slow):
    """Each extra thread holds at most one frame beyond the budget; counts stay exact."""
    frames = make_frames(20, shape=(32, 32))
    frame_bytes = frames[0].nbytes
    recorder = Recorder(tmp_path, buffer_bytes=3 * frame_bytes, process=slow,
                        writer_threads=3).start()
    recorder.tap(frames[0])
    assert slow.entered.wait(10)
    for frame in frames[1:]:
        recorder.tap(frame)
        time.sleep(0.002)
    assert recorder.queue.peak_bytes <= 3 * frame_bytes
    drops = recorder.stats()["record_drops"]
    assert 14 <= drops <= 16  # 3 queued + up to 2 held by the other threads
    slow.release.set()
    recorder.stop(drain=True)
    stats = recorder.stats()
    assert stats["record_drops"] == drops
    assert stats["recorded"] + stats["record_drops"] == 20
    assert [uid for uid, _ in read_sequence(tmp_path)] == list(range(1, stats["recorded"] + 1))


@pytest.mark.parametrize("fmt,stack", [("tiff", True), ("hdf5", False)])
def test_one_file_formats_stay_single_threaded(tmp_path, fmt, stack):
    recorder = Recorder(tmp_path, fmt=fmt, stack=stack, writer_threads=4).start()
    assert recorder.n_threads == 1
    recorder.stop()


def test_default_threads_for_a_sequence(tmp_path):
    recorder = Recorder(tmp_path).start()
    assert recorder.n_threads == TiffSequenceWriter.default_threads > 1
    recorder.stop()


def test_reserved_files_finishing_out_of_order(tmp_path):
    frames = make_frames(3)
    writer = TiffSequenceWriter(str(tmp_path))
    writer.open()
    slots = [writer.reserve(f.array.nbytes) for f in frames]
    for slot, frame in reversed(list(zip(slots, frames))):
        writer.write_reserved(slot, frame.array, frame.metadata())
    writer.close()
    assert writer.first_path.endswith("frame_000001.tiff")
    assert writer.path.endswith("frame_000003.tiff") and writer.file_count == 3
    check_files(tmp_path, {f.uid: f for f in frames}, [1, 2, 3])
