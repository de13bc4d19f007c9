"""IterSource: frames pulled from a user's iterator, paced on a fixed timetable."""
import time

import numpy as np
import pytest

from pystream import IterSource

from ..pva_helpers import FrameCollector


def frames(n, shape=(8, 8), dtype=np.uint16):
    for i in range(n):
        yield np.full(shape, i, dtype)


def play(source, timeout=60):
    sink = FrameCollector()
    source.start(sink)
    assert source.wait(timeout), "the stream did not end"
    return sink


def test_mean_rate_is_fps_within_2_percent_over_10_s():
    source = IterSource(frames(501), fps=50)
    sink = play(source)
    stamps = np.array([f.t_source for f in sink.frames])
    assert len(stamps) == 501
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert rate == pytest.approx(50, rel=0.02)
    assert source.state == "finished" and source.stats()["iter_delivered"] == 501


def test_a_late_frame_does_not_shift_the_later_slots():
    fps, stall = 20.0, 0.5

    def slow_at_5():
        for i in range(30):
            if i == 5:
                time.sleep(stall)  # a slow producer, e.g. a disk hiccup
            yield np.full((4, 4), i, np.uint8)

    source = IterSource(slow_at_5(), fps=fps)
    sink = play(source)
    stamps = np.array([f.t_source for f in sink.frames])
    assert len(stamps) == 30
    # per-frame sleeping would end at 29/fps + stall; the timetable keeps 29/fps
    assert stamps[-1] - stamps[0] < 29 / fps + stall / 2
    # the frames due during the stall went out at once, to catch up
    assert stamps[7] - stamps[5] < 1.5 / fps
    assert source.stats()["iter_late"] >= 5


def test_fps_zero_is_as_fast_as_taken_and_chunks_are_split():
    chunks = [np.full((10, 6, 6), i, np.int16) for i in range(20)]
    source = IterSource(chunks, fps=0)
    sink = play(source)
    assert [f.uid for f in sink.frames] == list(range(1, 201))
    assert [int(f.array[0, 0]) for f in sink.frames] == list(np.repeat(np.arange(20), 10))
    assert sink.states == ["connected", "finished"]


def test_an_exception_in_the_iterator_ends_the_stream_in_error_with_its_message():
    def broken():
        yield from frames(3)
        raise OSError("camera unplugged")

    source = IterSource(broken(), fps=0)
    sink = play(source)
    assert len(sink.frames) == 3
    assert source.state == "error" and "camera unplugged" in source.message
    snap = sink.counters.snapshot()
    assert snap["state"] == "error" and "camera unplugged" in snap["last_error"]
    assert source.stats()["iter_errors"] == 1


def test_an_item_that_is_not_a_frame_is_rejected_and_the_stream_goes_on():
    items = [np.zeros((4, 4)), "not a frame", np.zeros((2, 2, 2, 2)), np.ones((4, 4))]
    sink = play(IterSource(items))
    assert len(sink.frames) == 2
    assert sink.counters.snapshot()["rejected_by_reason"] == {"bad_array": 2}


def test_stop_ends_an_endless_iterator_and_closes_it():
    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield np.full((4, 4), i, np.uint8)
                i += 1
        finally:
            closed.append(True)

    source = IterSource(endless(), fps=200)
    sink = FrameCollector()
    source.start(sink)
    assert sink.wait_for(lambda c: len(c.frames) >= 5)
    source.stop()
    source.stop()
    assert source.state == "stopped" and sink.states[-1] == "stopped"
    assert closed == [True]
    with pytest.raises(RuntimeError, match="already started"):
        source.start(sink)


def test_bad_arguments_are_said_at_once():
    with pytest.raises(TypeError):
        IterSource(42)
    with pytest.raises(ValueError, match="fps"):
        IterSource([], fps=-1)


def run_in_thread(source, **kwargs):
    """pystream.run(source, **kwargs) on a thread; its result, or None if it did not return."""
    import threading

    import pystream

    result = []
    thread = threading.Thread(target=lambda: result.append(pystream.run(source, **kwargs)),
                              daemon=True)
    thread.start()
    thread.join(30)
    return result[0] if result else None


def test_run_returns_when_the_iterator_fails(tmp_path):
    """An error is the end of a fed stream: run() returns, it does not wait for ever."""
    def broken():
        yield from frames(3)
        raise OSError("camera unplugged")

    for record in (None, {"dir": str(tmp_path), "format": "hdf5"}):
        stats = run_in_thread(IterSource(broken()), record=record)
        assert stats is not None, f"run(record={record}) did not return after the error"
        assert stats["state"] == "error" and "camera unplugged" in stats["last_error"]
        assert stats["received"] == 3 and stats["iter_errors"] == 1
