"""``--publish NAME``: serve the frames pystream processes as an NTNDArray PV.

ImageJ's EPICS plugin, c2dataviewer, another pystream or a pvapy consumer can
then subscribe to what this viewer computes.

Two ways to feed it:

- every frame (default): a lossless tap takes every received frame (O(1) on
  the source thread) into a byte-bounded queue; this publisher's own thread
  decodes it, runs its own clone of the pipeline and publishes. A queue that
  overflows drops frames and counts them (``publish_drops``).
- displayed frames (``--publish-displayed``): a display listener publishes
  what the display worker already processed (``display.raw``, full
  resolution), at the display's rate; nothing is processed twice.

Counters (``--stats-json``): ``published``, ``publish_drops``,
``publish_rejected`` (frames that could not be decoded), ``publish_errors``
(results that could not be sent), ``publish_last_error``.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from ..flow import ByteBoundedQueue
from ..frame import Frame, FrameRejected
from ..sources.ntndarray import NtndSnapshot, result_ntndarray, timestamp_of
from .pva_sim import NtndArrayPublisher

log = logging.getLogger(__name__)

Process = Callable[[np.ndarray, dict], Tuple[np.ndarray, dict]]


class FramePublisher:
    """Publishes processed frames on an NTNDArray PV from its own thread.

    ``tap(frame)`` (every frame; ``process`` runs the pipeline on it) and
    ``on_display(display)`` (already processed) only enqueue: they never block.
    """

    def __init__(self, pv_name: str, *, process: Optional[Process] = None,
                 max_bytes: int = 256 << 20, server=None):
        self.pv_name = pv_name
        self.process = process
        self._publisher = NtndArrayPublisher(pv_name, server=server)
        self._queue = ByteBoundedQueue(max_bytes)
        self._lock = threading.Lock()
        self.counts = {"published": 0, "publish_drops": 0, "publish_rejected": 0,
                       "publish_errors": 0}
        self.last_error = ""
        self._queue_closed = False
        self._thread = threading.Thread(target=self._run, name=f"pystream-publish-{pv_name}",
                                        daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- feeding (never block)
    def tap(self, frame: Frame) -> None:
        """Every received frame (the session's lossless tap), on the source thread."""
        if not self._queue.put(("frame", frame), frame.nbytes or 1):
            self._add("publish_drops")

    def on_display(self, display) -> None:
        """A display-ready frame (the session's display listener), on the worker thread."""
        raw = display.raw
        nbytes = raw.nbytes if isinstance(raw, np.ndarray) else getattr(display.frame, "nbytes", 1)
        if not self._queue.put(("display", display), nbytes or 1):
            self._add("publish_drops")

    # ---------------------------------------------------------------- the thread
    def _run(self) -> None:
        while True:
            item = self._queue.get(timeout=0.5)
            if item is None:
                if self._queue_closed:
                    return
                continue
            kind, obj = item
            try:
                if kind == "frame":
                    self._publish_frame(obj)
                else:
                    self._publish_display(obj)
            except Exception as exc:  # a result no NTNDArray can carry; a server error
                self._error("publish_errors", f"frame {getattr(obj, 'uid', '?')} not published: "
                                              f"{type(exc).__name__}: {exc}")

    def _publish_frame(self, frame: Frame) -> None:
        try:
            arr, meta = frame.array, frame.metadata()
        except FrameRejected as exc:
            self._error("publish_rejected", f"frame {frame.uid} rejected ({exc.reason}): {exc.message}")
            return
        if self.process is not None:
            arr, meta = self.process(arr, meta)
        self._send(arr, frame, meta.get("attributes"))

    def _publish_display(self, display) -> None:
        frame = display.frame
        attributes = (display.meta or {}).get("attributes")
        if attributes is None and frame is not None:
            attributes = frame.attributes
        self._send(np.asarray(display.raw), frame, attributes, uid=display.uid,
                   t_source=display.t_source)

    def _send(self, arr: np.ndarray, frame: Optional[Frame], attributes: Optional[dict], *,
              uid: Optional[int] = None, t_source: Optional[float] = None) -> None:
        payload = getattr(frame, "payload", None)
        timestamp: Any = timestamp_of(payload) if isinstance(payload, NtndSnapshot) else None
        if timestamp is None:
            timestamp = t_source if t_source is not None else getattr(frame, "t_source", None)
        uid = uid if uid is not None else frame.uid
        nt = result_ntndarray(arr, uid=uid, timestamp=timestamp, attributes=attributes)
        self._publisher.publish_object(nt)  # a new object each time (SPEC: addRecord keeps it)
        self._add("published")

    # ---------------------------------------------------------------- counters
    def _add(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _error(self, key: str, message: str) -> None:
        with self._lock:
            self.counts[key] += 1
            n = self.counts[key]
            self.last_error = message
        if n in (1, 10, 100, 1000) or n % 10000 == 0:
            log.warning("--publish %s: %s (%d so far)", self.pv_name, message, n)

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            return dict(self.counts, publish_pv=self.pv_name, publish_queue_bytes=self._queue.nbytes,
                        publish_last_error=self.last_error)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish what is queued (up to ``timeout``), then remove the PV."""
        self._queue_closed = True
        self._queue.close()
        self._thread.join(timeout)
        self._publisher.stop()


def attach_publisher(window, args) -> Optional[FramePublisher]:
    """``--publish NAME`` on a viewer: every received frame through a clone of
    its pipeline (a lossless tap), or with ``--publish-displayed`` the frames
    the display worker processed. ``window`` needs ``session`` (a
    ``pystream.Session``), ``pipeline`` and ``add_stats_provider``."""
    name = getattr(args, "publish", None)
    if not name:
        return None
    max_bytes = args.publish_buffer  # bytes: the option's type parsed "256MiB"
    session = window.session
    pipeline = window.pipeline
    if args.publish_displayed:
        publisher = FramePublisher(name, max_bytes=max_bytes)
        session.add_display_listener(publisher.on_display)
    else:
        process = pipeline.clone().apply if pipeline is not None else None
        publisher = FramePublisher(name, process=process, max_bytes=max_bytes)
        session.add_tap(publisher.tap)
    window.add_stats_provider(publisher.stats)
    log.info("publishing %s as the NTNDArray PV %s",
             "the displayed frames" if args.publish_displayed else "every processed frame", name)
    return publisher
