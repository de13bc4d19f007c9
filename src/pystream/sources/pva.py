"""EPICS PVAccess NTNDArray source (pvapy).

The monitor callback runs on pvapy's client thread and a slow callback
throttles the producer (pvAccess flow control), so it does five things only:
stamp the receive time, read ``uniqueId``, wrap the PvObject in a Frame
(decode deferred to ``ntndarray.decode_ntndarray``), take the
pixel buffer away from pvAccess (so it does not copy one we hold), hand it
to the sink.

Then, when nothing needs every frame (no recorder or other lossless tap),
it uses that flow control on purpose: ``sink.pace()`` holds the callback
(bounded) until the display has taken the frame, so pvAccess stops reading
and the server's monitor queue drops what the screen cannot show, before
it is sent (display-paced mode); only fresh frames are waited on (see
``PACE_FRESH_S``). With a tap, ``pace`` returns at once and every update is
taken off the wire (lossless mode); the switch is live. pvapy calls the
callbacks of every channel on one thread, so the wait is bounded (see
``FrameRouter.PACE_MAX_S``) for the sake of other PVs of the same process.
Measured against pvAccess's pipelined flow control
(``record[pipeline=true,queueSize=N]``, acknowledged as the callback
returns), at 1024² with a 16 ms hold: no less CPU in the client, frames
older (p50 82 ms with N=2, 276 ms with N=1), half the rate of a lossless
flood (580 against 1050 frames/s), and the request cannot change without
restarting the monitor (a gap at the switch); so not used.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref

import numpy as np

from ..frame import Frame
from ._base import FrameSink, Source
from .ntndarray import FIELD_DTYPES, NtndSnapshot, decode_ntndarray, snapshot_ntndarray

log = logging.getLogger(__name__)

# Every subscriber ever handed to pvapy, never released (a few dozen bytes
# each). pvapy 5.6 copies and drops its reference to the subscriber on the
# receive thread without holding the GIL; if ``unsubscribe`` removed the
# channel's reference meanwhile, that copy was the last one and the object
# was freed without the GIL: a segfault on stop under a fast stream (seen
# in ``Channel::callSubscribers``). With a reference kept here that never
# changes hands, pvapy never holds the last one.
_SUBSCRIBERS: list = []


# pvAccess deserialises every update into the same buffer. If we still hold
# the previous frame's array there (latest-frame slot, shown frame), pvData
# first copies the whole buffer, only to overwrite it: 0.6-0.9 ms per 8 MB
# frame on the receive thread (measured; the bare monitor never pays it).
# Putting an empty array of another type in the union after taking the view
# makes pvAccess allocate a fresh buffer instead. A different type than the
# stream's own, so "the server did not resend the value" (pvAccess keeps
# unchanged fields) can be told from a producer's empty array.
# Done on every frame. (With pvAccess's queue of 2 it seemed to raise the
# frames dropped at 100 Hz on shared cores, and was kept for frames arriving
# while the display was behind; with the queue of 4 below, drops are as low
# on every frame, and under a flood the receive side keeps up better:
# measured, see benchmarks/README.md.)
def _placeholder_field(field: str) -> str:
    return "byteValue" if field == "ubyteValue" else "ubyteValue"


_PLACEHOLDERS = {field: {_placeholder_field(field): np.empty(0, FIELD_DTYPES[_placeholder_field(field)])}
                 for field in FIELD_DTYPES}


# Updates a monitor may hold, on the server and in the client, while the
# viewer is briefly busy (the pvAccess default is 2). A frame that finds the
# queue full replaces the newest one and is lost: with 2, a hiccup of two
# frame periods (20 ms at 100 Hz, e.g. the receive thread waiting for the
# GIL or for a core) costs frames. Measured at 2048², 100 Hz, with two busy
# processes on the 2 cores: 72-81 frames lost in 30 s with 2, 4-29 with 3,
# 0-2 with 4; under a flood the viewer also received more (177-182 fps
# against 145-160) with no more memory (see benchmarks/README.md).
DEFAULT_QUEUE_SIZE = 4


def monitor_request(queue_size: int) -> str:
    """The pvRequest for the whole structure with this monitor queue depth."""
    return f"record[queueSize={int(queue_size)}]field()"


# Display pacing waits only on a frame younger than this (producer's
# dataTimeStamp to arrival). While the callback waits, later updates pile up
# in the server's monitor queue (which keeps the oldest when full) and the
# socket buffers: measured at 1024², a bare monitor holding every update 16
# ms got frames 94 ms old (p50) at a flood and 131 ms at 100 Hz (queue 4;
# still 50-90 ms with queue 1). Passing older frames on at once catches up:
# the frames it then waits on were 1-6 ms old. A producer whose clock is off
# by more than this is never paced (every frame is taken, as in lossless mode).
PACE_FRESH_S = 0.01

# Seconds a channel may stay disconnected (or connected and silent after a
# monitor restart) before the source drops it and creates a fresh one; the
# last step repeats. pvAccess searches for a lost channel with a doubling
# interval (0.25, 0.5, 1, 2, 4, 8, 16, 32 s... seen with EPICS_PVA_DEBUG=3,
# pvapy 5.6) and relies on the server's beacon to search again at once when
# it returns; that beacon is not seen on loopback, so a server back after a
# 40 s outage was found only 23 s later. A fresh channel searches at once.
RECREATE_BACKOFF = (1.0, 2.0, 4.0, 5.0)


class _Relay:
    """The callable pvapy holds: forwards to ``cell[0]`` until stop clears it.

    The source is reached through a list cell, so clearing it after stop
    frees the source without touching the relay (whose reference count
    pvapy changes without the GIL)."""

    __slots__ = ("cell",)

    def __init__(self, cell: list):
        self.cell = cell

    def __call__(self, pv) -> None:
        target = self.cell[0]
        if target is not None:
            target(pv)


class PvaSource(Source):
    """Subscribe to one NTNDArray PV; survives the server going away and back."""

    kind = "pva"

    def __init__(self, pv_name: str, queue_size: int = DEFAULT_QUEUE_SIZE, paced: bool = True):
        """``paced=False``: take every update off the wire even when only the
        display uses them (see the module's docstring)."""
        super().__init__(pv_name)
        self.paced = paced
        if queue_size < 1:
            raise ValueError(f"pvAccess queue size must be at least 1, not {queue_size}")
        self.queue_size = queue_size
        self._channel = None
        self._lock = threading.Lock()
        self._channel_lock = threading.Lock()  # the watcher replaces the channel; stop() closes it
        self._monitoring = False
        self._ever_connected = False
        self.connected = threading.Event()
        self.poll_interval = 0.2
        self._state_lock = threading.Lock()
        self._halt = threading.Event()
        self._watcher: threading.Thread | None = None
        self._relay_cell: list = [None]
        self._updates = 0  # monitor updates seen, to tell a monitor that resumed from one that did not
        self._resume_check: tuple | None = None  # (updates at connect, since, grace, monitor restarted)
        self.resume_grace = 2.0  # seconds a connected monitor may stay silent before it is restarted
        self.monitor_restarts = 0
        self._last_uid = None  # uniqueId of the last update, and when it came
        self._last_update_at = 0.0
        self._quiet_checked = 0  # self._updates when the newest update was last checked for
        self.settle = 0.5  # seconds of silence after which the server is asked for its newest uid
        self.in_flight_grace = 0.2  # then, seconds for an update already on its way to arrive
        self.held_back_fetched = 0
        self._placeholder = ""  # the union field we left in pvAccess's structure
        self._last_pixels = None  # weakref to the last frame's array (for a value not resent)
        self._last_field = ""
        self._waiting = False  # the PV exists but holds no image yet (state "waiting")
        # a channel that does not deliver: since when (monotonic), and the
        # step of RECREATE_BACKOFF reached in this episode
        self._stuck_since: float | None = None
        self._backoff_step = 0
        self._episode_recreated = 0  # fresh channels in the current episode (logged once)
        self.channel_recreated = 0
        self.recreate_backoff = RECREATE_BACKOFF

    # pvapy calls this on its own thread, once per update: keep it tiny. The
    # PvObject is reused by pvAccess after we return, so take a snapshot
    # (array view + small fields, no pixel copy) instead of keeping it.
    def _on_update(self, pv) -> None:
        t_recv = time.time()
        sink = self.sink
        if sink is None:
            return
        if not self.connected.is_set():  # a frame proves the connection before the poll does
            self._on_connection(True)
        self._updates += 1
        self._last_update_at = time.monotonic()
        try:
            snap = snapshot_ntndarray(pv)
        except Exception as exc:  # a structure that is not an NTNDArray
            sink.on_reject("not_ntndarray", f"{self.name}: {exc}")
            return
        self._last_uid = snap.uid
        if snap.awaiting_image:  # an areaDetector PV before its first acquisition
            if not self._waiting:
                self._waiting = True
                log.info("%s: connected; the PV holds no image yet", self.name)
                sink.on_state("waiting", f"{self.name}: waiting for the first frame")
            return
        if self._waiting:
            self._waiting = False
            sink.on_state("connected", "")
        snap = self._take_pixels(pv, snap)
        if snap is None:
            sink.on_reject("value_not_resent", f"{self.name}: the server did not resend the pixels "
                                               "and the previous frame is no longer held")
            return
        sink.on_frame(Frame(snap, uid=snap.uid, source=self.name, decode=decode_ntndarray,
                            t_recv=t_recv, nbytes=snap.nbytes))
        pace = getattr(sink, "pace", None)
        if pace is not None:  # while only the display needs frames, until it has taken this one
            pace(wait=self._is_fresh(snap, t_recv), lossless=not self.paced)

    @staticmethod
    def _is_fresh(snap: NtndSnapshot, t_recv: float) -> bool:
        """Stamped by the producer less than ``PACE_FRESH_S`` ago. Waiting on
        an older frame would keep the backlog behind it (the server's queue,
        the socket buffers) waiting too, and the display would show frames
        that old; passing it on at once catches up with the newest."""
        try:
            stamp = snap.timestamp["secondsPastEpoch"] + snap.timestamp["nanoseconds"] * 1e-9
        except (KeyError, TypeError):
            return False
        return abs(t_recv - stamp) < PACE_FRESH_S

    def _take_pixels(self, pv, snap: NtndSnapshot):
        """Leave a placeholder where pvAccess keeps the pixels
        (see ``_PLACEHOLDERS``). An update whose value is still our placeholder
        did not carry pixels: it has the previous frame's (None if that
        array is gone)."""
        if snap.field and snap.field == self._placeholder and snap.data is not None and not snap.data.size:
            previous = self._last_pixels() if self._last_pixels is not None else None
            if previous is None:
                return None
            return dataclasses.replace(snap, field=self._last_field, data=previous)
        placeholder = _PLACEHOLDERS.get(snap.field)
        if placeholder is not None and snap.data is not None and snap.data.size:
            try:
                pv.setUnion(placeholder)
                self._placeholder = _placeholder_field(snap.field)
            except Exception as exc:  # costs a copy per frame, never a frame
                self._placeholder = ""
                log.debug("%s: cannot detach the pixels: %s", self.name, exc)
            self._last_pixels = weakref.ref(snap.data)
            self._last_field = snap.field
        return snap

    def _watch_connection(self, halt: threading.Event) -> None:
        # pvapy's setConnectionCallback can fire on the thread that is inside
        # startMonitor() without the GIL and abort the interpreter (seen with
        # pvapy 5.6.0); polling isConnected() from our own thread is safe.
        while not halt.is_set():
            channel = self._channel
            if channel is None:
                return
            try:
                now = bool(channel.isConnected())
            except Exception:
                now = False
            self._on_connection(now)
            if now and self._resume_check is not None:
                self._check_monitor_resumed(channel, halt)
            elif now:
                self._check_newest_delivered(channel, halt)
            else:
                self._check_unreachable(halt)
            halt.wait(self.poll_interval)

    def _check_unreachable(self, halt: threading.Event) -> None:
        """A channel that stays disconnected past the back-off is replaced:
        pvAccess's own search for it slows down to once in 32 s."""
        now = time.monotonic()
        if self._stuck_since is None:
            self._stuck_since = now
        elif now - self._stuck_since >= self.recreate_backoff[self._backoff_step]:
            self._recreate_channel("not connected", now - self._stuck_since, halt)

    def _check_newest_delivered(self, channel, halt: threading.Event) -> None:
        """Fetch the newest frame when the server held it back.

        When a burst overflows the monitor queue (the viewer stalled), the
        server sends the newest update only together with the next one
        (measured with pvapy 5.6: frames published during a stall, then
        none; the last never arrived). With a triggered detector the window
        would show a stale frame. So once the stream has been quiet for
        ``settle`` seconds, ask for the server's uniqueId (a few bytes); if
        it is not the last one received, restart the monitor, whose first
        update is the current value."""
        updates = self._updates
        if updates == self._quiet_checked or time.monotonic() - self._last_update_at < self.settle:
            return
        self._quiet_checked = updates
        try:
            newest = channel.get("field(uniqueId)")["uniqueId"]
        except Exception as exc:  # the server went away meanwhile: the poll will tell
            log.debug("%s: cannot read the uniqueId: %s", self.name, exc)
            return
        if newest == self._last_uid or self._updates != updates or halt.is_set():
            return  # up to date, a frame came meanwhile, or stop() is waiting for us
        # an update sent just before our get may still be on its way: give it a
        # moment, or the restart would deliver that frame a second time
        if halt.wait(self.in_flight_grace) or self._updates != updates:
            return
        log.info("%s: the server held back its newest frame (uid %s, last received %s); fetching it",
                 self.name, newest, self._last_uid)
        self.held_back_fetched += 1
        self._restart_monitor(channel)

    def _check_monitor_resumed(self, channel, halt: threading.Event) -> None:
        """Restart a monitor that stays silent after the channel connects;
        replace the channel if that does not help either.

        A pvAccess server sends the current value as soon as a monitor
        connects, so silence means the client missed creating it: pvapy 5.6
        sometimes (about 1 restart of the server in 20 here) reports the
        channel connected and then never calls back (also reported as pvaPy
        issue 79). Stopping and starting the monitor brings it back."""
        updates_then, since, grace, restarted = self._resume_check
        if self._updates != updates_then:
            self._resume_check = None
            self._recovered()
            return
        if time.monotonic() - since < grace:
            return
        if restarted:
            self._recreate_channel("connected but silent", time.monotonic() - since, halt)
            return
        log.warning("%s: connected but no update for %.1f s; restarting the monitor", self.name, grace)
        self.monitor_restarts += 1
        self._restart_monitor(channel)
        self._resume_check = (self._updates, time.monotonic(), self.recreate_backoff[self._backoff_step], True)

    def _recreate_channel(self, why: str, for_s: float, halt: threading.Event) -> None:
        """Drop the channel and create a fresh one, which searches at once.
        Logged once per episode (until an update arrives again); counted."""
        with self._channel_lock:
            if halt.is_set() or self._channel is None:
                return  # stop() is closing the channel
            if not self._episode_recreated:
                log.warning("%s: %s for %.1f s; creating a fresh channel (again after %s s while it "
                            "lasts, counted in channel_recreated)", self.name, why, for_s,
                            ", ".join(f"{t:g}" for t in self.recreate_backoff[self._backoff_step + 1:]) or
                            f"{self.recreate_backoff[-1]:g}")
            else:
                log.debug("%s: %s for %.1f s; creating a fresh channel", self.name, why, for_s)
            self._close_channel(self._channel, self._relay_cell, self._monitoring)
            self._channel = None
            try:
                self._open_channel()
            except Exception as exc:  # tried again after the next back-off step
                log.warning("%s: cannot create a channel: %s", self.name, exc)
        self.channel_recreated += 1
        self._episode_recreated += 1
        self._backoff_step = min(self._backoff_step + 1, len(self.recreate_backoff) - 1)
        self._stuck_since = time.monotonic()
        if self.connected.is_set():  # a fresh channel that connects at once must deliver too
            self._resume_check = (self._updates, time.monotonic(), self.recreate_backoff[self._backoff_step],
                                  True)

    def _recovered(self) -> None:
        """An update arrived after a connect: the episode is over."""
        if self._episode_recreated:
            log.info("%s: receiving again, after %d fresh channel(s)", self.name, self._episode_recreated)
        self._episode_recreated = 0
        self._backoff_step = 0
        self._stuck_since = None

    def _restart_monitor(self, channel) -> None:
        try:
            channel.stopMonitor()
            channel.startMonitor(monitor_request(self.queue_size))
        except Exception as exc:
            log.warning("%s: restarting the monitor failed: %s", self.name, exc)

    def _on_connection(self, is_connected: bool) -> None:
        """Report a change of connection state (called repeatedly; acts on changes)."""
        with self._state_lock:
            if is_connected == self.connected.is_set():
                return
            self._report_connection(is_connected)

    def _report_connection(self, is_connected: bool) -> None:
        sink = self.sink
        if is_connected:
            self._placeholder = ""  # a new connection's first update carries every field
            self._waiting = False
            self._stuck_since = None
            # the server sends the current value at once: watch that it comes
            self._resume_check = (self._updates, time.monotonic(), self.resume_grace, False)
            self._ever_connected = True
            self.connected.set()
            log.info("connected to %s", self.name)
            if sink:
                sink.on_state("connected", "")
        elif self._ever_connected:  # pvapy also reports "not connected" before the first connect
            self.connected.clear()
            log.warning("disconnected from %s", self.name)
            if sink:
                sink.on_state("disconnected", f"{self.name}: server gone; waiting for it to return")

    def stats(self) -> dict:
        return {"monitor_restarts": self.monitor_restarts, "held_back_fetched": self.held_back_fetched,
                "channel_recreated": self.channel_recreated}

    def _open_channel(self) -> None:
        """A new channel with our subscriber and monitor (the caller holds ``_channel_lock``)."""
        import pvaccess as pva

        channel = pva.Channel(self.name, pva.PVA)
        cell = [self._on_update]
        relay = _Relay(cell)
        _SUBSCRIBERS.append(relay)  # before pvapy sees it: see _SUBSCRIBERS
        channel.subscribe("pystream", relay)
        del relay
        self._channel, self._relay_cell, self._monitoring = channel, cell, False
        # the whole structure (an empty field()), with our queue depth
        channel.startMonitor(monitor_request(self.queue_size))
        self._monitoring = True

    def _close_channel(self, channel, cell: list, monitoring: bool) -> None:
        cell[0] = None  # an update still in flight goes nowhere
        try:
            if monitoring:
                channel.stopMonitor()
            channel.unsubscribe("pystream")
        except Exception as exc:  # closing must never raise
            log.debug("closing the channel to %s: %s", self.name, exc)

    def start(self, sink: FrameSink) -> None:
        self.sink = sink
        sink.on_state("connecting", "")
        with self._lock:
            with self._channel_lock:
                self._open_channel()
            self._halt = threading.Event()
            self._watcher = threading.Thread(target=self._watch_connection, args=(self._halt,),
                                             name=f"pystream-pva-watch-{self.name}", daemon=True)
            self._watcher.start()

    def stop(self) -> None:
        with self._lock:
            self._halt.set()
            if self._watcher is not None:  # no pvapy call on another thread while we stop
                self._watcher.join(timeout=2 * self.poll_interval + 1.0)
                self._watcher = None
            with self._channel_lock:
                channel, self._channel = self._channel, None
                if channel is None:
                    return
                self._close_channel(channel, self._relay_cell, self._monitoring)
                self._monitoring = False
        sink, self.sink = self.sink, None
        if sink:
            sink.on_state("stopped", "")
