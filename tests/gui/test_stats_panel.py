"""The Statistics panel on the real window, offscreen, watching a real PvaServer."""
import threading

import numpy as np
import pytest

from pystream.gui.image_tools import ImageTools
from pystream.gui.stats_panel import StatisticsPanel, plot_offset
from pystream.sources.pva import PvaSource

pytestmark = [pytest.mark.gui, pytest.mark.pva]


@pytest.fixture
def tools(window):
    return ImageTools(window)


@pytest.fixture
def panel(window, tools):
    panel = StatisticsPanel(window, tools=tools, rate=0)  # every shown frame: the test knows which
    window.add_dock(panel, "Statistics").raise_()  # in front, so it refreshes
    yield panel
    panel.detach()


def measured_uids(panel):
    return panel.analysis.series.series()[1].tolist()


def show(window, panel, publisher, qtbot, image, first=False):
    """Publish ``image`` and wait until the worker has measured it."""
    uid = publisher.publish(image)
    if first:
        window.connect_source(PvaSource(publisher.pv_name))
    qtbot.waitUntil(lambda: uid in measured_uids(panel), timeout=10000)
    return uid


def test_the_plotted_series_steps_at_the_frame_where_the_mean_steps(window, panel, publisher, qtbot):
    step_uid = 7
    for n in range(1, 13):
        level = 100 if n < step_uid else 200
        image = np.full((32, 48), level, np.uint16)
        image[0, 0], image[0, 1] = level - 5, level + 5  # the mean stays exactly the level
        show(window, panel, publisher, qtbot, image, first=n == 1)
    panel.plot_combo.setCurrentText("mean")

    def plotted_points():
        y = panel.curve.getData()[1]
        return 0 if y is None else len(y)

    qtbot.waitUntil(lambda: plotted_points() >= 12, timeout=10000)
    x, y = panel.curve.getData()
    t, uids, plotted = panel.plotted()
    np.testing.assert_array_equal(y, plotted)  # the curve is the series
    np.testing.assert_allclose(x, t - t[-1])  # against time, newest at 0
    uids = np.asarray(uids)
    assert uids.tolist() == list(range(1, 13))
    assert np.all(y[uids < step_uid] == 100.0) and np.all(y[uids >= step_uid] == 200.0)
    jumps = np.nonzero(np.diff(y))[0]
    assert uids[jumps + 1].tolist() == [step_uid]  # one step, at that frame
    # the rolling values are over the window: six frames at 100 and six at 200
    panel.refresh()
    rolling = panel.analysis.series.rolling()["mean"]
    assert rolling["mean"] == 150.0 and rolling["std"] == 50.0 and rolling["peak_to_peak"] == 100.0
    # rows: quantity, its latest value, then a rolling statistic of the plotted mean and its value
    rows = [line.split() for line in panel.table_label.text().splitlines()[1:]]
    assert rows[0] == ["mean", "200", "mean", "150"]
    assert rows[1] == ["std", f"{image.std():.10g}", "std", "50"]
    assert rows[3][:2] == ["max", "205"] and rows[4][2:] == ["p-p", "100"]


def test_roi_statistics_follow_the_roi(window, tools, panel, publisher, qtbot):
    image = np.arange(40 * 60, dtype=np.uint16).reshape(40, 60)
    show(window, panel, publisher, qtbot, image, first=True)
    panel.set_region(True)  # turns the image tools' ROI on
    assert tools.roi_action.isChecked()
    for rect in [(5, 4, 10, 6), (30, 20, 25, 15)]:
        tools.set_roi_rect(rect)
        uid = show(window, panel, publisher, qtbot, image + 1)
        last = panel.analysis.last
        x, y, w, h = rect
        region = (image + 1)[y:y + h, x:x + w]
        assert last.rect == rect
        assert panel.analysis.series.latest()["uid"] == uid
        assert panel.analysis.series.latest()["mean"] == pytest.approx(region.mean())
        assert panel.analysis.series.latest()["std"] == pytest.approx(region.std())
    # switching to ROI started a fresh series: no whole-frame sample in it
    t, uids, values = panel.analysis.series.series()
    assert values[:, 4].max() < (image + 1).sum()
    tools.set_roi_enabled(False)  # the ROI goes: back to the whole frame
    assert panel.region_combo.currentText() == "Whole frame"
    show(window, panel, publisher, qtbot, image + 2)
    assert panel.analysis.last.rect == (0, 0, 60, 40)


def test_statistics_are_computed_in_the_worker_not_on_the_gui_thread(window, panel, publisher, qtbot):
    image = np.full((16, 16), 3, np.uint16)
    show(window, panel, publisher, qtbot, image, first=True)
    show(window, panel, publisher, qtbot, image + 1)
    qtbot.wait(300)  # the panel's refresh timer runs meanwhile
    threads = panel.analysis.threads
    assert threading.main_thread().ident not in threads
    assert threads == {window.session.worker.ident}


def test_frame_stats_option_writes_them_to_the_stats(publisher, qtbot, home, monkeypatch):
    from pystream.cli import build_viewer_parser
    from pystream.gui.assemble import build_window
    from pystream.gui.app import make_app

    monkeypatch.chdir(home)
    make_app()
    parser = build_viewer_parser()
    plain = build_window(parser.parse_args([]))
    qtbot.addWidget(plain)
    assert "frame_stats" not in plain.stats()
    window = build_window(parser.parse_args(["--frame-stats"]))
    qtbot.addWidget(window)
    window.show()
    image = np.arange(12 * 16, dtype=np.uint16).reshape(12, 16)
    publisher.publish(image)
    window.connect_source(PvaSource(publisher.pv_name))
    try:
        qtbot.waitUntil(lambda: (window.stats()["frame_stats"]["latest"] or {}).get("uid") == 1,
                        timeout=10000)
        stats = window.stats()["frame_stats"]
        assert stats["latest"]["mean"] == pytest.approx(image.mean())
        assert stats["latest"]["max"] == image.max() and stats["latest"]["sum"] == image.sum()
        assert stats["rolling"]["mean"]["n_samples"] == 1
        assert stats["region"] == {"x": 0, "y": 0, "width": 16, "height": 12, "pixels": 192}
    finally:
        window.disconnect_source()


def test_headless_viewer_writes_frame_stats_computed_in_its_worker(home, pv_name):
    from ..test_cli import run_until

    stats = home / "stats.json"
    code, err, data = run_until(["demo", "--offscreen", "--size", "64x48", "--pv", pv_name,
                                 "--frame-stats"], home, stats,
                                lambda d: d["frame_stats"]["samples"] >= 3)
    assert code == 0, err
    fs = data["frame_stats"]
    latest, rolling = fs["latest"], fs["rolling"]
    assert fs["region"] == {"x": 0, "y": 0, "width": 64, "height": 48, "pixels": 64 * 48}
    assert latest["min"] <= latest["mean"] <= latest["max"] and latest["std"] > 0
    assert latest["sum"] == pytest.approx(latest["mean"] * 64 * 48)
    assert rolling["mean"]["n_samples"] == min(fs["samples"], fs["window"]) >= 3
    assert rolling["max"]["min"] <= latest["max"] <= rolling["max"]["max"]


def test_a_tiny_drift_on_a_large_value_is_plotted_about_an_offset():
    y = 1e9 + np.array([-3.0, 0.5, 2.9])
    offset = plot_offset(y)
    assert offset == 1e9 and np.ptp(y - offset) == pytest.approx(5.9)
    assert plot_offset(np.array([100.0, 200.0])) == 0.0  # readable as it is
    assert plot_offset(np.array([np.nan])) == 0.0
