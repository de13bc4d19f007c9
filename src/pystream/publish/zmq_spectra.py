"""SpectrumPublisher: sends exactly what OVRO-LWA's ``AvgStreamingOp`` sends.

``PUB`` binds ``tcp://ADDR:PORT`` (default port 9798) and sends 3-part
messages ``[b"data", JSON header, raw '<f4' payload]`` (SPEC.md section 2).
Use it with your own arrays (``publish(array)``) or with the synthetic
``SyntheticSpectra`` generator; ``run_sim`` is the ``pystream sim zmq`` loop.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
import time
from typing import Optional, Tuple

import numpy as np
import zmq

log = logging.getLogger(__name__)

DEFAULT_PORT = 9798
DEFAULT_SHAPE = (1, 3072, 4)  # (nbeam, nchan, npol), pols XX, YY, CR, CI
LWA_TICKS_PER_SECOND = 196_000_000  # time_tag unit: ticks of the 196 MHz sampling clock


def format_block_time(unix_seconds: float) -> str:
    """UTC time as the recorder writes ``last_block_time``: ``str(datetime)``,
    e.g. ``'2025-08-18 21:34:54.787341'``, no fraction when microseconds are 0."""
    when = _dt.datetime.fromtimestamp(unix_seconds, tz=_dt.timezone.utc).replace(tzinfo=None)
    return str(when)


def time_tag_of(unix_seconds: float) -> int:
    """LWA time tag (196 MHz ticks since the Unix epoch)."""
    return int(round(unix_seconds * LWA_TICKS_PER_SECOND))


def make_header(shape: Tuple[int, int, int], *, timestamp: Optional[float] = None,
                block_time: Optional[float] = None, time_tag: int = 0) -> dict:
    """The JSON header object, keys in the sender's order."""
    now = time.time() if timestamp is None else float(timestamp)
    nbeam, nchan, npol = (int(v) for v in shape)
    return {
        "timestamp": now,
        "last_block_time": format_block_time(now if block_time is None else block_time),
        "time_tag": int(time_tag),
        "nbeam": nbeam,
        "nchan": nchan,
        "npol": npol,
        "data_shape": [nbeam, nchan, npol],
        "data_type": "<f4",
    }


class SpectrumPublisher:
    """A ZMQ ``PUB`` socket that sends AvgStreamingOp-format messages.

    ``endpoint`` defaults to ``tcp://ADDR:PORT``; ``port=0`` binds a free port
    (read it back from ``.endpoint``/``.port``). ``time_tag`` is constant for
    the publisher's life (one sequence), like the recorder's.
    """

    def __init__(self, port: int = DEFAULT_PORT, addr: str = "127.0.0.1", *,
                 endpoint: Optional[str] = None, sndhwm: int = 1000,
                 context: Optional[zmq.Context] = None, time_tag: Optional[int] = None):
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, int(sndhwm))
        bind_to = endpoint or (f"tcp://{addr}:*" if int(port) == 0 else f"tcp://{addr}:{int(port)}")
        try:
            self._socket.bind(bind_to)
        except zmq.ZMQError:
            self.close()
            raise
        self.endpoint: str = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.time_tag = time_tag_of(time.time()) if time_tag is None else int(time_tag)
        self.sent = 0
        self._lock = threading.Lock()  # ZMQ sockets are not thread-safe

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def publish(self, array: np.ndarray, *, timestamp: Optional[float] = None,
                block_time: Optional[float] = None) -> dict:
        """Send one spectrum ``(nbeam, nchan, npol)`` (or ``(nchan, npol)``: one beam)
        as little-endian float32; returns the header sent."""
        data = np.ascontiguousarray(array, dtype="<f4")
        if data.ndim == 2:
            data = data[np.newaxis]
        if data.ndim != 3:
            raise ValueError(f"expected (nbeam, nchan, npol), got shape {np.shape(array)}")
        header = make_header(data.shape, timestamp=timestamp, block_time=block_time,
                             time_tag=self.time_tag)
        self.send_parts(json.dumps(header).encode(), data)
        return header

    def send_parts(self, header: bytes, payload, topic: bytes = b"data") -> None:
        """Low-level send of ``[topic, header, payload]`` (tests use it for bad messages)."""
        with self._lock:
            self._socket.send_multipart([topic, header, payload], copy=False)
            self.sent += 1

    def send_raw(self, parts) -> None:
        """Send any multipart message as is (for tests of bad input)."""
        with self._lock:
            self._socket.send_multipart(list(parts))

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None  # type: ignore[assignment]
        if self._own_context and self._context is not None:
            self._context.term()
            self._context = None  # type: ignore[assignment]

    def __enter__(self) -> "SpectrumPublisher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SyntheticSpectra:
    """Plausible OVRO-like spectra: smooth bandpass, noise, occasional drifting bursts.

    ``next()`` returns a new ``(nbeam, nchan, npol)`` float32 array; all
    vectorised (one random draw per call).
    """

    def __init__(self, shape: Tuple[int, int, int] = DEFAULT_SHAPE, *, seed: Optional[int] = None,
                 burst_probability: float = 0.01, noise: float = 0.02):
        self.shape = tuple(int(v) for v in shape)
        nbeam, nchan, npol = self.shape
        self._rng = np.random.default_rng(seed)
        x = np.linspace(0.0, 1.0, nchan, dtype=np.float32)
        # bandpass: a broad hump with a ripple, falling at the band edges
        bandpass = (np.exp(-((x - 0.45) / 0.35) ** 2) * (1.0 + 0.1 * np.sin(40 * x)) + 0.05) * 1e3
        pol_gain = np.array([1.0, 0.9, 0.05, 0.02], dtype=np.float32)[:npol]
        if npol > 4:
            pol_gain = np.pad(pol_gain, (0, npol - 4), constant_values=0.01)
        self._base = (bandpass[None, :, None] * pol_gain[None, None, :]).astype(np.float32)
        self._base = np.broadcast_to(self._base, self.shape).copy()
        self._x = x
        self.noise = float(noise)
        self.burst_probability = float(burst_probability)
        self._bursts: list = []  # [start_position, drift_per_step, steps_left, strength]

    def next(self) -> np.ndarray:
        noise = self._rng.standard_normal(self.shape, dtype=np.float32)
        out = self._base * (1.0 + self.noise * noise)
        if self._rng.random() < self.burst_probability:
            self._bursts.append([float(self._rng.uniform(0.6, 1.0)), -float(self._rng.uniform(0.005, 0.02)),
                                 int(self._rng.integers(20, 80)), float(self._rng.uniform(2.0, 10.0))])
        alive = []
        for burst in self._bursts:  # at most a handful at a time
            centre, drift, steps, strength = burst
            profile = strength * np.exp(-((self._x - centre) / 0.01) ** 2, dtype=np.float32)
            out[:, :, :2] *= (1.0 + profile)[None, :, None]  # bursts are in XX and YY
            burst[0] += drift
            burst[2] -= 1
            if burst[2] > 0 and burst[0] > 0:
                alive.append(burst)
        self._bursts = alive
        autos = out[:, :, :2]
        np.abs(autos, out=autos)  # XX and YY are powers: never negative
        return out


def run_sim(port: int = DEFAULT_PORT, rate: float = 4.0, addr: str = "127.0.0.1",
            count: Optional[int] = None, *, shape: Tuple[int, int, int] = DEFAULT_SHAPE,
            stop_event: Optional[threading.Event] = None, seed: Optional[int] = None,
            publisher: Optional[SpectrumPublisher] = None) -> int:
    """Publish synthetic spectra at ``rate`` Hz (0 = as fast as possible) until
    ``count`` messages were sent, ``stop_event`` is set, or Ctrl-C.

    Returns the number of messages sent. This is ``pystream sim zmq``.
    """
    own = publisher is None
    pub = publisher or SpectrumPublisher(port=port, addr=addr)
    generator = SyntheticSpectra(shape, seed=seed)
    period = 1.0 / rate if rate and rate > 0 else 0.0
    log.info("publishing %s spectra on %s at %s", shape, pub.endpoint,
             f"{rate:g} Hz" if period else "full speed")
    sent = 0
    next_time = time.monotonic()
    try:
        while count is None or sent < count:
            if stop_event is not None and stop_event.is_set():
                break
            pub.publish(generator.next())
            sent += 1
            if period:
                next_time += period
                delay = next_time - time.monotonic()
                if delay > 0:
                    if stop_event is not None:
                        stop_event.wait(delay)
                    else:
                        time.sleep(delay)
                elif delay < -1.0:  # fell far behind: do not try to catch up in a burst
                    next_time = time.monotonic()
    except KeyboardInterrupt:
        pass
    finally:
        if own:
            pub.close()
    return sent
