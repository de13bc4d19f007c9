"""Stop signals: Ctrl-C, ``kill``, ``timeout``, systemd, batch schedulers, a closed terminal.

SIGINT (Ctrl-C), SIGTERM (what ``kill``, ``timeout``, systemd and batch
schedulers send) and SIGHUP (the terminal went away) all ask every command for
the same clean stop: the recording drained and closed (valid files), the
summary and final statistics written, exit status 0. Python's defaults would
kill the process on SIGTERM/SIGHUP mid-write (an HDF5 file h5py then refuses
to open) and turn SIGINT into a KeyboardInterrupt at an arbitrary line.

A second signal means "now": ``on_force`` when given (e.g. drop the queued
frames but still close the files), else the process ends at once with
128 + the signal's number. A third one always ends it at once.

    with StopSignals(lambda name: stop.set()):
        ...   # run until stop is set

Qt-free; handlers run on the main thread (Python's rule), between bytecodes.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Callable, Dict, Optional

log = logging.getLogger(__name__)

#: the signals that mean "stop cleanly" (SIGHUP does not exist on Windows)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopRequest(threading.Event):
    """An Event that remembers why it was set (``reason``), e.g. ``"SIGTERM"``."""

    reason = ""

    def request(self, reason: str = "stop requested") -> None:
        if not self.is_set():
            self.reason = reason
        self.set()


class StopSignals:
    """Install handlers for SIGINT, SIGTERM and SIGHUP that call ``on_stop(name)`` once.

    ``received`` is the first signal's name (``None`` until one came). Outside
    the main thread ``install`` does nothing (Python allows handlers only there).
    """

    def __init__(self, on_stop: Callable[[str], None],
                 on_force: Optional[Callable[[str], None]] = None):
        self.on_stop = on_stop
        self.on_force = on_force
        self.received: Optional[str] = None
        self.count = 0
        self._previous: Dict[int, object] = {}

    def install(self) -> "StopSignals":
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def __enter__(self) -> "StopSignals":
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()

    def _handle(self, signum: int, _frame) -> None:
        self.count += 1
        name = signal_name(signum)
        if self.count == 1:
            self.received = name
            log.warning("%s: stopping cleanly (send it again to stop at once)", name)
            self.on_stop(name)
        elif self.count == 2 and self.on_force is not None:
            log.warning("%s again: stopping at once", name)
            self.on_force(name)
        else:
            # os.write: the logging lock may be held by the code this interrupted
            os.write(sys.stderr.fileno(), f"pystream: {name} again: exiting now\n".encode())
            os._exit(128 + signum)
