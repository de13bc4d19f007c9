"""Pull mode: pystream takes frames from your iterator, paced to a frame rate.

    python examples/pull.py --out run2            # record to run2/ (TIFF files), no window
    python examples/pull.py --show --fps 30       # watch it in the viewer instead

Good for frames you already have (files, a simulation, a processed array):
pystream keeps the rate steady (frame k at k / fps) and stops at the end.
"""
import argparse

import numpy as np

import pystream


def simulation(n_frames, shape=(128, 128)):
    """Any generator (or list) of frames works: here a ripple that spreads out."""
    y, x = np.mgrid[:shape[0], :shape[1]]
    r = np.hypot(x - shape[1] / 2, y - shape[0] / 2)
    for t in range(n_frames):
        yield np.cos(r / 4.0 - t / 3.0).astype(np.float32)   # (H, W): one frame


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="pull_recording", help="directory to record into")
    parser.add_argument("--frames", type=int, default=100, help="frames to play")
    parser.add_argument("--fps", type=float, default=50.0, help="frames per second (0 = at once)")
    parser.add_argument("--show", action="store_true", help="open the viewer instead of recording")
    args = parser.parse_args()

    source = pystream.IterSource(simulation(args.frames), fps=args.fps)
    if args.show:
        pystream.show(source)
        return
    stats = pystream.run(source, record={"dir": args.out, "format": "tiff"})
    print(f"{stats['recorded']} frames recorded in {args.out}/ at {args.fps:g} fps; "
          f"state {stats['state']}")


if __name__ == "__main__":
    main()
