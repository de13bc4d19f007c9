"""Helpers for the scale-out tests: real processes on loopback, a monitor, the
frames ``pystream sim pva`` sends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from pystream.publish.pva_sim import TestPattern, draw_counter, pattern_cycle
from pystream.sources.ntndarray import decode_ntndarray

from .session_helpers import wait_for

SIZE = (48, 64)  # (ny, nx): small, so that decoding and checking cost nothing

PLUGINS = '''
import numpy as np

class StampConsumer:
    """Puts the id of the consumer that processed the frame into an attribute."""
    def apply(self, img, meta):
        meta["attributes"]["ConsumerId"] = meta.get("consumer_id")
        return img, meta

class FailEvery:
    """Raises on every frame whose uid is a multiple of ``every``."""
    def __init__(self, every=3):
        self.every = every
    def apply(self, img, meta):
        if meta["uid"] % self.every == 0:
            raise RuntimeError("broken on purpose")
        return img
'''


def write_config(tmp_path: Path, steps: List[dict]) -> Path:
    import json
    plugins = tmp_path / "scale_test_plugins.py"
    plugins.write_text(PLUGINS)
    for step in steps:
        if step["module"] == "PLUGINS":
            step["module"] = str(plugins)
    config = tmp_path / "pipeline.json"
    config.write_text(json.dumps({"processors": steps}))
    return config


INVERT = {"name": "Invert", "module": "pystream.pipeline.processors", "class": "Invert"}
STAMP = {"name": "Stamp", "module": "PLUGINS", "class": "StampConsumer"}


def fail_every(n: int) -> dict:
    return {"name": "Fail", "module": "PLUGINS", "class": "FailEvery", "kwargs": {"every": n}}


class SimFrames:
    """The exact image ``pystream sim pva --size 64x48`` sends with a given uid."""

    def __init__(self, size=SIZE, dtype="uint16"):
        self.pattern = TestPattern(size, dtype)
        self.cycle = pattern_cycle(self.pattern)

    def __call__(self, uid: int) -> np.ndarray:
        image = self.cycle[(uid - 1) % len(self.cycle)].copy()
        draw_counter(image, uid, self.pattern.peak)
        return image


def child_env() -> Dict[str, str]:
    """This process's environment (loopback pvAccess from conftest) and its sys.path."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def start(argv: List[str], log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=child_env(), start_new_session=True)


def start_sim(pv: str, log_path: Path, rate: float = 30.0, frames: Optional[int] = None):
    argv = [sys.executable, "-m", "pystream.cli", "sim", "pva", "--pv", pv,
            "--size", f"{SIZE[1]}x{SIZE[0]}", "--rate", str(rate)]
    if frames:
        argv += ["--frames", str(frames)]
    return start(argv, log_path)


def start_scale(args: List[str], log_path: Path) -> subprocess.Popen:
    return start([sys.executable, "-m", "pystream.cli", "scale", *args], log_path)


def stop(process: subprocess.Popen, timeout: float = 30.0) -> int:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


class Monitor:
    """A pvapy monitor keeping (uid, image, attributes) of every update of a PV
    (decoded in the callback: these are small test frames)."""

    def __init__(self, pv: str, queue_size: int = 100):
        import pvaccess as pva

        from pystream.sources.pva import monitor_request
        self.items: List[tuple] = []
        self.errors: List[str] = []
        self._cond = threading.Condition()
        self.channel = pva.Channel(pv)
        self.channel.subscribe("test", self._on_update)
        # the collector publishes in bursts (a run of ordered frames at once): a
        # monitor with pvAccess's default queue of 2 would lose some of them
        self.channel.startMonitor(monitor_request(queue_size))

    def _on_update(self, pv) -> None:
        try:
            decoded = decode_ntndarray(pv)
            item = (int(pv["uniqueId"]), np.array(decoded.array), dict(decoded.attributes))
        except Exception as exc:
            with self._cond:
                self.errors.append(repr(exc))
            return
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    @property
    def uids(self) -> List[int]:
        with self._cond:
            return [item[0] for item in self.items]

    def wait_for(self, predicate, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.items):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def stop(self) -> None:
        try:
            self.channel.stopMonitor()
        except Exception:
            pass


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.1) -> bool:
    return wait_for(predicate, timeout, interval)


def published_count(sim_log: Path) -> Optional[int]:
    """``published N frames``, which ``pystream sim pva`` logs when it stops."""
    import re
    found = re.search(r"published (\d+) frames", sim_log.read_text(errors="replace"))
    return int(found.group(1)) if found else None
