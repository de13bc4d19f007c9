"""The whole window on a real X server (Xvfb, as .ci/run installs it), and what the
viewer remembers when it is stopped by a signal."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from ..test_cli import run_until

pytestmark = pytest.mark.gui

# a child process: the window as `pystream` builds it, a real detector stream, two sizes
WINDOW_ON_X = textwrap.dedent("""
    import json, sys, threading, time
    from pystream.cli import build_viewer_parser
    from pystream.gui.assemble import build_window
    from pystream.gui.app import make_app
    from pystream.publish.pva_sim import run_pva_sim
    from pystream.sources.pva import PvaSource

    app, _ = make_app()
    from pyqtgraph.Qt import QtGui
    pv = sys.argv[1]
    stop, ready = threading.Event(), threading.Event()
    threading.Thread(target=run_pva_sim, args=(pv,), daemon=True,
                     kwargs=dict(size=(512, 512), rate=20, stop_event=stop, ready=ready)).start()
    ready.wait(30)
    window = build_window(build_viewer_parser().parse_args(["--pv", pv]))
    window.show()
    window.connect_source(PvaSource(pv))

    def settle(until):
        deadline = time.monotonic() + 60
        while not until() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)

    out = {"platform": QtGui.QGuiApplication.platformName()}
    for w, h in ((1600, 1000), (800, 500)):
        window.resize(w, h)
        shown = window.stats()["displayed"]
        settle(lambda: window.width() == w and window.stats()["displayed"] >= shown + 3)
        view = window.image_view.view.sceneBoundingRect()
        image = window.image_view.image.mapRectToScene(window.image_view.image.boundingRect())
        image = image.intersected(view)
        out[f"{w}x{h}"] = dict(window=[window.width(), window.height()],
                               view=[view.width(), view.height()],
                               image=[image.width(), image.height()],
                               displayed=window.stats()["displayed"],
                               status_bottom=window.statusBar().geometry().bottom(),
                               docks_bottom=max(d.geometry().bottom() for d in window._docks
                                                if d.isVisible()))
    print(json.dumps(out))
    window.disconnect_source()
    window.record_panel.shutdown()
    stop.set()
""")


@pytest.mark.pva
def test_the_whole_window_on_a_real_x_server_gives_the_image_the_room(x_display, home, pv_name):
    env = dict(os.environ, DISPLAY=x_display, HOME=str(home))
    env.pop("QT_QPA_PLATFORM", None)  # the xcb plugin, as on a user's desktop
    env.pop("WAYLAND_DISPLAY", None)
    done = subprocess.run([sys.executable, "-c", WINDOW_ON_X, pv_name], env=env, capture_output=True,
                          text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["platform"] == "xcb"
    big, small = result["1600x1000"], result["800x500"]
    assert big["window"] == [1600, 1000] and small["window"] == [800, 500]
    assert big["displayed"] > 0
    # the image's view gets at least half of the window; the (square) image fills its height
    window_area = 1600 * 1000
    assert big["view"][0] * big["view"][1] >= 0.5 * window_area, big
    assert big["image"][1] >= 0.8 * big["view"][1], big
    # at 800x500 the docks gave way: the image keeps a useful part
    assert small["view"][0] >= 0.4 * 800 and small["view"][1] >= 0.6 * 500, small
    for size in (big, small):
        assert size["docks_bottom"] < size["status_bottom"]


def test_colormap_and_layout_are_remembered_when_stopped_by_a_signal(home, pv_name):
    stats = home / "stats.json"
    code, err, _ = run_until(["demo", "--offscreen", "--size", "64x48", "--pv", pv_name,
                              "--colormap", "turbo"], home, stats, lambda d: d["displayed"] > 2)
    assert code == 0, err
    saved = json.loads((home / ".pystream" / "viewer_config.json").read_text())
    assert saved["colormap"] == "turbo"
    assert saved["window_geometry"] and saved["window_state"]
    # the next launch (no --colormap) opens with it
    code, err, _ = run_until(["--offscreen", "--pv", "pystest:nothing:here"], home, stats,
                             lambda d: d["state"] in ("connecting", "connected"))
    assert code == 0, err
    assert json.loads((home / ".pystream" / "viewer_config.json").read_text())["colormap"] == "turbo"
