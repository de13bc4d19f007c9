"""ZMQ spectrum source: the OVRO-LWA ``AvgStreamingOp`` stream (SPEC.md section 2).

The sender's ``PUB`` binds ``tcp://ADDR:PORT``; we ``SUB``-connect and
subscribe to everything. Each message is exactly ``[b"data", JSON header,
raw '<f4' payload]``, shape ``(nbeam, nchan, npol)`` and dtype from the header.

The socket thread only validates (cheap: part count, topic, one small JSON
parse, size arithmetic) and wraps the message into a ``Frame`` whose payload
is ``(header, payload)`` (payload: a read-only memoryview of ZMQ's own
buffer, no copy); the array is made later by ``decode_spectrum``.
Bad messages go to ``sink.on_reject(reason, message)`` with one of
``REJECT_REASONS``. Connection state comes from a ZMQ socket monitor
(``connecting`` → ``connected`` → ``disconnected`` → ``connected`` ...), and
ZMQ heartbeats notice a publisher host that vanished without closing TCP.
Frame uids count messages since the last (re)connection or new ``time_tag``,
so a publisher restart shows up as a uid restart (``counters.restarts``).
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from ..frame import Decoded, Frame, FrameRejected
from ._base import FrameSink, Source

log = logging.getLogger(__name__)

DEFAULT_PORT = 9798
TOPIC = b"data"
REJECT_REASONS = (
    "wrong_part_count",  # not exactly 3 parts
    "wrong_topic",       # first part is not b"data"
    "bad_json",          # header is not UTF-8 JSON
    "bad_header",        # not an object, or timestamp/dimensions missing or not numbers
    "bad_shape",         # data_shape disagrees with nbeam/nchan/npol, or not 3 positive ints
    "bad_dtype",         # data_type missing, unknown to numpy or not a real number type
    "size_mismatch",     # payload bytes != prod(shape) * itemsize
    "handler_error",     # the sink raised: a bug downstream, counted, not fatal
)

_MONITOR_EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
                   | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED)


def make_endpoint(addr: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str:
    """``('127.0.0.1', 9798)`` → ``'tcp://127.0.0.1:9798'``; an endpoint passes through."""
    if "://" in str(addr):
        return str(addr)
    return f"tcp://{addr}:{int(port)}"


_dtype_cache: Dict[str, np.dtype] = {}

# Values per message beyond which a spectrum is refused: 16M (64 MB of float32),
# 1300 times the OVRO stream's 1 x 3072 x 4. A consistent but absurd header
# would otherwise size the waterfall ring (1200 rows of it) to tens of GB.
MAX_VALUES = 1 << 24


def _dtype_of(name: Any) -> np.dtype:
    """Header ``data_type`` → numpy dtype (cached: headers repeat the same string)."""
    dtype = _dtype_cache.get(name) if isinstance(name, str) else None
    if dtype is not None:
        return dtype
    if not isinstance(name, str):
        raise FrameRejected("bad_dtype", f"data_type must be a string, got {name!r}")
    try:
        dtype = np.dtype(name)
    except Exception as exc:  # TypeError, ValueError ("(-1,)f4"), SyntaxError...: all unknown
        raise FrameRejected("bad_dtype", f"unknown data_type {name!r}: {exc}") from None
    if dtype.kind not in "fiu" or dtype.itemsize == 0:
        raise FrameRejected("bad_dtype", f"data_type {name!r} is not a real number type")
    if len(_dtype_cache) < 64:
        _dtype_cache[name] = dtype
    return dtype


def _positive_int(value: Any) -> bool:
    return type(value) is int and value > 0  # bool is not a dimension


def parse_header(header_bytes: bytes) -> Tuple[dict, Tuple[int, int, int], np.dtype]:
    """Validate a header; return ``(header, shape, dtype)`` or raise FrameRejected."""
    try:
        header = json.loads(header_bytes)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: "[[[[..."
        raise FrameRejected("bad_json", f"header is not JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict):
        raise FrameRejected("bad_header", f"header is a {type(header).__name__}, not an object")
    dims = (header.get("nbeam"), header.get("nchan"), header.get("npol"))
    data_shape = header.get("data_shape")
    if data_shape is not None:
        if (type(data_shape) is not list or len(data_shape) != 3 or not (
                _positive_int(data_shape[0]) and _positive_int(data_shape[1])
                and _positive_int(data_shape[2]))):
            raise FrameRejected("bad_shape", f"data_shape must be 3 positive ints, got {data_shape!r}")
        shape = tuple(data_shape)
        if any(d is not None for d in dims) and dims != shape:
            raise FrameRejected("bad_shape", f"data_shape {list(shape)} != nbeam/nchan/npol {list(dims)}")
    elif all(_positive_int(d) for d in dims):
        shape = dims
    else:
        raise FrameRejected("bad_header", "no data_shape and no valid nbeam/nchan/npol")
    if shape[2] < 4:
        raise FrameRejected("bad_shape", f"npol {shape[2]} < 4 (need XX, YY, CR, CI)")
    timestamp = header.get("timestamp")
    if timestamp is not None:
        try:  # older senders wrote it as a string
            value = float(timestamp) if not isinstance(timestamp, bool) else math.nan
        except (TypeError, ValueError, OverflowError):
            value = math.nan
        if not (math.isfinite(value) and abs(value) < 1e11):  # Unix seconds, up to year 5138
            raise FrameRejected("bad_header", f"timestamp is not a time in Unix seconds: {timestamp!r}")
        if not isinstance(timestamp, (int, float)):
            header["timestamp"] = value
    if "data_type" not in header:
        raise FrameRejected("bad_dtype", "header has no data_type")
    dtype = _dtype_of(header["data_type"])
    return header, shape, dtype  # type: ignore[return-value]


def validate_message(parts: List[bytes]) -> Tuple[dict, bytes]:
    """A received multipart message → ``(header, payload)`` or raise FrameRejected."""
    if len(parts) != 3:
        raise FrameRejected("wrong_part_count", f"{len(parts)} parts, expected 3")
    topic, header_bytes, payload = parts
    if topic != TOPIC:
        raise FrameRejected("wrong_topic", f"topic {bytes(topic[:32])!r}, expected {TOPIC!r}")
    header, shape, dtype = parse_header(header_bytes)
    values = shape[0] * shape[1] * shape[2]
    if values > MAX_VALUES:  # the ring would be 1200 rows of it
        raise FrameRejected("too_large", f"shape {list(shape)}: more than {MAX_VALUES} values "
                                         "in one spectrum message")
    expected = values * dtype.itemsize
    if len(payload) != expected:
        raise FrameRejected("size_mismatch",
                            f"payload {len(payload)} bytes, header says {list(shape)} "
                            f"{dtype.str} = {expected} bytes")
    return header, payload


def message_shape_dtype(header: dict) -> Tuple[Tuple[int, int, int], np.dtype]:
    """Shape and dtype of an already validated header."""
    shape = header.get("data_shape") or (header["nbeam"], header["nchan"], header["npol"])
    return tuple(shape), _dtype_of(header["data_type"])  # type: ignore[return-value]


def decode_spectrum(payload: Tuple[dict, bytes]) -> Decoded:
    """Frame payload ``(header, bytes-like)`` → ``Decoded(array (nbeam, nchan, npol)
    float32, t_source=timestamp)``."""
    header, data = payload
    shape, dtype = message_shape_dtype(header)
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    if array.dtype != np.float32:
        array = array.astype(np.float32)
    t_source = header.get("timestamp")
    return Decoded(array, float(t_source) if t_source is not None else None,
                   attributes={k: header[k] for k in ("time_tag", "last_block_time") if k in header})


class ZmqSpectrumSource(Source):
    """SUB socket on its own thread → validated ``Frame`` objects for a sink.

    ``endpoint`` like ``tcp://127.0.0.1:9798``. ``poll_ms`` bounds how long
    ``stop()`` waits; ``rcvhwm`` is ZMQ's receive queue in messages.
    """

    kind = "zmq"

    def __init__(self, endpoint: str = make_endpoint(), *, poll_ms: int = 50, rcvhwm: int = 1000,
                 heartbeat_s: float = 1.0, reconnect_ivl_s: float = 0.1,
                 context: Optional[zmq.Context] = None):
        super().__init__(make_endpoint(endpoint))
        self.endpoint = self.name
        self.poll_ms = int(poll_ms)
        self.rcvhwm = int(rcvhwm)
        self.heartbeat_s = float(heartbeat_s)
        self.reconnect_ivl_s = float(reconnect_ivl_s)
        self._own_context = context is None
        self._context = context
        self._thread: Optional[threading.Thread] = None
        self._stop_event = threading.Event()
        self.state = "idle"
        self.connects = 0  # successful (re)connections
        self._uid = 0
        self._time_tag: Any = None
        self._was_connected = False

    # -- Source interface ----------------------------------------------------
    def start(self, sink: FrameSink) -> None:
        if self._thread is not None:
            return
        self.sink = sink
        if self._context is None:
            self._context = zmq.Context()
        self._stop_event.clear()
        socket = self._context.socket(zmq.SUB)
        try:
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.RCVHWM, self.rcvhwm)
            socket.setsockopt(zmq.RECONNECT_IVL, int(self.reconnect_ivl_s * 1000))
            socket.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
            if self.heartbeat_s > 0:  # detects a publisher host that vanished without FIN
                socket.setsockopt(zmq.HEARTBEAT_IVL, int(self.heartbeat_s * 1000))
                socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(self.heartbeat_s * 3000))
            socket.setsockopt(zmq.SUBSCRIBE, b"")
            monitor = socket.get_monitor_socket(_MONITOR_EVENTS)
            socket.connect(self.endpoint)  # a malformed endpoint raises here, in the caller
        except zmq.ZMQError:
            socket.close(0)
            raise
        self._set_state("connecting", self.endpoint)
        self._thread = threading.Thread(target=self._run, args=(socket, monitor),
                                        name=f"zmq-spectra {self.endpoint}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop_event.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0)
            if thread.is_alive():
                log.warning("zmq source thread for %s did not stop", self.endpoint)
        if self._own_context and self._context is not None and thread is not None:
            self._context.term()
            self._context = None
        if thread is not None:
            self._set_state("stopped")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the socket thread ---------------------------------------------------
    def _run(self, socket: zmq.Socket, monitor: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        recv = socket.recv_multipart
        handle = self._handle
        try:
            while not self._stop_event.is_set():
                ready = dict(poller.poll(self.poll_ms))
                if monitor in ready:
                    self._drain_monitor(monitor)
                if socket in ready:
                    # drain what is queued, but come back to the monitor and stop flag now and then
                    for _ in range(1000):
                        try:
                            parts = recv(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        # small parts as bytes; the payload stays in ZMQ's buffer (no 49 KB copy)
                        handle([part.bytes for part in parts[:-1]] + [parts[-1].buffer])
        except zmq.ContextTerminated:
            pass
        except Exception as exc:  # keep the reason; the owner decides what to do
            log.exception("zmq source %s failed", self.endpoint)
            self._set_state("error", f"{type(exc).__name__}: {exc}")
        finally:
            try:
                socket.disable_monitor()
            except zmq.ZMQError:
                pass
            monitor.close(0)
            socket.close(0)

    def _handle(self, parts: List[bytes]) -> None:
        t_recv = time.time()
        sink = self.sink
        try:
            header, payload = validate_message(parts)
        except FrameRejected as exc:
            sink.on_reject(exc.reason, exc.message)
            return
        except Exception as exc:  # a check we did not foresee: one bad message, not the end of the stream
            # counted, and logged at WARNING by the router the first time; the traceback for debugging
            log.debug("zmq %s: unreadable message", self.endpoint, exc_info=True)
            sink.on_reject("bad_header", f"unreadable message: {type(exc).__name__}: {exc}")
            return
        time_tag = header.get("time_tag")
        if time_tag != self._time_tag:
            if self._time_tag is not None:  # a new sequence: the publisher restarted
                log.info("zmq %s: new sequence (time_tag %s → %s)", self.endpoint, self._time_tag, time_tag)
                self._uid = 0
            self._time_tag = time_tag
        self._uid += 1
        frame = Frame((header, payload), uid=self._uid, source=self.endpoint,
                      decode=decode_spectrum, t_recv=t_recv, nbytes=len(payload))
        try:
            sink.on_frame(frame)
        except Exception as exc:  # a downstream bug must not kill reception
            log.exception("sink failed on a zmq spectrum")
            sink.on_reject("handler_error", f"{type(exc).__name__}: {exc}")

    def _drain_monitor(self, monitor: zmq.Socket) -> None:
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            kind = event["event"]
            if kind in (zmq.EVENT_HANDSHAKE_SUCCEEDED, zmq.EVENT_CONNECTED):
                if self.state != "connected":
                    self.connects += 1
                    if self._was_connected:  # a reconnection: number messages afresh
                        self._uid = 0
                    self._was_connected = True
                    self._set_state("connected", self.endpoint)
            elif kind == zmq.EVENT_DISCONNECTED:
                self._set_state("disconnected", f"publisher at {self.endpoint} went away; reconnecting")
            elif kind == zmq.EVENT_CONNECT_RETRIED and self.state not in ("disconnected", "connecting"):
                self._set_state("connecting", self.endpoint)

    def _set_state(self, state: str, message: str = "") -> None:
        if state == self.state:
            return
        self.state = state
        log.info("zmq %s: %s %s", self.endpoint, state, message)
        if self.sink is not None:
            try:
                self.sink.on_state(state, message)
            except Exception:
                log.exception("sink.on_state failed")
