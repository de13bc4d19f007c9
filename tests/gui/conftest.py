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
