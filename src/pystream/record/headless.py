"""Recording with no window: ``pystream record --pv PV --out DIR ...``.

``run_recording`` connects any Source to a ``Session`` with no display (nothing
is decoded but by the recorder) and a Recorder tap, shows a one-line progress on stderr, stops on a frame count, a duration,
the source finishing, a disk error or Ctrl-C, drains the queue, closes the
files and returns a ``RecordSummary``.
"""
from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, TextIO

from ..flow import Counters
from ..session import Session
from .recorder import ProcessFn, RecordError, Recorder

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kib": 1 << 10, "kb": 10 ** 3,
    "m": 1 << 20, "mib": 1 << 20, "mb": 10 ** 6,
    "g": 1 << 30, "gib": 1 << 30, "gb": 10 ** 9,
    "t": 1 << 40, "tib": 1 << 40, "tb": 10 ** 12,
}
_SIZE_RE = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*")


def parse_size(text: Any) -> int:
    """Bytes from ``"2GiB"``, ``"512MiB"``, ``"1.5G"``, ``"500MB"``, ``"1048576"``.

    KiB/MiB/GiB/TiB and bare K/M/G/T are powers of 1024; KB/MB/GB/TB powers of 1000.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"size must be positive, not {text}")
        return int(text)
    match = _SIZE_RE.fullmatch(str(text))
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 2GiB, 512MiB, 1000000)")
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit not in _SIZE_UNITS:
        raise ValueError(f"unknown size unit {match.group(2)!r} in {text!r} (use KiB, MiB, GiB)")
    size = int(number * _SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError(f"size must be positive, not {text!r}")
    return size


@dataclass
class RecordSummary:
    """What a headless recording did. ``ok`` is False after a disk error."""

    frames: int = 0  # written to disk
    drops: int = 0  # offered to the recorder but not written (queue full, disk error)
    rejected: int = 0  # could not be decoded/processed (see rejected_by_reason)
    offered: int = 0
    received: int = 0  # frames the source delivered (router count)
    dropped_upstream: int = 0  # uniqueId gaps: lost before they reached us
    seconds: float = 0.0
    mb_per_s: float = 0.0
    bytes: int = 0
    path: str = ""  # the file written (the last one of a sequence)
    first_path: str = ""
    files: int = 0
    state: str = "idle"
    error: str = ""
    interrupted: bool = False
    never_connected: bool = False  # the source did not connect within the connect timeout
    stop_reason: str = ""
    rejected_by_reason: Dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state != "error"

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        lines = [
            f"recorded {self.frames} frames in {self.seconds:.1f} s "
            f"({self.mb_per_s:.1f} MB/s, {self.bytes / 1e6:.1f} MB)",
            f"drops {self.drops}, rejected {self.rejected}, lost upstream {self.dropped_upstream}",
        ]
        if self.files > 1 and self.first_path:
            lines.append(f"files: {self.first_path} ... {self.path} ({self.files} files)")
        elif self.path:
            lines.append(f"file: {self.path}")
        if self.rejected_by_reason:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected_by_reason.items()))
            lines.append(f"rejected by reason: {reasons}")
        if self.stop_reason:
            lines.append(f"stopped: {self.stop_reason}")
        if self.error:
            lines.append(f"ERROR: {self.error}")
        return "\n".join(lines)


class ProgressLine:
    """A ``\\r``-updated status line (plain text, no dependency)."""

    def __init__(self, stream: TextIO, interval: float = 0.25):
        self.stream = stream
        self.interval = interval
        self._last = 0.0
        self._width = 0

    def update(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        pad = max(self._width - len(text), 0)
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def end(self) -> None:
        if self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def progress_text(recorder: Recorder, frames: Optional[int], seconds: Optional[float],
                  elapsed: float, source_state: str = "") -> str:
    s = recorder.stats()
    done = f"{s['recorded']}/{frames}" if frames else str(s["recorded"])
    if frames:
        pct = 100.0 * min(recorder.offered / frames, 1.0)
        bar_width = 20
        filled = int(bar_width * pct / 100)
        head = f"[{'#' * filled}{'.' * (bar_width - filled)}] {pct:3.0f}% "
    elif seconds:
        pct = 100.0 * min(elapsed / seconds, 1.0)
        head = f"[{elapsed:6.1f}/{seconds:.0f} s] "
    else:
        head = f"[{elapsed:6.1f} s] "
    # until frames flow, say why none come (connecting, disconnected)
    waiting = f"  ({source_state})" if source_state not in ("", "connected") else ""
    return (f"{head}{done} frames  {s['record_mb_per_s']:.1f} MB/s  "
            f"drops {s['record_drops']}  queue {s['record_queue_fill'] * 100:.0f}%{waiting}")


def run_recording(source, out_dir: str, fmt: str = "tiff", frames: Optional[int] = None,
                  seconds: Optional[float] = None, prefix: str = "frame",
                  buffer_bytes: int = 1 << 30, stack: bool = False,
                  compression: Optional[str] = None, progress: bool = True,
                  process: Optional[ProcessFn] = None, counters: Optional[Counters] = None,
                  stream: Optional[TextIO] = None, stop_event: Optional[threading.Event] = None,
                  connect_timeout: Optional[float] = None,
                  poll_interval: float = 0.05, session: Optional[Session] = None) -> RecordSummary:
    """Record ``source`` into ``out_dir`` until ``frames`` / ``seconds`` / end / Ctrl-C.

    Ctrl-C (KeyboardInterrupt) stops the source, writes what is queued and
    closes the files; a second Ctrl-C while stopping drops the rest (the files
    are still closed). The summary goes to ``stream`` (stderr by default) and
    is returned; the caller picks the exit status from ``summary.ok``.
    ``stop_event`` lets a signal handler or another thread end the recording
    the same way (its ``reason``, when it has one, is the stop reason). A
    source still not connected after ``connect_timeout`` seconds ends it with
    ``summary.never_connected``. ``session``: record within an existing
    session (its other consumers, e.g. a web view, go on seeing the stream);
    by default a display-less one.
    """
    stream = sys.stderr if stream is None else stream
    own_session = session is None
    if session is None:
        session = Session(display=False, counters=counters)
    counters = session.counters
    summary = RecordSummary()
    recorder = Recorder(out_dir, fmt=fmt, prefix=prefix, buffer_bytes=buffer_bytes, stack=stack,
                        compression=compression, process=process, max_frames=frames)
    recorder.attach(counters)
    try:
        recorder.start()
    except RecordError as exc:  # nothing was recorded: the reason alone, no summary
        summary.state, summary.error = "error", str(exc)
        summary.stop_reason = "could not start"
        stream.write(f"cannot record: {exc}\n")
        return summary

    source_state = {"state": "", "message": "", "connected": False}

    def on_state(state: str, message: str) -> None:
        source_state["state"], source_state["message"] = state, message
        if state == "connected":
            source_state["connected"] = True

    session.add_state_listener(on_state)
    session.add_tap(recorder.tap)
    line = ProgressLine(stream) if progress else None
    t0 = time.monotonic()
    stop_reason = ""
    try:
        try:
            session.connect(source)
            while True:
                elapsed = time.monotonic() - t0
                if recorder.state == "error":
                    stop_reason = "disk error"
                    break
                if frames is not None and recorder.target_reached:
                    stop_reason = f"{frames} frames"
                    break
                if seconds is not None and elapsed >= seconds:
                    stop_reason = f"{seconds:g} s"
                    break
                if source_state["state"] in ("finished", "stopped") or session.ended:
                    stop_reason = f"source {source_state['state']}"
                    break
                if stop_event is not None and stop_event.is_set():
                    stop_reason = getattr(stop_event, "reason", "") or "stop requested"
                    summary.interrupted = bool(getattr(stop_event, "reason", ""))  # a signal
                    break
                if (connect_timeout is not None and elapsed >= connect_timeout
                        and not source_state["connected"] and counters.get("received") == 0):
                    stop_reason = f"never connected ({connect_timeout:g} s)"
                    summary.never_connected = True
                    break
                if line is not None:
                    line.update(progress_text(recorder, frames, seconds, elapsed,
                                              source_state["state"]))
                time.sleep(poll_interval)
        except KeyboardInterrupt:
            stop_reason = "interrupted (Ctrl-C)"
            summary.interrupted = True
        try:
            if line is not None:  # end the line before stopping logs anything
                line.update(progress_text(recorder, frames, seconds, time.monotonic() - t0),
                            force=True)
                line.end()
            _stop_source(session)
            session.remove_tap(recorder.tap)
            recorder.stop(drain=True)
        except KeyboardInterrupt:
            stop_reason += "; stopped at once: queued frames dropped"
            summary.interrupted = True
            _stop_source(session)
            session.remove_tap(recorder.tap)
            recorder.stop(drain=False)
    finally:
        # whatever happened above, the files end closed and the source stopped
        if not recorder.finished:
            _stop_source(session)
            session.remove_tap(recorder.tap)
            recorder.stop(drain=False)
        if own_session:
            session.close()
    if line is not None:
        line.end()  # still open only if something above raised
    _fill_summary(summary, recorder, counters, stop_reason)
    stream.write(summary.format() + "\n")
    stream.flush()
    return summary


def _stop_source(session: Session) -> None:
    """Stop the source (the final counts and its state stay readable)."""
    try:
        if session.source is not None:
            session.source.stop()
    except Exception as exc:  # a source that fails to stop must not lose the recording
        sys.stderr.write(f"warning: stopping the source failed: {exc}\n")


def _fill_summary(summary: RecordSummary, recorder: Recorder, counters: Counters,
                  stop_reason: str) -> None:
    stats = recorder.stats()
    writer = recorder.writer
    summary.frames = stats["recorded"]
    summary.drops = stats["record_drops"]
    summary.rejected = stats["record_rejected"]
    summary.offered = recorder.offered
    summary.received = counters.get("received")
    summary.dropped_upstream = counters.get("dropped_upstream")
    summary.seconds = round(recorder.elapsed(), 3)
    summary.mb_per_s = round(recorder.mean_mb_per_s(), 2)
    summary.bytes = recorder.bytes_written
    summary.path = writer.path if writer is not None else ""
    summary.first_path = writer.first_path if writer is not None else ""
    summary.files = writer.file_count if writer is not None else 0
    summary.state = stats["record_state"]
    summary.error = stats["record_error"]
    summary.stop_reason = stop_reason
    summary.rejected_by_reason = dict(recorder.rejected_by_reason)
