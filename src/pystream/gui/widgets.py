"""Small widget behaviours the panels share: an eliding label, wheel guards, scrolling docks."""
from __future__ import annotations

from pyqtgraph.Qt import QtCore, QtWidgets


class ElidedLabel(QtWidgets.QLabel):
    """One line that never widens its parent: a text too long for the room is
    cut with "…", and the whole text is the tooltip."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)
        self.setMinimumWidth(20)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        if text == self._full and super().text():
            return
        self._full = text
        self._elide()

    def text(self) -> str:  # the whole text, as set
        return self._full

    def shown_text(self) -> str:
        """What is drawn now (elided to the label's width)."""
        return super().text()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(self.width() - 4, 10)
        shown = self.fontMetrics().elidedText(self._full, QtCore.Qt.ElideRight, width)
        super().setText(shown)
        self.setToolTip(self._full if shown != self._full else "")


class _WheelGuard(QtCore.QObject):
    """Wheel events over an unfocused widget scroll the panel around it
    instead of changing a value or zooming a plot."""

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() != QtCore.QEvent.Wheel:
            return False
        widget = obj if isinstance(obj, QtWidgets.QAbstractSpinBox) else obj.parentWidget()
        if widget is None or widget.hasFocus():
            return False
        area = _scroll_area_around(widget)
        if area is not None:
            # straight to the scroll area: Qt does not pass a synthetic wheel event up to parents
            QtCore.QCoreApplication.sendEvent(area.viewport(), _clone_wheel(event))
        return True


def _scroll_area_around(widget):
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QtWidgets.QAbstractScrollArea) and parent is not widget:
            return parent
        parent = parent.parentWidget()
    return None


def _clone_wheel(event):
    from pyqtgraph.Qt import QtGui
    return QtGui.QWheelEvent(event.posF(), event.globalPosF(), event.pixelDelta(), event.angleDelta(),
                             event.buttons(), event.modifiers(), event.phase(), event.inverted())


_GUARD = None


def _guard() -> _WheelGuard:
    global _GUARD
    if _GUARD is None:
        _GUARD = _WheelGuard(QtWidgets.QApplication.instance())
    return _GUARD


def wheel_only_when_focused(*widgets) -> None:
    """Spin boxes and combo boxes take the wheel only once clicked into (focused)."""
    for widget in widgets:
        widget.setFocusPolicy(QtCore.Qt.StrongFocus)  # not WheelFocus: a wheel does not focus it
        widget.installEventFilter(_guard())


def plot_scrolls_panel(plot_widget) -> None:
    """A plot inside a scrolling panel: the wheel scrolls the panel until the
    user clicks into the plot (then it zooms as usual)."""
    plot_widget.setFocusPolicy(QtCore.Qt.ClickFocus)
    plot_widget.viewport().installEventFilter(_guard())


def scrolling(widget: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
    """``widget`` in a scroll area that gives way (scrolls) when its dock is small."""
    if isinstance(widget, QtWidgets.QScrollArea):
        return widget
    scroll = QtWidgets.QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QtWidgets.QFrame.NoFrame)
    scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAsNeeded)
    scroll.setWidget(widget)
    return scroll
