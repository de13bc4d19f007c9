"""The one status line of a run with no window (offscreen over SSH).

On a terminal it updates in place (``\\r``, the recorder's ``ProgressLine``);
into a pipe or a log file it writes a whole line every ``log_interval``
seconds instead, so a log does not fill with carriage returns. Log records
end the line first, so they never land in the middle of it.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Any, Dict, Optional, TextIO

from .record.headless import ProgressLine


def status_text(s: Dict[str, Any], web_clients: Optional[int] = None) -> str:
    """state | received / shown fps | drops | latency | web clients."""
    parts = [str(s.get("state", "idle")),
             f"recv {s.get('recv_fps', 0) or 0:.1f} fps",
             f"shown {s.get('display_fps', 0) or 0:.1f} fps",
             f"dropped {s.get('dropped_upstream', 0)}",
             f"skipped {s.get('skipped', 0)}"]
    if s.get("rejected"):
        parts.append(f"rejected {s['rejected']}")
    if s.get("latency_ms_p50") is not None:
        parts.append(f"latency {s['latency_ms_p50']:.0f} ms")
    if s.get("recording"):
        parts.append(f"rec {s.get('recorded', 0)} ({s.get('record_drops', 0)} drops)")
    if web_clients is not None:
        parts.append(f"web {web_clients} client{'' if web_clients == 1 else 's'}")
    return " | ".join(parts)


class StatusLine:
    def __init__(self, stream: Optional[TextIO] = None, interval: float = 0.5,
                 log_interval: float = 10.0):
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.in_place = bool(isatty and isatty())
        self.line = ProgressLine(self.stream, interval) if self.in_place else None
        self.log_interval = log_interval
        self._last_logged = 0.0
        self.text = ""

    def update(self, stats: Dict[str, Any], web_clients: Optional[int] = None) -> None:
        self.text = status_text(stats, web_clients)
        if self.line is not None:
            self.line.update(self.text)
            return
        now = time.monotonic()
        if now - self._last_logged >= self.log_interval:
            self._last_logged = now
            self.stream.write(self.text + "\n")
            self.stream.flush()

    def break_line(self) -> None:
        """End the in-place line (before something else is written)."""
        if self.line is not None:
            self.line.end()

    def end(self) -> None:
        self.break_line()

    def log_filter(self) -> logging.Filter:
        """A filter for the console log handler: each record ends the line first."""
        status = self

        class _EndStatusLine(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                status.break_line()
                return True

        return _EndStatusLine()
