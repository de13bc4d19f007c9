"""SIGTERM, SIGHUP and Ctrl-C stop every command cleanly: real signals to real child processes.

Each test waits for a condition (frames on disk, frames shown), never for a clock,
then signals the child and reads back what it left.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest
import tifffile

from .pva_helpers import subscribe
from .test_cli import user_env

pytestmark = pytest.mark.pva


class Child:
    """``python -m pystream.cli ARGS`` with its stderr collected by a thread."""

    def __init__(self, args, env):
        self.proc = subprocess.Popen([sys.executable, "-m", "pystream.cli", *args], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.err = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for chunk in iter(lambda: self.proc.stderr.read1(4096), b""):
            with self._lock:
                self.err += chunk

    def text(self):
        with self._lock:
            return self.err.decode(errors="replace")

    def wait_for(self, predicate, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.proc.poll() is None, f"exited {self.proc.returncode} before {what}:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {what} after {timeout} s:\n{self.text()}"
            time.sleep(0.05)

    def finish(self, timeout=60):
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)
        return code, self.text()


@pytest.fixture
def streaming(publisher):
    """The test's PvaServer publishes 64x48 uint16 frames (uid 1, 2, ...) at about 100 Hz."""
    stop = threading.Event()

    def run():
        uid = 0
        while not stop.is_set():
            uid += 1
            publisher.publish(np.full((48, 64), uid % 65536, np.uint16), uid=uid)
            stop.wait(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield publisher.pv_name
    stop.set()
    thread.join(10)


def recorded(child):
    """Frames recorded so far, from the progress line."""
    counts = re.findall(r"\] (\d+) frames", child.text())
    return int(counts[-1]) if counts else 0


def read_back(out, fmt):
    """(frame uids, pixel values) from whatever the recording left in ``out``."""
    names = sorted(os.listdir(out))
    if fmt == "tiff":
        uids, values = [], []
        for name in names:
            with tifffile.TiffFile(out / name) as tif:
                uids.append(json.loads(tif.pages[0].description)["uid"])
                values.append(int(tif.asarray()[0, 0]))
        return uids, values
    assert len(names) == 1, names
    if fmt == "tiff-stack":
        with tifffile.TiffFile(out / names[0]) as tif:
            uids = [json.loads(page.description)["uid"] for page in tif.pages]
            data = tif.asarray()
        return uids, [int(v) for v in data.reshape(len(uids), -1)[:, 0]]
    with h5py.File(out / names[0], "r") as f:  # without h5clear: the file was closed
        uids = [int(u) for u in f["/entry/data/uid"][:]]
        data = f["/entry/data/data"][:]
    assert data.shape[0] == len(uids)
    return uids, [int(v) for v in data[:, 0, 0]]


@pytest.mark.parametrize("fmt", ["tiff", "tiff-stack", "hdf5"])
def test_sigterm_stops_a_recording_with_valid_files_and_a_summary(streaming, home, fmt):
    out = home / "data"
    child = Child(["record", "--pv", streaming, "--out", str(out), "--format", fmt], user_env(home))
    child.wait_for(lambda: recorded(child) >= 5, "5 frames recorded")
    child.proc.send_signal(signal.SIGTERM)
    code, err = child.finish()
    assert code == 0, err
    match = re.search(r"recorded (\d+) frames", err)
    assert match, err
    assert "stopped: SIGTERM" in err
    uids, values = read_back(out, fmt)
    assert len(uids) == int(match.group(1)) >= 5
    assert uids == sorted(uids) and len(set(uids)) == len(uids)
    assert values == [u % 65536 for u in uids]  # each frame's own pixels


def test_sighup_stops_the_viewer_with_final_stats(home, pv_name):
    stats = home / "stats.json"

    def shown():
        try:
            return json.loads(stats.read_text())["displayed"] > 3
        except (OSError, ValueError, KeyError):
            return False

    child = Child(["demo", "--offscreen", "--size", "64x64", "--pv", pv_name,
                   "--stats-json", str(stats)], user_env(home))
    child.wait_for(shown, "frames shown")
    child.proc.send_signal(signal.SIGHUP)
    code, err = child.finish()
    assert code == 0, err
    assert "SIGHUP: stopping cleanly" in err
    assert json.loads(stats.read_text())["state"] == "stopped"  # written after the source stopped


def test_sighup_stops_the_simulator(home, pv_name):
    child = Child(["sim", "pva", "--pv", pv_name, "--size", "32x32", "--rate", "50"],
                  user_env(home))
    child.wait_for(lambda: "publishing" in child.text(), "the simulator started")
    source, collector = subscribe(pv_name)
    try:
        assert collector.wait_for(lambda c: len(c.frames) >= 3)
    finally:
        source.stop()
    child.proc.send_signal(signal.SIGHUP)
    code, err = child.finish()
    assert code == 0, err
    assert re.search(r"published \d+ frames", err), err


STUBBORN = """
import logging, sys, time
from pystream.signals import StopSignals
logging.basicConfig()
StopSignals(lambda name: print("stopping on", name, flush=True)).install()
print("ready", flush=True)
while True:  # a drain that never ends
    time.sleep(0.01)
"""


def test_a_second_signal_forces_exit(home):
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN], env=user_env(home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout.readline().strip() == "stopping on SIGTERM"
        assert proc.poll() is None  # the first signal asks; the program decides when to stop
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
        assert "SIGTERM again: exiting now" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_source_that_never_connects_gives_up_and_leaves_no_directory(home, pv_name):
    out = home / "never"
    child = Child(["record", "--pv", pv_name, "--out", str(out), "--format", "hdf5",
                   "--frames", "10", "--connect-timeout", "1"], user_env(home))
    code, err = child.finish()
    assert code == 1, err
    assert f"pva://{pv_name} never connected: is the IOC" in err
    assert not out.exists()


def test_never_connecting_keeps_a_directory_that_existed(home, pv_name):
    out = home / "existing"
    out.mkdir()
    child = Child(["record", "--pv", pv_name, "--out", str(out), "--connect-timeout", "0.5"],
                  user_env(home))
    code, err = child.finish()
    assert code == 1 and "never connected" in err, err
    assert out.is_dir() and os.listdir(out) == []


def test_sigterm_stops_the_spectrum_simulator(home):
    import socket
    with socket.socket() as s:  # a port free a moment ago; the child binds it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    child = Child(["sim", "zmq", "--port", str(port), "--rate", "50"], user_env(home))
    child.wait_for(lambda: "publishing" in child.text(), "the publisher started")
    child.proc.send_signal(signal.SIGTERM)
    code, err = child.finish()
    assert code == 0, err
    assert re.search(r"published \d+ spectra", err), err
