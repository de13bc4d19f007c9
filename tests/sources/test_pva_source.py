"""PvaSource against a real server: reconnects, uid gaps, producer restarts."""
import logging
import subprocess
import sys
import threading

import numpy as np
import pytest

from pystream.frame import FrameRejected
from pystream.sources.pva import PvaSource

from ..pva_helpers import FrameCollector, subscribe

pytestmark = pytest.mark.pva

IMG = np.zeros((16, 16), np.uint16)


def test_uid_gaps_count_as_dropped_upstream(publisher):
    publisher.publish(IMG, uid=1)
    source, collector = subscribe(publisher.pv_name)
    try:
        for uid in (2, 3, 7, 8, 20):  # 3 missing before 7, 11 missing before 20
            publisher.publish(IMG, uid=uid)
            assert collector.wait_uid(uid)
        snap = collector.counters.snapshot()
        assert snap["dropped_upstream"] == 3 + 11
        assert snap["received"] == 6
        assert snap["restarts"] == 0
    finally:
        source.stop()


def _start_sim(pv_name):
    """The simulated IOC in its own process, as a real IOC would be."""
    return subprocess.Popen([sys.executable, "-m", "pystream.cli", "sim", "pva", "--pv", pv_name,
                             "--size", "32x16", "--rate", "20", "--log-level", "WARNING"])


def _stop_sim(sim):
    """The IOC goes away: asked to stop, killed if it does not within 15 s
    (a loaded machine can make pvapy's server shutdown slow)."""
    sim.terminate()
    try:
        sim.wait(15)
    except subprocess.TimeoutExpired:
        sim.kill()
        sim.wait(10)


def _restart_server(sims, pv_name, collector, while_away=lambda: None):
    """The IOC (the last of ``sims``) goes away and comes back, counting from 1;
    returns once the collector has 5 frames from the new one. The new process
    is appended to ``sims`` at once, so the caller's cleanup stops it."""
    _stop_sim(sims[-1])
    assert collector.wait_for(lambda c: "disconnected" in c.states, timeout=30)
    assert collector.counters.snapshot()["state"] == "disconnected"
    while_away()
    n_before = len(collector.frames)
    sims.append(_start_sim(pv_name))
    assert collector.wait_for(lambda c: c.states[-1] == "connected", timeout=30)
    assert collector.wait_for(lambda c: len(c.frames) >= n_before + 5, timeout=30)


def _kill_all(sims):
    for sim in sims:
        sim.kill()
        sim.wait(10)


_BURN = "while True: pass"


def _eventually(predicate, timeout=30.0):
    """Poll a condition no collector is told about (a counter, the log)."""
    import time
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.05)
    return True


def test_server_stop_and_restart_reconnects_and_counts_a_restart(pv_name):
    sims = [_start_sim(pv_name)]
    source = None
    try:
        source, collector = subscribe(pv_name, timeout=30)
        # should pvapy's race leave the monitor silent (see below), it is
        # restarted before the new IOC's uid passes the old one
        source.resume_grace = 0.5
        assert collector.wait_for(lambda c: len(c.frames) >= 40)  # uid ~40 before the restart
        _restart_server(sims, pv_name, collector)
        source.stop()  # nothing arrives between the counts and the uids read below
        snap = collector.counters.snapshot()
        uids = [frame.uid for frame in collector.frames]
        assert snap["restarts"] == 1  # a restart, not 4 billion drops
        # gaps only where the received uids have them (a loaded machine may lose
        # a frame while connected; a uid back to 1 is the restart, not a gap)
        assert snap["dropped_upstream"] == sum(b - a - 1 for a, b in zip(uids, uids[1:]) if b > a + 1)
        assert collector.frames[-1].array.shape == (16, 32)
    finally:
        if source is not None:
            source.stop()
        _kill_all(sims)


def test_a_monitor_silent_after_a_reconnect_is_restarted(pv_name, caplog):
    """pvapy sometimes reconnects the channel but never calls back again
    (about 1 server restart in 20). The source restarts such a monitor; here
    the monitor is stopped while the server is away to make it silent."""
    sims = [_start_sim(pv_name)]
    source = None
    try:
        source, collector = subscribe(pv_name, timeout=30)
        source.resume_grace = 0.5
        source.recreate_backoff = (60.0,)  # the monitor restart alone, not a fresh channel
        assert collector.wait_for(lambda c: len(c.frames) >= 5)
        # stopping the monitor leaves the state pvapy's race leaves behind
        _restart_server(sims, pv_name, collector, while_away=source._channel.stopMonitor)
        assert caplog.text.count("restarting the monitor") == 1  # once: it resumed
        assert source.stats()["monitor_restarts"] == 1
    finally:
        if source is not None:
            source.stop()
        _kill_all(sims)


def test_a_monitor_silent_at_the_first_connect_is_restarted(pv_name, caplog):
    """The same pvapy race can leave the first connection silent: the
    monitor is stopped before the server exists, to make it so."""
    collector = FrameCollector()
    source = PvaSource(pv_name)
    source.resume_grace = 0.5
    source.recreate_backoff = (60.0,)  # the monitor restart alone, not a fresh channel
    sim = None
    try:
        source.start(collector)
        source._channel.stopMonitor()  # the state pvapy's race leaves behind
        sim = _start_sim(pv_name)
        assert source.connected.wait(30)
        assert collector.wait_for(lambda c: len(c.frames) >= 5, timeout=30)
        assert caplog.text.count("restarting the monitor") == 1
        assert source.stats()["monitor_restarts"] == 1
    finally:
        source.stop()
        if sim is not None:
            sim.kill()
            sim.wait(10)


@pytest.mark.parametrize("codec,color_mode,dtype,shape", [
    ("bslz4", "rgb2", "uint8", (16, 24, 3)),
    ("lz4", "mono", "float32", (16, 24)),
    ("jpeg", "rgb1", "uint8", (16, 24, 3)),
])
def test_sim_command_publishes_what_it_is_asked_for(pv_name, codec, color_mode, dtype, shape):
    sim = subprocess.Popen([sys.executable, "-m", "pystream.cli", "sim", "pva", "--pv", pv_name,
                            "--size", "24x16", "--rate", "50", "--codec", codec, "--color-mode",
                            color_mode, "--dtype", dtype, "--log-level", "WARNING"])
    source = None
    try:
        source, collector = subscribe(pv_name, timeout=30)
        assert collector.wait_for(lambda c: len(c.frames) >= 3)
        frame = collector.frames[-1]
        assert frame.payload.codec["name"] == codec
        assert frame.array.shape == shape and frame.array.dtype == np.dtype(dtype)
        assert frame.array.max() > 0  # the test pattern, not an empty frame
    finally:
        if source is not None:
            source.stop()
        sim.kill()
        sim.wait(10)


_START_STOP_CHILD = r"""
import sys, time
from pystream.sources.pva import PvaSource

class Sink:
    frames = 0
    states = []
    def on_frame(self, frame): Sink.frames += 1
    def on_state(self, state, message): Sink.states.append(state)
    def on_reject(self, reason, message): pass

starved = []
for cycle in range(int(sys.argv[2])):
    source = PvaSource(sys.argv[1])
    before, Sink.states = Sink.frames, []
    source.start(Sink())
    deadline = time.monotonic() + 30
    while Sink.frames < before + 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    if Sink.frames < before + 3:  # not the crash this test is about: say how it looked
        starved.append(f"cycle {cycle}: {Sink.frames - before} frames in 30 s, states {Sink.states}, "
                       f"connected {source.connected.is_set()}, monitor restarts {source.monitor_restarts}")
    time.sleep(0.05)
    source.stop()  # while updates are still arriving as fast as they can
    del source  # nothing of ours holds pvapy's subscriber any more
print("\n".join(starved))
print("starved", len(starved), "frames", Sink.frames)
"""


@pytest.mark.timeout(300)  # longer than the child's own limit, so that one reports
def test_stopping_under_a_flood_of_updates_never_crashes(pv_name):
    """pvapy drops its reference to the subscriber without the GIL on its
    receive thread; stopping mid-update used to free it there (segfault).
    Repeated start/stop against a flooding server, in a child process so a
    crash is a failure and not the end of the test run."""
    sim = subprocess.Popen([sys.executable, "-m", "pystream.cli", "sim", "pva", "--pv", pv_name,
                            "--size", "256x256", "--rate", "0", "--no-counter", "--log-level", "WARNING"])
    try:
        child = subprocess.run([sys.executable, "-c", _START_STOP_CHILD, pv_name, "100"],
                               capture_output=True, text=True, timeout=240)
        assert child.returncode == 0, f"exit {child.returncode}: {child.stderr[-2000:]}"
        words = child.stdout.split()
        # nearly every cycle stopped with updates in flight (a cycle the server left
        # without frames for 30 s, seen in a loaded CI run, is reported, not a crash)
        assert int(words[-3]) <= 2 and int(words[-1]) >= 300, child.stdout[-3000:]
    finally:
        sim.kill()
        sim.wait(10)


def test_pixels_are_taken_from_pvaccess_and_an_update_without_them_keeps_the_last():
    """The callback leaves a placeholder where pvAccess keeps the pixels, so
    pvAccess does not copy a buffer we still hold. An update that leaves the
    placeholder there carried no pixels (pvAccess keeps unchanged fields):
    it shows the previous frame's, or is rejected once those are gone. Real
    PvObjects through the source's real callback."""
    import gc

    from pystream.sources.ntndarray import build_ntndarray

    image = np.arange(12, dtype=np.uint16).reshape(3, 4)
    collector = FrameCollector()  # keeps every frame, as the display does for a while
    source = PvaSource("placeholder:test")
    source.sink = collector
    pv = build_ntndarray(image, uid=3)
    source._on_update(pv)
    assert pv.getSelectedUnionFieldName("value") != "ushortValue"  # the pixels are ours now
    np.testing.assert_array_equal(collector.frames[-1].array, image)

    pv["uniqueId"] = 4  # as pvAccess leaves it after an update that did not resend the value
    source._on_update(pv)
    assert collector.frames[-1].uid == 4
    np.testing.assert_array_equal(collector.frames[-1].array, image)

    collector.frames.clear()  # nothing holds the pixels any more
    gc.collect()
    pv["uniqueId"] = 5
    source._on_update(pv)
    assert collector.frames == []
    assert collector.counters.snapshot()["rejected_by_reason"] == {"value_not_resent": 1}

    # a producer's own empty array is still a size mismatch, not "not resent"
    empty = build_ntndarray(image, uid=6)
    empty["value"] = {"ushortValue": np.zeros(0, np.uint16)}
    source._on_update(empty)
    with pytest.raises(FrameRejected) as info:
        collector.frames[-1].decode()
    assert info.value.reason == "size_mismatch"


class _StallingCollector(FrameCollector):
    """Blocks pvapy's receive thread on the first frame until released, as a
    viewer briefly starved of the CPU or of the GIL would."""

    def __init__(self):
        super().__init__()
        self.stalled = threading.Event()
        self.release = threading.Event()

    def on_frame(self, frame):
        super().on_frame(frame)
        if frame.uid == 1:
            self.stalled.set()
            self.release.wait(30)


def _stalled_source(publisher, **options):
    """A PvaSource on an 8 MB stream (more than the socket buffers hold),
    its receive thread stuck in the callback of frame 1."""
    image = np.zeros((1024, 4096), np.uint16)
    publisher.publish(image, uid=1)
    collector = _StallingCollector()
    source = PvaSource(publisher.pv_name, **options)
    source.start(collector)
    if not collector.stalled.wait(30):
        source.stop()
        raise AssertionError("frame 1 never arrived")
    return source, collector, image


@pytest.mark.parametrize("queue_size, all_kept", [(None, True), (2, False)],
                         ids=["default-queue", "pvaccess-default-2"])
def test_frames_published_while_the_receiver_stalls_wait_in_the_monitor_queue(publisher, queue_size,
                                                                              all_kept):
    """Three 8 MB frames published while the callback is stuck (more than the
    socket buffers hold) all arrive with the default queue; with pvAccess's
    own depth of 2 some are lost, and counted."""
    source, collector, image = _stalled_source(publisher, **({} if queue_size is None
                                                            else {"queue_size": queue_size}))
    try:
        for uid in (2, 3, 4):
            publisher.publish(image, uid=uid)
        collector.release.set()
        # pvAccess sends the newest update of a full queue only with the next
        # one, so keep publishing (as a live stream does) until one gets through
        uid = 5
        publisher.publish(image, uid=uid)
        while not collector.wait_for(lambda c: c.frames[-1].uid >= 5, timeout=0.5):
            assert uid < 60, "no frame after the stall"
            uid += 1
            publisher.publish(image, uid=uid)
        uids = [f.uid for f in collector.frames]
        last = uids[-1]
        assert collector.counters.snapshot()["dropped_upstream"] == last - len(uids)
        if all_kept:
            assert uids[:4] == [1, 2, 3, 4]
        else:
            assert not {2, 3, 4} <= set(uids)
    finally:
        collector.release.set()
        source.stop()


def test_the_queue_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        PvaSource("any:pv", queue_size=0)


def test_the_last_frame_of_a_burst_that_overflowed_the_queue_still_arrives(publisher):
    """A burst that overflows the monitor queue while the receiver stalls,
    then nothing more, as from a triggered detector: the server holds its
    newest update back until a next one that never comes. The source sees
    the stream quiet, asks for the server's uniqueId and fetches the frame."""
    source, collector, image = _stalled_source(publisher, queue_size=2)
    try:
        for uid in range(2, 10):
            publisher.publish(image + uid, uid=uid)
        collector.release.set()
        last = collector.wait_uid(9, timeout=30)
        assert last is not None, [f.uid for f in collector.frames]
        assert int(last.array[0, 0]) == 9
        uids = [f.uid for f in collector.frames]
        assert collector.counters.snapshot()["dropped_upstream"] == 9 - len(uids)
        assert source.stats()["held_back_fetched"] <= 1
    finally:
        collector.release.set()
        source.stop()


def test_a_channel_that_stays_unreachable_is_replaced_and_said_once(publisher, caplog):
    """pvAccess searches for a channel less and less often (every 32 s at
    last) and relies on a beacon that is not seen on loopback. The source
    replaces a channel that stays disconnected after each back-off step,
    logs that once for the episode, and says when frames come again."""
    collector = FrameCollector()
    source = PvaSource(publisher.pv_name)  # the PV does not exist yet
    source.recreate_backoff = (0.2, 0.4)
    caplog.set_level(logging.INFO, logger="pystream.sources.pva")
    try:
        source.start(collector)
        assert _eventually(lambda: source.channel_recreated >= 3)
        assert caplog.text.count("creating a fresh channel") == 1  # once per episode
        publisher.publish(IMG, uid=1)
        assert collector.wait_uid(1, timeout=30)
        assert _eventually(lambda: "receiving again, after" in caplog.text)
        assert source.stats()["channel_recreated"] == source.channel_recreated
    finally:
        source.stop()


def test_a_channel_that_stays_silent_after_a_monitor_restart_is_replaced(publisher, caplog):
    """A channel pvapy connects but never calls back on, and which a monitor
    restart does not bring back (its subscriber is gone): after the restart
    and one back-off step, a fresh channel delivers."""
    collector = FrameCollector()
    source = PvaSource(publisher.pv_name)
    source.resume_grace = 0.3
    source.recreate_backoff = (60.0,)  # no replacement while it is not connected
    try:
        source.start(collector)
        source._channel.unsubscribe("pystream")  # connected, silent, restarts do not help
        source.recreate_backoff = (0.5,)
        publisher.publish(IMG, uid=1)
        assert collector.wait_uid(1, timeout=30)
        assert source.monitor_restarts == 1
        assert source.channel_recreated == 1
        assert "connected but silent" in caplog.text
    finally:
        source.stop()


def test_a_pv_with_no_image_yet_is_waiting_not_rejected(publisher, caplog):
    """An areaDetector PV exists before acquisition starts, its value empty:
    the state says so, nothing is rejected or warned about, and the first
    image turns it to connected."""
    import pvaccess as pva

    publisher.publish_object(pva.NtNdArray())  # no array selected, no dimensions, uniqueId 0
    collector = FrameCollector()
    source = PvaSource(publisher.pv_name)
    try:
        source.start(collector)
        assert collector.wait_for(lambda c: "waiting" in c.states, timeout=30)
        snap = collector.counters.snapshot()
        assert snap["state"] == "waiting" and snap["rejected"] == 0 and snap["received"] == 0
        assert "WARNING" not in caplog.text
        publisher.publish(IMG, uid=1)
        assert collector.wait_uid(1)
        assert collector.states[-1] == "connected"
        snap = collector.counters.snapshot()
        assert snap["state"] == "connected" and snap["rejected"] == 0 and snap["received"] == 1
    finally:
        source.stop()


@pytest.mark.timeout(600)
def test_frames_resume_after_30_server_restarts_under_load(pv_name):
    """The README's "frames resume by themselves", tested: the IOC (a child
    process) is killed or stopped 30 times at random moments, away for a
    random time, and started again, while two other processes keep both
    cores busy; every time frames come again within 10 s of the restart.
    Once it is away for 17 s: pvAccess alone would search next only 32 s
    after the disconnect (a beacon is not seen on loopback)."""
    import random
    import time

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    burners = [subprocess.Popen([sys.executable, "-c", _BURN]) for _ in range(2)]
    sims = [_start_sim(pv_name)]
    source = None
    recoveries = []
    try:
        source, collector = subscribe(pv_name, timeout=30)
        assert collector.wait_for(lambda c: len(c.frames) >= 3)
        pause = threading.Event()  # never set: a random wait, not a condition
        long_outage = rng.randrange(30)
        for restart in range(30):
            pause.wait(rng.uniform(0.0, 1.0))  # a random moment of the stream
            gone = collector.states.count("disconnected")
            if rng.random() < 0.5:
                _stop_sim(sims[-1])
            else:
                sims[-1].kill()
                sims[-1].wait(10)
            assert collector.wait_for(lambda c: c.states.count("disconnected") > gone, timeout=30)
            pause.wait(17.0 if restart == long_outage else rng.uniform(0.0, 3.0))  # away a while
            n_before = len(collector.frames)
            started = time.monotonic()
            sims.append(_start_sim(pv_name))
            back = collector.wait_for(lambda c: len(c.frames) > n_before, timeout=30)
            recoveries.append(round(time.monotonic() - started, 2) if back else None)
            assert back, f"seed {seed}: restart {restart} got no frame in 30 s; {recoveries}"
        print(f"seconds from each restart to its first frame: {recoveries}; "
              f"fresh channels {source.channel_recreated}, monitor restarts {source.monitor_restarts}")
        assert max(recoveries) < 10, f"seed {seed}: seconds to the first frame {recoveries}"
    finally:
        if source is not None:
            source.stop()
        _kill_all(sims + burners)
