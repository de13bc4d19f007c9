"""The live view's WebSocket protocol (SPEC.md section 3), as plain values.

Server → client JSON text messages: ``welcome``, ``frame``, ``status``,
``control_state``, ``stats``, ``pong``. A ``frame`` message is followed by
exactly one binary message: the encoded image (JPEG, PNG or WebP) or, for a
spectrum, float32 values (layout in ``encode.spectrum_payload``). Pixels
never travel as JSON lists.

Client → server: ``pause``, ``resume``, ``stop``, ``ping`` (the seed's), and
pystream's ``view`` (the page's canvas size, image format and rate limit)
and ``probe`` (the real pixel value under the mouse). Anything else (bad
JSON, an unknown type, a binary or oversized message, too many messages a
second) is ignored and counted by reason; nothing a client sends can end the
server.
"""
from __future__ import annotations

import json
import math
import threading
import time
from typing import Any, Dict, Optional, Tuple

CONTROL_TYPES = ("pause", "resume", "stop", "ping")
CLIENT_TYPES = CONTROL_TYPES + ("view", "probe")
STATUS_LEVELS = ("info", "warning", "error", "complete")
IMAGE_FORMATS = ("jpeg", "png", "webp")

MAX_TEXT_BYTES = 4096  # every valid client message is a few dozen bytes
MAX_WS_MESSAGE_BYTES = 1 << 20  # beyond this aiohttp closes that one connection (1009)
MESSAGES_PER_SECOND = 30.0  # per client; a mouse probe is throttled to 15/s by the page
MESSAGE_BURST = 60


def dumps(message: Dict[str, Any]) -> str:
    # NaN/inf are not JSON: a level or latency that is not finite goes as null
    return json.dumps(message, separators=(",", ":"), allow_nan=False, default=_plain)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    raise TypeError(f"{type(value).__name__} is not JSON")


def finite(value: Any) -> Optional[float]:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# ------------------------------------------------------------ server → client
def welcome(fps: float, paused: bool, **extra: Any) -> Dict[str, Any]:
    return {"type": "welcome", "fps": float(fps), "paused": bool(paused), **extra}


def frame(data: Dict[str, Any], timestamp: Optional[float] = None) -> Dict[str, Any]:
    return {"type": "frame", "timestamp": time.time() if timestamp is None else timestamp,
            "data": data}


def status(level: str, message: str) -> Dict[str, Any]:
    if level not in STATUS_LEVELS:
        raise ValueError(f"status level must be one of {STATUS_LEVELS}, not {level!r}")
    return {"type": "status", "status": level, "message": message}


def control_state(paused: bool, stop_requested: bool) -> Dict[str, Any]:
    return {"type": "control_state", "paused": bool(paused), "stop_requested": bool(stop_requested)}


def stats(data: Dict[str, Any]) -> Dict[str, Any]:
    return {"type": "stats", "data": data}


def pong() -> Dict[str, Any]:
    return {"type": "pong"}


# ------------------------------------------------------------ client → server
class BadMessage(ValueError):
    """A client message that is ignored; ``reason`` is what it is counted as."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


def parse_client_message(text: str) -> Tuple[str, Dict[str, Any]]:
    """``(type, message)`` of a valid client text message, or BadMessage."""
    if len(text) > MAX_TEXT_BYTES:
        raise BadMessage("oversized", f"{len(text)} characters")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise BadMessage("bad_json") from None
    if not isinstance(message, dict):
        raise BadMessage("not_an_object")
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise BadMessage("unknown_type", f"type {kind!r}"[:80])
    if kind == "view":
        return kind, parse_view(message)
    if kind == "probe":
        x, y = finite(message.get("x")), finite(message.get("y"))
        if x is None or y is None:
            raise BadMessage("bad_fields", "probe needs numbers x and y")
        return kind, {"x": x, "y": y, "id": message.get("id") if isinstance(message.get("id"), int) else None}
    return kind, message


def parse_view(message: Dict[str, Any]) -> Dict[str, Any]:
    """The page's wishes, clamped to what the server allows."""
    view: Dict[str, Any] = {}
    width, height = finite(message.get("width")), finite(message.get("height"))
    if width is not None and height is not None:
        view["size"] = (int(min(max(height, 16), 8192)), int(min(max(width, 16), 8192)))
    fmt = message.get("format")
    if fmt is not None:
        if fmt not in IMAGE_FORMATS:
            raise BadMessage("bad_fields", f"format must be one of {IMAGE_FORMATS}")
        view["format"] = fmt
    fps = finite(message.get("max_fps"))
    if fps is not None:
        view["max_fps"] = max(0.1, fps)
    return view


class BadMessageCounter:
    """Counts ignored client messages by reason (thread-safe: read by stats())."""

    def __init__(self):
        self._lock = threading.Lock()
        self.by_reason: Dict[str, int] = {}

    def add(self, reason: str) -> None:
        with self._lock:
            self.by_reason[reason] = self.by_reason.get(reason, 0) + 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_reason.values())

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self.by_reason)


class MessageRateLimit:
    """A token bucket: ``allow()`` is False once a client sends faster than
    ``rate`` messages a second for longer than ``burst`` allows."""

    def __init__(self, rate: float = MESSAGES_PER_SECOND, burst: float = MESSAGE_BURST):
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._t = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
        self._t = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
