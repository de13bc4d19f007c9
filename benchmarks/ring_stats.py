"""RingBuffer and RollingStats against a per-sample ``deque`` implementation like seed 003's.

    python benchmarks/ring_stats.py [--seconds 2] [--chunks 100,1000,5000] [--capacity 5000]
                                    [--windows 1000,100000]

In one run, alternating, for each chunk size:

- ring: ``write(chunk)`` then ``read(len(chunk))`` of a buffer of ``--capacity``
  samples (pystream: consumes; the baseline, like the seed, copies the deque
  to a list and returns its first n, which it never consumes);
- rolling: ``update(chunk)`` then ``get_statistics()`` over a window of
  each of ``--windows`` samples (the baseline, like the seed, loops per sample with a
  running sum and sum of squares, and min/max that are cumulative, not windowed).

Each measurement runs for ``--seconds`` of wall time; it reports samples per
second and CPU seconds per million samples (this process, ``time.process_time``),
then the pystream / baseline ratio. Prints a markdown table and JSON lines.
Benchmarks here measure; they never pass or fail on time.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import deque

import numpy as np

from pystream.stats import RingBuffer, RollingStats


class DequeBuffer:
    """Seed 003's RealtimeBuffer algorithm: a deque of Python floats, a loop per sample."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._buffer: deque = deque(maxlen=capacity)
        self._lock = threading.RLock()
        self._not_empty = threading.Condition(self._lock)
        self._total = 0
        self._overflow = 0

    def write(self, data: np.ndarray) -> int:
        with self._not_empty:
            initial = len(self._buffer)
            for sample in data.flat:
                self._buffer.append(float(sample))
            if len(self._buffer) == self.capacity:
                written = self.capacity - initial
                if written < len(data):
                    self._overflow += len(data) - written
            else:
                written = len(data)
            self._total += len(data)
            self._not_empty.notify_all()
            return written

    def read(self, n: int) -> np.ndarray:
        with self._not_empty:
            n_read = min(n, len(self._buffer))
            return np.array(list(self._buffer)[:n_read], dtype=np.float64)


class DequeStats:
    """Seed 003's RealtimeAnalyzer algorithm: per-sample running sums, cumulative min/max."""

    def __init__(self, window: int):
        self.window = window
        self._samples: deque = deque(maxlen=window)
        self._sum = self._sum_sq = 0.0
        self._min, self._max = float("inf"), float("-inf")

    def update(self, data: np.ndarray) -> None:
        for sample in data.flat:
            x = float(sample)
            if len(self._samples) == self.window:
                old = self._samples[0]
                self._sum -= old
                self._sum_sq -= old ** 2
            self._samples.append(x)
            self._sum += x
            self._sum_sq += x ** 2
            self._min = min(self._min, x)
            self._max = max(self._max, x)

    def get_statistics(self) -> dict:
        n = len(self._samples)
        mean = self._sum / n
        std = np.sqrt(max(0.0, self._sum_sq / n - mean ** 2))
        return {"mean": mean, "std": std, "min": self._min, "max": self._max,
                "peak_to_peak": self._max - self._min, "n_samples": n}


def run(step, chunk: np.ndarray, seconds: float) -> dict:
    """Call ``step(chunk)`` for ``seconds``; samples/s and CPU s per 1e6 samples."""
    step(chunk)  # warm up
    n = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    while True:
        step(chunk)
        n += chunk.size
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    cpu = time.process_time() - cpu0
    return {"samples_per_s": n / elapsed, "cpu_s_per_1e6": 1e6 * cpu / n}


def ring_step(buf):
    def step(chunk):
        buf.write(chunk)
        buf.read(chunk.size) if isinstance(buf, DequeBuffer) else buf.read(chunk.size, timeout=0)
    return step


def stats_step(rs):
    def step(chunk):
        rs.update(chunk)
        rs.get_statistics()
    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement (default: 2)")
    parser.add_argument("--chunks", default="100,1000,5000", help="chunk sizes (default: 100,1000,5000)")
    parser.add_argument("--capacity", type=int, default=5000, help="RingBuffer capacity (default: 5000)")
    parser.add_argument("--windows", default="1000,100000",
                        help="RollingStats windows (default: 1000,100000: recomputed raw, and merged "
                             "from blocks)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for size in (int(c) for c in args.chunks.split(",")):
        chunk = 1e9 + rng.normal(0.0, 3.0, size)
        if size <= args.capacity:
            base = run(ring_step(DequeBuffer(args.capacity)), chunk, args.seconds)
            ours = run(ring_step(RingBuffer(args.capacity)), chunk, args.seconds)
            rows.append(("RingBuffer write + read", size, base, ours))
        for window in (int(w) for w in args.windows.split(",")):
            base = run(stats_step(DequeStats(window)), chunk, args.seconds)
            ours = run(stats_step(RollingStats(window)), chunk, args.seconds)
            rows.append((f"RollingStats update + get_statistics, window {window}", size, base, ours))
    print(f"\nmachine load (1/5/15 min): {os.getloadavg()}, {os.cpu_count()} CPUs\n")
    print("| operation | chunk | deque (seed 003) samples/s | pystream samples/s | ratio "
          "| CPU s per 1e6 samples: deque / pystream |")
    print("|---|---|---|---|---|---|")
    for name, size, base, ours in rows:
        ratio = ours["samples_per_s"] / base["samples_per_s"]
        print(f"| {name} | {size} | {base['samples_per_s']:,.0f} | {ours['samples_per_s']:,.0f} "
              f"| {ratio:,.0f}x | {base['cpu_s_per_1e6']:.3f} / {ours['cpu_s_per_1e6']:.4f} |")
    for name, size, base, ours in rows:
        print(json.dumps({"operation": name, "chunk": size, "deque": base, "pystream": ours,
                          "ratio": ours["samples_per_s"] / base["samples_per_s"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
