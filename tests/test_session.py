"""The engine session: one wiring for every consumer, outliving connections."""
import threading
import time

import numpy as np
import pytest

import pystream

from .session_helpers import ListSource, frames, wait_for


def test_frames_iterates_display_ready_frames_until_the_source_ends():
    with pystream.Session() as session:
        session.connect(ListSource(frames(30), rate=100))
        seen = []
        for display in session.frames(timeout=30):
            seen.append((display.uid, int(display.raw[0, 0])))
            assert display.image.shape == (16, 24)
    assert seen, "no display frame"
    assert all(uid == value + 1 for uid, value in seen)  # each frame shows its own pixels
    assert [uid for uid, _ in seen] == sorted(uid for uid, _ in seen)
    stats = session.stats()
    assert stats["received"] == 30
    # latest wins: what was not shown was skipped, never decoded for display
    assert stats["decoded"] == len(seen) and stats["skipped"] == 30 - len(seen)


def test_nothing_is_decoded_while_nobody_looks():
    with pystream.Session() as session:
        session.connect(ListSource(frames(20)))
        assert session.wait_ended(30)
        stats = session.stats()
    assert stats["received"] == 20 and stats["decoded"] == 0 and stats["state"] == "finished"


def test_every_frame_is_lossless_and_in_order():
    with pystream.Session() as session:
        every = session.every_frame()  # listening from here: call it before connect
        session.connect(ListSource(frames(200)))
        got = []
        for frame in every:
            got.append(frame.uid)
            time.sleep(0.001)  # a consumer slower than the source still gets every frame
    assert got == list(range(1, 201))


def test_a_new_source_keeps_taps_processors_listeners_and_restarts_the_counts():
    tapped, shown = [], []
    with pystream.Session() as session:
        session.add_tap(lambda f: tapped.append((f.source, f.uid)))
        session.processors.append(lambda arr, meta: (arr * 2, meta))
        session.add_display_listener(shown.append)
        session.connect(ListSource(frames(5), name="first"))
        assert session.wait_ended(30)
        assert wait_for(lambda: shown)
        session.connect(ListSource(frames(3, start=100), name="second", first_uid=1000))
        assert session.wait_ended(30)
        assert wait_for(lambda: any(d.frame.source == "second" for d in shown))
        stats = session.stats()
    assert [t for t in tapped if t[0] == "first"] == [("first", i) for i in range(1, 6)]
    assert [t for t in tapped if t[0] == "second"] == [("second", 1000 + i) for i in range(3)]
    last = [d for d in shown if d.frame.source == "second"][-1]
    assert int(last.raw[0, 0]) == 2 * (100 + last.uid - 1000)  # the processor still runs
    # the counts describe the stream being watched; a new uid sequence is no gap
    assert stats["received"] == 3 and stats["dropped_upstream"] == 0 and stats["source"] == "list://second"


def test_pause_stops_display_preparation_but_not_reception():
    shown = []
    gate = threading.Event()
    with pystream.Session() as session:
        session.add_display_listener(shown.append)
        session.pause()
        session.connect(ListSource(frames(10), gate=gate))
        gate.set()
        assert session.wait_ended(30)
        assert session.stats()["received"] == 10
        assert session.stats()["paused"] is True
        assert shown == [] and session.stats()["decoded"] == 0
        session.resume()
        assert wait_for(lambda: shown)  # the newest frame, once resumed
    assert shown[-1].uid == 10


def test_a_broken_display_listener_does_not_starve_the_others():
    good = []

    def broken(display):
        raise RuntimeError("consumer bug")

    with pystream.Session() as session:
        session.add_display_listener(broken)
        session.add_display_listener(good.append)
        session.connect(ListSource(frames(3)))
        assert wait_for(lambda: good)


def test_run_records_everything_a_finite_source_gives(tmp_path):
    import h5py

    stats = pystream.run(ListSource(frames(25, shape=(8, 12))),
                         record={"dir": str(tmp_path), "format": "hdf5"}, seconds=60,
                         stats_json=str(tmp_path / "stats.json"))
    assert stats["received"] == 25 and stats["recorded"] == 25 and stats["record_drops"] == 0
    (path,) = tmp_path.glob("*.h5")
    with h5py.File(path, "r") as f:
        data = f["/entry/data/data"][...]
        assert list(f["/entry/data/uid"][...]) == list(range(1, 26))
    np.testing.assert_array_equal(data[:, 0, 0], np.arange(25))
    assert (tmp_path / "stats.json").exists()


def test_run_stops_after_seconds_and_rejects_bad_arguments():
    gate = threading.Event()  # never set: the source sends nothing
    stats = pystream.run(ListSource(frames(3), gate=gate), seconds=0.3)
    gate.set()
    assert stats["received"] == 0 and stats["state"] == "stopped"
    with pytest.raises(ValueError, match="dir"):
        pystream.run(ListSource([]), record={"format": "hdf5"})


def test_the_public_names_are_exported():
    for name in pystream.__all__:
        assert getattr(pystream, name) is not None
    assert pystream.__version__


def test_a_one_dimensional_frame_is_counted_not_shown_and_the_display_goes_on():
    shown = []
    with pystream.Session() as session:
        session.add_display_listener(shown.append)
        session.connect(ListSource([np.linspace(0, 1, 100), np.zeros((4, 5), np.uint16)],
                                   rate=20))
        assert wait_for(lambda: shown)
        stats = session.stats()
    assert stats["not_shown"] == 1 and shown[-1].image.shape == (4, 5)
    assert any("1-D" in notice for notice in stats["notices"])


SHOW_PROGRAM = '''
import sys, numpy as np, pystream
frames = (np.full((32, 48), i, np.uint16) for i in range(20))
code = pystream.show(pystream.IterSource(frames, fps=50), offscreen=True, stats_json=sys.argv[1],
                     colormap="viridis")
print("exit", code)
'''


def test_show_opens_the_window_on_a_source_and_returns_when_it_ends_offscreen(tmp_path, home):
    import json
    import os
    import subprocess
    import sys

    stats_path = tmp_path / "stats.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", SHOW_PROGRAM, str(stats_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-2:] == ["exit", "0"]
    stats = json.loads(stats_path.read_text())
    assert stats["state"] == "finished" and stats["received"] == 20
    assert 1 <= stats["displayed"] <= 20 and stats["source"].startswith("iter://")
