"""The engine: one long-lived session that sources connect to and every consumer uses.

GUI-free. The window, ``pystream record``, the spectrum receiver, the web view
and user scripts are all thin over it::

    source ──► router (counts, uid gaps) ──► latest-frame slot ──► display worker ──► display listeners
                    └──► lossless taps (recorder, every_frame(), publishers)

A ``Session`` outlives connections: ``connect(source)`` replaces the source
and keeps the taps, processors, analyses, listeners, stats providers and
display settings. The counts start again for each source (they describe the
stream being watched); gauges registered by other parts (``counters.extra``)
stay.

Consuming without Qt::

    with pystream.Session() as session:
        session.connect(pystream.PvaSource("13SIM1:Pva1:Image"))
        for display in session.frames():      # latest wins: a slow loop skips frames
            print(display.uid, display.image.shape)

``every_frame()`` gives every received frame instead (lossless, bounded in bytes).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional

from .display import DisplayFrame, DisplaySettings, DisplayWorker
from .flow import ByteBoundedQueue, Counters, FrameRouter, LatestFrameSlot
from .frame import Frame
from .sources._base import Source

log = logging.getLogger(__name__)

#: source states after which no more frames come
END_STATES = ("finished", "stopped")

DisplayListener = Callable[[DisplayFrame], None]


class Session:
    """A long-lived stream session (the engine, no Qt).

    ``display=False`` makes a session with no display worker: nothing is ever
    decoded for display (a headless recording, a spectrum receiver).
    """

    def __init__(self, *, max_fps: float = 0.0, display_bin: int = 0, display: bool = True,
                 counters: Optional[Counters] = None):
        self.counters = counters if counters is not None else Counters()
        self.slot = LatestFrameSlot()
        self.router = FrameRouter(self.counters, self.slot if display else None)
        self.display = DisplaySettings(max_fps=max_fps, display_bin=display_bin)
        # shared with the worker: changes apply to the next frame
        self.processors: List[Callable] = []
        self.analyses: Dict[str, Callable] = {}
        self.source: Optional[Source] = None
        self.worker: Optional[DisplayWorker] = None
        if display:
            self.worker = DisplayWorker(self.slot, self.counters, self._deliver,
                                        settings=self.display, processors=self.processors,
                                        analyses=self.analyses)
        self._listeners: List[DisplayListener] = []
        self._paced: List[DisplayListener] = []
        self._user_paused = False
        self._stats_sources: List[Callable[[], Dict[str, Any]]] = []
        self._ended = threading.Event()  # the current source said finished/stopped
        self._closed = False
        self._lock = threading.RLock()
        self.router.add_state_listener(self._on_state)
        self._update_gate()

    # ------------------------------------------------------------ sources
    def connect(self, source: Source) -> None:
        """Watch ``source`` (the previous one is stopped first)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this session is closed")
            self._stop_source()
            self.counters.reset()
            self.router.reset()
            self._ended.clear()
            self.source = source
            if self.worker is not None and not self.worker.is_alive():
                self.worker.start()
        try:
            source.start(self.router)
        except Exception as exc:
            self.counters.set_state("error")
            self.counters.error(f"cannot start {source.describe()}: {exc}")
            log.error("cannot start %s: %s", source.describe(), exc)
            self._ended.set()

    def disconnect(self) -> None:
        """Stop watching the current source (the session stays usable)."""
        with self._lock:
            self._stop_source()

    def _stop_source(self) -> None:
        source, self.source = self.source, None
        if source is not None:
            try:
                source.stop()
            except Exception as exc:  # a source that fails to stop must not take the rest down
                log.warning("stopping %s failed: %s", source.describe(), exc)
            self._ended.set()

    def close(self) -> None:
        """Stop the source and every thread of the session. Safe twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop_source()
            self.slot.close()
        if self.worker is not None:
            self.worker.stop()
            if self.worker.is_alive() and threading.current_thread() is not self.worker:
                self.worker.join(timeout=2.0)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _on_state(self, state: str, message: str) -> None:
        # an error ends a finite source (a user's iterator that raised); a
        # network source in error may still recover
        if state in END_STATES or (state == "error" and getattr(self.source, "ends_on_error", False)):
            self._ended.set()

    @property
    def ended(self) -> bool:
        """The source has finished (or was stopped): no more frames will come."""
        return self._ended.is_set()

    def wait_ended(self, timeout: Optional[float] = None) -> bool:
        return self._ended.wait(timeout)

    # ------------------------------------------------------------ lossless taps
    def add_tap(self, tap: Callable[[Frame], None]) -> None:
        """``tap(frame)`` for every received frame, on the source thread: O(1), never block."""
        self.router.add_tap(tap)

    def remove_tap(self, tap: Callable[[Frame], None]) -> None:
        self.router.remove_tap(tap)

    def every_frame(self, max_bytes: int = 1 << 30, timeout: float = 0.2) -> Iterator[Frame]:
        """Every frame received from this call on, oldest first, until the
        source ends or the session closes. Frames that do not fit in
        ``max_bytes`` while the loop is busy are dropped and counted
        (``every_frame_drops``). Call it before ``connect`` to miss nothing."""
        queue = ByteBoundedQueue(max_bytes)
        self.counters.counts.setdefault("every_frame_drops", 0)

        def tap(frame: Frame) -> None:
            if not queue.put(frame, frame.nbytes or 1):
                self.counters.add("every_frame_drops")

        self.add_tap(tap)  # now, not at the first next(): nothing received from here is lost

        def iterate() -> Iterator[Frame]:
            try:
                while True:
                    frame = queue.get(timeout=timeout)
                    if frame is not None:
                        yield frame
                    elif self._closed or (self._ended.is_set() and len(queue) == 0):
                        return
            finally:
                self.remove_tap(tap)
                queue.close()

        return iterate()

    # ------------------------------------------------------------ display consumers
    def add_display_listener(self, listener: DisplayListener, *, paced: bool = False) -> None:
        """``listener(display)`` on the worker thread for each display-ready frame.

        It must return at once. ``paced=True``: the listener calls
        ``consumed()`` once it has shown the frame, and the worker waits for
        that (up to its ``ready_timeout``) before it prepares the next frame;
        with no paced listener the worker goes on by itself, capped by
        ``display.max_fps``. Nothing is decoded for display while no listener
        is attached.
        """
        with self._lock:
            self._listeners = self._listeners + [listener]
            if paced:
                self._paced = self._paced + [listener]
            self._update_gate()

    def remove_display_listener(self, listener: DisplayListener) -> None:
        with self._lock:
            self._listeners = [f for f in self._listeners if f is not listener]
            self._paced = [f for f in self._paced if f is not listener]
            self._update_gate()
            if self.worker is not None and not self._paced:
                self.worker.consumed()  # nobody left to say so

    def consumed(self) -> None:
        """A paced listener has shown the last frame: prepare the next."""
        if self.worker is not None:
            self.worker.consumed()

    def _deliver(self, display: DisplayFrame) -> None:  # worker thread
        for listener in self._listeners:
            try:
                listener(display)
            except Exception:  # one broken consumer must not starve the others
                log.exception("display listener %r failed", listener)
        if not self._paced and self.worker is not None:
            self.worker.consumed()

    def frames(self, timeout: Optional[float] = None) -> Iterator[DisplayFrame]:
        """Display-ready frames from this call on, latest wins: a slow loop
        skips frames (counted as ``skipped``), never falls behind. Ends when the
        source ends, the session closes, or no frame came for ``timeout`` s."""
        box = LatestFrameSlot()
        self.add_display_listener(box.put, paced=True)

        def iterate() -> Iterator[DisplayFrame]:
            waited = 0.0
            try:
                while True:
                    display = box.take(timeout=0.1)
                    if display is not None:
                        waited = 0.0
                        yield display
                        self.consumed()
                        continue
                    waited += 0.1
                    if self._closed or (self._ended.is_set() and self._display_drained()
                                        and not len(box)):
                        return
                    if timeout is not None and waited >= timeout:
                        return
            finally:
                self.remove_display_listener(box.put)

        return iterate()

    def _display_drained(self) -> bool:
        """No frame waits for display and none is being prepared."""
        return len(self.slot) == 0 and (self.worker is None or self.worker.idle)

    # ------------------------------------------------------------ pause
    def pause(self) -> None:
        """Stop preparing frames for display (nothing is decoded; frames are
        still received, counted and offered to the taps)."""
        self._user_paused = True
        self._update_gate()

    def resume(self) -> None:
        self._user_paused = False
        self._update_gate()

    @property
    def paused(self) -> bool:
        return self._user_paused

    def _update_gate(self) -> None:
        """The worker runs only while someone looks and the user has not paused."""
        if self.worker is None:
            return
        if self._user_paused or not self._listeners:
            self.worker.pause()
        else:
            self.worker.resume()

    # ------------------------------------------------------------ state and numbers
    def add_state_listener(self, listener: Callable[[str, str], None]) -> None:
        """``listener(state, message)`` on the source's thread."""
        self.router.add_state_listener(listener)

    def add_stats(self, provider: Callable[[], Dict[str, Any]]) -> None:
        """Merge another part's numbers (pipeline, recorder, web) into ``stats()``."""
        self._stats_sources.append(provider)

    def remove_stats(self, provider: Callable[[], Dict[str, Any]]) -> None:
        self._stats_sources = [p for p in self._stats_sources if p is not provider]

    def stats(self) -> Dict[str, Any]:
        """Every counter: the ``--stats-json`` dictionary."""
        snap = self.counters.snapshot()
        source = self.source
        snap["source"] = source.describe() if source is not None else ""
        if source is not None:
            try:
                snap.update(source.stats())
            except Exception as exc:
                log.debug("source stats failed: %s", exc)
        snap["paused"] = self._user_paused
        for provider in list(self._stats_sources):
            try:
                snap.update(provider())
            except Exception as exc:
                log.debug("stats provider failed: %s", exc)
        return snap
