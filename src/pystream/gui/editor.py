"""A small code editor for plugins (.py) and pipeline configs (.json).

QScintilla (``PyQt5.Qsci``) gives Python/JSON highlighting and line numbers;
without it a plain ``QPlainTextEdit`` is used and ``QSCINTILLA_MISSING`` says
why (the pipeline panel shows it). Saving writes the file atomically and asks
the pipeline to reload at once, then shows whether the new version loaded.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Optional

from pyqtgraph.Qt import QT_LIB, QtCore, QtGui, QtWidgets

Qsci: Any = None  # PyQt5.Qsci, imported by the first editor opened


def _qscintilla_missing() -> str:
    """Why QScintilla cannot be used ("" when it can). Found without being
    loaded: a viewer that never opens an editor does not pay its 1.5 MB."""
    if QT_LIB != "PyQt5":
        return f"QScintilla needs PyQt5 (Qt binding in use: {QT_LIB}): plain text editor in use"
    try:
        found = importlib.util.find_spec("PyQt5.Qsci") is not None
    except (ImportError, ValueError):
        found = False
    return "" if found else "QScintilla (PyQt5.Qsci) not available: plain text editor in use"


QSCINTILLA_MISSING = _qscintilla_missing()  # optional dependency (extra "editor")
HAVE_QSCINTILLA = not QSCINTILLA_MISSING


def _load_qscintilla() -> bool:
    global Qsci, QSCINTILLA_MISSING
    if Qsci is None and not QSCINTILLA_MISSING:
        try:
            from PyQt5 import Qsci as module
            Qsci = module
        except ImportError as exc:  # found, but its library does not load
            QSCINTILLA_MISSING = f"QScintilla (PyQt5.Qsci) not available ({exc}): plain text editor in use"
    return Qsci is not None


def _monospace_font() -> QtGui.QFont:
    font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.FixedFont)
    font.setPointSize(max(font.pointSize(), 10))
    return font


class CodeEditor(QtWidgets.QWidget):
    """Open, edit and save one file; saving hot-reloads ``pipeline`` (if given).

    ``use_qscintilla=False`` forces the plain editor (and is what happens
    when QScintilla is missing).
    """

    saved = QtCore.Signal(str)  # path of the file written

    def __init__(self, pipeline: Any = None, parent: Optional[QtWidgets.QWidget] = None,
                 use_qscintilla: Optional[bool] = None):
        super().__init__(parent)
        self.pipeline = pipeline
        self.path: Optional[Path] = None
        wanted = HAVE_QSCINTILLA if use_qscintilla is None else (use_qscintilla and HAVE_QSCINTILLA)
        self.uses_qscintilla = wanted and _load_qscintilla()
        if self.uses_qscintilla:
            self.text_edit = Qsci.QsciScintilla(self)
            self.text_edit.setUtf8(True)
            self.text_edit.setFont(_monospace_font())
            self.text_edit.setMarginType(0, Qsci.QsciScintilla.NumberMargin)
            self.text_edit.setMarginLineNumbers(0, True)
            self.text_edit.setMarginWidth(0, "00000")
            self.text_edit.setAutoIndent(True)
            self.text_edit.setIndentationsUseTabs(False)
            self.text_edit.setTabWidth(4)
        else:
            self.text_edit = QtWidgets.QPlainTextEdit(self)
            self.text_edit.setFont(_monospace_font())
            self.text_edit.setLineWrapMode(QtWidgets.QPlainTextEdit.NoWrap)

        self.path_label = QtWidgets.QLabel("(no file)", self)
        self.open_button = QtWidgets.QPushButton("Open…", self)
        self.save_button = QtWidgets.QPushButton("Save", self)
        self.save_as_button = QtWidgets.QPushButton("Save as…", self)
        self.status_label = QtWidgets.QLabel(QSCINTILLA_MISSING if not self.uses_qscintilla else "", self)
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)

        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.path_label, 1)
        for button in (self.open_button, self.save_button, self.save_as_button):
            buttons.addWidget(button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.text_edit, 1)
        layout.addWidget(self.status_label)

        self.open_button.clicked.connect(self._ask_open)
        self.save_button.clicked.connect(self.save)
        self.save_as_button.clicked.connect(self._ask_save_as)
        QtWidgets.QShortcut(QtGui.QKeySequence.Save, self, activated=self.save)
        self.resize(800, 600)

    # ------------------------------------------------------------------ text
    def text(self) -> str:
        if self.uses_qscintilla:
            return self.text_edit.text()
        return self.text_edit.toPlainText()

    def set_text(self, text: str) -> None:
        if self.uses_qscintilla:
            self.text_edit.setText(text)
            self.text_edit.setModified(False)
        else:
            self.text_edit.setPlainText(text)
            self.text_edit.document().setModified(False)

    def _set_language(self, path: Path) -> None:
        if not self.uses_qscintilla:
            return
        suffix = path.suffix.lower()
        lexer = None
        if suffix == ".py":
            lexer = Qsci.QsciLexerPython(self.text_edit)
        elif suffix == ".json":
            lexer = Qsci.QsciLexerJSON(self.text_edit)
        if lexer is not None:
            lexer.setDefaultFont(_monospace_font())
            lexer.setFont(_monospace_font())
        self.text_edit.setLexer(lexer)
        self.lexer = lexer

    # ------------------------------------------------------------------ files
    def open(self, path: "os.PathLike[str] | str") -> bool:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self._show(f"cannot open {path}: {exc}", error=True)
            return False
        self.path = path
        self._set_language(path)
        self.set_text(text)
        self.path_label.setText(str(path))
        self.setWindowTitle(f"pystream editor: {path.name}")
        self._show(QSCINTILLA_MISSING if not self.uses_qscintilla else f"opened {path}")
        return True

    def save(self) -> bool:
        if self.path is None:
            return self._ask_save_as()
        return self.save_as(self.path)

    def save_as(self, path: "os.PathLike[str] | str") -> bool:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        try:
            old_mtime = path.stat().st_mtime_ns if path.exists() else -1
            # write then rename: a hot reload never reads half a file
            tmp.write_text(self.text(), encoding="utf-8")
            os.replace(tmp, path)
            new_mtime = path.stat().st_mtime_ns
            if new_mtime <= old_mtime:  # two saves within the clock's tick: still a change
                os.utime(path, ns=(old_mtime + 1, old_mtime + 1))
        except OSError as exc:
            self._show(f"cannot save {path}: {exc}", error=True)
            return False
        if self.path != path:
            self.path = path
            self._set_language(path)
            self.path_label.setText(str(path))
        if self.uses_qscintilla:
            self.text_edit.setModified(False)
        else:
            self.text_edit.document().setModified(False)
        self._show(f"saved {path}")
        self._reload_pipeline(path)
        self.saved.emit(str(path))
        return True

    def _reload_pipeline(self, path: Path) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        pipeline.reload_if_changed(force=True)
        resolved = path.resolve()
        if pipeline.config.path is not None and pipeline.config.path == resolved and pipeline.config_error:
            self._show(f"saved; config not loaded: {pipeline.config_error}", error=True)
            return
        for step in pipeline.steps:
            if step.file is not None and step.file == resolved and step.load_error:
                self._show(f"saved; {step.name} kept its previous version: {step.load_error}", error=True)
                return
        self._show(f"saved {path}; pipeline reloaded")

    def _ask_open(self) -> None:
        start = str(self.path.parent) if self.path else ""
        name, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open plugin or config", start,
                                                        "Plugins and configs (*.py *.json);;All files (*)")
        if name:
            self.open(name)

    def _ask_save_as(self) -> bool:
        start = str(self.path) if self.path else ""
        name, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save as", start,
                                                        "Plugins and configs (*.py *.json);;All files (*)")
        return self.save_as(name) if name else False

    def _show(self, message: str, error: bool = False) -> None:
        self.status_label.setText(message)
        self.status_label.setStyleSheet("color: #c0392b;" if error else "")
