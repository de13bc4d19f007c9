"""Frames lost when the consumer is briefly starved, by pvAccess monitor queue depth.

A publisher sends 2048² uint16 frames at a fixed rate while ``--busy`` processes
spin (``while True: pass``) on the machine's cores, so the consumer's receive
thread is now and then held past a frame period, as on a loaded beamline
workstation. For each queue depth, the bare pvapy monitor and/or pystream
watch a fresh publisher for ``--seconds`` and the uniqueId gaps are counted.

    python benchmarks/pva_stall.py [--queues 2,4] [--consumers bare,pystream]
                                   [--busy 2] [--seconds 30] [--rate 100] [--rounds 2]

Prints one line per run and a JSON summary (uid gaps per run, by consumer and
queue). The bare monitor is ``bare_monitor.py`` (``pva_display.py``'s
baseline) asking for the queue with ``--request "record[queueSize=N]field()"``,
pystream with ``--pva-queue N``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pva_display import ENV, HERE  # loopback-only EPICS settings, this folder


def run_once(consumer: str, queue: int, args) -> dict:
    name = f"pystream:stall:{os.getpid()}:{time.time_ns()}"
    size = f"{args.size}x{args.size}"
    pub = subprocess.Popen([sys.executable, "-m", "pystream.cli", "sim", "pva", "--pv", name, "--size", size,
                            "--rate", str(args.rate), "--dtype", "uint16", "--no-counter",
                            "--log-level", "WARNING"], env=ENV)
    busy = []
    try:
        time.sleep(3)  # the publisher's server is up
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        if consumer == "bare":  # pva_display.py's baseline, with the queue in its pvRequest
            out = subprocess.run([sys.executable, os.path.join(HERE, "bare_monitor.py"), name,
                                  "--request", f"record[queueSize={queue}]field()",
                                  "--seconds", str(args.seconds)], env=ENV, capture_output=True,
                                 text=True, timeout=args.seconds + 60).stdout
            bare = json.loads(out)
            received, gaps = bare["received"], bare["uid_gaps"]
        else:
            with tempfile.TemporaryDirectory() as home:
                stats = Path(home) / "stats.json"
                subprocess.run([sys.executable, "-m", "pystream.cli", "--pv", name, "--offscreen",
                                "--pva-queue", str(queue), "--stats-json", str(stats),
                                "--exit-after", str(args.seconds + 3), "--log-level", "WARNING"],
                               env=dict(ENV, HOME=home), timeout=args.seconds + 60,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                final = json.loads(stats.read_text())
                # the whole run (3 s of start-up included), not a window
                received, gaps = final["received"], final["dropped_upstream"]
    finally:
        for p in busy:
            p.kill()
        pub.terminate()
        try:
            pub.wait(10)
        except subprocess.TimeoutExpired:
            pub.kill()
    return {"consumer": consumer, "queue": queue, "received": received, "uid_gaps": gaps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", default="2,4", help="monitor queue depths to compare (default: 2,4)")
    parser.add_argument("--consumers", default="bare,pystream", help="bare, pystream or both")
    parser.add_argument("--busy", type=int, default=2, help="spinning processes (default: 2)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=100.0, help="publisher rate in Hz (default: 100)")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    queues = [int(q) for q in args.queues.split(",")]
    consumers = args.consumers.split(",")
    runs = []
    for _ in range(args.rounds):  # alternate, so a slow spell of the machine hits every setting
        for consumer in consumers:
            for queue in queues:
                row = run_once(consumer, queue, args)
                runs.append(row)
                print(f"{consumer:9s} queue {queue}: received {row['received']}, uid gaps {row['uid_gaps']}",
                      flush=True)
    summary = {f"{c} queue {q}": [r["uid_gaps"] for r in runs if r["consumer"] == c and r["queue"] == q]
               for c in consumers for q in queues}
    print(json.dumps({"args": vars(args), "uid_gaps_per_run": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
