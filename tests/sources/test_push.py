"""PushSource: a user's program hands frames over (callback mode)."""
import threading

import h5py
import numpy as np
import pytest

from pystream import PushSource
from pystream.record import run_recording
from pystream.sources._arrays import FrameArrayError

from ..pva_helpers import FrameCollector


class FailingSink(FrameCollector):
    """A consumer that breaks on its ``fail_at``-th frame."""

    def __init__(self, fail_at=1):
        super().__init__()
        self.fail_at = fail_at
        self.seen = 0

    def on_frame(self, frame):
        self.seen += 1
        if self.seen >= self.fail_at:
            raise RuntimeError("viewer crashed")
        super().on_frame(frame)


def accounted(stats):
    lost = stats["push_drops"] + stats["push_discarded"]
    return stats["pushed"] == stats["push_delivered"] + lost


def test_every_shape_and_dtype_arrives_exact_with_uids_and_timestamps():
    src = PushSource()
    sink = FrameCollector()
    src.start(sink)
    stack = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    spectrum = np.linspace(0, 1, 7, dtype=np.float32)
    assert src.push(stack) == 3                                   # (N, H, W): uids 1, 2, 3
    assert src.push(rgb, uids=10, timestamps=123.5) == 1          # (H, W, 3)
    assert src.push(spectrum) == 1                                # 1-D: uid 11
    assert src.push(np.ones((2, 4, 5, 3), bool), uids=[20, 22], timestamps=[1.0, 2.0]) == 2
    assert src.push(np.full((4, 5), -2.5)) == 1                   # float64, uid 23
    assert src.finalize(timeout=30)
    assert src.state == "finished" and sink.states[-1] == "finished"
    frames = sink.frames
    assert [f.uid for f in frames] == [1, 2, 3, 10, 11, 20, 22, 23]
    for i in range(3):
        np.testing.assert_array_equal(frames[i].array, stack[i])
    np.testing.assert_array_equal(frames[3].array, rgb)
    assert frames[3].decode().color == "rgb" and frames[3].t_source == 123.5
    np.testing.assert_array_equal(frames[4].array, spectrum)
    assert [f.t_source for f in frames[5:7]] == [1.0, 2.0]
    assert frames[6].array.dtype == bool and frames[7].array.dtype == np.float64
    assert all(f.t_source is not None for f in frames)
    assert sink.counters.get("received") == 8


def test_push_copies_so_the_caller_may_reuse_its_buffer():
    src = PushSource()
    buffer = np.zeros((2, 8, 8), np.int32)
    for value in (1, 2, 3):
        buffer[:] = value
        src.push(buffer)              # before any consumer: the frames wait in the queue
    sink = FrameCollector()
    src.start(sink)
    assert src.finalize(timeout=30)
    assert [int(f.array[0, 0]) for f in sink.frames] == [1, 1, 2, 2, 3, 3]


def test_bad_arrays_are_refused_at_push_with_the_reason():
    src = PushSource()
    with pytest.raises(FrameArrayError, match="shape"):
        src.push(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="complex"):
        src.push(np.zeros((4, 4), complex))
    with pytest.raises(ValueError, match="2 uids for 3 frames"):
        src.push(np.zeros((3, 4, 4)), uids=[1, 2])
    assert src.stats()["pushed"] == 0


def test_finalize_waits_for_a_consumer_then_returns_true_twice():
    src = PushSource()
    src.push(np.zeros((4, 16, 16), np.uint16))
    assert src.finalize(timeout=0.2) is False      # nobody consumes yet: it waited, then gave up
    with pytest.raises(RuntimeError, match="after finalize"):
        src.push(np.zeros((16, 16)))
    result = []
    waiter = threading.Thread(target=lambda: result.append(src.finalize()))
    waiter.start()
    sink = FrameCollector()
    src.start(sink)                                # the consumer arrives: the waiter returns
    waiter.join(30)
    assert result == [True]
    assert [f.uid for f in sink.frames] == [1, 2, 3, 4]
    assert src.finalize() is True                  # safe twice
    assert src.state == "finished" and accounted(src.stats())


def test_finalize_returns_after_a_consumer_failure_and_counts_what_was_lost():
    src = PushSource()
    sink = FailingSink(fail_at=3)
    for _ in range(5):
        src.push(np.zeros((8, 8), np.uint8))
    src.start(sink)
    assert src.wait(30) and src.state == "error" and "viewer crashed" in src.message
    assert sink.counters.snapshot()["state"] == "error"
    assert src.push(np.zeros((8, 8), np.uint8)) == 0   # an acquisition loop runs on unharmed
    assert src.finalize(timeout=30) is False
    assert src.finalize(timeout=30) is False       # and again
    stats = src.stats()
    assert stats["push_delivered"] == 2 and stats["pushed"] == 6
    assert stats["push_discarded"] == 3 and stats["push_drops"] == 1 and accounted(stats)


def test_stopped_by_the_consumer_finalize_returns_and_later_pushes_count_as_drops():
    src = PushSource()
    sink = FrameCollector()
    src.start(sink)
    src.push(np.zeros((3, 8, 8)))
    assert sink.wait_for(lambda c: len(c.frames) == 3)
    src.stop()
    src.stop()
    assert src.state == "stopped" and sink.states[-1] == "stopped"
    assert src.push(np.zeros((2, 8, 8))) == 0
    assert src.finalize(timeout=30) is False
    stats = src.stats()
    assert stats["push_drops"] == 2 and accounted(stats)


def test_a_full_queue_drops_exactly_what_does_not_fit_and_keeps_uids():
    frame_bytes = 32 * 32 * 2
    src = PushSource(max_bytes=3 * frame_bytes)
    queued = [src.push(np.full((32, 32), i, np.uint16)) for i in range(10)]
    assert queued == [1, 1, 1] + [0] * 7           # nobody takes them: the queue is full
    assert src.push(np.zeros((5, 32, 32), np.uint16)) == 0
    stats = src.stats()
    assert stats["pushed"] == 15 and stats["push_drops"] == 12
    assert stats["push_queued"] == 3 and stats["push_queue_fill"] == 1.0
    sink = FrameCollector()
    src.start(sink)
    assert src.finalize(timeout=30)
    assert [int(f.array[0, 0]) for f in sink.frames] == [0, 1, 2]
    assert accounted(src.stats())
    assert src.stats()["push_queue_fill"] == 0.0


def test_drops_show_as_a_uid_gap_downstream():
    frame_bytes = 16 * 16
    src = PushSource(max_bytes=2 * frame_bytes)
    for _ in range(5):
        src.push(np.zeros((16, 16), np.uint8))     # uids 1..5; 3, 4, 5 dropped
    sink = FrameCollector()
    src.start(sink)
    assert sink.wait_for(lambda c: len(c.frames) == 2)
    src.push(np.zeros((16, 16), np.uint8))         # uid 6
    assert src.finalize(timeout=30)
    assert [f.uid for f in sink.frames] == [1, 2, 6]
    assert sink.counters.get("dropped_upstream") == 3


def test_leaving_the_with_block_ends_the_stream():
    src = PushSource()
    sink = FrameCollector()
    src.start(sink)
    with src:
        src.push(np.zeros((2, 4, 4)))
    assert src.state == "finished" and len(sink.frames) == 2


def test_an_exception_in_the_with_block_delivers_what_was_pushed_and_ends_in_error():
    src = PushSource()
    sink = FrameCollector()
    src.start(sink)
    with pytest.raises(KeyError):
        with src:
            src.push(np.zeros((3, 4, 4)))
            raise KeyError("detector lost")
    assert len(sink.frames) == 3
    assert src.state == "error" and "KeyError" in src.message and "detector lost" in src.message


def test_several_threads_push_at_once_every_frame_once():
    src = PushSource()
    sink = FrameCollector()
    src.start(sink)

    def feed(value):
        for _ in range(50):
            src.push(np.full((2, 8, 8), value, np.uint8))

    threads = [threading.Thread(target=feed, args=(v,)) for v in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert src.finalize(timeout=30)
    uids = [f.uid for f in sink.frames]
    assert sorted(uids) == list(range(1, 301)) and uids == sorted(uids)
    assert sorted(int(f.array[0, 0]) for f in sink.frames) == [1] * 100 + [2] * 100 + [3] * 100


def test_the_smallest_program_records_every_frame(tmp_path):
    """The README's program, with today's headless recorder as the consumer."""
    src = PushSource()

    def acquire():
        with src:
            for i in range(40):
                src.push(np.full((5, 128, 96), i, np.uint16))   # (N, H, W): 5 frames

    feeder = threading.Thread(target=acquire)
    feeder.start()
    summary = run_recording(src, str(tmp_path), fmt="hdf5", seconds=60, progress=False,
                            stream=open(tmp_path / "log.txt", "w"))
    feeder.join(30)
    assert summary.stop_reason == "source finished" and summary.frames == 200
    assert summary.drops == 0
    with h5py.File(summary.path, "r") as f:
        data = f["/entry/data/data"]
        assert data.shape == (200, 128, 96)
        np.testing.assert_array_equal(f["/entry/data/uid"][()], np.arange(1, 201))
        np.testing.assert_array_equal(data[:, 0, 0], np.repeat(np.arange(40), 5))
