"""RingBuffer, RollingStats, TimeSeries and per-frame statistics against numpy references."""
import collections
import threading

import numpy as np
import pytest

import pystream
from pystream.display import PixelwiseDeferred
from pystream.framestats import FrameStatistics, frame_stats
from pystream.stats import DIRECT_WINDOW, RingBuffer, RollingStats, TimeSeries


# ---------------------------------------------------------------- RingBuffer
def test_exported_from_the_package():
    assert pystream.RingBuffer is RingBuffer and pystream.RollingStats is RollingStats
    assert {"RingBuffer", "RollingStats"} <= set(pystream.__all__)


def test_read_consumes_oldest_first_and_wraps():
    rb = RingBuffer(5)
    assert rb.write(np.arange(3.0)) == 3
    np.testing.assert_array_equal(rb.read(2, timeout=0), [0, 1])
    np.testing.assert_array_equal(rb.read(1, timeout=0), [2])  # not the same samples again
    rb.write(np.arange(3.0, 8.0))  # wraps: positions 3, 4, 0, 1, 2
    np.testing.assert_array_equal(rb.read(5, timeout=0), [3, 4, 5, 6, 7])
    assert rb.stats() == {"total_samples": 8, "overflow_count": 0, "available": 0, "capacity": 5}


def test_write_longer_than_capacity_keeps_the_newest_and_counts_the_rest():
    rb = RingBuffer(4)
    rb.write([100.0])  # unread, about to be lost
    assert rb.write(np.arange(11.0)) == 11
    np.testing.assert_array_equal(rb.peek(), [7, 8, 9, 10])
    np.testing.assert_array_equal(rb.latest(2), [9, 10])
    assert rb.stats() == {"total_samples": 12, "overflow_count": 8, "available": 4, "capacity": 4}


def test_matches_a_deque_reference_for_random_writes_and_reads():
    rng = np.random.default_rng(3)
    cap = 13
    rb = RingBuffer(cap)
    ref = collections.deque()
    lost = seq = 0
    for _ in range(500):
        k = int(rng.integers(0, 30))
        rb.write(np.arange(seq, seq + k, dtype=np.float64))
        for v in range(seq, seq + k):
            if len(ref) == cap:
                ref.popleft()
                lost += 1
            ref.append(v)
        seq += k
        n = int(rng.integers(1, cap + 1))
        if ref:
            got = rb.read(n, timeout=0)
            expected = [ref.popleft() for _ in range(min(n, len(ref)))]
            assert got.tolist() == expected
        else:
            with pytest.raises(TimeoutError):
                rb.read(n, timeout=0)
        assert rb.available == len(ref)
        assert rb.overflow_count == lost
        assert rb.latest().tolist()[-3:] == list(range(max(0, seq - min(cap, 3)), seq))


def test_rows_of_a_given_shape():
    rb = RingBuffer(3, item_shape=(4,), dtype=np.float32)
    rb.write(np.ones(4))  # one row
    rb.write(np.arange(20, dtype=np.float32).reshape(5, 4))  # five rows: wraps and overflows
    rows = rb.read(3, timeout=0)
    assert rows.shape == (3, 4) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows[:, 0], [8, 12, 16])
    with pytest.raises(ValueError, match=r"items of shape \(4,\)"):
        rb.write(np.zeros((2, 3)))


def test_reads_that_time_out():
    rb = RingBuffer(10, timeout=0.05)
    with pytest.raises(TimeoutError):
        rb.read(1)  # the buffer's own timeout
    with pytest.raises(TimeoutError):
        rb.read(3, timeout=0.01)
    rb.write([1.0, 2.0])
    short = rb.read(5, timeout=0.01)  # not enough in time: what there is
    assert short.tolist() == [1.0, 2.0]


def test_a_blocked_read_returns_when_the_writer_delivers():
    rb = RingBuffer(100)
    result = []
    reader = threading.Thread(target=lambda: result.append(rb.read(10, timeout=30)))
    reader.start()
    for i in range(10):  # in pieces: the reader waits for all ten
        rb.write([float(i)])
    reader.join(30)
    assert result[0].tolist() == list(range(10))


def test_a_writer_and_a_reader_thread_at_once_lose_nothing_unaccounted():
    rb = RingBuffer(64)
    n_total = 200_000
    got = []

    def writer():
        seq = 0
        rng = np.random.default_rng(5)
        while seq < n_total:
            k = min(int(rng.integers(1, 100)), n_total - seq)  # also writes longer than the capacity
            rb.write(np.arange(seq, seq + k, dtype=np.float64))
            seq += k
        rb.close()

    def reader():
        got.extend(rb.chunks(16, timeout=1.0))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    values = np.concatenate(got)
    assert np.all(np.diff(values) > 0)  # oldest first, never twice
    assert values[-1] == n_total - 1  # the newest survive
    assert len(values) + rb.overflow_count == n_total  # every sample read or counted as lost
    assert rb.stats()["total_samples"] == n_total


def test_close_wakes_a_blocked_reader_and_stops_writes():
    rb = RingBuffer(8)
    rb.write([1.0, 2.0])
    result = []
    reader = threading.Thread(target=lambda: result.append(rb.read(5, timeout=30)))
    reader.start()
    rb.close()
    reader.join(30)
    assert result[0].tolist() == [1.0, 2.0]
    assert rb.read(1).size == 0  # closed and drained: empty, no wait
    with pytest.raises(ValueError, match="closed"):
        rb.write([3.0])


def test_peek_latest_and_clear():
    rb = RingBuffer(6)
    rb.write(np.arange(5.0))
    rb.read(2)
    np.testing.assert_array_equal(rb.peek(2), [2, 3])  # oldest unread, not consumed
    np.testing.assert_array_equal(rb.latest(4), [1, 2, 3, 4])  # newest held, read or not
    assert rb.available == 3
    rb.clear()
    assert rb.stats() == {"total_samples": 0, "overflow_count": 0, "available": 0, "capacity": 6}
    assert rb.latest().size == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"capacity": 0}, "capacity must be a positive integer"),
    ({"capacity": -3}, "capacity must be a positive integer"),
    ({"capacity": 2.5}, "capacity must be a positive integer"),
    ({"capacity": True}, "capacity must be a positive integer"),
    ({"capacity": 4, "item_shape": (0,)}, "item_shape"),
    ({"capacity": 4, "dtype": object}, "dtype must be numeric"),
    ({"capacity": 4, "dtype": "no-such-type"}, "not a numpy dtype"),
    ({"capacity": 4, "timeout": 0}, "timeout must be a positive"),
])
def test_config_is_validated_with_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RingBuffer(**kwargs)


def test_bad_writes_and_reads_say_why():
    rb = RingBuffer(4, dtype=np.int32)
    with pytest.raises(TypeError, match="numbers"):
        rb.write(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="cannot store float64"):
        rb.write(np.array([1.5]))
    with pytest.raises(ValueError, match="positive integer"):
        rb.read(0)
    with pytest.raises(ValueError, match="capacity 4"):
        rb.read(5)


# ---------------------------------------------------------------- RollingStats
def reference(window_values):
    w = np.asarray(window_values, dtype=np.float64)
    return {"mean": w.mean(), "std": w.std(), "min": w.min(), "max": w.max(),
            "peak_to_peak": np.ptp(w), "n_samples": w.size}


def assert_matches(stats, ref, tol=1e-9):
    assert stats["n_samples"] == ref["n_samples"]
    for key in ("mean", "std", "min", "max", "peak_to_peak"):
        assert stats[key] == pytest.approx(ref[key], rel=tol, abs=tol), key


# block=None: the default (the raw window up to DIRECT_WINDOW, else blocks of ~sqrt(window));
# explicit blocks make small windows go through the block merging too
WINDOWS = [(1, None), (2, None), (5, None), (31, None), (1000, None), (1, 1), (5, 2), (31, 4),
           (1000, 32), (20_000, None)]


@pytest.mark.parametrize("window, block", WINDOWS)
def test_rolling_stats_match_numpy_over_the_window(window, block):
    rng = np.random.default_rng(window)
    rs = RollingStats(window, block=block)
    assert window <= DIRECT_WINDOW or rs.block < window
    history = np.empty(0)
    for _ in range(150 if window < 10_000 else 40):
        # chunk sizes from empty to several windows, so edges fall everywhere
        chunk = rng.normal(50.0, 10.0, int(rng.integers(0, 3 * window + 3)))
        rs.update(chunk)
        history = np.concatenate((history, chunk))
        if history.size:
            assert_matches(rs.get_statistics(), reference(history[-window:]))
    assert rs.total == history.size


@pytest.mark.parametrize("block", [None, 3, 5])
def test_window_edges_exactly_full_and_one_past(block):
    rs = RollingStats(10, block=block)
    for i in range(10):
        rs.update([float(i)])
        assert_matches(rs.get_statistics(), reference(np.arange(i + 1.0)))
    rs.update([10.0])
    assert_matches(rs.get_statistics(), reference(np.arange(1.0, 11.0)))
    rs.update(np.arange(11.0, 16.0))  # a block boundary at the window's start
    assert_matches(rs.get_statistics(), reference(np.arange(6.0, 16.0)))


@pytest.mark.parametrize("block", [None, 7])
def test_min_and_max_are_windowed_not_cumulative(block):
    rs = RollingStats(100, block=block)
    rs.update(np.zeros(50))
    rs.update([1e6, -1e6])  # a spike
    assert rs.get_statistics()["max"] == 1e6
    rs.update(np.zeros(98))
    assert rs.get_statistics()["max"] == 1e6  # the oldest of the window
    rs.update([0.0])
    s = rs.get_statistics()
    assert s["max"] == 0.0 and s["min"] == -1e6  # the +1e6 left, the -1e6 is the oldest
    rs.update([0.0])
    assert rs.get_statistics()["peak_to_peak"] == 0.0


@pytest.mark.parametrize("window, block", [(1000, None), (1000, 32), (50_000, None)])
def test_std_of_values_around_1e9_with_a_spread_of_3(window, block):
    rng = np.random.default_rng(7)
    rs = RollingStats(window, block=block)
    data = 1e9 + rng.normal(0.0, 3.0, 3 * window)
    for chunk in np.array_split(data, 137):
        rs.update(chunk)
    expected = data[-window:].std()  # numpy: two-pass, exact enough here
    s = rs.get_statistics()
    assert s["std"] == pytest.approx(expected, rel=1e-9)
    assert s["mean"] == pytest.approx(data[-window:].mean(), rel=1e-15)
    # what the running sum-of-squares formula gives on the same window: useless
    w = data[-window:]
    naive = np.sqrt(max(0.0, np.sum(w * w) / window - (np.sum(w) / window) ** 2))
    assert abs(naive - expected) > 0.1


def test_a_chunk_longer_than_the_window_and_any_shape():
    rs = RollingStats(7)
    data = np.arange(60.0).reshape(3, 20)  # flattened
    rs.update(data)
    assert_matches(rs.get_statistics(), reference(np.arange(53.0, 60.0)))


def test_rolling_stats_errors_and_reset():
    with pytest.raises(ValueError, match="window must be a positive integer"):
        RollingStats(0)
    rs = RollingStats(5)
    with pytest.raises(ValueError, match="no data"):
        rs.get_statistics()
    with pytest.raises(TypeError, match="real numbers"):
        rs.update(np.array([1 + 2j]))
    rs.update([1.0, 2.0])
    rs.reset()
    assert rs.n_samples == 0
    with pytest.raises(ValueError):
        rs.get_statistics()


# ---------------------------------------------------------------- TimeSeries
def test_time_series_keeps_the_window_and_its_rolling_statistics():
    ts = TimeSeries(("a", "b"), window=4)
    for i in range(6):
        ts.add(100.0 + i, i, (i, 10 * i))
    t, uid, values = ts.series()
    assert t.tolist() == [102.0, 103.0, 104.0, 105.0] and uid.tolist() == [2, 3, 4, 5]
    assert values[:, 1].tolist() == [20, 30, 40, 50]
    assert ts.latest() == {"t": 105.0, "uid": 5, "a": 5.0, "b": 50.0}
    assert_matches(ts.rolling()["b"], reference([20, 30, 40, 50]))
    ts.set_window(2)  # keeps the newest two, recomputed over them
    assert ts.series()[1].tolist() == [4, 5]
    assert_matches(ts.rolling()["a"], reference([4, 5]))
    ts.add([200.0, 201.0], [9, 10], [[1, 2], [3, 4]])  # a batch
    assert ts.series()[1].tolist() == [9, 10]
    ts.clear()
    assert len(ts) == 0 and ts.latest() is None and ts.rolling() == {}
    with pytest.raises(ValueError, match="2 names"):
        ts.add(0.0, 0, (1, 2, 3))


# ---------------------------------------------------------------- per-frame statistics
def test_frame_stats_whole_frame_roi_rgb_and_outside():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 60000, (40, 50), dtype=np.uint16)
    s = frame_stats(img)
    assert (s.mean, s.min, s.max, s.sum) == (pytest.approx(img.mean()), img.min(), img.max(),
                                              float(img.sum(dtype=np.int64)))
    assert s.std == pytest.approx(img.std()) and s.count == img.size and s.rect == (0, 0, 50, 40)
    roi = frame_stats(img, (10, 5, 20, 8))
    region = img[5:13, 10:30]
    assert roi.mean == pytest.approx(region.mean()) and roi.std == pytest.approx(region.std())
    assert roi.rect == (10, 5, 20, 8) and roi.count == 160
    rgb = rng.random((6, 7, 3)).astype(np.float32)
    assert frame_stats(rgb).mean == pytest.approx(rgb.mean(dtype=np.float64))
    assert frame_stats(rgb).count == rgb.size
    out = frame_stats(img, (100, 100, 5, 5))
    assert out.count == 0 and np.isnan(out.mean)


def test_frame_stats_correct_only_the_roi_of_a_deferred_frame():
    raw = np.full((30, 30), 10.0, np.float32)
    touched = []

    def double(part, key):
        touched.append(part.size)
        return part * 2

    s = frame_stats(PixelwiseDeferred(raw, [double]), (0, 0, 4, 5))
    assert s.mean == 20.0 and touched == [20]


def test_the_analysis_is_rate_limited_and_feeds_its_series():
    every = FrameStatistics(rate=0)
    for uid in range(1, 6):
        assert every(np.full((4, 4), float(uid)), {"uid": uid, "timestamp": 10.0 + uid}) is not None
    t, uid, values = every.series.series()
    assert uid.tolist() == [1, 2, 3, 4, 5] and t.tolist() == [11.0, 12.0, 13.0, 14.0, 15.0]
    assert every.summary()["rolling"]["mean"]["mean"] == 3.0
    assert every.threads == {threading.get_ident()}

    limited = FrameStatistics(rate=1e-6)  # once, then not for ~11 days
    results = [limited(np.zeros((2, 2)), {"uid": i}) for i in range(5)]
    assert results[0] is not None and results[1:] == [None] * 4
    limited.limit.touch()
    assert limited(np.zeros((2, 2)), {"uid": 9}) is not None

    every(np.zeros((2, 2)), {"uid": 1, "source": "pva://other"})  # another stream: a fresh series
    assert every.series.series()[1].tolist() == [1]

    # a restart while a frame is being measured: that frame is not added to the fresh series
    racing = FrameStatistics(rate=0)
    racing.region = lambda: racing.restart()  # returns None: the whole frame
    assert racing(np.ones((2, 2)), {"uid": 1}) is None and len(racing.series) == 0
    racing.region = None
    assert racing(np.ones((2, 2)), {"uid": 2}) is not None and len(racing.series) == 1

    skipping = FrameStatistics(rate=0, region=lambda: FrameStatistics.SKIP)
    assert skipping(np.zeros((2, 2)), {"uid": 1}) is None and len(skipping.series) == 0


def test_the_readme_example_runs_as_written():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("## Statistics over time\n")
    section = text[start:text.index("\n## ", start + 1)]
    example = next(b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "RollingStats(" in b)
    scope = {}
    exec(compile(example, "README", "exec"), scope)
    assert scope["chunk"].tolist() == scope["samples"][-5000:-4000].tolist()  # the oldest kept
    assert scope["rb"].stats() == {"total_samples": 20_000, "overflow_count": 15_000,
                                   "available": 4000, "capacity": 5000}
    stats = scope["rs"].get_statistics()
    assert stats["std"] == pytest.approx(scope["chunk"].std(), rel=1e-9) and stats["n_samples"] == 1000


def test_a_session_with_no_window_measures_every_shown_frame_in_its_worker():
    import time

    from pystream.session import Session

    from .session_helpers import ListSource

    fs = FrameStatistics(rate=0)
    arrays = [np.full((8, 6), float(uid), np.float32) for uid in range(1, 31)]
    with Session() as session:
        session.analyses["frame_stats"] = fs
        session.add_stats(lambda: {"frame_stats": fs.summary()})
        session.add_display_listener(lambda display: None)  # the worker runs while someone looks
        session.connect(ListSource(arrays, rate=500))
        assert session.wait_ended(30)
        deadline = time.monotonic() + 30  # the last frame is shown (latest wins), then measured
        while 30 not in fs.series.series()[1] and time.monotonic() < deadline:
            time.sleep(0.01)
        _, uids, values = fs.series.series()
        assert uids[-1] == 30 and np.all(np.diff(uids) > 0)
        np.testing.assert_array_equal(values[:, 0], uids)  # each frame's mean is its uid
        assert values[:, 4].tolist() == (uids * 48.0).tolist()  # sum of 8 x 6 pixels
        assert fs.threads == {session.worker.ident}
        stats = session.stats()["frame_stats"]
        assert stats["latest"]["uid"] == 30 and stats["rolling"]["max"]["max"] == 30.0
