"""Headless periodic spectrum plots (the seed's ``plot_interval`` / ``plot_dir``).

Two panels: the latest spectrum (log y) above a waterfall (frequency x time,
log colour), 12x10 inch at 150 dpi (1800x1500 px), saved as
``spectrum_YYYYMMDD_HHMMSS.png``. Rendered with matplotlib's Agg canvas and
its object API (no pyplot: no global state, safe off the main thread), on
the plotter's own thread so reception never waits for it.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
import time
from typing import Callable, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

FIGSIZE_IN = (12, 10)
DPI = 150


def plot_filename(plot_dir: str, when: Optional[float] = None) -> str:
    """``plot_dir/spectrum_YYYYMMDD_HHMMSS.png`` (local time, as the seed);
    ``_1``, ``_2``... appended when that second already has a plot."""
    stamp = _dt.datetime.fromtimestamp(time.time() if when is None else when).strftime("%Y%m%d_%H%M%S")
    path = os.path.join(plot_dir, f"spectrum_{stamp}.png")
    n = 1
    while os.path.exists(path):
        path = os.path.join(plot_dir, f"spectrum_{stamp}_{n}.png")
        n += 1
    return path


def _positive_limits(values: np.ndarray, low: float = 1.0, high: float = 99.5):
    finite = values[np.isfinite(values) & (values > 0)]
    if finite.size == 0:
        return None
    lo, hi = np.percentile(finite, [low, high])
    if not hi > lo:
        hi = lo * 10.0 if lo > 0 else 1.0
    return float(lo), float(hi)


def render_spectrum_png(path: str, rows: np.ndarray, *, freqs: Optional[np.ndarray] = None,
                        times: Optional[np.ndarray] = None, freq_label: str = "Frequency channel",
                        title: str = "", delay_s: Optional[float] = None,
                        figsize: Sequence[float] = FIGSIZE_IN, dpi: int = DPI) -> str:
    """Write the two-panel PNG of ``rows`` ``(n_time, n_freq)``, oldest first; returns ``path``.

    ``times`` (POSIX seconds per row) gives the waterfall's "seconds ago"
    axis; without it rows are numbered.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    rows = np.asarray(rows, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ValueError(f"need (n_time, n_freq) rows, got shape {rows.shape}")
    n_time, n_freq = rows.shape
    freqs = np.arange(n_freq) if freqs is None else np.asarray(freqs, dtype=float)
    lag = f" [lag: {delay_s:.1f}s]" if delay_s is not None else ""
    utc_now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

    fig = Figure(figsize=tuple(figsize), dpi=dpi)
    FigureCanvasAgg(fig)
    ax_spec, ax_fall = fig.subplots(2, 1)

    latest = rows[-1]
    ax_spec.plot(freqs, np.where(latest > 0, latest, np.nan), "b-", linewidth=0.8)
    ax_spec.set_yscale("log")
    limits = _positive_limits(latest, 1.0, 99.0)
    if limits is not None:
        ax_spec.set_ylim(limits[0] * 0.9, limits[1] * 1.1)
    ax_spec.set_xlim(freqs[0], freqs[-1])
    ax_spec.set_title(f"{title}Latest spectrum - {utc_now} UTC{lag}")
    ax_spec.set_xlabel(freq_label)
    ax_spec.set_ylabel("Power (log scale)")
    ax_spec.grid(True, alpha=0.3)

    if times is not None and np.isfinite(times[-1]) and np.isfinite(times[0]):
        span = float(times[-1] - times[0])
        time_label = "Time (seconds before latest)"
    else:
        span = float(n_time - 1)
        time_label = "Rows before latest"
    span = span if span > 0 else 1.0
    limits = _positive_limits(rows[:: max(1, n_time // 300)])
    norm = LogNorm(*limits) if limits is not None else None
    # rows oldest first, y = time before latest: the newest row sits at the top
    masked = np.ma.masked_less_equal(rows, 0)
    image = ax_fall.imshow(masked, aspect="auto", origin="lower", cmap="viridis", norm=norm,
                           extent=(freqs[0], freqs[-1], span, 0.0), interpolation="nearest")
    ax_fall.set_title(f"Waterfall - last {n_time} spectra ({span:.1f}s){lag}")
    ax_fall.set_xlabel(freq_label)
    ax_fall.set_ylabel(time_label)
    colorbar = fig.colorbar(image, ax=ax_fall, aspect=30)
    colorbar.set_label("Power (log scale)")
    fig.tight_layout()

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".part"
    fig.savefig(tmp, dpi=dpi, format="png")  # no bbox 'tight': keep exactly 1800x1500
    os.replace(tmp, path)  # readers never see half a file
    return path


class PeriodicPlotter:
    """Every ``interval`` seconds, ``snapshot()`` → ``render(path, **snapshot)``.

    ``snapshot`` returns the keyword arguments of ``render_spectrum_png``
    (``rows`` plus optional axes and labels) or None when there is nothing
    to plot yet. Errors are counted (``errors``, ``last_error``), logged,
    and the loop carries on.
    """

    def __init__(self, snapshot: Callable[[], Optional[dict]], interval: float, plot_dir: str,
                 *, render: Callable[..., str] = render_spectrum_png,
                 on_error: Optional[Callable[[str], None]] = None):
        self.snapshot = snapshot
        self.interval = float(interval or 0)
        self.plot_dir = plot_dir
        self.render = render
        self.on_error = on_error
        self.plots_written = 0
        self.errors = 0
        self.last_error = ""
        self.last_plot_time = 0.0  # POSIX time of the last written plot, 0 if none (seed API)
        self.last_plot_path: Optional[str] = None
        self._stop_event = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        try:
            os.makedirs(self.plot_dir, exist_ok=True)
        except OSError as exc:  # retried before each plot; do not refuse to start
            self._fail(f"cannot create plot dir {self.plot_dir}: {exc}")
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name="spectrum-plotter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop_event.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def plot_now(self) -> Optional[str]:
        """Render one plot on the caller's thread; returns its path (None if no data/error)."""
        try:
            kwargs = self.snapshot()
            if kwargs is None:
                return None
            os.makedirs(self.plot_dir, exist_ok=True)
            path = self.render(plot_filename(self.plot_dir), **kwargs)
        except Exception as exc:
            self._fail(f"plot failed: {type(exc).__name__}: {exc}")
            return None
        self.plots_written += 1
        self.last_plot_time = time.time()
        self.last_plot_path = path
        log.info("plot saved: %s", path)
        return path

    def _run(self) -> None:
        # Event.wait paces the loop and wakes at once on stop()
        while not self._stop_event.wait(self.interval):
            self.plot_now()

    def _fail(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        log.error(message)
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:
                log.exception("plot error callback failed")
