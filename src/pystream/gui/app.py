"""Creating the QApplication: choose offscreen when there is no display."""
from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)


def choose_platform(force_offscreen: bool = False) -> str:
    """Set QT_QPA_PLATFORM before Qt starts; return a note for the user ('' if none)."""
    if force_offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return "running offscreen (--offscreen)"
    if os.environ.get("QT_QPA_PLATFORM"):
        return ""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return "no display found (DISPLAY is not set): running offscreen"
    return ""


# The X libraries the PyQt5 wheels' xcb platform plugin loads and does not
# ship, with the Debian/Ubuntu package of each. Without one of them Qt aborts
# with 'Could not load the Qt platform plugin "xcb"' (and a core dump).
XCB_LIBRARIES = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def wheel_xcb_plugin() -> str:
    """The xcb plugin of the PyQt5 wheel ('' for a Qt from the system, whose
    packages bring their libraries)."""
    import importlib.util
    spec = importlib.util.find_spec("PyQt5")
    if spec is None or not spec.submodule_search_locations:
        return ""
    plugin = os.path.join(list(spec.submodule_search_locations)[0], "Qt5", "plugins", "platforms",
                          "libqxcb.so")
    return plugin if os.path.isfile(plugin) else ""


def missing_xcb_packages(libraries=None) -> list:
    """Debian/Ubuntu packages of the X libraries that cannot be loaded."""
    import ctypes
    missing = []
    for soname, package in (XCB_LIBRARIES if libraries is None else libraries).items():
        try:
            ctypes.CDLL(soname)  # Qt loads it anyway a moment later
        except OSError:
            missing.append(package)
    return missing


def xcb_problem() -> str:
    """Why Qt's xcb plugin would abort here, with what to install ('' if it will load)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or platform not in ("", "xcb") or not wheel_xcb_plugin():
        return ""
    missing = missing_xcb_packages()
    if not missing:
        return ""
    return ("cannot open a window: the Qt platform plugin \"xcb\" needs X libraries that are not "
            f"installed ({', '.join(missing)}). On Debian/Ubuntu:\n"
            f"    sudo apt-get install {' '.join(XCB_LIBRARIES.values())}\n"
            "or run with no window: --offscreen")


_QT_NOISE = ("propagateSizeHints", "XDG_RUNTIME_DIR")


def _qt_message(mode, context, message) -> None:
    """Qt's own messages go to our log; known harmless noise only at DEBUG."""
    from pyqtgraph.Qt import QtCore
    if any(noise in message for noise in _QT_NOISE):
        log.debug("Qt: %s", message)
    elif mode in (QtCore.QtCriticalMsg, QtCore.QtFatalMsg):
        log.error("Qt: %s", message)
    elif mode == QtCore.QtWarningMsg:
        log.warning("Qt: %s", message)
    else:
        log.debug("Qt: %s", message)


def make_app(force_offscreen: bool = False):
    note = choose_platform(force_offscreen)
    if note:
        log.warning("%s", note)
    problem = xcb_problem()
    if problem:  # before Qt aborts with a message that blames the display
        log.error("%s", problem)
        raise SystemExit(1)
    import pyqtgraph as pg
    from pyqtgraph.Qt import QtCore, QtWidgets

    QtCore.qInstallMessageHandler(_qt_message)
    # row-major arrays are what numpy gives us: no transposes per frame
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("pystream")
    return app, note
