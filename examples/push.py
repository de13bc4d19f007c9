"""Push mode: your acquisition code hands frames to pystream as they arrive.

    python examples/push.py --out run1            # record to run1/ (HDF5), no window
    python examples/push.py --show                # watch it in the viewer instead

Replace ``fake_camera`` with your camera SDK's callback or read loop.
"""
import argparse
import threading
import time

import numpy as np

import pystream


def fake_camera(n_chunks, frames_per_chunk=5, shape=(256, 320), fps=100.0):
    """Stands in for a detector: yields chunks of (N, H, W) uint16 frames at ``fps``."""
    y, x = np.mgrid[:shape[0], :shape[1]]
    for i in range(n_chunks):
        time.sleep(frames_per_chunk / fps)  # a real camera makes you wait for the exposure
        spot = np.exp(-((x - 40 - 2 * i) ** 2 + (y - shape[0] / 2) ** 2) / 200.0)
        frame = (1000 + 3000 * spot).astype(np.uint16)
        yield np.repeat(frame[None], frames_per_chunk, axis=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="push_recording", help="directory to record into")
    parser.add_argument("--chunks", type=int, default=40, help="chunks of 5 frames to acquire")
    parser.add_argument("--show", action="store_true", help="open the viewer instead of recording")
    args = parser.parse_args()

    source = pystream.PushSource()

    def acquire():
        # leaving the `with` block ends the stream (it waits until pystream has
        # taken every frame pushed); push() itself never blocks the camera
        with source:
            for chunk in fake_camera(args.chunks):
                source.push(chunk)          # (N, H, W): N frames, uids 1, 2, 3...

    threading.Thread(target=acquire, daemon=True).start()

    if args.show:
        pystream.show(source)               # until the window is closed
        return
    # no window: record every frame until the acquisition ends (at most 60 s)
    stats = pystream.run(source, record={"dir": args.out, "format": "hdf5"}, seconds=60)
    print(f"{stats['received']} frames received, {stats['recorded']} recorded in {args.out}/, "
          f"{stats['push_drops']} dropped at push; state {stats['state']}")


if __name__ == "__main__":
    main()
