"""The display worker: decode → pipeline → display-ready array, off the GUI thread.

It pulls: it takes the newest frame from the ``LatestFrameSlot`` only when
the screen is ready for another one (the previous frame was painted) and
``--max-fps`` allows it, so frames that would never be seen are never
decoded. What it hands over is what pyqtgraph's ImageItem draws fastest:
C-contiguous, uint8/uint16/float32, reduced to screen resolution, levels
already computed.
"""
from __future__ import annotations

import logging
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from .flow import Counters, LatestFrameSlot
from .frame import Frame, FrameRejected

log = logging.getLogger(__name__)

LEVELS_TOLERANCE = 0.01  # auto levels move only when min or max moves by 1 % of the range

# ImageItem draws these without conversion (float32, never float64)
_FAST_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


class PixelwiseDeferred:
    """A full-resolution frame whose pixel-wise corrections (flat, dark) are
    applied only to the pixels someone reads.

    The display reads a decimated grid, a ROI its rectangle, the crosshair
    one pixel: indexing returns corrected values for exactly those pixels.
    ``np.asarray`` gives the whole corrected frame (computed once, for the
    rare reader that needs it, e.g. saving a PNG).
    """

    def __init__(self, raw: np.ndarray, steps: List[Callable[[Any, Any], np.ndarray]]):
        self.raw = raw
        self.steps = steps
        self._full: Optional[np.ndarray] = None

    shape = property(lambda self: self.raw.shape)
    ndim = property(lambda self: self.raw.ndim)
    size = property(lambda self: self.raw.size)
    dtype = np.dtype(np.float32)  # what the corrections return

    def __getitem__(self, key):
        if self._full is not None:
            return self._full[key]
        part = self.raw[key]
        for step in self.steps:
            part = step(part, key)
        return part

    def __array__(self, dtype=None, copy=None):
        if self._full is None:
            self._full = self[...]
        return self._full if dtype is None else self._full.astype(dtype)


@dataclass
class DisplaySettings:
    """What the display worker reads for every frame; any thread may change it
    (the next frame uses the new values)."""

    max_fps: float = 0.0  # cap on frames prepared per second (0 = as fast as they are shown)
    display_bin: int = 0  # show every Nth pixel (0 = auto: reduce to target_size)
    target_size: Tuple[int, int] = (1024, 1024)  # the view's size in screen pixels (h, w)
    auto_levels: bool = True
    level_percentiles: Optional[Tuple[float, float]] = None  # None: min/max
    # if set, called once per frame instead of reading auto_levels: True =
    # apply this frame's levels (auto contrast every N frames, or once)
    auto_levels_schedule: Optional[Callable[[], bool]] = None


def _setting(name: str) -> property:
    """A worker attribute that reads and writes its DisplaySettings."""
    return property(lambda self: getattr(self.settings, name),
                    lambda self, value: setattr(self.settings, name, value))


@dataclass
class DisplayFrame:
    """Everything the GUI needs to paint one frame, and nothing to compute."""

    image: np.ndarray  # (h, w) or (h, w, 3), C-contiguous, fast dtype
    levels: Tuple[float, float]  # computed here, always
    auto_levels: bool  # apply ``levels`` (else the user's levels stay)
    bin: int  # display pixel = bin x bin detector pixels
    uid: int
    t_source: Optional[float]
    raw: Any  # full-resolution processed frame (ndarray or PixelwiseDeferred), for tools in detector pixels
    frame: Frame = field(repr=False, default=None)
    meta: dict = field(default_factory=dict)
    # the worker's analyses, filled while the frame is painted (read with list(...items()))
    analysis: Dict[str, Any] = field(default_factory=dict)


def auto_bin(shape: Tuple[int, ...], target: Tuple[int, int]) -> int:
    """Largest decimation that still leaves at least one image pixel per screen pixel."""
    th, tw = target
    if th <= 0 or tw <= 0:
        return 1
    return max(1, int(min(shape[0] / th, shape[1] / tw)))


def to_display(arr: np.ndarray, bin_: int) -> np.ndarray:
    """Decimate by ``bin_`` and convert to a dtype ImageItem draws fast."""
    if bin_ > 1:
        arr = arr[::bin_, ::bin_]
    if arr.dtype not in _FAST_DTYPES:
        arr = arr.view(np.uint8) if arr.dtype == np.bool_ else arr.astype(np.float32)
    return np.ascontiguousarray(arr)


def compute_levels(img: np.ndarray, percentiles: Optional[Tuple[float, float]] = None) -> Tuple[float, float]:
    """Display levels: min/max, or the given percentiles; never a zero-width range."""
    if percentiles is not None:
        # a subsample of ~65k pixels is plenty for display percentiles (0.1 % is
        # still the 65th value) and costs 0.6 ms instead of 3 ms at 1024² (measured)
        step = max(1, int(np.sqrt(img.size / 65_536)))
        sample = img[::step, ::step]
        lo, hi = np.nanpercentile(sample, percentiles)
    else:
        lo, hi = img.min(), img.max()
        if img.dtype.kind == "f" and (np.isnan(lo) or np.isnan(hi)):  # rare: pay for nan-aware
            with warnings.catch_warnings():  # an all-NaN frame is handled below
                warnings.simplefilter("ignore", RuntimeWarning)
                lo, hi = np.nanmin(img), np.nanmax(img)
    lo, hi = float(lo), float(hi)
    if not np.isfinite(lo) or not np.isfinite(hi):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


class DisplayWorker(threading.Thread):
    """Prepares frames for the screen, one at a time, as fast as they are painted.

    ``deliver(display_frame)`` is called on this thread; the GUI stores it and
    calls ``consumed()`` once it has painted it (or the worker moves on after
    ``ready_timeout``, so a hidden window cannot stall the stream). The next
    frame is taken only then, so it is the newest one (preparing it while the
    GUI paints was measured: +10 ms latency and one more full frame in memory
    for no gain in frames shown).

    The analyses (ROI statistics, profiles...) are not on the image's path:
    they run on the delivered frame while the GUI paints it, and fill
    ``display_frame.analysis`` a moment after it is shown.
    """

    def __init__(self, slot: LatestFrameSlot, counters: Counters,
                 deliver: Callable[[DisplayFrame], None], *, max_fps: float = 0.0,
                 display_bin: int = 0, processors: Optional[List[Callable]] = None,
                 analyses: Optional[Mapping[str, Callable]] = None, ready_timeout: float = 0.25,
                 settings: Optional[DisplaySettings] = None):
        super().__init__(name="pystream-display", daemon=True)
        self.slot = slot
        self.counters = counters
        self.deliver = deliver
        self.settings = settings if settings is not None else DisplaySettings(max_fps, display_bin)
        # (array, meta) -> (array, meta), applied in order (corrections, then the
        # pipeline); the list is shared with the owner, so changes apply live
        self.processors = processors if processors is not None else []
        # name -> f(array, meta) -> result, computed on the full-resolution
        # processed frame (ROI statistics, crosshair values...), shown by the GUI
        self.analyses = analyses if analyses is not None else {}
        self.ready_timeout = ready_timeout
        self._ready = threading.Event()  # the previous frame was painted
        self._ready.set()
        self._halt = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._errors: Dict[str, str] = {}  # what this worker said in last_error, by cause
        self.handled = 0  # frames taken from the slot and dealt with (see ``idle``)
        self._next_slot = 0.0  # earliest time of the next delivery under --max-fps
        self._levels: Optional[Tuple[float, float]] = None  # the last levels handed over

    max_fps = _setting("max_fps")
    display_bin = _setting("display_bin")
    target_size = _setting("target_size")
    auto_levels = _setting("auto_levels")
    level_percentiles = _setting("level_percentiles")
    auto_levels_schedule = _setting("auto_levels_schedule")

    # -- control (any thread)
    def consumed(self) -> None:
        self._ready.set()

    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def stop(self) -> None:
        self._halt.set()
        self._resume.set()
        self._ready.set()

    # -- the loop
    def run(self) -> None:
        while not self._halt.is_set():
            self._ready.wait(self.ready_timeout)
            if not self._resume.is_set():  # paused: nothing is decoded
                self._resume.wait(0.1)
                continue
            period = 1.0 / self.max_fps if self.max_fps and self.max_fps > 0 else 0.0
            if period:
                # a fixed timetable: slots a period apart, so a late wake-up or a
                # slow prepare does not pull the rate below --max-fps; more than
                # a period late (nothing to show for a while) restarts it
                now = time.monotonic()
                wait = self._next_slot - now
                if wait > 0 and self._halt.wait(wait):
                    break
                slot = self._next_slot if -wait <= period else now
            frame = self.slot.take(timeout=0.1)
            if frame is None:
                if self.slot.closed:
                    break
                continue
            try:
                self._handle(frame, slot if period else 0.0, period)
            finally:
                self.handled += 1

    def _handle(self, frame: Frame, slot: float, period: float) -> None:
        if not self._resume.is_set():  # paused while waiting for it: not decoded
            if not self.slot.put_back(frame):
                self.counters.add("skipped")  # a newer one is there already
            return
        display = self.prepare(frame)
        if display is None:
            return
        self._ready.clear()
        if period:
            self._next_slot = slot + period
        try:
            self.deliver(display)
        except Exception:  # a broken consumer must not end the display thread
            log.exception("display consumer failed")
            self._ready.set()
        self.analyse(display)  # while the GUI paints it

    @property
    def idle(self) -> bool:
        """Every frame taken from the slot has been handled (shown, rejected or put back)."""
        return self.handled >= self.slot.taken

    def _steady(self, levels: Tuple[float, float]) -> Tuple[float, float]:
        """Keep the previous levels while the new ones differ by less than
        LEVELS_TOLERANCE of the range: the eye cannot tell, and every change
        makes pyqtgraph rebuild its 65536-entry lookup table on the GUI thread."""
        previous = self._levels
        if previous is not None:
            tolerance = LEVELS_TOLERANCE * (previous[1] - previous[0])
            if abs(levels[0] - previous[0]) <= tolerance and abs(levels[1] - previous[1]) <= tolerance:
                return previous
        self._levels = levels
        return levels

    def run_processors(self, arr: np.ndarray, meta: dict, uid: int):
        """Apply the processors in order. A pixel-wise step (one with a
        ``deferred`` method) followed only by idle steps is deferred: the
        result is a ``PixelwiseDeferred`` and only the pixels shown or
        measured are ever corrected."""
        processors = list(self.processors)
        active = [getattr(p, "active", True) for p in processors]  # one look per frame
        deferred: List[Callable] = []
        for i, process in enumerate(processors):
            name = getattr(process, "__name__", type(process).__name__)
            try:
                defer = getattr(process, "deferred", None)
                if defer is not None and not any(active[i + 1:]):
                    step = defer(arr, meta)
                    if step is not None:
                        deferred.append(step)
                elif deferred and not active[i]:
                    continue  # idle, and would only be handed the frame back
                else:
                    if deferred:  # this step needs the whole corrected frame
                        arr, deferred = np.asarray(PixelwiseDeferred(arr, deferred)), []
                    arr, meta = process(arr, meta)
                if name in self._errors:  # it works again: its error is no longer true
                    self.counters.clear_error(self._errors.pop(name))
            except Exception as exc:  # bypassed for this frame, counted, shown
                self.counters.add("process_errors")
                self._errors[name] = f"{name}: {exc}"
                self.counters.error(self._errors[name])
                log.warning("processing step %s failed on frame %s: %s", name, uid, exc)
        return (PixelwiseDeferred(arr, deferred) if deferred else arr), meta

    def prepare(self, frame: Frame) -> Optional[DisplayFrame]:
        """Decode and process one frame; None (counted) if it is rejected."""
        try:
            decoded = frame.decode()
        except FrameRejected as exc:
            self.counters.reject(exc.reason, exc.message)
            self._errors["decode"] = self.counters.last_error  # until a frame decodes again
            log.warning("frame %s rejected: %s", frame.uid, exc.message)
            return None
        if "decode" in self._errors:  # counted in rejected; no longer the current error
            self.counters.clear_error(self._errors.pop("decode"))
        self.counters.add("decoded")
        if decoded.notice and self.counters.notice(decoded.notice):
            log.warning("%s", decoded.notice)
        arr, meta = self.run_processors(decoded.array, frame.metadata(), frame.uid)
        if np.ndim(arr) < 2:  # a spectrum or a scalar: recorded and counted, not an image
            self.counters.add("not_shown")
            if self.counters.notice(f"{np.ndim(arr)}-D frames are received and recorded, "
                                    "not shown as images"):
                log.warning("frame %s has shape %s: not shown as an image", frame.uid,
                            np.shape(arr))
            return None
        bin_ = self.display_bin if self.display_bin > 0 else auto_bin(arr.shape, self.target_size)
        image = to_display(arr, bin_)
        levels = self._steady(compute_levels(image, self.level_percentiles))
        schedule = self.auto_levels_schedule
        if schedule is None:
            auto = self.auto_levels
        else:
            try:
                auto = bool(schedule())
            except Exception as exc:  # a broken schedule keeps the checkbox's choice
                log.debug("auto levels schedule failed: %s", exc)
                auto = self.auto_levels
        return DisplayFrame(image=image, levels=levels, auto_levels=auto, bin=bin_,
                            uid=frame.uid, t_source=decoded.t_source, raw=arr, frame=frame,
                            meta=meta)

    def analyse(self, display: DisplayFrame) -> None:
        """Run the analyses on the full-resolution frame, into ``display.analysis``
        (an exception is stored as the result: the panel shows it)."""
        for name, analyse in list(self.analyses.items()):
            try:
                display.analysis[name] = analyse(display.raw, display.meta)
            except Exception as exc:
                display.analysis[name] = exc
                log.debug("analysis %s failed: %s", name, exc)
