import os
import shutil
import subprocess

import pytest

from pystream.gui.app import make_app
from pystream.gui.main_window import MainWindow
from pystream.sources.pva import PvaSource


@pytest.fixture
def window(qtbot):
    """The real main window, shown offscreen; disconnected at the end."""
    make_app()  # pyqtgraph options (row-major) as the real app sets them
    w = MainWindow(source_factory=PvaSource)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.disconnect_source()


@pytest.fixture
def x_display():
    """An Xvfb server on a display number it picks itself (-displayfd: no race with others)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb; .ci/run installs it)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24",
                               "-nolisten", "tcp"], pass_fds=(write_fd,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()  # written once the server accepts connections
        assert number, f"Xvfb did not start: {server.stderr.read().decode(errors='replace')}"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)
