"""A simulated areaDetector: an NTNDArray PvaServer with a recognisable test pattern.

Used by ``pystream demo``, ``pystream sim pva``, the tests and the benchmarks.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Optional, Tuple

import numpy as np

from ..sources.ntndarray import COLOR_MODE_CODES, build_ntndarray, check_codec

log = logging.getLogger(__name__)


class NtndArrayPublisher:
    """Serve one NTNDArray PV and publish numpy images on it.

    The first frame is given to ``addRecord`` as its own object; every later
    frame is a new object passed to ``update`` (pvapy keeps a reference to
    the record's object: reusing it would show monitors stale frames).
    """

    def __init__(self, pv_name: str, server=None):
        import pvaccess as pva

        self.pv_name = pv_name
        self._own_server = server is None
        self.server = server if server is not None else pva.PvaServer()
        self._added = False
        self.uid = 0
        self.published = 0

    def publish(self, image: np.ndarray, *, uid: Optional[int] = None, codec: str = "",
                color_mode: str = "mono", timestamp: Optional[float] = None, **kwargs) -> int:
        """Publish one image; returns the uniqueId it was sent with."""
        self.uid = self.uid + 1 if uid is None else int(uid)
        nt = build_ntndarray(image, uid=self.uid, codec=codec, color_mode=color_mode,
                             timestamp=timestamp, **kwargs)
        self.publish_object(nt)
        return self.uid

    def publish_object(self, nt) -> None:
        """Publish a ready-made PvObject (tests use this for malformed frames)."""
        if not self._added:
            self.server.addRecord(self.pv_name, nt)
            self._added = True
        else:
            self.server.update(self.pv_name, nt)
        self.published += 1

    def stop(self) -> None:
        if self._added:
            try:
                self.server.removeRecord(self.pv_name)
            except Exception:
                pass
            self._added = False
        if self._own_server:
            self.server.stop()


# 3x5 bitmap digits for the frame counter drawn into the pattern
_DIGITS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111",
}


def draw_counter(image: np.ndarray, number: int, value, scale: int = 0) -> None:
    """Write ``number`` as block digits into the top-left corner, in place."""
    ny, nx = image.shape[:2]
    scale = scale or max(2, min(ny, nx) // 64)
    x0 = y0 = scale
    for ch in str(number):
        bits = np.array([int(b) for b in _DIGITS[ch]], bool).reshape(5, 3)
        block = np.kron(bits, np.ones((scale, scale), bool))
        h, w = block.shape
        if y0 + h > ny or x0 + w > nx:
            break
        region = image[y0:y0 + h, x0:x0 + w]
        region[block] = value
        x0 += w + scale


class TestPattern:
    """Moving Gaussian spot over a gradient with a ring: easy to recognise and
    to see moving; frame ``i`` is deterministic."""

    __test__ = False  # not a pytest class

    def __init__(self, shape: Tuple[int, int] = (512, 512), dtype="uint16", color: bool = False):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.color = color
        ny, nx = self.shape
        y, x = np.mgrid[0:ny, 0:nx].astype(np.float32)
        self._y, self._x = y / ny, x / nx
        r = np.hypot(self._x - 0.5, self._y - 0.5)
        self._base = 0.25 * (self._x + self._y) / 2 + 0.2 * (np.abs(r - 0.3) < 0.01)
        if self.dtype.kind == "f":
            self.peak = 1000.0
        elif self.dtype == np.bool_:
            self.peak = 1
        else:
            self.peak = float(min(np.iinfo(self.dtype).max, 60000))

    def frame(self, i: int) -> np.ndarray:
        phase = 2 * np.pi * (i % 200) / 200
        cx, cy = 0.5 + 0.3 * np.cos(phase), 0.5 + 0.3 * np.sin(phase)
        spot = np.exp(-((self._x - cx) ** 2 + (self._y - cy) ** 2) / 0.004)
        img = np.clip(self._base + 0.55 * spot, 0, 1)
        if self.dtype == np.bool_:
            out = img > 0.5
        else:
            out = (img * self.peak).astype(self.dtype)
        if self.color:
            planes = [out, np.flipud(out), np.fliplr(out)]
            out = np.stack(planes, axis=-1)
        return out


def pattern_cycle(pattern: TestPattern, max_bytes: int = 128 << 20, max_frames: int = 50) -> list:
    """Precomputed frames so publishing is not limited by pattern generation."""
    one = pattern.frame(0)
    n = int(max(1, min(max_frames, max_bytes // max(one.nbytes, 1))))
    return [one] + [pattern.frame(i * (200 // n if n < 200 else 1)) for i in range(1, n)]


def run_pva_sim(pv_name: str, *, size: Tuple[int, int] = (512, 512), rate: float = 30.0,
                dtype: str = "uint16", codec: str = "", color_mode: str = "mono",
                frames: Optional[int] = None, counter: bool = True,
                stop_event: Optional[threading.Event] = None,
                ready: Optional[threading.Event] = None) -> int:
    """Publish the test pattern at ``rate`` Hz (0 = as fast as possible).

    Returns the number of frames published. Stops after ``frames`` frames,
    when ``stop_event`` is set, or on KeyboardInterrupt.
    """
    if color_mode.lower() not in COLOR_MODE_CODES:
        raise ValueError(f"unknown color mode {color_mode!r}; choose from "
                         f"{', '.join(COLOR_MODE_CODES)}")
    check_codec(codec)  # before "publishing" is logged
    color = color_mode.lower() not in ("mono", "bayer", "yuv444", "yuv422", "yuv411")
    if codec == "jpeg" and np.dtype(dtype) != np.uint8:
        raise ValueError("the jpeg codec needs --dtype uint8")
    pattern = TestPattern(size, dtype, color)
    cycle = pattern_cycle(pattern)
    publisher = NtndArrayPublisher(pv_name)
    stop_event = stop_event or threading.Event()
    restore = _stop_on_signals(stop_event)
    period = 1.0 / rate if rate and rate > 0 else 0.0
    next_t = time.perf_counter()
    count = 0
    log.info("publishing %s: %dx%d %s %s codec=%s at %s Hz", pv_name, size[1], size[0], dtype,
             color_mode, codec or "none", rate or "max")
    try:
        while not stop_event.is_set() and (frames is None or count < frames):
            image = cycle[count % len(cycle)]
            if counter:
                image = image.copy()
                draw_counter(image, count + 1, pattern.peak if image.dtype != np.bool_ else True)
            publisher.publish(image, uid=count + 1, codec=codec, color_mode=color_mode)
            count += 1
            if ready is not None and count == 1:
                ready.set()
            if period:
                next_t += period
                delay = next_t - time.perf_counter()
                if delay > 0:
                    stop_event.wait(delay)
                else:
                    next_t = time.perf_counter()  # fell behind: don't burst to catch up
    except KeyboardInterrupt:
        pass
    finally:
        restore()
        publisher.stop()
    return count


def _stop_on_signals(stop_event: threading.Event):
    """Ctrl-C / SIGTERM / SIGHUP set ``stop_event``. A flooding publisher spends
    its time inside pvapy's C++ calls, where KeyboardInterrupt would wait for
    the next Python bytecode that may come late; an event is checked every frame."""
    from ..signals import StopSignals
    return StopSignals(lambda _name: stop_event.set()).install().restore

