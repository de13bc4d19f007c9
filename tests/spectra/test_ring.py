import collections
import threading

import numpy as np
import pytest

from pystream.spectra.ring import SpectrumRing


def rows_from(start, k, width=4):
    """Rows whose every value is its sequence number: easy to check order and tearing."""
    return np.repeat(np.arange(start, start + k, dtype=np.float32)[:, None], width, axis=1)


def test_defaults_match_the_reference_receiver():
    ring = SpectrumRing()
    assert ring.shape == (1200, 768)
    assert ring.count == 0 and ring.write_index == 0
    assert ring.latest(10).shape == (0, 768)


def test_latest_is_newest_rows_oldest_first():
    ring = SpectrumRing(5, 4)
    for i in range(3):
        ring.write(rows_from(i, 1)[0], times=100.0 + i)
    assert ring.latest(2)[:, 0].tolist() == [1, 2]
    assert ring.latest()[:, 0].tolist() == [0, 1, 2]
    rows, times = ring.latest_with_times(3)
    assert times.tolist() == [100.0, 101.0, 102.0]
    assert ring.write_index == 3


def test_wrap_around_keeps_order_and_counts_overwrites():
    ring = SpectrumRing(5, 4)
    ring.write(rows_from(0, 3))
    ring.write(rows_from(3, 4))  # wraps: 2 rows at the end, 2 at the top
    assert ring.latest(5)[:, 0].tolist() == [2, 3, 4, 5, 6]
    assert ring.write_index == 7 % 5
    assert ring.total == 7
    assert ring.overwritten == 2
    last, _ = ring.last_row()
    assert last[0] == 6


def test_block_longer_than_ring_keeps_the_newest():
    ring = SpectrumRing(4, 4)
    ring.write(rows_from(0, 2))
    ring.write(rows_from(2, 11), times=np.arange(11.0))
    rows, times = ring.latest_with_times()
    assert rows[:, 0].tolist() == [9, 10, 11, 12]
    assert times.tolist() == [7.0, 8.0, 9.0, 10.0]
    assert ring.total == 13


def test_matches_a_naive_reference_for_random_write_sizes():
    rng = np.random.default_rng(1)
    ring = SpectrumRing(17, 3)
    reference = collections.deque(maxlen=17)
    seq = 0
    for _ in range(200):
        k = int(rng.integers(0, 25))
        ring.write(rows_from(seq, k, 3))
        reference.extend(range(seq, seq + k))
        seq += k
        n = int(rng.integers(0, 20))
        expected = list(reference)[-n:] if n else []
        assert ring.latest(n)[:, 0].tolist() == expected


def test_read_since_returns_new_rows_and_counts_missed():
    ring = SpectrumRing(5, 4)
    ring.write(rows_from(0, 3))
    rows, _, cursor, missed = ring.read_since(0)
    assert rows[:, 0].tolist() == [0, 1, 2] and cursor == 3 and missed == 0
    ring.write(rows_from(3, 8))  # 8 new rows, ring holds 5: 3 missed
    rows, _, cursor, missed = ring.read_since(cursor)
    assert rows[:, 0].tolist() == [6, 7, 8, 9, 10]
    assert missed == 3 and cursor == 11
    rows, _, cursor, missed = ring.read_since(cursor)
    assert rows.shape[0] == 0 and missed == 0


def test_wait_for_times_out_and_wakes_on_write():
    ring = SpectrumRing(5, 4)
    assert ring.wait_for(0, timeout=0.01) is False
    timer = threading.Timer(0.05, ring.write, args=(rows_from(0, 1),))
    timer.start()
    assert ring.wait_for(0, timeout=5.0) is True
    timer.join()


def test_rejects_wrong_width_and_bad_sizes():
    ring = SpectrumRing(5, 4)
    with pytest.raises(ValueError):
        ring.write(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError):
        SpectrumRing(0, 4)


def test_reset_changes_width_and_forgets():
    ring = SpectrumRing(5, 4)
    ring.write(rows_from(0, 3))
    ring.reset(n_cols=8)
    assert ring.shape == (5, 8) and ring.count == 0 and ring.resets == 1
    ring.write(np.ones(8, np.float32))
    assert ring.latest(1).shape == (1, 8)


def test_concurrent_writer_and_readers_never_see_torn_or_reordered_rows():
    ring = SpectrumRing(64, 256)
    stop = threading.Event()
    problems = []

    def writer():
        seq = 0
        while not stop.is_set() and seq < 20000:
            k = 1 + seq % 7
            ring.write(rows_from(seq, k, 256))
            seq += k

    def reader():
        while not stop.is_set():
            rows = ring.latest(50)
            if rows.shape[0] == 0:
                continue
            if not np.all(rows == rows[:, :1]):
                problems.append("torn row")
            firsts = rows[:, 0]
            if not np.all(np.diff(firsts) == 1):
                problems.append("out of order")

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    threads[0].join(timeout=20)
    stop.set()
    for t in threads[1:]:
        t.join(timeout=5)
    assert ring.total > 1000
    assert problems == []
