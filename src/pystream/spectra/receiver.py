"""SpectrumReceiver: the OVRO-LWA spectrum stream, received, processed and kept.

A drop-in for the reference ``StreamReceiver`` (seed 000): same constructor
arguments and methods (``start``, ``stop``, ``get_latest_data``,
``get_buffer_status``, ``get_current_delay``), built from pystream's parts::

    ZmqSpectrumSource ─► Session (counts; no display) ─► tap: byte-bounded queue ─► worker:
        batch → pol selection + frequency averaging (one numpy call per batch) → SpectrumRing
                                                     └► BandPower (power in a band over time)
    SpectrumRing ─► PeriodicPlotter (PNG every plot_interval s, own thread)
                 └► WaterfallModel (display-ready image for the GUI panel, own thread)

The socket thread only validates and enqueues; the worker turns every valid
message into a ring row (lossless unless the queue's byte budget overflows,
which is counted as ``ring_drops``).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..flow import ByteBoundedQueue, Counters
from ..frame import Frame
from ..session import Session
from ..sources.zmq_spectra import DEFAULT_PORT, ZmqSpectrumSource, make_endpoint, message_shape_dtype
from .band_power import BandPower
from .plots import PeriodicPlotter
from .processing import SpectrumProcessing, frequency_axis, parse_freq_range
from .ring import SpectrumRing
from .waterfall import WaterfallModel

log = logging.getLogger(__name__)

# Spectra in a row of another width before the history (ring) restarts with
# it: a publisher that changed its layout sends them all; one stray message
# of another layout is refused (counted) instead of wiping the waterfall.
LAYOUT_CONFIRM = 3

DEFAULT_NCHAN = 3072
DEFAULT_PLOT_DIR = "spectrum_plots"


class SpectrumReceiver:
    """Receive AvgStreamingOp spectra into a ring buffer, with optional periodic PNGs.

    Seed-compatible arguments: ``stream_addr``, ``stream_port``,
    ``buffer_length``, ``plot_interval`` (seconds, 0 disables), ``plot_dir``;
    ``gc_interval``, ``start_webshow`` and ``log_level`` are accepted
    (the first two are not needed here and ignored with a log line).

    pystream's own: ``endpoint`` (``tcp://host:port``, wins over addr/port),
    ``pol`` ("XX", "YY", "I", "V"), ``freq_avg`` (contiguous groups, default
    4: 3072 → 768), ``freq_range`` ((first, last) MHz or "14.36,87.83"; None:
    channel numbers), ``beam``, ``counters`` (share the app's), ``queue_bytes``
    (budget of the socket → worker hand-off), ``band`` (the ``band_power``
    band, in the frequency axis' units; None: all channels).
    """

    def __init__(self, stream_addr: str = "127.0.0.1", stream_port: int = DEFAULT_PORT,
                 buffer_length: int = 1200, gc_interval: Optional[int] = None,
                 plot_interval: float = 10, plot_dir: str = DEFAULT_PLOT_DIR,
                 start_webshow: bool = False, *, endpoint: Optional[str] = None,
                 pol: str = "XX", freq_avg: int = 4, freq_range: Any = None, beam: int = 0,
                 log_level: Optional[str] = None, counters: Optional[Counters] = None,
                 nchan: int = DEFAULT_NCHAN, queue_bytes: int = 256 * 1024 * 1024,
                 max_batch: int = 512, batch_wait_s: float = 0.002, band: Any = None):
        if log_level:
            log.setLevel(getattr(logging, str(log_level).upper(), logging.INFO))
        if gc_interval is not None:
            log.debug("gc_interval=%s ignored: no per-frame garbage is made", gc_interval)
        if start_webshow:
            log.warning("start_webshow ignored: use pystream's web view instead")
        self.stream_addr = stream_addr
        self.stream_port = int(stream_port)
        self.endpoint = make_endpoint(endpoint) if endpoint else make_endpoint(stream_addr, stream_port)
        self.buffer_length = int(buffer_length)
        self.processing = SpectrumProcessing(pol=pol, freq_avg=freq_avg, beam=beam)
        self.freq_range = parse_freq_range(freq_range) if isinstance(freq_range, str) else (
            tuple(float(f) for f in freq_range) if freq_range is not None else None)
        self.plot_interval = float(plot_interval or 0)
        self.plot_dir = plot_dir
        self.max_batch = int(max_batch)
        self.batch_wait_s = float(batch_wait_s)

        self.counters = counters if counters is not None else Counters()
        self.ring = SpectrumRing(self.buffer_length, self.processing.out_width(nchan))
        # no display worker: the ring is the history, the waterfall its view
        self.session = Session(display=False, counters=self.counters)
        self.session.add_tap(self._enqueue)
        self.session.add_state_listener(self._on_state)
        self.band_power = BandPower(lambda width: frequency_axis(width, self.freq_range), band,
                                    unit="MHz" if self.freq_range is not None else "channel")
        self._queue = ByteBoundedQueue(queue_bytes)
        self._queue_closed = threading.Event()
        self._source: Optional[ZmqSpectrumSource] = None
        self._worker: Optional[threading.Thread] = None
        self._delay: Optional[float] = None
        self._last_header: Optional[dict] = None
        self._layout: Optional[Tuple[tuple, Any]] = None
        self._pending_layout: Tuple[int, int] = (0, 0)  # (new width, spectra seen in a row)
        self.running = False
        self._waterfall: Optional[WaterfallModel] = None
        self.plotter = PeriodicPlotter(self._plot_snapshot, self.plot_interval, plot_dir,
                                       on_error=self._on_plot_error)

        extra = self.counters.extra
        extra["delay_s"] = lambda: None if self._delay is None else round(self._delay, 3)
        extra["ring_rows"] = lambda: self.ring.count
        extra["ring_written"] = lambda: self.ring.total
        extra["plots_written"] = lambda: self.plotter.plots_written
        extra["plot_errors"] = lambda: self.plotter.errors
        extra["band_power"] = self.band_power.summary
        for name in ("ring_drops", "batches", "layout_changes"):
            self.counters.counts.setdefault(name, 0)
        log.info("SpectrumReceiver for %s: ring %dx%d, pol %s, freq_avg %d, plots %s",
                 self.endpoint, *self.ring.shape, self.processing.pol, self.processing.freq_avg,
                 f"every {self.plot_interval:g}s to {plot_dir}" if self.plot_interval > 0 else "off")

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            log.warning("receiver already running")
            return
        self.running = True
        self._queue = ByteBoundedQueue(self._queue.max_bytes)  # a closed queue cannot reopen
        self._queue_closed.clear()
        self._worker = threading.Thread(target=self._process_loop, name="spectrum-worker", daemon=True)
        self._worker.start()
        self._source = ZmqSpectrumSource(self.endpoint)
        self.session.connect(self._source)
        self.plotter.start()

    def stop(self) -> None:
        """Stop receiving; rows already received still land in the ring. Safe twice."""
        if not self.running:
            return
        self.running = False
        if self._source is not None:
            self._source.stop()
        self._queue.close()  # the worker drains what is left, then ends
        self._queue_closed.set()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
        self.plotter.stop()
        if self._waterfall is not None:
            self._waterfall.stop()
        log.info("SpectrumReceiver stopped: %s", self.counters.snapshot())

    def __enter__(self) -> "SpectrumReceiver":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- socket thread side (must stay cheap) ------------------------------------
    def _enqueue(self, frame: Frame) -> None:
        header = frame.payload[0]
        self._last_header = header
        timestamp = header.get("timestamp")
        if timestamp is not None:
            self._delay = frame.t_recv - timestamp
        if not self._queue.put(frame, frame.nbytes):
            self.counters.add("ring_drops")

    def _on_state(self, state: str, message: str) -> None:
        # the source logs its state changes at INFO already
        log.debug("stream %s: %s %s", self.endpoint, state, message)

    # -- worker: batch → processing → ring ----------------------------------------
    def _process_loop(self) -> None:
        queue = self._queue
        while True:
            first = queue.get(timeout=0.5)
            if first is None:
                if self._queue_closed.is_set() and len(queue) == 0:
                    return
                continue
            # let a batch build up: one wake-up and one numpy call per few ms instead of per
            # message keeps the GIL free for the socket thread (the waterfall
            # redraws at most 75 times a second anyway)
            time.sleep(self.batch_wait_s)
            batch = [first]
            while len(batch) < self.max_batch:
                more = queue.get(timeout=0)
                if more is None:
                    break
                batch.append(more)
            try:
                self._process_batch(batch)
            except Exception as exc:  # a bug here must not stop the stream: count it
                log.exception("spectrum processing failed")
                for _ in batch:
                    self.counters.reject("processing_error", f"{type(exc).__name__}: {exc}")

    def _process_batch(self, frames: List[Frame]) -> None:
        # consecutive frames with the same layout are processed in one numpy call
        start = 0
        while start < len(frames):
            layout = message_shape_dtype(frames[start].payload[0])
            end = start + 1
            while end < len(frames) and message_shape_dtype(frames[end].payload[0]) == layout:
                end += 1
            self._process_run(frames[start:end], *layout)
            start = end

    def _process_run(self, frames: List[Frame], shape: tuple, dtype: np.dtype) -> None:
        n = len(frames)
        raw = b"".join([f.payload[1] for f in frames])
        data = np.frombuffer(raw, dtype=dtype).reshape((n,) + tuple(shape))
        if self.processing.beam >= shape[0]:
            for f in frames:
                self.counters.reject("bad_shape", f"beam {self.processing.beam} not in {shape[0]} beams")
            return
        if shape[1] < self.processing.freq_avg:
            for f in frames:
                self.counters.reject("bad_shape", f"{shape[1]} channels: fewer than freq_avg "
                                                  f"{self.processing.freq_avg}")
            return
        rows = self.processing(data)
        width = rows.shape[1]
        if width != self.ring.n_cols:
            if self.ring.total and not self._layout_confirmed(width, n):
                for f in frames:  # a stray message must not wipe the history
                    self.counters.reject("layout_unconfirmed",
                                         f"spectrum of {list(shape)}; the history has width {self.ring.n_cols}")
                return
            # a different stream layout (e.g. nchan changed): start a fresh history
            log.warning("spectrum width %d != ring width %d: ring reset", width, self.ring.n_cols)
            self.counters.add("layout_changes")
            self.counters.notice(f"stream layout changed to {list(shape)}; history restarted")
            self.ring.reset(n_cols=width)
        self._pending_layout = (0, 0)
        times = np.fromiter((f.payload[0].get("timestamp", f.t_recv) for f in frames), float, n)
        # counted before the rows become visible: whoever sees a row in the ring
        # also sees it counted
        self.counters.add("decoded", n)
        self.counters.add("batches")
        self.ring.write(rows, times)
        self.band_power.update(rows, times, np.fromiter((f.uid for f in frames), np.int64, n))

    def _layout_confirmed(self, width: int, n: int) -> bool:
        """True once ``LAYOUT_CONFIRM`` spectra in a row have the new width
        (a publisher that changed its layout), not one stray message."""
        pending_width, count = self._pending_layout
        count = count + n if pending_width == width else n
        if count >= LAYOUT_CONFIRM:
            return True
        self._pending_layout = (width, count)
        return False

    # -- seed API ------------------------------------------------------------------
    def get_latest_data(self, n_frames: Optional[int] = 1,
                        timeout: Optional[float] = None) -> np.ndarray:
        """Newest ``n_frames`` processed spectra ``(n, width)``, oldest first.

        Only rows actually received are returned (fewer than ``n_frames`` early
        on, none right after ``start()``). ``timeout``: first wait up to that
        many seconds for ``n_frames`` rows to be there.
        """
        n = self.ring.shape[0] if n_frames is None else n_frames
        if timeout is not None:
            wanted = min(n, self.ring.shape[0])
            deadline = time.monotonic() + timeout
            while self.ring.count < wanted:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.ring.wait_for(self.ring.total, remaining):
                    break
        return self.ring.latest(n)

    def get_current_delay(self) -> Optional[float]:
        """Seconds between the newest message's header ``timestamp`` and its
        arrival; None before the first spectrum (0.0 would claim a perfect link)."""
        return None if self._delay is None else float(self._delay)

    def get_buffer_status(self) -> Dict[str, Any]:
        latest, _ = self.ring.last_row()
        stats = None
        if latest is not None:
            stats = {"mean": float(np.mean(latest)), "std": float(np.std(latest)),
                     "min": float(np.min(latest)), "max": float(np.max(latest))}
        snap = self.counters.snapshot()
        return {
            "buffer_index": self.ring.write_index,
            "buffer_shape": self.ring.shape,
            "running": self.running,
            "is_running": self.running,  # the reference's later key name
            "latest_stats": stats,
            "current_delay": self.get_current_delay(),
            "plot_running": self.plotter.running,
            "last_plot_time": self.plotter.last_plot_time,
            "plots_written": self.plotter.plots_written,
            "state": snap["state"],
            "received": snap["received"],
            "rejected": snap["rejected"],
            "rejected_by_reason": snap["rejected_by_reason"],
            "rows_written": self.ring.total,
            "last_header": dict(self._last_header) if self._last_header else None,
        }

    def get_memory_info(self) -> Dict[str, float]:
        import psutil
        info = psutil.Process().memory_info()
        return {"rss_mb": info.rss / 2**20, "vms_mb": info.vms / 2**20}

    # -- axes, display and plots -------------------------------------------------------
    @property
    def state(self) -> str:
        return self.counters.state

    def frequency_axis(self) -> np.ndarray:
        """x values of the processed spectra: MHz with ``freq_range``, else channel numbers."""
        return frequency_axis(self.ring.n_cols, self.freq_range)

    @property
    def frequency_label(self) -> str:
        return "Frequency (MHz)" if self.freq_range is not None else "Channel (averaged)"

    @property
    def waterfall(self) -> WaterfallModel:
        """The display model (created on first use; the GUI panel starts its worker)."""
        if self._waterfall is None:
            self._waterfall = WaterfallModel(self.ring, freq_range=self.freq_range)
        return self._waterfall

    def _plot_snapshot(self) -> Optional[dict]:
        rows, times = self.ring.latest_with_times()
        if rows.shape[0] == 0:
            return None
        return {
            "rows": rows, "times": times, "freqs": frequency_axis(rows.shape[1], self.freq_range),
            "freq_label": self.frequency_label, "delay_s": self._delay,
            "title": f"{self.endpoint} pol {self.processing.pol} - ",
        }

    def plot_now(self) -> Optional[str]:
        """Write one PNG now (on the caller's thread); returns its path."""
        return self.plotter.plot_now()

    def _on_plot_error(self, message: str) -> None:
        self.counters.error(message)
