"""The two entry points of the Python API: ``show`` (the window) and ``run`` (headless).

Both take any source (``PvaSource``, ``ZmqSpectrumSource``, ``PushSource``,
``IterSource``, ``ReplaySource`` or your own ``Source``) and use the same
engine ``Session`` as the ``pystream`` command.
"""
from __future__ import annotations

import io
import logging
import threading
import time
from typing import Any, Dict, Optional

from .session import Session
from .sources._base import Source

log = logging.getLogger("pystream")

#: ``record=`` keys of ``run`` and what they mean (the ``pystream record`` options)
RECORD_KEYS = {
    "dir": "output directory (created if missing); required",
    "format": "tiff (a sequence), tiff-stack (one BigTIFF) or hdf5 (default: tiff)",
    "prefix": "file name prefix (default: frame)",
    "frames": "stop after this many frames",
    "compression": "e.g. zlib (default: none)",
    "buffer": "memory between receiving and writing, bytes or '2GiB' (default: 1GiB)",
}


def show(source: Source, **viewer_options: Any) -> int:
    """Open the viewer window on ``source`` and block until it is closed.

    ``viewer_options`` are the ``pystream`` command's options with
    underscores (``max_fps=30``, ``colormap="viridis"``, ``proc_config=...``,
    ``offscreen=True``, ``exit_after=10``, ``stats_json="s.json"``...).
    Returns the window's exit status (0).
    """
    from .cli import run_viewer
    from .gui.assemble import viewer_options as make_options

    return run_viewer(make_options(**viewer_options), source=source)


def run(source: Source, *, record: Optional[Dict[str, Any]] = None,
        stats_json: Optional[str] = None, seconds: Optional[float] = None,
        stop_event: Optional[threading.Event] = None) -> Dict[str, Any]:
    """Run ``source`` with no window until it ends, ``seconds`` pass, or
    ``stop_event`` is set (Ctrl-C stops it the same way); return the final
    counters (the ``--stats-json`` dictionary).

    ``record={"dir": "out", "format": "hdf5"}`` records every received frame
    (keys: ``RECORD_KEYS``); ``run`` then returns once everything received is
    written and the files are closed. ``stats_json``: also write the counters
    to this file every second and at the end.

    A ``PushSource`` ends when its feeder leaves its ``with`` block (or calls
    ``finalize()``); ``IterSource`` and ``ReplaySource`` end with their data.
    """
    from .statsfile import StatsFileWriter

    if record is not None:
        unknown = sorted(set(record) - set(RECORD_KEYS))
        if unknown or "dir" not in record:
            raise ValueError(f"record= needs 'dir' and takes {', '.join(RECORD_KEYS)}; "
                             f"not {', '.join(unknown) or 'without dir'}")
    if seconds is not None and seconds <= 0:
        raise ValueError(f"seconds must be > 0, not {seconds}")
    session = Session(display=False)
    writer = StatsFileWriter(stats_json, session.stats) if stats_json else None
    if writer is not None:
        writer.start()
    try:
        if record is not None:
            _record(session, source, record, seconds, stop_event)
        else:
            _watch(session, source, seconds, stop_event)
        if session.source is not None:
            session.source.stop()  # the final numbers say "stopped" or "finished"
        stats = session.stats()
    finally:
        if writer is not None:
            writer.stop()
        session.close()
    return stats


def _watch(session: Session, source: Source, seconds: Optional[float],
           stop_event: Optional[threading.Event]) -> None:
    deadline = None if seconds is None else time.monotonic() + seconds
    session.connect(source)
    try:
        while not session.ended:
            if stop_event is not None and stop_event.is_set():
                return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            session.wait_ended(0.1 if left is None else min(0.1, left))
    except KeyboardInterrupt:
        log.info("interrupted (Ctrl-C): stopping")


def _record(session: Session, source: Source, record: Dict[str, Any], seconds: Optional[float],
            stop_event: Optional[threading.Event]) -> None:
    from .record import RecordError, parse_size, run_recording

    summary_text = io.StringIO()
    summary = run_recording(source, str(record["dir"]), fmt=record.get("format", "tiff"),
                            frames=record.get("frames"), seconds=seconds,
                            prefix=record.get("prefix", "frame"),
                            buffer_bytes=parse_size(record.get("buffer", "1GiB")),
                            compression=record.get("compression"), progress=False,
                            stream=summary_text, stop_event=stop_event, session=session)
    if summary.stop_reason == "could not start":
        raise RecordError(summary.error)
    log.info("%s", summary_text.getvalue().strip())
