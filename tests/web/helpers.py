"""A real ``pystream`` process with its web view, as a user starts it."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional

URL_LINE = re.compile(r"pystream: web view at (http://\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Pystream:
    """``python -m pystream.cli ARGS`` with stderr collected; ``url`` once it is serving."""

    def __init__(self, args: List[str], home, timeout: float = 60.0, wait_url: bool = True):
        env = dict(os.environ, HOME=str(home), QT_QPA_PLATFORM="offscreen")
        self.proc = subprocess.Popen([sys.executable, "-m", "pystream.cli", *args], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: List[str] = []
        self.url: Optional[str] = None
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        if wait_url and "--web" in args:
            self.wait_for(lambda: self.url is not None, timeout, "the web view's URL")

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                match = URL_LINE.search(line)
                if match and self.url is None:
                    self.url = match.group(1)
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    @property
    def stderr(self) -> str:
        with self._seen:
            return "\n".join(self.lines)

    def wait_for(self, condition, timeout: float = 60.0, what: str = "a condition") -> None:
        deadline = time.monotonic() + timeout
        with self._seen:
            while not condition():
                if self.proc.poll() is not None and not condition():
                    raise AssertionError(f"pystream exited ({self.proc.returncode}) before {what}:\n"
                                         + "\n".join(self.lines[-30:]))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {what} within {timeout} s:\n" + "\n".join(self.lines[-30:]))
                self._seen.wait(min(remaining, 0.2))

    @property
    def port(self) -> int:
        return int(re.search(r":(\d+)/", self.url).group(1))

    def wait_exit(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class ZmqSim:
    """``pystream sim zmq`` publishing OVRO-style spectra on a free port."""

    def __init__(self, home, rate: float = 20.0):
        self.port = free_port()
        env = dict(os.environ, HOME=str(home))
        self.proc = subprocess.Popen([sys.executable, "-m", "pystream.cli", "sim", "zmq", "--port",
                                      str(self.port), "--rate", str(rate)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
