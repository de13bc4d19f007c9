"""Recording throughput next to the disk's own limit, measured in the same run.

For 1024² and 2048² uint16 frames, TIFF sequence (with one writer thread,
as before, and with the default ``TiffSequenceWriter.default_threads``; see
``--tiff-threads``) and HDF5:
- ``raw``: the same bytes written with plain ``os.write`` to one file in the
  same directory (the physical limit), and to one file per frame (what a
  sequence costs at best); raw and recorder alternate, each after
  ``os.sync()``, for ``--rounds`` rounds, and the medians are reported;
- ``recorder``: frames fed through ``Recorder.tap`` as fast as the writer
  takes them (the feeder waits while the queue is over half full, so this is
  the sustained rate, no drops), timed until the files are closed;
- ``100 Hz``: 2048² frames fed at a fixed 100 Hz (800 MB/s) for a few
  seconds with the default 1 GiB buffer (``--rate-buffer-mb``): record drops
  and peak queue fill, next to a raw file-per-frame rate measured just before.

Frames are made with ``Frame.from_array`` (no network). Writes go to a temp
directory under /tmp (``--dir`` to choose), removed at the end. Page cache
included, as a user sees it, unless ``--sync`` (then every timing ends with
``os.sync()``). Run: ``python benchmarks/record.py`` (about 3-4 minutes; the numbers on a shared VM vary
by tens of percent from run to run, hence the medians).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from pystream.frame import Frame
from pystream.record import Recorder

MB = 1e6


def make_frame_data(side: int) -> np.ndarray:
    rng = np.random.default_rng(side)
    return rng.integers(0, 65535, size=(side, side), dtype=np.uint16)


def clear(directory: str) -> None:
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))


def _raw_rate(directory: str, nbytes: int, sync: bool, write) -> float:
    """MB/s of ``write()`` (plus ``os.sync()`` if asked); the files are removed after."""
    t0 = time.perf_counter()
    write()
    if sync:
        os.sync()
    seconds = time.perf_counter() - t0
    clear(directory)
    return nbytes / seconds / MB


def raw_one_file(directory: str, array: np.ndarray, n: int, sync: bool) -> float:
    view = memoryview(array).cast("B")

    def write():
        fd = os.open(os.path.join(directory, "raw.bin"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        try:
            for _ in range(n):
                os.write(fd, view)
        finally:
            os.close(fd)
    return _raw_rate(directory, n * array.nbytes, sync, write)


def raw_file_per_frame(directory: str, array: np.ndarray, n: int, sync: bool) -> float:
    view = memoryview(array).cast("B")

    def write():
        for i in range(n):
            fd = os.open(os.path.join(directory, f"raw_{i:06d}.bin"), os.O_CREAT | os.O_WRONLY | os.O_EXCL)
            try:
                os.write(fd, view)
            finally:
                os.close(fd)
    return _raw_rate(directory, n * array.nbytes, sync, write)


def recorder_sustained(directory: str, array: np.ndarray, n: int, fmt: str, sync: bool,
                       threads=None) -> dict:
    recorder = Recorder(directory, fmt=fmt, buffer_bytes=256 << 20, writer_threads=threads).start()
    t0 = time.perf_counter()
    for uid in range(1, n + 1):
        while recorder.queue.fill > 0.5:  # benchmark back-pressure: measure the writer, not drops
            time.sleep(0.0005)
        recorder.tap(Frame.from_array(array, uid=uid, source="bench"))
    recorder.stop(drain=True)
    if sync:
        os.sync()
    seconds = time.perf_counter() - t0
    stats = recorder.stats()
    clear(directory)
    assert stats["record_state"] == "stopped", stats
    return {"mb_per_s": stats["recorded"] * array.nbytes / seconds / MB,
            "recorded": stats["recorded"], "drops": stats["record_drops"]}


def recorder_fixed_rate(directory: str, array: np.ndarray, fmt: str, rate: float,
                        seconds: float, threads=None, buffer_bytes: int = 1 << 30) -> dict:
    recorder = Recorder(directory, fmt=fmt, buffer_bytes=buffer_bytes, writer_threads=threads).start()
    n = int(rate * seconds)
    peak_fill = 0.0
    t0 = time.perf_counter()
    for uid in range(1, n + 1):
        delay = t0 + uid / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        recorder.tap(Frame.from_array(array, uid=uid, source="bench"))
        peak_fill = max(peak_fill, recorder.queue.fill)
    feed_seconds = time.perf_counter() - t0
    recorder.stop(drain=True)
    stats = recorder.stats()
    clear(directory)
    return {"sent": n, "recorded": stats["recorded"], "drops": stats["record_drops"],
            "peak_queue_fill": round(peak_fill, 3), "feed_hz": round(n / feed_seconds, 1),
            "threads": recorder.n_threads}


def cases(tiff_threads):
    """(label, fmt, writer_threads): the TIFF sequence once per thread count, then HDF5."""
    out = []
    for threads in tiff_threads:
        out.append((f"tiff x{threads if threads else 'default'}", "tiff", threads))
    out.append(("hdf5", "hdf5", None))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/tmp", help="parent of the temp directory")
    parser.add_argument("--mb", type=float, default=600, help="MB written per measurement")
    parser.add_argument("--rate-seconds", type=float, default=3.0)
    parser.add_argument("--rate-rounds", type=int, default=1,
                        help="100 Hz runs per case, the cases alternating")
    parser.add_argument("--rate-buffer-mb", type=float, default=1024,
                        help="recorder buffer for the 100 Hz runs (default 1 GiB, the app's)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per case (median)")
    parser.add_argument("--sync", action="store_true", help="end every timing with os.sync()")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--tiff-threads", default="1,0",
                        help="TIFF sequence writer threads to compare, comma separated "
                             "(0: the default, TiffSequenceWriter.default_threads)")
    args = parser.parse_args(argv)

    tiff_threads = [int(x) or None for x in args.tiff_threads.split(",") if x.strip()]
    directory = tempfile.mkdtemp(prefix="pystream-bench-record-", dir=args.dir)
    results = {"sustained": [], "fixed_rate": []}
    try:
        for side in (1024, 2048):
            array = make_frame_data(side)
            n = max(10, int(args.mb * MB / array.nbytes))
            for label, fmt, threads in cases(tiff_threads):
                # alternate raw and recorder, each from a clean page cache; report medians
                raw, per_file, rec_rates, drops = [], [], [], 0
                for _ in range(args.rounds):
                    os.sync()
                    raw.append(raw_one_file(directory, array, n, args.sync))
                    os.sync()
                    per_file.append(raw_file_per_frame(directory, array, n, args.sync))
                    os.sync()
                    rec = recorder_sustained(directory, array, n, fmt, args.sync, threads)
                    rec_rates.append(rec["mb_per_s"])
                    drops += rec["drops"]
                raw_mb, rec_mb = float(np.median(raw)), float(np.median(rec_rates))
                row = {"frame": f"{side}x{side} uint16", "format": label, "frames": n,
                       "raw_mb_s": round(raw_mb, 1),
                       "raw_file_per_frame_mb_s": round(float(np.median(per_file)), 1),
                       "recorder_mb_s": round(rec_mb, 1), "ratio": round(rec_mb / raw_mb, 3),
                       "drops": drops, "raw_all": [round(x) for x in raw],
                       "recorder_all": [round(x) for x in rec_rates]}
                results["sustained"].append(row)
                print(f"  {row}", file=sys.stderr)
        big = make_frame_data(2048)
        for label, fmt, threads in [c for _ in range(args.rate_rounds) for c in cases(tiff_threads)]:
            os.sync()
            raw_pf = raw_file_per_frame(directory, big, int(100 * args.rate_seconds), False)
            os.sync()
            row = {"format": label, "raw_file_per_frame_mb_s": round(raw_pf, 1),
                   **recorder_fixed_rate(directory, big, fmt, 100.0, args.rate_seconds, threads,
                                             int(args.rate_buffer_mb * 2 ** 20))}
            results["fixed_rate"].append(row)
            print(f"  {row}", file=sys.stderr)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    print("| frame | format | frames | raw one file MB/s | raw file/frame MB/s | recorder MB/s "
          "| recorder / raw one file | recorder / raw file/frame | drops |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results["sustained"]:
        per_frame = r["recorder_mb_s"] / max(r["raw_file_per_frame_mb_s"], 1e-9)
        print(f"| {r['frame']} | {r['format']} | {r['frames']} | {r['raw_mb_s']:.0f} "
              f"| {r['raw_file_per_frame_mb_s']:.0f} | {r['recorder_mb_s']:.0f} "
              f"| {r['ratio'] * 100:.0f}% | {per_frame * 100:.0f}% | {r['drops']} |")
    print()
    print("| 2048x2048 uint16 at 100 Hz (800 MB/s) | writer threads | sent | recorded "
          "| record drops | peak queue fill | feed Hz | raw file/frame MB/s just before |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["fixed_rate"]:
        print(f"| {r['format']} | {r['threads']} | {r['sent']} | {r['recorded']} | {r['drops']} "
              f"| {r['peak_queue_fill'] * 100:.0f}% | {r['feed_hz']} "
              f"| {r['raw_file_per_frame_mb_s']:.0f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
