"""The scripts in examples/ run as a user runs them (a real process) and write what they say."""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import tifffile

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SRC = Path(__file__).resolve().parents[1] / "src"


def run_example(name, *args, cwd, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(SRC), QT_QPA_PLATFORM="offscreen", HOME=str(cwd))
    return subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_push_example_records_every_pushed_frame(tmp_path):
    proc = run_example("push.py", "--out", "run1", "--chunks", "8", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "40 frames received, 40 recorded" in proc.stdout and "state finished" in proc.stdout
    with h5py.File(tmp_path / "run1" / "frame_000001.h5", "r") as f:
        assert f["/entry/data/data"].shape == (40, 256, 320)
        np.testing.assert_array_equal(f["/entry/data/uid"][()], np.arange(1, 41))


def test_pull_example_records_the_whole_iterator(tmp_path):
    proc = run_example("pull.py", "--out", "run2", "--frames", "30", "--fps", "0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    files = sorted((tmp_path / "run2").glob("frame_*.tiff"))
    assert len(files) == 30 and "state finished" in proc.stdout
    first = tifffile.imread(files[0])
    assert first.dtype == np.float32 and first.shape == (128, 128)
    assert json.loads(tifffile.TiffFile(files[-1]).pages[0].description)["uid"] == 30


def test_replay_example_converts_a_recording_keeping_uids(tmp_path):
    stack = np.arange(6 * 10 * 12, dtype=np.uint16).reshape(6, 10, 12)
    tifffile.imwrite(tmp_path / "stack.tiff", stack)     # a multi-page TIFF from elsewhere
    proc = run_example("replay.py", "stack.tiff", "--fps", "0", "--out", "conv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "6 of 6 frames written" in proc.stdout
    with h5py.File(tmp_path / "conv" / "frame_000001.h5", "r") as f:
        np.testing.assert_array_equal(f["/entry/data/data"][()], stack)
        np.testing.assert_array_equal(f["/entry/data/uid"][()], np.arange(1, 7))
    bad = run_example("replay.py", "no_such_dir/", cwd=tmp_path)
    assert bad.returncode != 0 and "cannot replay no_such_dir/: no such file" in bad.stderr


def test_headless_record_example_writes_a_stack_and_its_counters(tmp_path):
    proc = run_example("headless_record.py", "--out", "run3", "--seconds", "2", "--fps", "20",
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    stats = json.loads((tmp_path / "run3" / "stats.json").read_text())
    with tifffile.TiffFile(printed["record_path"]) as tif:
        pages = len(tif.pages)
    assert pages > 0 and pages == printed["recorded"] == stats["recorded"]
    assert printed["record_drops"] == 0


SMALLEST_PROGRAM = '''
import threading, numpy as np, pystream
src = pystream.PushSource()
def acquire():
    with src:
        for i in range(40):
            src.push(np.full((5, 128, 96), i, np.uint16))   # (N, H, W): 5 frames
threading.Thread(target=acquire).start()
stats = pystream.run(src, record={"dir": "out", "format": "hdf5"}, seconds=60)
'''


def test_the_readme_smallest_program_works_as_written(tmp_path):
    assert SMALLEST_PROGRAM.strip() in (EXAMPLES.parent / "README.md").read_text()
    (tmp_path / "smallest.py").write_text(SMALLEST_PROGRAM + "print(stats['recorded'])\n")
    env = dict(os.environ, PYTHONPATH=str(SRC), HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "smallest.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "200"
    (path,) = (tmp_path / "out").glob("*.h5")
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["/entry/data/uid"][()], np.arange(1, 201))
        np.testing.assert_array_equal(f["/entry/data/data"][:, 5, 5], np.repeat(np.arange(40), 5))
