"""Replay a recording: watch it again, or convert it, at its capture rate or any other.

    python examples/replay.py run1/frame_000001.h5 --show          # watch it again
    python examples/replay.py 'run2/frame_*.tiff' --fps 0 --out run2_h5   # TIFFs -> one HDF5

Plays a folder or a glob of TIFF files, a multi-page TIFF, an HDF5 file
(``--dataset`` for another dataset than pystream's ``/entry/data/data``) or
a ``.npy`` stack, one frame at a time. The same as ``pystream --replay PATH``.
"""
import argparse
import sys

import pystream


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a recording: folder, glob, .tiff, .h5 or .npy")
    parser.add_argument("--fps", type=float, default=None,
                        help="frames per second (default: the recorded rate; 0 = at once)")
    parser.add_argument("--dataset", default=None, help="HDF5 dataset (default: /entry/data/data)")
    parser.add_argument("--loop", action="store_true", help="start again at the end")
    parser.add_argument("--out", default="replay_recording", help="directory to record into")
    parser.add_argument("--format", default="hdf5", choices=("tiff", "tiff-stack", "hdf5"))
    parser.add_argument("--show", action="store_true", help="open the viewer instead of recording")
    args = parser.parse_args()

    try:
        source = pystream.ReplaySource(args.path, fps=args.fps, loop=args.loop,
                                       dataset=args.dataset)
    except ValueError as exc:       # not a recording, missing dataset, empty folder...
        sys.exit(f"replay.py: {exc}")
    if args.show:
        pystream.show(source)
        return
    # recorded uids and timestamps are kept, so the copy carries the originals
    stats = pystream.run(source, record={"dir": args.out, "format": args.format})
    print(f"{stats['recorded']} of {stats['replay_frames']} frames written to {args.out}/ "
          f"({args.format}); state {stats['state']}")


if __name__ == "__main__":
    main()
