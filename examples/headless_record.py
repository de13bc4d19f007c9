"""Record with no window for a fixed time, with live counters in a JSON file.

    python examples/headless_record.py --out run3 --seconds 10
    watch cat run3/stats.json          # in another terminal: frames, drops, MB/s...

For an EPICS detector instead of the simulated one, pass ``--pv NAME``.
"""
import argparse
import json
import os

import numpy as np

import pystream


def detector(shape=(512, 512)):
    """An endless simulated detector: noise with a frame counter in the first pixel."""
    rng = np.random.default_rng(0)
    noise = rng.poisson(100, size=(16,) + shape).astype(np.uint16)
    k = 0
    while True:
        frame = noise[k % 16].copy()
        frame[0, 0] = k % 65536
        yield frame
        k += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="headless_recording", help="directory to record into")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to record")
    parser.add_argument("--fps", type=float, default=20.0, help="simulated detector rate")
    parser.add_argument("--pv", default=None, help="record this NTNDArray PV instead")
    args = parser.parse_args()

    if args.pv:
        source = pystream.PvaSource(args.pv)
    else:
        source = pystream.IterSource(detector(), fps=args.fps)
    os.makedirs(args.out, exist_ok=True)
    stats = pystream.run(source, record={"dir": args.out, "format": "tiff-stack"},
                         stats_json=os.path.join(args.out, "stats.json"), seconds=args.seconds)
    # the same dictionary as --stats-json: every counter, final
    print(json.dumps({key: stats.get(key) for key in
                      ("state", "received", "recorded", "record_drops", "record_path")}, indent=1))


if __name__ == "__main__":
    main()
