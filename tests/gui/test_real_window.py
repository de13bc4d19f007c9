"""The real window on a real X server (Xvfb), not only offscreen; the X libraries Qt's xcb needs."""

from pystream.gui.app import XCB_LIBRARIES, missing_xcb_packages

from ..test_cli import run_until


def test_the_viewer_opens_a_real_window_under_xvfb(home, pv_name, x_display):
    # Qt picks its platform from DISPLAY, as on a desktop
    code, err, data = run_until(["demo", "--size", "256x256", "--pv", pv_name], home,
                                home / "stats.json", lambda s: s["displayed"] > 3,
                                env_changes={"QT_QPA_PLATFORM": None, "DISPLAY": x_display})
    assert code == 0, err
    assert data["qt_platform"] == "xcb"
    assert data["displayed"] > 3
    assert "running offscreen" not in err and "Could not load the Qt platform plugin" not in err


def test_missing_x_libraries_are_named_by_their_debian_package():
    # what CI and a desktop with the packages installed have: nothing missing
    assert missing_xcb_packages() == [], "install: apt-get install " + " ".join(XCB_LIBRARIES.values())
    absent = {"libxcb-pystream-test-nosuch.so.9": "libxcb-pystream-nosuch9"}
    assert missing_xcb_packages({**XCB_LIBRARIES, **absent}) == ["libxcb-pystream-nosuch9"]


def test_without_the_x_libraries_the_viewer_says_what_to_install(home, monkeypatch):
    from pystream.gui import app
    monkeypatch.setattr(app, "XCB_LIBRARIES", {**app.XCB_LIBRARIES,
                                               "libxcb-pystream-test-nosuch.so.9": "libxcb-nosuch9"})
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    problem = app.xcb_problem()
    assert "(libxcb-nosuch9)" in problem
    assert "sudo apt-get install libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0" in problem
    assert "--offscreen" in problem
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert app.xcb_problem() == ""  # offscreen needs none of them
