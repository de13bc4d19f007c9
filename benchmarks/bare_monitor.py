"""The baseline for ``pva_display.py``: the least a pvapy client can do per frame.

Subscribes with ``pvaccess.Channel`` + ``startMonitor``; the callback reads
``uniqueId``, the dimensions and the producer's timestamp, converts the value
to numpy (``pv.getUnion('value')['ushortValue']`` reshaped, a zero-copy view),
counts, and tracks uniqueId gaps. Nothing is displayed.

    python benchmarks/bare_monitor.py PV --seconds 10 --warmup 2 --out result.json

The window starts ``--warmup`` seconds after the first frame; the JSON holds
frames received in the window, fps, uid gaps, receive latency (producer
timestamp to callback) and the CPU time this process used in the window.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time

import numpy as np


class BareMonitor:
    def __init__(self):
        self.count = 0
        self.gaps = 0
        self.last_uid = None
        self.first_frame = threading.Event()
        self.latency = []  # seconds, producer timestamp -> callback
        self.record_latency = False
        self.shape = None

    def on_update(self, pv) -> None:
        t = time.time()
        uid = pv["uniqueId"]
        dims = pv["dimension"]
        image = pv.getUnion("value")["ushortValue"].reshape(dims[1]["size"], dims[0]["size"])
        self.shape = image.shape
        last, self.last_uid = self.last_uid, uid
        if last is not None and uid > last + 1:
            self.gaps += uid - last - 1
        self.count += 1
        if self.record_latency:
            ts = pv["dataTimeStamp"]
            self.latency.append(t - (ts["secondsPastEpoch"] + ts["nanoseconds"] * 1e-9))
        self.first_frame.set()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pv")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connect-timeout", type=float, default=15.0)
    parser.add_argument("--out", help="write the result here as JSON (default: stdout)")
    parser.add_argument("--request", default="",
                        help="pvRequest for startMonitor, e.g. \"record[queueSize=4]field()\" "
                             "(default: empty, the whole structure with pvAccess's defaults)")
    args = parser.parse_args(argv)

    import pvaccess as pva

    mon = BareMonitor()
    channel = pva.Channel(args.pv, pva.PVA)
    channel.subscribe("bare", mon.on_update)
    channel.startMonitor(args.request)
    if not mon.first_frame.wait(args.connect_timeout):
        print(f"no frame from {args.pv} within {args.connect_timeout} s", file=sys.stderr)
        return 2
    time.sleep(args.warmup)
    mon.record_latency = True
    t0, c0, g0, u0, cpu0 = time.monotonic(), mon.count, mon.gaps, mon.last_uid, time.process_time()
    time.sleep(args.seconds)
    t1, c1, g1, u1, cpu1 = time.monotonic(), mon.count, mon.gaps, mon.last_uid, time.process_time()
    channel.stopMonitor()
    channel.unsubscribe("bare")
    wall = t1 - t0
    lat = np.array(mon.latency[:]) * 1e3 if mon.latency else None
    result = {
        "window_s": round(wall, 3),
        "received": c1 - c0,
        "recv_fps": round((c1 - c0) / wall, 2),
        "uid_gaps": g1 - g0,
        "published_in_window": (u1 - u0) if (u0 is not None and u1 is not None) else None,
        "publisher_fps": round((u1 - u0) / wall, 2) if (u0 and u1) else None,
        "cpu_pct": round(100 * (cpu1 - cpu0) / wall, 1),
        "recv_latency_ms_p50": round(float(np.percentile(lat, 50)), 3) if lat is not None else None,
        "recv_latency_ms_p95": round(float(np.percentile(lat, 95)), 3) if lat is not None else None,
        "shape": list(mon.shape) if mon.shape else None,
        "maxrss_mb_self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
