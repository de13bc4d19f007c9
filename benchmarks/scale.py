"""Processed frames per second: the viewer's own pipeline against 1, 2 and 4
pvapy consumers (``pystream scale``), in the same run.

Source: ``pystream sim pva --size 512x512 --rate 100 --no-counter`` (uint16).
Two steps that cost about 40 ms per frame:

- ``sleep``: ``time.sleep(0.040)``, which releases the GIL: stands for a GPU
  or a remote call; limited by the input rate, not by the cores;
- ``cpu``: numpy arithmetic calibrated here to 40 ms of one core per frame;
  limited by the cores (this machine has 2, shared).

For each step: the viewer's pipeline (a ``pystream.Session`` with the step in
its processors and a display listener counting what comes out: the viewer's
path minus the paint), then ``pystream scale --consumers N`` for N in 1, 2, 4,
each measured from the consumers' status channels over ``--seconds`` after a
warm-up. A pvapy monitor on the input counts what the source really sent.
CPU: user+system seconds of the consumer processes (or of this process for
the viewer) over the window, per wall second (1.0 = one core).

Run: ``python benchmarks/scale.py [--seconds 8] [--consumers 1,2,4] [--steps sleep,cpu]``
(about 2 minutes). JSON goes to ``benchmarks/results/`` (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIZE = 512
RATE = 100.0
STEP_MS = 40.0

PLUGINS = '''
import time
import numpy as np

class Sleep:
    """Waits ms milliseconds (releases the GIL, like a GPU or a remote call)."""
    def __init__(self, ms=40.0):
        self.seconds = ms / 1e3
    def apply(self, img, meta):
        time.sleep(self.seconds)
        return img

class Cpu:
    """numpy arithmetic on the frame, repeated: about ms milliseconds of one core."""
    def __init__(self, repeats=10):
        self.repeats = int(repeats)
    def apply(self, img, meta):
        acc = img.astype(np.float32)
        for _ in range(self.repeats):
            acc = np.sqrt(acc * 1.0001 + 1.0)
        return acc
'''


def calibrate_cpu(ms: float) -> int:
    """Repeats of ``Cpu`` that cost ``ms`` here (best of a few tries: the least loaded)."""
    img = np.random.default_rng(0).integers(0, 60000, (SIZE, SIZE)).astype(np.uint16)
    acc = img.astype(np.float32)
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        a = acc
        for _ in range(20):
            a = np.sqrt(a * 1.0001 + 1.0)
        best = min(best, (time.process_time() - t0) / 20)
    return max(1, int(round(ms / 1e3 / best)))


def env() -> dict:
    e = dict(os.environ)
    e.setdefault("EPICS_PVA_ADDR_LIST", "127.0.0.1")
    e.setdefault("EPICS_PVA_AUTO_ADDR_LIST", "NO")
    e.setdefault("EPICS_PVAS_INTF_ADDR_LIST", "127.0.0.1")
    return e


def cpu_seconds(pids) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (FileNotFoundError, IndexError):
            pass
    return total


class InputRate:
    """Counts the source's updates with a plain pvapy monitor."""

    def __init__(self, pv: str):
        import pvaccess as pva
        self.n = 0
        self.channel = pva.Channel(pv)
        self.channel.subscribe("bench", self._count)
        self.channel.startMonitor("field(uniqueId)")

    def _count(self, _pv) -> None:
        self.n += 1

    def stop(self) -> None:
        self.channel.stopMonitor()


def measure_viewer(pv: str, config: Path, seconds: float, warmup: float) -> dict:
    """The same step in the viewer's own pipeline (display worker, latest wins)."""
    from pystream.pipeline import open_pipeline
    from pystream.session import Session
    from pystream.sources.pva import PvaSource

    session = Session()
    session.processors.append(open_pipeline(config))
    shown = [0]
    session.add_display_listener(lambda d: shown.__setitem__(0, shown[0] + 1))
    session.connect(PvaSource(pv))
    inputs = InputRate(pv)
    try:
        time.sleep(warmup)
        n0, i0, c0, t0 = shown[0], inputs.n, time.process_time(), time.perf_counter()
        time.sleep(seconds)
        n1, i1, c1, t1 = shown[0], inputs.n, time.process_time(), time.perf_counter()
    finally:
        inputs.stop()
        session.close()
    wall = t1 - t0
    return {"processed_fps": (n1 - n0) / wall, "input_fps": (i1 - i0) / wall,
            "cpu_cores": (c1 - c0) / wall}


def measure_scale(pv: str, config: Path, consumers: int, seconds: float, warmup: float,
                  log_dir: Path) -> dict:
    from pystream.scale import ScaleStatus

    out = f"{pv}:out{consumers}"
    log = open(log_dir / f"scale-{consumers}.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "pystream.cli", "scale", "--input", pv,
                             "--output", out, "--proc-config", str(config),
                             "--consumers", str(consumers), "--quiet",
                             "--log-dir", str(log_dir / f"logs-{consumers}")],
                            stdout=log, stderr=subprocess.STDOUT, env=env(),
                            start_new_session=True)
    status = ScaleStatus(out, list(range(1, consumers + 1))).start()
    inputs = InputRate(pv)
    try:
        deadline = time.monotonic() + 60
        while status.stats()["scale_consumers_reporting"] < consumers or \
                status.stats()["scale_processed"] == 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"consumers did not start:\n{log.read()}")
            time.sleep(0.2)
        time.sleep(warmup)
        log.flush()
        pids = [int(p) for p in re.findall(r"pid (\d+)", Path(log.name).read_text())]
        p0, i0 = status.stats()["scale_processed"], inputs.n
        c0, t0 = cpu_seconds(pids), time.perf_counter()
        time.sleep(seconds)
        p1, i1 = status.stats()["scale_processed"], inputs.n
        c1, t1 = cpu_seconds(pids), time.perf_counter()
        errors = status.stats()["scale_step_errors"]
    finally:
        inputs.stop()
        status.stop()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()
    wall = t1 - t0
    # the status channels update once a second: counts are exact, the window edges +-1 s
    return {"processed_fps": (p1 - p0) / wall, "input_fps": (i1 - i0) / wall,
            "cpu_cores": (c1 - c0) / wall, "step_errors": errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--consumers", default="1,2,4")
    parser.add_argument("--steps", default="sleep,cpu")
    args = parser.parse_args()
    for key, value in env().items():
        os.environ.setdefault(key, value)

    tmp = Path(tempfile.mkdtemp(prefix="pystream-bench-scale-"))
    (tmp / "bench_plugins.py").write_text(PLUGINS)
    repeats = calibrate_cpu(STEP_MS)
    configs = {
        "sleep": {"name": "Sleep40ms", "module": str(tmp / "bench_plugins.py"), "class": "Sleep",
                  "kwargs": {"ms": STEP_MS}},
        "cpu": {"name": "Cpu40ms", "module": str(tmp / "bench_plugins.py"), "class": "Cpu",
                "kwargs": {"repeats": repeats}},
    }
    pv = f"bench:scale:{os.getpid()}:Image"
    sim = subprocess.Popen([sys.executable, "-m", "pystream.cli", "sim", "pva", "--pv", pv,
                            "--size", f"{SIZE}x{SIZE}", "--rate", str(RATE), "--no-counter",
                            "--log-level", "WARNING"], env=env(), start_new_session=True)
    results = {"size": SIZE, "rate": RATE, "step_ms": STEP_MS, "cpu_repeats": repeats,
               "cores": os.cpu_count(), "load_before": os.getloadavg(), "rows": []}
    try:
        for step in args.steps.split(","):
            config = tmp / f"{step}.json"
            config.write_text(json.dumps({"processors": [configs[step]]}))
            row = {"step": step, "viewer": measure_viewer(pv, config, args.seconds, args.warmup)}
            print(f"{step}: viewer {row['viewer']}", flush=True)
            for n in (int(c) for c in args.consumers.split(",")):
                row[n] = measure_scale(pv, config, n, args.seconds, args.warmup, tmp)
                print(f"{step}: {n} consumer(s) {row[n]}", flush=True)
            results["rows"].append(row)
    finally:
        os.killpg(sim.pid, signal.SIGTERM)
        sim.wait(30)
    results["load_after"] = os.getloadavg()

    ns = [int(c) for c in args.consumers.split(",")]
    head = "| step (40 ms/frame) | input fps | viewer fps | " + " | ".join(
        f"{n} consumer{'s' if n > 1 else ''} fps (cores)" for n in ns) + " | best / 1 consumer |"
    print("\n" + head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in results["rows"]:
        cells = [row["step"], f"{row['viewer']['input_fps']:.0f}",
                 f"{row['viewer']['processed_fps']:.1f} ({row['viewer']['cpu_cores']:.2f})"]
        for n in ns:
            cells.append(f"{row[n]['processed_fps']:.1f} ({row[n]['cpu_cores']:.2f})")
        one = row[ns[0]]["processed_fps"] or float("nan")
        cells.append(f"{max(row[n]['processed_fps'] for n in ns) / one:.2f}x")
        print("| " + " | ".join(cells) + " |")
    print(f"\nload average before {results['load_before']}, after {results['load_after']}")
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
