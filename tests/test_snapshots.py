"""Periodic snapshots: the image as displayed, on the writer's own thread, counted."""
import time

import numpy as np
import pytest
import tifffile
from PIL import Image

from pystream.display import DisplayFrame
from pystream.imaging import Orientation, render_displayed
from pystream.snapshots import SnapshotWriter

from .test_cli import run_until


def shown(raw, processed=None, uid=1):
    arr = raw if processed is None else processed
    return DisplayFrame(image=arr, levels=(0.0, 1.0), auto_levels=True, bin=1, uid=uid,
                        t_source=None, raw=arr, meta={"raw_frame": raw})


def test_a_snapshot_is_the_frame_as_shown_and_the_raw_frame(tmp_path):
    raw = np.arange(12 * 20, dtype=np.uint16).reshape(12, 20)
    processed = raw.astype(np.float32) * 2  # what the pipeline made of it: what is shown
    lut = np.stack([np.arange(256), 255 - np.arange(256), np.zeros(256)], 1).astype(np.uint8)
    turned = Orientation(quarter_turns=1, flip_h=True)
    writer = SnapshotWriter(str(tmp_path / "snaps"), 60, raw=True).start()
    assert writer.due()
    writer.offer(shown(raw, processed), (10.0, 400.0), lut, turned)
    assert not writer.due()  # the next one is 60 s away
    writer.stop()
    assert writer.stats()["snapshots_written"] == 1 and writer.stats()["snapshot_errors"] == 0
    png = sorted((tmp_path / "snaps").glob("snapshot_*.png"))
    assert [str(p) for p in png] == [writer.last_path]
    picture = np.asarray(Image.open(png[0]).convert("RGB"))
    assert picture.shape == (20, 12, 3)  # turned a quarter
    np.testing.assert_array_equal(picture, render_displayed(processed, (10.0, 400.0), lut, turned))
    tiff = png[0].with_suffix(".tiff")
    np.testing.assert_array_equal(tifffile.imread(tiff), raw)  # as received, its own dtype


def test_snapshots_never_overwrite_and_failures_are_counted(tmp_path):
    writer = SnapshotWriter(str(tmp_path), 0.001).start()
    for uid in range(1, 4):
        writer.offer(shown(np.full((4, 4), uid, np.uint8), uid=uid), (0, 3), None)
        while not writer.due():  # wait until the writer took it and the interval passed
            time.sleep(0.002)
    writer.stop()
    assert writer.written == 3 and len(list(tmp_path.glob("snapshot_*.png"))) == 3

    blocked = tmp_path / "a_file"
    blocked.write_text("not a directory")
    writer = SnapshotWriter(str(blocked), 1).start()
    writer.offer(shown(np.zeros((4, 4), np.uint8)), (0, 1), None)
    writer.stop()
    assert writer.stats()["snapshot_errors"] == 1 and writer.written == 0
    assert "a_file" in writer.last_error


def test_the_viewer_writes_snapshots_offscreen(home, pv_name):
    snaps = home / "snaps"
    stats = home / "stats.json"
    code, err, data = run_until(
        ["demo", "--offscreen", "--size", "64x48", "--pv", pv_name, "--colormap", "viridis",
         "--snapshot-interval", "0.2", "--snapshot-dir", str(snaps), "--snapshot-raw"],
        home, stats, lambda d: d["snapshots_written"] >= 2)
    assert code == 0, err
    png = sorted(snaps.glob("snapshot_*.png"))
    assert data["snapshots_written"] == len(png) >= 2 and data["snapshot_errors"] == 0
    picture = np.asarray(Image.open(png[-1]).convert("RGB"))
    assert picture.shape == (48, 64, 3)
    assert (picture[..., 0] != picture[..., 1]).any()  # viridis, not gray
    frame = tifffile.imread(png[-1].with_suffix(".tiff"))
    assert frame.shape == (48, 64) and frame.dtype == np.uint16


def test_no_snapshot_option_no_writer():
    from pystream.cli import build_viewer_parser
    args = build_viewer_parser().parse_args([])
    assert args.snapshot_interval == 0.0 and args.snapshot_dir == "snapshots" and not args.snapshot_raw
    with pytest.raises(ValueError):
        SnapshotWriter("x", 0)
