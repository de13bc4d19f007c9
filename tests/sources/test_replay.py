"""ReplaySource and ``pystream --replay``: recordings played back, one frame read at a time."""
import json
import tracemalloc

import h5py
import numpy as np
import pytest
import tifffile

from pystream import ReplayError, ReplaySource
from pystream.sources.replay import capture_rate
from pystream.flow import Counters, FrameRouter
from pystream.frame import Frame
from pystream.record import Recorder

from ..pva_helpers import FrameCollector
from ..record.record_helpers import make_frames
from ..test_cli import run_pystream, run_until


def record(out_dir, fmt, frames):
    """Frames written by pystream's own Recorder, as a user's recording is."""
    recorder = Recorder(str(out_dir), fmt=fmt)
    recorder.start()
    for frame in frames:
        recorder.tap(frame)
    assert recorder.stop(drain=True, timeout=60)
    assert recorder.recorded == len(frames)
    return recorder.writer.path


def play(source, timeout=60):
    sink = FrameCollector()
    source.start(sink)
    assert source.wait(timeout), "the replay did not end"
    return sink


@pytest.mark.parametrize("fmt", ["tiff", "tiff-stack", "hdf5"])
def test_a_pystream_recording_replays_exact_values_uids_and_timestamps(tmp_path, fmt):
    originals = make_frames(12, shape=(16, 20), start_uid=101)  # stamped 100 frames a second
    path = record(tmp_path, fmt, originals)
    replay_path = tmp_path if fmt == "tiff" else path             # a sequence: its folder
    assert ReplaySource(replay_path).fps == pytest.approx(100, rel=1e-3)  # the capture rate
    source = ReplaySource(replay_path, fps=0)
    sink = play(source)
    assert source.state == "finished" and sink.states[-1] == "finished"
    assert [f.uid for f in sink.frames] == list(range(101, 113))
    for original, replayed in zip(originals, sink.frames):
        np.testing.assert_array_equal(replayed.array, original.array)
        assert replayed.array.dtype == original.array.dtype
        assert replayed.t_source == original.t_source
    if fmt != "hdf5":  # TIFF descriptions carry the attributes too
        assert sink.frames[0].attributes["Label"] == "frame 101"
    stats = source.stats()
    assert stats["replay_delivered"] == 12 and stats["replay_frames"] == 12


def test_a_glob_plays_matching_files_in_natural_order(tmp_path):
    for i in (1, 2, 10, 11, 3):
        tifffile.imwrite(tmp_path / f"shot{i}.tif", np.full((6, 7), i, np.float32))
    (tmp_path / "notes.txt").write_text("not a frame")
    sink = play(ReplaySource(str(tmp_path / "shot*.tif"), fps=0))
    assert [int(f.array[0, 0]) for f in sink.frames] == [1, 2, 3, 10, 11]
    assert [f.uid for f in sink.frames] == [1, 2, 3, 4, 5]  # no recorded uids: numbered


def test_a_damaged_file_in_a_sequence_costs_one_frame(tmp_path):
    record(tmp_path, "tiff", make_frames(5))
    (tmp_path / "frame_000003.tiff").write_bytes(b"II*\0garbage")
    source = ReplaySource(tmp_path, fps=0)
    sink = play(source)
    assert [f.uid for f in sink.frames] == [1, 2, 4, 5]
    assert sink.counters.snapshot()["rejected_by_reason"] == {"unreadable_file": 1}
    assert source.state == "finished"


def test_an_npy_stack_plays_at_10_fps_by_default(tmp_path):
    stack = np.arange(4 * 5 * 6, dtype=np.int32).reshape(4, 5, 6)
    np.save(tmp_path / "stack.npy", stack)
    assert ReplaySource(tmp_path / "stack.npy").fps == 10
    sink = play(ReplaySource(tmp_path / "stack.npy", fps=0))
    assert len(sink.frames) == 4
    for i, frame in enumerate(sink.frames):
        np.testing.assert_array_equal(frame.array, stack[i])
        assert type(frame.array) is np.ndarray  # a plain array, not a view of the file


def test_another_hdf5_dataset_and_rgb_frames(tmp_path):
    path = tmp_path / "other.h5"
    rgb = np.random.default_rng(0).integers(0, 255, (3, 8, 9, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f["scan/images"] = rgb
    with pytest.raises(ReplayError, match="/scan/images"):  # the error names what is there
        ReplaySource(path)
    sink = play(ReplaySource(path, dataset="/scan/images", fps=0))
    assert [f.decode().color for f in sink.frames] == ["rgb"] * 3
    np.testing.assert_array_equal(sink.frames[2].array, rgb[2])


def test_loop_starts_again_and_uids_keep_increasing(tmp_path):
    path = record(tmp_path, "hdf5", make_frames(10, start_uid=5))
    source = ReplaySource(path, fps=0, loop=True)
    sink = FrameCollector()
    source.start(sink)
    assert sink.wait_for(lambda c: len(c.frames) >= 25)
    source.stop()
    uids = [f.uid for f in sink.frames]
    assert uids == list(range(5, 5 + len(uids)))
    np.testing.assert_array_equal(sink.frames[10].array, sink.frames[0].array)
    assert source.stats()["replay_loops"] >= 2 and source.state == "stopped"
    assert sink.counters.get("dropped_upstream") == 0 and sink.counters.get("restarts") == 0


@pytest.mark.parametrize("make, reason", [
    (lambda d: d / "missing.h5", "no such file"),
    (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt",
     "not a TIFF, HDF5 or .npy file"),
    (lambda d: d, "no TIFF file found"),                      # an empty folder
    (lambda d: str(d / "*.tiff"), "no file matches"),
])
def test_what_is_not_a_recording_is_refused_with_path_and_reason(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(ReplayError) as info:
        ReplaySource(path)
    assert reason in info.value.reason and str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_hdf5_that_is_not_an_image_stack_is_refused(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["entry/data/data"] = np.arange(10.0)     # 1-D: a curve, not images
        f["entry/data/empty"] = np.zeros((0, 4, 4))
        f["entry/text"] = np.array([b"a", b"b"])
    with pytest.raises(ReplayError, match=r"shape \(10,\): not a stack of images"):
        ReplaySource(path)
    with pytest.raises(ReplayError, match="no dataset /entry/missing"):
        ReplaySource(path, dataset="/entry/missing")
    with pytest.raises(ReplayError, match="is a group"):
        ReplaySource(path, dataset="/entry")
    with pytest.raises(ReplayError, match="no frames"):
        ReplaySource(path, dataset="/entry/data/empty")
    np.save(tmp_path / "flat.npy", np.zeros((4, 4)))
    with pytest.raises(ReplayError, match="not a stack"):
        ReplaySource(tmp_path / "flat.npy")
    with pytest.raises(ReplayError, match="--dataset is for HDF5"):
        ReplaySource(tmp_path / "flat.npy", dataset="/x")


class CountingSink(FrameRouter):
    """Counts frames and keeps none (so memory shows what the source holds)."""

    def __init__(self):
        super().__init__(Counters(), slot=None)
        self.checksum = 0

    def on_frame(self, frame):
        super().on_frame(frame)
        self.checksum += int(frame.array[0, 0])


@pytest.mark.parametrize("fmt", ["hdf5", "tiff-stack", "npy"])
def test_a_file_is_read_one_frame_at_a_time(tmp_path, fmt):
    """48 frames of 1 MB: the source never holds more than a few at once."""
    n, shape = 48, (512, 1024)
    frame_mb = np.prod(shape) * 2 / 1e6
    if fmt == "npy":
        path = tmp_path / "big.npy"
        stack = np.lib.format.open_memmap(path, "w+", np.uint16, (n,) + shape)
        stack[:, 0, 0] = np.arange(n)
        stack.flush()
        del stack
    else:
        path = record(tmp_path, fmt, [Frame.from_array(np.full(shape, i, np.uint16), uid=i + 1,
                                                       source="test") for i in range(n)])
    tracemalloc.start()
    try:
        source = ReplaySource(path, fps=0)
        built_mb = tracemalloc.get_traced_memory()[1] / 1e6
        sink = CountingSink()
        source.start(sink)
        assert source.wait(60) and source.state == "finished"
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    assert sink.counters.get("received") == n and sink.checksum == sum(range(n))
    assert built_mb < frame_mb            # the constructor reads no frame
    assert peak_mb < 6 * frame_mb         # playing holds a frame or two, never the file


def test_cli_replay_plays_to_finished_offscreen(tmp_path, home):
    path = record(tmp_path / "rec", "hdf5", make_frames(20, shape=(32, 32)))
    stats = tmp_path / "stats.json"
    code, err, data = run_until(["--replay", path, "--fps", "50", "--offscreen", "--no-plugins"],
                                home, stats, lambda s: s["state"] == "finished")
    assert data["state"] == "finished", err
    assert data["received"] == 20 and data["replay_frames"] == 20
    assert data["source"] == f"replay://{path}" and data["dropped_upstream"] == 0


def test_cli_exit_after_ends_a_looping_replay(tmp_path, home):
    path = record(tmp_path / "rec", "tiff-stack", make_frames(5, shape=(8, 8)))
    stats = tmp_path / "stats.json"
    proc = run_pystream(["--replay", path, "--loop", "--fps", "0", "--offscreen", "--no-plugins",
                         "--exit-after", "2", "--stats-json", str(stats)], home)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(stats.read_text())
    assert data["state"] == "stopped" and data["received"] > 5 and data["replay_loops"] >= 1


def test_cli_refuses_a_file_it_cannot_play_with_exit_2(tmp_path, home):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    proc = run_pystream(["--replay", str(bad), "--offscreen"], home)
    assert proc.returncode == 2
    assert f"cannot replay {bad}: not a TIFF, HDF5 or .npy file" in proc.stderr


def test_capture_rate_of_frames_pushed_in_chunks():
    """Five frames per push share one timestamp: the rate is still the frames' (100 Hz)."""
    stamps = np.repeat(1.7e9 + np.arange(20) * 0.05, 5)
    assert capture_rate(stamps) == pytest.approx(100, rel=0.06)
    assert capture_rate([np.nan, 5.0]) is None and capture_rate([3.0, 3.0]) is None
