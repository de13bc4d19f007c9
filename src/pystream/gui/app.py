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
    import pyqtgraph as pg
    from pyqtgraph.Qt import QtCore, QtWidgets

    QtCore.qInstallMessageHandler(_qt_message)
    # row-major arrays are what numpy gives us: no transposes per frame
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("pystream")
    return app, note
