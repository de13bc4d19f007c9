"""Frames per second through ``PushSource``, next to a bare loop that only copies the arrays.

For 512² and 2048² uint16 frames, each case in its own process (so peak RSS
is the case's own), in the same run:
- ``copy``: the baseline, a bare loop that copies each frame (what ``push``
  must do at least, since the caller may reuse its buffer) and drops the copy;
- ``copy+keep``: the same, keeping every copy, as a queue must while the
  consumer is behind: each copy then lands in fresh memory, and on a VM
  touching fresh pages can cost far more than the copy itself;
- ``write``: every frame written with ``os.write`` to one file in the same
  directory: the disk's own rate at that moment (the recordings' ceiling);
- ``push``: ``PushSource.push`` into a sink that takes every frame and
  drops it: the source's own cost (copy, queue, delivery thread);
- ``push+tiff``, ``push+hdf5``: ``PushSource`` into a headless recording
  (a TIFF sequence, one HDF5 file; ``pystream.run`` if present, else
  ``pystream.record.run_recording``), timed from the first push until the
  files are closed. The feeder pushes as fast as it can; the frames
  (under 1 GiB in all, the default budget) wait in memory until the disk
  has taken them, so nothing is dropped and the rate is the writer's
  (``record.py`` compares that with a raw write).

Reported: frames/s, MB/s, the mean time a ``push`` call takes, CPU (cores
used = process CPU time / wall time), peak RSS. Writes go to a temp
directory under /tmp (``--dir``), removed at the end; page cache included.
Each case runs ``--rounds`` times, interleaved, and the medians are shown.
Run: ``python benchmarks/push.py`` (about a minute).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

MB = 1e6
CASES = ("copy", "copy+keep", "write", "push", "push+tiff", "push+hdf5")


_CPU_AT_T0 = 0.0


def _t0() -> float:
    """Start of a case's timed window: wall time returned, CPU time kept for ``child``."""
    global _CPU_AT_T0
    _CPU_AT_T0 = time.process_time()
    return time.perf_counter()


def frames_for(side: int, n: int):
    rng = np.random.default_rng(side)
    return [rng.integers(0, 65535, size=(side, side), dtype=np.uint16) for _ in range(4)], n


def case_copy(side: int, n: int, directory: str, keep: bool = False) -> dict:
    arrays, n = frames_for(side, n)
    kept = []
    t0 = _t0()
    for i in range(n):
        copy = arrays[i % 4].copy()
        if keep:
            kept.append(copy)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "frames": n, "push_us": None, "drops": 0}


def case_write(side: int, n: int, directory: str) -> dict:
    arrays, n = frames_for(side, n)
    views = [memoryview(a).cast("B") for a in arrays]
    t0 = _t0()
    fd = os.open(os.path.join(directory, "raw.bin"), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    try:
        for i in range(n):
            os.write(fd, views[i % 4])
    finally:
        os.close(fd)
    return {"seconds": time.perf_counter() - t0, "frames": n, "push_us": None, "drops": 0}


class DropSink:
    """Takes every frame and keeps none."""

    def __init__(self):
        self.count = 0

    def on_frame(self, frame):
        self.count += 1

    def on_state(self, state, message=""):
        pass

    def on_reject(self, reason, message=""):
        pass


def feed(source, arrays, n, push_times: list) -> None:
    with source:
        for i in range(n):
            t = time.perf_counter()
            source.push(arrays[i % 4])
            push_times.append(time.perf_counter() - t)


def case_push(side: int, n: int, directory: str) -> dict:
    from pystream import PushSource

    arrays, n = frames_for(side, n)
    source = PushSource()
    sink = DropSink()
    push_times: list = []
    t0 = _t0()
    source.start(sink)
    feed(source, arrays, n, push_times)
    seconds = time.perf_counter() - t0
    stats = source.stats()
    assert sink.count == stats["push_delivered"], (sink.count, stats)
    return {"seconds": seconds, "frames": sink.count, "push_us": 1e6 * float(np.mean(push_times)),
            "drops": stats["push_drops"]}


def case_push_record(side: int, n: int, directory: str, fmt: str) -> dict:
    import pystream
    from pystream import PushSource

    arrays, n = frames_for(side, n)
    source = PushSource()
    push_times: list = []
    feeder = threading.Thread(target=feed, args=(source, arrays, n, push_times))
    t0 = _t0()
    feeder.start()
    if hasattr(pystream, "run"):
        stats = pystream.run(source, record={"dir": directory, "format": fmt})
        recorded, drops = stats["recorded"], stats["record_drops"] + stats["push_drops"]
    else:
        from pystream.record import run_recording
        summary = run_recording(source, directory, fmt=fmt, progress=False,
                                stream=io.StringIO())
        recorded, drops = summary.frames, summary.drops + source.stats()["push_drops"]
    seconds = time.perf_counter() - t0
    feeder.join()
    return {"seconds": seconds, "frames": recorded, "push_us": 1e6 * float(np.mean(push_times)),
            "drops": drops}


def child(case: str, side: int, n: int, directory: str) -> None:
    if case.startswith("push+"):
        result = case_push_record(side, n, directory, case[5:])
    else:
        result = {"copy": case_copy, "copy+keep": lambda *a: case_copy(*a, keep=True),
                  "write": case_write, "push": case_push}[case](side, n, directory)
    cpu = time.process_time() - _CPU_AT_T0  # the timed window only, not frame generation or imports
    result["cores"] = cpu / result["seconds"]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _median(values):
    return None if values[0] is None else float(np.median(values))


def run_child(case: str, side: int, n: int, parent: str) -> dict:
    """One case in a fresh process (its own peak RSS), in a temp directory removed after."""
    directory = tempfile.mkdtemp(prefix="pystream-bench-push-", dir=parent)
    try:
        out = subprocess.run([sys.executable, __file__, "--child", case, str(side), str(n),
                              "--dir", directory], capture_output=True, text=True,
                             check=True).stdout
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/tmp", help="parent of the temp directory")
    parser.add_argument("--frames-512", type=int, default=1500,
                        help="frames at 512² (default 1500)")
    parser.add_argument("--frames-2048", type=int, default=100,
                        help="frames at 2048² (default 100)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; medians are shown (default 3)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "SIDE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        case, side, n = args.child
        child(case, int(side), int(n), args.dir)
        return 0

    sizes = ((512, args.frames_512), (2048, args.frames_2048))
    runs = {(side, case): [] for side, _ in sizes for case in CASES}
    for _ in range(args.rounds):  # cases interleaved, so a busy moment hits them all alike
        for side, n in sizes:
            for case in CASES:
                runs[side, case].append(run_child(case, side, n, args.dir))
    results = []
    print(f"medians of {args.rounds} rounds")
    print(f"{'size':>6} {'case':>10} {'frames/s':>9} {'MB/s':>7} {'push µs':>8} {'cores':>6} "
          f"{'peak RSS MB':>11} {'drops':>6}")
    for (side, case), rounds in runs.items():
        r = {key: _median([x[key] for x in rounds]) for key in rounds[0]}
        r["fps"] = _median([x["frames"] / x["seconds"] for x in rounds])
        r.update(size=side, case=case, mb_per_s=r["fps"] * side * side * 2 / MB,
                 drops=max(x["drops"] for x in rounds))
        results.append(r)
        push_us = f"{r['push_us']:.0f}" if r["push_us"] is not None else "-"
        print(f"{side:>5}² {case:>10} {r['fps']:9.0f} {r['mb_per_s']:7.0f} {push_us:>8} "
              f"{r['cores']:6.2f} {r['peak_rss_mb']:11.0f} {r['drops']:6d}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
