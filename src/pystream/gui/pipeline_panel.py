"""The pipeline panel: steps in order, on/off, reorder, kwargs, timing and errors.

Thin by design: every change goes to the ``Pipeline`` (which swaps in a new
immutable tuple of steps, so the worker thread never sees half an edit), and
a QTimer redraws timing and errors from ``pipeline.steps``.
"""
from __future__ import annotations

import json
from typing import Dict, List, Optional

from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from ..pipeline import Pipeline, PluginError
from . import editor as editor_module


class _KeepSpace(QtCore.QObject):
    """Space toggles the On box of the current row, as in any Qt table, even
    though the window's Space shortcut (pause) exists."""

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QtCore.QEvent.ShortcutOverride and event.key() == QtCore.Qt.Key_Space:
            event.accept()  # the table gets the key press, the shortcut does not fire
            return True
        if event.type() == QtCore.QEvent.Resize and isinstance(obj.parent(), QtWidgets.QTableWidget):
            self.parent().fit_columns()
        return False


class PipelinePanel(QtWidgets.QWidget):
    """Panel for one ``Pipeline``. ``refresh_ms``: how often timing/errors are redrawn."""

    COLUMNS = ("On", "Step", "Plugin", "ms", "Errors", "Status")
    COL_ON, COL_NAME, COL_PLUGIN, COL_MS, COL_ERRORS, COL_STATUS = range(6)

    def __init__(self, pipeline: Pipeline, parent: Optional[QtWidgets.QWidget] = None,
                 refresh_ms: int = 500):
        super().__init__(parent)
        self.pipeline = pipeline
        self._row_names: List[str] = []
        self._editors: List[editor_module.CodeEditor] = []

        self.run_checkbox = QtWidgets.QCheckBox("Run pipeline", self)
        self.run_checkbox.setChecked(pipeline.enabled)
        self.config_label = QtWidgets.QLabel(self)
        self.config_label.setWordWrap(True)

        self.table = QtWidgets.QTableWidget(0, len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setTextElideMode(QtCore.Qt.ElideRight)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        # long plugin paths and error texts are elided (whole text in the
        # tooltip) instead of pushing the table into horizontal scrolling
        for col in (self.COL_NAME, self.COL_PLUGIN):
            header.setSectionResizeMode(col, QtWidgets.QHeaderView.Interactive)
        header.setSectionResizeMode(self.COL_STATUS, QtWidgets.QHeaderView.Stretch)
        header.setMinimumSectionSize(24)
        self.table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)

        self.up_button = QtWidgets.QPushButton("Up", self)
        self.down_button = QtWidgets.QPushButton("Down", self)
        self.edit_plugin_button = QtWidgets.QPushButton("Edit plugin…", self)
        self.edit_config_button = QtWidgets.QPushButton("Edit config…", self)
        self.reload_button = QtWidgets.QPushButton("Reload", self)
        self.save_button = QtWidgets.QPushButton("Save config", self)

        self.kwargs_edit = QtWidgets.QPlainTextEdit(self)
        self.kwargs_edit.setPlaceholderText('kwargs of the selected step as JSON, e.g. {"kernel_size": 3}')
        self.kwargs_edit.setMaximumHeight(90)
        self.apply_kwargs_button = QtWidgets.QPushButton("Apply kwargs", self)
        self.kwargs_status = QtWidgets.QLabel(self)
        self.kwargs_status.setWordWrap(True)

        self.error_label = QtWidgets.QLabel(self)
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.error_label.setStyleSheet("color: #c0392b;")
        self.editor_notice = QtWidgets.QLabel(editor_module.QSCINTILLA_MISSING, self)
        self.editor_notice.setWordWrap(True)
        self.editor_notice.setVisible(bool(editor_module.QSCINTILLA_MISSING))

        # two short rows of buttons: the panel fits a narrow dock
        order = QtWidgets.QGridLayout()
        for i, button in enumerate((self.up_button, self.down_button, self.reload_button,
                                    self.edit_plugin_button, self.edit_config_button, self.save_button)):
            order.addWidget(button, i // 3, i % 3)
        kwargs_row = QtWidgets.QHBoxLayout()
        kwargs_row.addWidget(self.kwargs_edit, 1)
        kwargs_row.addWidget(self.apply_kwargs_button, 0, QtCore.Qt.AlignTop)

        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.run_checkbox)
        layout.addWidget(self.config_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(order)
        layout.addLayout(kwargs_row)
        layout.addWidget(self.kwargs_status)
        layout.addWidget(self.error_label)
        layout.addWidget(self.editor_notice)

        self.run_checkbox.toggled.connect(self._set_running)
        self.table.itemChanged.connect(self._item_changed)
        self._space_keeper = _KeepSpace(self)
        self.table.installEventFilter(self._space_keeper)
        self.table.viewport().installEventFilter(self._space_keeper)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button.clicked.connect(lambda: self._move(+1))
        self.apply_kwargs_button.clicked.connect(self.apply_kwargs)
        self.reload_button.clicked.connect(self._reload_now)
        self.save_button.clicked.connect(self._save_config)
        self.edit_plugin_button.clicked.connect(self.edit_selected_plugin)
        self.edit_config_button.clicked.connect(self.edit_config)

        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(refresh_ms)
        self.refresh()

    # ------------------------------------------------------------------ view
    def refresh(self) -> None:
        """Redraw from the pipeline (rows rebuilt only when steps or their order change)."""
        steps = self.pipeline.steps
        names = [step.name for step in steps]
        selected = self.selected_name()
        self.table.blockSignals(True)
        rebuilt = False
        try:
            if names != self._row_names:
                self.table.setRowCount(len(steps))
                for row, step in enumerate(steps):
                    on = QtWidgets.QTableWidgetItem()
                    on.setFlags(QtCore.Qt.ItemIsUserCheckable | QtCore.Qt.ItemIsEnabled
                                | QtCore.Qt.ItemIsSelectable)
                    # a new item has no check state at all (no box is drawn, clicks do
                    # nothing) although checkState() reads Unchecked: set one always
                    on.setCheckState(QtCore.Qt.Checked if step.enabled else QtCore.Qt.Unchecked)
                    self.table.setItem(row, self.COL_ON, on)
                    for col in range(1, len(self.COLUMNS)):
                        item = QtWidgets.QTableWidgetItem()
                        item.setFlags(QtCore.Qt.ItemIsEnabled | QtCore.Qt.ItemIsSelectable)
                        self.table.setItem(row, col, item)
                self._row_names = names
                rebuilt = True
                if selected in names:
                    self.table.selectRow(names.index(selected))
            for row, step in enumerate(steps):
                self._fill_row(row, step)
            if rebuilt:
                # name and plugin: as wide as their text up to a share of the room
                # (elided beyond, whole text in the tooltip); Status takes the rest
                for col, cap in ((self.COL_NAME, 110), (self.COL_PLUGIN, 90)):
                    self.table.resizeColumnToContents(col)
                    self.table.setColumnWidth(col, min(self.table.columnWidth(col), cap))
        finally:
            self.table.blockSignals(False)
        config = self.pipeline.config
        where = str(config.path) if config.path is not None else "(no config file)"
        self.config_label.setText(f"config: {where}")
        error = self.pipeline.last_error
        self.error_label.setText(f"last error: {error}" if error else "")

    def _fill_row(self, row: int, step) -> None:
        state = QtCore.Qt.Checked if step.enabled else QtCore.Qt.Unchecked
        on = self.table.item(row, self.COL_ON)
        if on.checkState() != state:
            on.setCheckState(state)
        # a step that could not be loaded does not run, ticked or not: say "failed"
        failed = not step.loaded
        on_text = "failed" if failed else ""
        if on.text() != on_text:
            on.setText(on_text)
            on.setForeground(QtGui.QBrush(QtGui.QColor("#c0392b")) if failed else QtGui.QBrush())
            on.setToolTip(f"not loaded, does not run: {step.load_error}" if failed else "")
        plugin = f"{step.module}.{step.class_name}" if step.class_name else f"{step.module}.process"
        if not step.loaded:
            status, tip = f"not loaded: {step.load_error}", step.load_error
        elif step.load_error:
            status, tip = f"old version running: {step.load_error}", step.load_error
        elif not step.enabled:
            status, tip = "off", ""
        elif step.last_error:
            status, tip = f"last error: {step.last_error}", step.last_error
        else:
            status, tip = "ok", ""
        cells = {
            self.COL_NAME: step.name,
            self.COL_PLUGIN: plugin,
            self.COL_MS: "—" if step.ms is None or not step.enabled else f"{step.ms:.2f}",
            self.COL_ERRORS: str(step.errors),
            self.COL_STATUS: status,
        }
        for col, text in cells.items():
            item = self.table.item(row, col)
            if item.text() != text:
                item.setText(text)
        self.table.item(row, self.COL_PLUGIN).setToolTip(plugin)
        self.table.item(row, self.COL_NAME).setToolTip(f"{step.name} ({plugin})")
        status_item = self.table.item(row, self.COL_STATUS)
        status_item.setToolTip(tip or status)  # the whole text: the cell is elided
        bad = failed or bool(step.load_error) or (step.enabled and bool(step.last_error))
        status_item.setForeground(QtGui.QBrush(QtGui.QColor("#c0392b")) if bad else QtGui.QBrush())

    NARROW_PX = 420  # below this the Plugin column is hidden (it is in the Step's tooltip)

    def fit_columns(self) -> None:
        """In a narrow dock the Status column keeps the room, not the plugin path."""
        narrow = self.table.viewport().width() < self.NARROW_PX
        if self.table.isColumnHidden(self.COL_PLUGIN) != narrow:
            self.table.setColumnHidden(self.COL_PLUGIN, narrow)

    def selected_name(self) -> Optional[str]:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        row = rows[0].row()
        return self._row_names[row] if 0 <= row < len(self._row_names) else None

    def select(self, name: str) -> None:
        self.table.selectRow(self._row_names.index(name))

    def cell_text(self, name: str, column: int) -> str:
        """Text shown for a step in a column (for tests and scripts)."""
        return self.table.item(self._row_names.index(name), column).text()

    # ------------------------------------------------------------------ actions
    def _set_running(self, on: bool) -> None:
        self.pipeline.enabled = bool(on)

    def _item_changed(self, item: QtWidgets.QTableWidgetItem) -> None:
        if item.column() != self.COL_ON:
            return
        name = self._row_names[item.row()]
        self.pipeline.set_enabled(name, item.checkState() == QtCore.Qt.Checked)
        self.refresh()

    def _move(self, delta: int) -> None:
        name = self.selected_name()
        if name is None:
            return
        self.pipeline.move(name, delta)
        self.refresh()
        self.select(name)

    def _selection_changed(self) -> None:
        name = self.selected_name()
        if name is None:
            self.kwargs_edit.setPlainText("")
            return
        kwargs: Dict = next(step.kwargs for step in self.pipeline.steps if step.name == name)
        self.kwargs_edit.setPlainText(json.dumps(kwargs, indent=1))
        self.kwargs_status.setText("")

    def apply_kwargs(self) -> bool:
        """Give the selected step the kwargs in the text box; shows why when that fails."""
        name = self.selected_name()
        if name is None:
            self._kwargs_message("select a step first", error=True)
            return False
        try:
            kwargs = json.loads(self.kwargs_edit.toPlainText() or "{}")
        except json.JSONDecodeError as exc:
            self._kwargs_message(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", error=True)
            return False
        if not isinstance(kwargs, dict):
            self._kwargs_message(f"kwargs must be a JSON object, got {type(kwargs).__name__}", error=True)
            return False
        try:
            ignored = self.pipeline.set_kwargs(name, kwargs)
        except PluginError as exc:
            self._kwargs_message(f"not applied, previous kwargs kept: {exc}", error=True)
            return False
        if ignored:  # applied, but a typo would otherwise go unseen
            self._kwargs_message(f"{name}: kwargs applied, but the step ignores {', '.join(ignored)} "
                                 "(not one of its parameters)", error=True)
        else:
            self._kwargs_message(f"{name}: kwargs applied")
        self.refresh()
        return True

    def _kwargs_message(self, text: str, error: bool = False) -> None:
        self.kwargs_status.setText(text)
        self.kwargs_status.setStyleSheet("color: #c0392b;" if error else "")

    def _reload_now(self) -> None:
        self.pipeline.reload_if_changed(force=True)
        self.refresh()

    def _save_config(self) -> None:
        try:
            path = self.pipeline.save_config()
        except (OSError, ValueError) as exc:
            self.error_label.setText(f"config not saved: {exc}")
            return
        self._kwargs_message(f"saved {path}")

    # ------------------------------------------------------------------ editor
    def open_editor(self, path) -> editor_module.CodeEditor:
        editor = editor_module.CodeEditor(self.pipeline)
        editor.setAttribute(QtCore.Qt.WA_DeleteOnClose)
        editor.open(path)
        editor.saved.connect(lambda _path: self.refresh())
        editor.destroyed.connect(lambda _=None, e=editor: self._editors.remove(e) if e in self._editors else None)
        self._editors.append(editor)
        editor.show()
        return editor

    def edit_selected_plugin(self) -> Optional[editor_module.CodeEditor]:
        name = self.selected_name()
        step = next((s for s in self.pipeline.steps if s.name == name), None)
        if step is None or step.file is None:
            self._kwargs_message("select a step whose plugin was loaded from a file", error=True)
            return None
        return self.open_editor(step.file)

    def edit_config(self) -> Optional[editor_module.CodeEditor]:
        path = self.pipeline.config.path
        if path is None:
            self._kwargs_message("this pipeline has no config file", error=True)
            return None
        return self.open_editor(path)
