"""The image area: a view box, an ImageItem that counts real paints, and a histogram/LUT."""
from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any, Callable

import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from ..display import DisplayFrame

COLORMAPS = ("gray", "viridis", "turbo", "inferno", "magma", "plasma", "cividis",
             "CET-L3", "CET-R4", "CET-D1")


def get_colormap(name: str) -> pg.ColorMap:
    if name == "gray":
        return pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)], name="gray")
    return pg.colormap.get(name)


_NOTHING = object()


@contextlib.contextmanager
def _lazy_matplotlib_menu() -> Iterator[None]:
    """Keep pyqtgraph's gradient menu from importing matplotlib while it is built.

    Building a HistogramLUTWidget builds a ColorMapMenu, which calls
    ``find_mpl_leftovers()`` only to decide whether to add a "matplotlib >
    Others" submenu, and that imports ``matplotlib.pyplot``: about 30 MB of
    RSS in a viewer that never uses it. The submenu fills itself on
    ``aboutToShow`` by calling the real function, so answering "yes" during
    construction gives the same menu, and matplotlib is imported only if a
    user opens one of its submenus.
    """
    try:
        # the module, not the class that pyqtgraph.widgets re-exports under its name
        menu_mod = importlib.import_module("pyqtgraph.widgets.ColorMapMenu")
        real = menu_mod.find_mpl_leftovers
    except (ImportError, AttributeError):  # another pyqtgraph: nothing to do
        yield
        return
    menu_mod.find_mpl_leftovers = lambda: True
    try:
        yield
    finally:
        menu_mod.find_mpl_leftovers = real


class PaintCountingImageItem(pg.ImageItem):
    """An ImageItem that reports the first paint of each new image.

    "Displayed" means painted, not "setImage was called": this is where the
    counter and the producer-to-screen latency are taken. After setting an
    image, call ``expect_paint(token)``; the next paint calls
    ``on_first_paint(token)`` once.
    """

    def __init__(self, on_first_paint: Callable[[Any], None], **kwargs):
        super().__init__(**kwargs)
        self._on_first_paint = on_first_paint
        self._unpainted: Any = _NOTHING

    def expect_paint(self, token: Any) -> None:
        self._unpainted = token

    def paint(self, painter, *args):
        super().paint(painter, *args)
        token, self._unpainted = self._unpainted, _NOTHING
        if token is not _NOTHING:
            self._on_first_paint(token)


class ImageView(QtWidgets.QWidget):
    """View box + image + histogram; knows nothing about sources."""

    sigViewResized = QtCore.pyqtSignal(int, int)

    def __init__(self, on_first_paint: Callable[[DisplayFrame], None], parent=None):
        super().__init__(parent)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.image = PaintCountingImageItem(on_first_paint)
        self.view.addItem(self.image)
        with _lazy_matplotlib_menu():
            self.histogram = pg.HistogramLUTWidget()
        self.histogram.setImageItem(self.image)
        # the histogram would be recomputed on the GUI thread for every frame;
        # refresh it a few times a second instead
        self.image.sigImageChanged.disconnect(self.histogram.item.imageChanged)
        self._hist_timer = QtCore.QTimer(self)
        self._hist_timer.timeout.connect(self._refresh_histogram)
        self._hist_timer.start(250)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.histogram)
        self.view.sigResized.connect(self._emit_size)
        self._has_image = False

    def set_colormap(self, name: str) -> None:
        cmap = get_colormap(name)
        gradient = self.histogram.item.gradient
        gradient.setColorMap(cmap)
        # a map of hundreds of stops (turbo) draws its tick handles as a hatched
        # strip: handles only where there are few enough to grab
        gradient.showTicks(len(cmap.pos) <= 16)

    def show_frame(self, display: DisplayFrame) -> None:
        first = not self._has_image
        item = self.image
        if display.auto_levels or first:
            item.setImage(display.image, autoLevels=False, levels=display.levels)
            # pyqtgraph re-applies levels set before the first image (the
            # histogram's default 0..1) after setImage: ours must win
            item.setLevels(display.levels)
        else:
            item.setImage(display.image, autoLevels=False)
        # ImageItem's coordinates are detector pixels whatever the display binning
        item.setRect(QtCore.QRectF(0, 0, display.image.shape[1] * display.bin,
                                   display.image.shape[0] * display.bin))
        item.expect_paint(display)
        self._has_image = True
        if first:
            self.view.autoRange(padding=0)
            self._refresh_histogram()

    def _refresh_histogram(self) -> None:
        if self._has_image and self.isVisible():
            self.histogram.item.imageChanged(autoLevel=False)

    def levels(self):
        return self.image.getLevels()

    def reset_view(self) -> None:
        self.view.autoRange(padding=0)

    def _emit_size(self, *_):
        rect = self.view.sceneBoundingRect()
        self.sigViewResized.emit(int(rect.height()), int(rect.width()))
