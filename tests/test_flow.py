import threading

import numpy as np
import pytest

from pystream.flow import (ByteBoundedQueue, Counters, FrameRouter, LatestFrameSlot, RateMeter,
                           UidTracker)
from pystream.frame import Frame


def test_uid_tracker_gaps_restarts_wrap_duplicates():
    t = UidTracker()
    assert [t.observe(u) for u in (5, 6, 9, 10)] == [0, 0, 2, 0]
    assert t.observe(1) == 0 and t.restarts == 1
    assert t.observe(1) == 0 and t.duplicates == 1
    t.observe(2 ** 32 - 2)
    assert t.observe(1) == 2  # 2**32-1 and 0 missing across the wrap
    assert t.restarts == 1
    t.connection_lost()  # frames sent while disconnected are not "dropped upstream"
    assert t.observe(500) == 0 and t.restarts == 1
    t.connection_lost()
    assert t.observe(3) == 0 and t.restarts == 2


def test_a_frame_put_back_is_taken_again_unless_a_newer_one_came():
    slot = LatestFrameSlot()
    slot.put("a")
    assert slot.take(0) == "a"
    assert slot.put_back("a") and slot.take(0) == "a"
    assert slot.take(0) is None
    slot.put("b")
    assert not slot.put_back("a")  # stale: the newer one stays
    assert slot.take(0) == "b"


def test_latest_slot_keeps_newest_and_reports_replaced():
    slot = LatestFrameSlot()
    assert slot.put("a") is None
    assert slot.put("b") == "a"
    assert slot.take(0) == "b"
    assert slot.take(0.01) is None
    got = []
    t = threading.Thread(target=lambda: got.append(slot.take(5)))
    t.start()
    slot.put("c")
    t.join(5)
    assert got == ["c"]


def test_byte_bounded_queue_refuses_beyond_budget_and_drains_after_close():
    q = ByteBoundedQueue(100)
    assert q.put("a", 60) and q.put("b", 40)
    assert not q.put("c", 1)  # full: refused, the caller counts a drop
    assert q.nbytes == 100 and q.fill == 1.0
    assert q.get(0) == "a"
    assert q.put("c", 50)
    q.close()
    assert not q.put("d", 1)
    assert [q.get(0), q.get(0), q.get(0)] == ["b", "c", None]
    big = ByteBoundedQueue(10)
    assert big.put("huge", 1000)  # an empty queue takes one oversize item
    assert not big.put("x", 1)


def test_rate_meter_measures_steady_rate():
    m = RateMeter(window=2.0)
    for i in range(101):
        m.tick(now=100.0 + i * 0.01)  # 100 Hz for 1 s
    assert m.rate(now=101.0) == pytest.approx(100, rel=0.02)
    assert m.rate(now=110.0) == 0.0


def test_router_counts_received_skipped_and_feeds_taps():
    counters = Counters()
    slot = LatestFrameSlot()
    router = FrameRouter(counters, slot)
    tapped = []
    router.add_tap(tapped.append)
    frames = [Frame.from_array(np.zeros((2, 2)), uid=u, source="t") for u in (1, 2, 4)]
    for f in frames:
        router.on_frame(f)
    snap = counters.snapshot()
    assert snap["received"] == 3 and snap["skipped"] == 2 and snap["dropped_upstream"] == 1
    assert tapped == frames
    assert slot.take(0) is frames[-1]


def test_counters_snapshot_has_the_documented_names():
    c = Counters()
    c.reject("size_mismatch", "3 elements")
    c.painted(None)
    snap = c.snapshot()
    for key in ("received", "dropped_upstream", "skipped", "decoded", "displayed", "rejected",
                "rejected_by_reason", "recv_fps", "display_fps", "latency_ms_p50",
                "latency_ms_p95", "state"):
        assert key in snap
    assert snap["rejected_by_reason"] == {"size_mismatch": 1}
    assert snap["displayed"] == 1
    assert "size_mismatch" in snap["last_error"]


def test_paced_uid_gaps_are_skipped_upstream_not_dropped():
    """The router's accounting, frame by frame: a gap after a paced frame is
    the server not sending what we did not take; after a lossless one it is
    a loss."""
    router = FrameRouter(Counters(), LatestFrameSlot())
    for uid in (1, 5):
        router.on_frame(Frame(None, uid=uid, source="test"))
        router.pace(wait=False)
    router.add_tap(lambda frame: None)
    for uid in (6, 9):
        router.on_frame(Frame(None, uid=uid, source="test"))
        router.pace()
    snap = router.counters.snapshot()
    assert (snap["skipped_upstream"], snap["dropped_upstream"]) == (3, 2)
    assert snap["receive_mode"] == "lossless"


def test_pace_waits_until_the_display_takes_the_frame_or_a_tap_needs_every_frame():
    """The wait is bounded; a tap added meanwhile ends it at once."""
    import time

    slot = LatestFrameSlot()
    router = FrameRouter(Counters(), slot)
    router.on_frame(Frame(None, uid=1, source="test"))
    taker = threading.Timer(0.01, slot.take)
    taker.start()
    router.pace()  # returns once taken
    assert len(slot) == 0 and not router._display_stalled
    router.on_frame(Frame(None, uid=2, source="test"))
    threading.Timer(0.005, router.add_tap, args=(lambda frame: None,)).start()
    router.pace()  # nobody takes; the tap ends the wait
    assert router.lossless and len(slot) == 1
    router.remove_tap(router._taps[0])
    started = time.monotonic()
    router.pace()  # nobody takes: bounded
    assert time.monotonic() - started < 1.0 and router._display_stalled
