"""Display-paced receiving: with nothing that needs every frame, the PVA
source holds pvAccess back until the display has taken a frame, so the
server drops what the screen cannot show; a lossless tap (recording) makes
it take everything again. Real PvaServer, real Session and display worker."""
import threading
import time

import numpy as np
import pytest

from pystream.session import Session
from pystream.sources.pva import PvaSource

from ..pva_helpers import FrameCollector

pytestmark = pytest.mark.pva


class Publishing(threading.Thread):
    """Publishes ``image`` with uids 1, 2, 3... at ``rate`` Hz until stopped."""

    def __init__(self, publisher, image, rate):
        super().__init__(daemon=True)
        self.publisher, self.image, self.period = publisher, image, 1.0 / rate
        self.uid = 0
        self.halt = threading.Event()

    def run(self):
        next_at = time.monotonic()
        while not self.halt.is_set():
            self.uid += 1
            self.publisher.publish(self.image, uid=self.uid)
            next_at += self.period
            self.halt.wait(max(0.0, next_at - time.monotonic()))

    def stop(self):
        self.halt.set()
        self.join(5)


class Shown:
    """A display listener: the uids delivered, and the publisher's uid then."""

    def __init__(self, publishing=None):
        self.uids, self.staleness = [], []
        self.publishing = publishing
        self.cond = threading.Condition()

    def __call__(self, display):
        with self.cond:
            self.uids.append(display.uid)
            if self.publishing is not None:
                self.staleness.append(self.publishing.uid - display.uid)
            self.cond.notify_all()

    def wait(self, n, timeout=30):
        with self.cond:
            return self.cond.wait_for(lambda: len(self.uids) >= n, timeout)


def _eventually(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def session():
    s = Session()
    yield s
    s.close()


def test_paced_shows_the_newest_and_a_recording_takes_every_frame(publisher, session):
    """A stream faster than a 20 fps display: paced mode, uid gaps counted as
    skipped upstream (never as dropped), the frame shown is a recent one; a
    tap (a recording) switches to lossless with consecutive uids from its
    first frame; removing it goes back to paced."""
    publishing = Publishing(publisher, np.zeros((256, 256), np.uint16), rate=200)
    publishing.start()
    shown = Shown(publishing)
    session.display.max_fps = 20
    session.add_display_listener(shown)
    try:
        session.connect(PvaSource(publisher.pv_name))
        assert shown.wait(10)
        n_shown = len(shown.uids)
        assert shown.wait(n_shown + 20)
        stats = session.stats()
        assert stats["receive_mode"] == "paced" and stats["dropped_upstream"] == 0
        staleness = sorted(shown.staleness[n_shown:])
        # at most about one display interval old (10 frames here), not a backlog
        assert staleness[len(staleness) // 2] <= 20, staleness

        recorded = []
        tap = recorded.append
        session.add_tap(tap)  # a recording starts
        assert _eventually(lambda: len(recorded) >= 200)
        uids = [frame.uid for frame in recorded[:200]]
        assert uids == list(range(uids[0], uids[0] + 200))  # every frame from its first
        assert session.stats()["receive_mode"] == "lossless"

        session.remove_tap(tap)  # ... and stops
        assert _eventually(lambda: session.stats()["receive_mode"] == "paced")
        assert shown.wait(len(shown.uids) + 5)
    finally:
        publishing.stop()


def test_a_slow_paint_decodes_nothing_in_vain(publisher, session):
    """A processor that takes 50 ms: every frame decoded is shown; what the
    display cannot take is never decoded."""
    publishing = Publishing(publisher, np.zeros((128, 128), np.uint16), rate=200)
    publishing.start()
    shown = Shown()

    def slow(arr, meta):
        time.sleep(0.05)
        return arr, meta

    session.processors.append(slow)
    session.add_display_listener(shown)
    try:
        session.connect(PvaSource(publisher.pv_name))
        assert shown.wait(20)
        stats = session.stats()
        assert stats["receive_mode"] == "paced"
        assert stats["decoded"] - len(shown.uids) <= 1  # at most the one being prepared
        assert stats["received"] > stats["decoded"]
    finally:
        publishing.stop()


def test_pacing_one_channel_does_not_stall_another_on_the_same_server(pva_server, pv_name, session):
    """pvapy calls every channel's callback on one thread, and both PVs share
    one TCP connection: while one is paced by a slow display, a 100 Hz PV
    on the same server still gets every update. (Both share one TCP stream:
    the other PV's updates queue behind the image's, so waiting on every
    image frame, old ones too, would starve it: measured, fewer than 5
    updates in 30 s with ``PACE_FRESH_S`` at 60 s. Old frames are passed on
    at once, which drains that queue.)"""
    from pystream.publish.pva_sim import NtndArrayPublisher

    image_pub = NtndArrayPublisher(pv_name, server=pva_server)
    other_pub = NtndArrayPublisher(pv_name + ":other", server=pva_server)
    image = Publishing(image_pub, np.zeros((256, 256), np.uint16), rate=400)
    other = Publishing(other_pub, np.zeros((4, 4), np.uint16), rate=100)
    shown = Shown()

    def slow(arr, meta):
        time.sleep(0.05)
        return arr, meta

    session.processors.append(slow)
    session.add_display_listener(shown)
    collector = FrameCollector()
    other_source = PvaSource(other_pub.pv_name)
    try:
        image.start()
        other.start()
        session.connect(PvaSource(pv_name))
        other_source.start(collector)
        assert shown.wait(5) and collector.wait_for(lambda c: len(c.frames) >= 5)
        first = collector.frames[-1].uid
        assert shown.wait(len(shown.uids) + 30)  # 1.5 s or more of pacing
        assert session.router.paced_waits > 10  # the image's callback was held
        last = other.uid
        assert collector.wait_uid(last, timeout=10)
        uids = [f.uid for f in collector.frames if first <= f.uid <= last]
        assert uids == list(range(first, last + 1))  # every update, none stalled out
        assert collector.counters.snapshot()["dropped_upstream"] == 0
    finally:
        other_source.stop()
        image.stop()
        other.stop()
        image_pub.stop()
        other_pub.stop()
