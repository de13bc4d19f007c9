"""How frames move between threads, and the counters that tell the truth about it.

- ``LatestFrameSlot``: display path, latest wins; a replaced frame is *skipped*
  and was never decoded.
- ``ByteBoundedQueue``: record path, lossless up to a byte budget; beyond it
  a put is refused and the caller counts a drop.
- ``Counters``: every number the status bar and ``--stats-json`` show.
- ``FrameRouter``: the sink a source hands frames to; does only O(1) work
  (count, uid-gap check, put) so the source's thread is never slowed; and
  tells a source that can hold back its producer (pvAccess) whether anyone
  needs every frame (``lossless``), or only the display (``pace``).
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

import numpy as np

from .frame import Frame

log = logging.getLogger(__name__)

UINT32_WRAP = 2 ** 32


class RateMeter:
    """Events per second over a sliding window (default 2 s)."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self._times: Deque[float] = collections.deque()

    def tick(self, now: Optional[float] = None) -> None:
        self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: Optional[float] = None) -> float:
        now = time.monotonic() if now is None else now
        times = self._times
        while times and times[0] < now - self.window:
            times.popleft()
        if len(times) < 2:
            return 0.0
        span = max(now - times[0], 1e-9)
        # count intervals, not events, so a steady stream reads its true rate
        return (len(times) - 1) / span if span < self.window else len(times) / self.window


class UidTracker:
    """Interprets the producer's ``uniqueId`` sequence.

    A gap counts frames lost upstream; a uid that goes backwards (typically
    to 1) is a producer restart, never billions of drops; wrap-around of an
    unsigned 32-bit counter is a gap of the real size.
    """

    def __init__(self):
        self.last: Optional[int] = None
        self.restarts = 0
        self.duplicates = 0
        self._reconnecting = False

    def connection_lost(self) -> None:
        """Frames published while we were disconnected were never ours to lose:
        the first uid after a reconnect is a restart if it went backwards, and
        otherwise starts a new count."""
        self._reconnecting = True

    def observe(self, uid: int) -> int:
        """Return the number of frames missing before ``uid``."""
        last, self.last = self.last, uid
        if last is None:
            return 0
        if self._reconnecting:
            self._reconnecting = False
            if uid < last:
                self.restarts += 1
            return 0
        if uid == last + 1:
            return 0
        if uid > last:
            return uid - last - 1
        if uid == last:
            self.duplicates += 1
            return 0
        if last >= UINT32_WRAP - 1000 and uid < 1000:  # unsigned wrap
            return (uid + UINT32_WRAP - last - 1) % UINT32_WRAP
        self.restarts += 1
        return 0


class LatencyStats:
    """Recent latency samples (seconds) → percentiles in milliseconds."""

    def __init__(self, keep: int = 1000):
        self._samples: Deque[float] = collections.deque(maxlen=keep)

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)

    def percentiles_ms(self) -> Tuple[Optional[float], Optional[float]]:
        if not self._samples:
            return None, None
        p50, p95 = np.percentile(np.fromiter(self._samples, float), [50, 95])
        return round(float(p50) * 1e3, 3), round(float(p95) * 1e3, 3)


class Counters:
    """Thread-safe counters; ``snapshot()`` is what ``--stats-json`` writes.

    Names are part of the user interface (scripts read them): received,
    dropped_upstream, skipped_upstream, skipped, decoded, displayed, rejected
    (+ by reason), recv_fps, display_fps, latency_ms_p50/p95, state,
    receive_mode.
    """

    COUNT_NAMES = ("received", "dropped_upstream", "skipped_upstream", "skipped", "decoded",
                   "displayed", "rejected", "restarts")

    def __init__(self):
        self._lock = threading.Lock()
        self.counts: Dict[str, int] = {name: 0 for name in self.COUNT_NAMES}
        self.rejected_by_reason: Dict[str, int] = {}
        self.recv_rate = RateMeter()
        self.display_rate = RateMeter()
        self.latency = LatencyStats()
        self.state = "idle"
        self.last_error = ""
        self.notices: List[str] = []
        self.receive_mode = ""  # "paced" or "lossless" for a source that paces; "" otherwise
        self.extra: Dict[str, Any] = {}  # gauges owned by other parts (recorder, pipeline...)
        self._t0 = time.monotonic()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + n

    def reset(self) -> None:
        """Start counting a new stream: counts (every name kept, at 0), rates,
        latency, state, errors and notices. ``extra`` gauges stay: they belong
        to parts that outlive the stream (recorder, pipeline)."""
        with self._lock:
            self.counts = {name: 0 for name in self.counts}
            self.rejected_by_reason = {}
            self.recv_rate = RateMeter()
            self.display_rate = RateMeter()
            self.latency = LatencyStats()
            self.state = "idle"
            self.receive_mode = ""
            self.last_error = ""
            self.notices = []
            self._t0 = time.monotonic()

    def received(self, dropped_upstream: int = 0, restart: bool = False,
                 skipped_upstream: int = 0) -> None:
        with self._lock:
            c = self.counts
            c["received"] += 1
            if dropped_upstream:
                c["dropped_upstream"] += dropped_upstream
            if skipped_upstream:
                c["skipped_upstream"] += skipped_upstream
            if restart:
                c["restarts"] += 1
            self.recv_rate.tick()

    def reject(self, reason: str, message: str = "") -> None:
        with self._lock:
            self.counts["rejected"] += 1
            self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1
            self.last_error = f"{reason}: {message}" if message and message != reason else reason

    def error(self, message: str) -> None:
        with self._lock:
            self.last_error = message

    def clear_error(self, message: str) -> bool:
        """The cause of ``message`` is gone: forget it if it is still the last
        error (a newer one stays). True when it was cleared."""
        with self._lock:
            if message and self.last_error == message:
                self.last_error = ""
                return True
            return False

    def notice(self, message: str) -> bool:
        """Record a one-time notice; return True the first time it is seen."""
        with self._lock:
            if message in self.notices:
                return False
            self.notices.append(message)
            return True

    def painted(self, t_source: Optional[float]) -> None:
        """A new frame reached the screen."""
        now = time.time()
        with self._lock:
            self.counts["displayed"] += 1
            self.display_rate.tick()
            if t_source is not None:
                self.latency.add(now - t_source)

    def set_state(self, state: str) -> None:
        with self._lock:
            self.state = state

    def get(self, name: str) -> int:
        with self._lock:
            return self.counts.get(name, 0)

    def snapshot(self) -> Dict[str, Any]:
        with self._lock:
            p50, p95 = self.latency.percentiles_ms()
            snap: Dict[str, Any] = dict(self.counts)
            snap.update(
                rejected_by_reason=dict(self.rejected_by_reason),
                recv_fps=round(self.recv_rate.rate(), 2),
                display_fps=round(self.display_rate.rate(), 2),
                latency_ms_p50=p50,
                latency_ms_p95=p95,
                state=self.state,
                receive_mode=self.receive_mode,
                last_error=self.last_error,
                notices=list(self.notices),
                uptime_s=round(time.monotonic() - self._t0, 3),
            )
            for key, value in self.extra.items():
                snap[key] = value() if callable(value) else value
            return snap


class LatestFrameSlot:
    """Holds only the newest frame. ``put`` returns the frame it replaced."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._frame: Any = None
        self._closed = False
        self.taken = 0  # frames handed out by take()

    def put(self, frame: Any) -> Any:
        with self._cond:
            old, self._frame = self._frame, frame
            self._cond.notify_all()
        return old

    def take(self, timeout: Optional[float] = None) -> Any:
        """Newest frame (emptying the slot), or None on timeout/close."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            if frame is not None:
                self.taken += 1
                self._cond.notify_all()  # a source in ``wait_taken``
            return frame

    def wait_taken(self, timeout: float, cancel: Callable[[], bool] = lambda: False) -> bool:
        """Wait until the slot's frame has been taken (or the slot closed, or
        ``cancel()`` is true after a ``wake``), at most ``timeout`` seconds.
        True if the slot is empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is None or self._closed or cancel(), timeout)
            return self._frame is None

    def wake(self) -> None:
        """Make ``wait_taken`` look at its ``cancel`` again."""
        with self._cond:
            self._cond.notify_all()

    def put_back(self, frame: Any) -> bool:
        """Return a taken frame the taker cannot use now (e.g. paused
        meanwhile). False if a newer frame came meanwhile: ``frame`` is then
        stale (the caller counts it as skipped)."""
        with self._cond:
            if self._frame is not None or self._closed:
                return False
            self._frame = frame
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return 0 if self._frame is None else 1


class ByteBoundedQueue:
    """FIFO bounded by the sum of its items' sizes in bytes (lossless path).

    ``put`` never blocks: it returns False when the item does not fit, and
    the caller counts that as a drop. One item larger than the whole budget
    is still accepted into an empty queue, so a tiny budget cannot starve a
    stream of big frames.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._items: Deque[Tuple[Any, int]] = collections.deque()
        self._bytes = 0
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self.peak_bytes = 0

    def put(self, item: Any, nbytes: int) -> bool:
        with self._cond:
            if self._closed:
                return False
            if self._items and self._bytes + nbytes > self.max_bytes:
                return False
            self._items.append((item, nbytes))
            self._bytes += nbytes
            self.peak_bytes = max(self.peak_bytes, self._bytes)
            self._cond.notify()
            return True

    def get(self, timeout: Optional[float] = None) -> Any:
        """Oldest item, or None when closed and empty, or on timeout."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if not self._items:
                return None
            item, nbytes = self._items.popleft()
            self._bytes -= nbytes
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more puts; getters drain what is left, then get None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def nbytes(self) -> int:
        return self._bytes

    @property
    def fill(self) -> float:
        return self._bytes / self.max_bytes if self.max_bytes else 0.0

    def __len__(self) -> int:
        return len(self._items)


class FrameRouter:
    """What a source hands frames to. Cheap by design: runs on the source thread.

    Counts, checks uid gaps, puts the frame in the display slot (latest wins;
    a replaced frame counts as skipped) and offers it to every lossless tap
    (recorders). A tap is a callable ``tap(frame) -> None``.

    Display pacing: a source whose producer drops what the consumer does not
    take (pvAccess: the server's monitor queue overwrites while the client
    callback has not returned) calls ``pace()`` after each frame. With no
    tap, nobody needs every frame, so ``pace`` waits (bounded) until the
    display has taken the frame: the producer sends only what the screen
    shows. uid gaps after a paced frame are ``skipped_upstream``, not
    ``dropped_upstream``. With a tap (``lossless``), ``pace`` returns at once.
    """

    # bounds of the wait in ``pace``: 1.5 intervals between the display's
    # takes, within these. The upper one also bounds how long other channels
    # sharing the source's thread wait (pvapy calls every channel's callback
    # on one thread): a 100 Hz PV with pvAccess queue 4 rides out 40 ms.
    PACE_MIN_S = 0.02
    PACE_MAX_S = 0.06

    def __init__(self, counters: Counters, slot: Optional[LatestFrameSlot] = None):
        self.counters = counters
        self.slot = slot
        self.uids = UidTracker()
        self._taps: List[Callable[[Frame], None]] = []
        self._state_listeners: List[Callable[[str, str], None]] = []
        self._state_error = ""  # the last error a state change reported
        self._paced_last = False  # the last frame was paced: a gap before the next was our doing
        self._display_stalled = False  # the last wait timed out (display paused or slow)
        self.paced_waits = 0  # frames ``pace`` waited on
        self._taken_at: Optional[float] = None  # when ``pace`` last saw the display take a frame
        self._take_interval: Optional[float] = None  # smoothed seconds between those takes

    @property
    def lossless(self) -> bool:
        """Someone needs every frame (a lossless tap: recorder, ``every_frame``, publisher)."""
        return bool(self._taps)

    def reset(self) -> None:
        """A new source: its uid sequence has nothing to do with the last one's."""
        self.uids = UidTracker()
        self._paced_last = self._display_stalled = False
        self._taken_at = self._take_interval = None

    def add_tap(self, tap: Callable[[Frame], None]) -> None:
        self._taps = self._taps + [tap]  # copy-on-write: the source thread iterates lock-free
        if self.slot is not None:
            self.slot.wake()  # a source waiting in pace() stops waiting at once

    def remove_tap(self, tap: Callable[[Frame], None]) -> None:
        self._taps = [t for t in self._taps if t is not tap]

    def pace(self, wait: bool = True, lossless: bool = False) -> None:
        """Called by a pacing source after ``on_frame``: wait until the display
        has taken the frame, at most 1.5 intervals between its takes (within
        ``PACE_MIN_S``..``PACE_MAX_S``; ``PACE_MIN_S`` while the display is
        not taking frames, e.g. paused or nobody looks). Returns at once when
        a tap needs every frame, or when nothing displays, or with
        ``wait=False`` (the source saw the frame was already old: a backlog
        that built up while it waited, to be caught up with, not shown).
        ``lossless=True``: the source was asked to take every update (it
        only reports the mode)."""
        slot = self.slot
        if slot is None or self.lossless or lossless:
            self._paced_last = False
            self.counters.receive_mode = "lossless"
            return
        self._paced_last = True
        self.counters.receive_mode = "paced"
        if not wait:
            return
        interval = self._take_interval
        if self._display_stalled:
            timeout = self.PACE_MIN_S
        elif interval is None:
            timeout = self.PACE_MAX_S
        else:
            timeout = min(self.PACE_MAX_S, max(self.PACE_MIN_S, 1.5 * interval))
        self.paced_waits += 1
        taken = slot.wait_taken(timeout, cancel=lambda: self.lossless)
        self._display_stalled = not taken
        if taken:
            now = time.monotonic()
            if self._taken_at is not None:
                sample = now - self._taken_at
                self._take_interval = sample if interval is None else 0.8 * interval + 0.2 * sample
            self._taken_at = now

    def add_state_listener(self, listener: Callable[[str, str], None]) -> None:
        self._state_listeners = self._state_listeners + [listener]

    def on_frame(self, frame: Frame) -> None:
        restarts_before = self.uids.restarts
        gap = self.uids.observe(frame.uid)
        restart = self.uids.restarts != restarts_before
        if self._paced_last:
            self.counters.received(0, restart, skipped_upstream=gap)
        else:
            self.counters.received(gap, restart)
        for tap in self._taps:
            tap(frame)
        if self.slot is not None and self.slot.put(frame) is not None:
            self.counters.add("skipped")

    def on_state(self, state: str, message: str = "") -> None:
        if state == "disconnected":
            self.uids.connection_lost()
        self.counters.set_state(state)
        if message and state in ("error", "disconnected"):
            self.counters.error(message)
            self._state_error = message
        elif state == "connected" and self._state_error:  # the connection is back
            self.counters.clear_error(self._state_error)
            self._state_error = ""
        for listener in self._state_listeners:
            listener(state, message)

    def on_reject(self, reason: str, message: str = "") -> None:
        """A source that finds a message unusable before it is a Frame.
        Logged the first time for each reason (every one is counted)."""
        first = self.counters.rejected_by_reason.get(reason, 0) == 0
        self.counters.reject(reason, message)
        if first:
            log.warning("rejected at the source (%s): %s; further ones are only counted",
                        reason, message or reason)
