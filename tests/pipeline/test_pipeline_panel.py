"""PipelinePanel and the plugin editor, offscreen."""
import json
import textwrap

import numpy as np
import pytest
from pyqtgraph.Qt import QtCore, QtWidgets

from pystream.gui import editor as editor_module
from pystream.gui.editor import CodeEditor
from pystream.gui.pipeline_panel import PipelinePanel
from pystream.pipeline import Pipeline, load_config

from .conftest import ARITH_PLUGIN, step, write_config, write_file

pytestmark = pytest.mark.gui

RAISES = "class Raises:\n    def apply(self, img, meta):\n        raise RuntimeError('boom')\n"


@pytest.fixture
def pipeline(workdir):
    write_file(workdir / "c" / "arith.py", ARITH_PLUGIN)
    write_file(workdir / "c" / "bad.py", RAISES)
    config = write_config(workdir / "c" / "p.json", [
        step("add", "arith", "Add", {"value": 1}),
        step("mul", "arith", "Mul", {"factor": 2}),
        step("bad", "bad", "Raises", enabled=False),
    ])
    return Pipeline(load_config(config), check_interval=0)


@pytest.fixture
def panel(qtbot, pipeline):
    widget = PipelinePanel(pipeline, refresh_ms=20)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def frame():
    return np.ones((2, 2), np.float32)


def test_rows_show_steps_in_order(panel):
    assert panel.table.rowCount() == 3
    assert [panel.table.item(r, panel.COL_NAME).text() for r in range(3)] == ["add", "mul", "bad"]
    assert panel.cell_text("mul", panel.COL_PLUGIN) == "arith.Mul"
    states = [panel.table.item(r, panel.COL_ON).checkState() for r in range(3)]
    assert states == [QtCore.Qt.Checked, QtCore.Qt.Checked, QtCore.Qt.Unchecked]


def test_toggling_the_checkbox_enables_and_disables_the_step(panel, pipeline):
    assert pipeline.apply(frame())[0][0, 0] == 4  # (1 + 1) * 2
    panel.table.item(1, panel.COL_ON).setCheckState(QtCore.Qt.Unchecked)
    assert [s.enabled for s in pipeline.steps] == [True, False, False]
    assert pipeline.apply(frame())[0][0, 0] == 2
    panel.table.item(1, panel.COL_ON).setCheckState(QtCore.Qt.Checked)
    assert pipeline.apply(frame())[0][0, 0] == 4


def test_up_and_down_buttons_reorder_the_pipeline(qtbot, panel, pipeline):
    panel.select("mul")
    qtbot.mouseClick(panel.up_button, QtCore.Qt.LeftButton)
    assert pipeline.names == ["mul", "add", "bad"]
    assert panel.table.item(0, panel.COL_NAME).text() == "mul"
    assert panel.selected_name() == "mul"  # the selection follows the step
    assert pipeline.apply(frame())[0][0, 0] == 3  # 1 * 2 + 1
    qtbot.mouseClick(panel.down_button, QtCore.Qt.LeftButton)
    qtbot.mouseClick(panel.down_button, QtCore.Qt.LeftButton)
    assert pipeline.names == ["add", "bad", "mul"]


def test_timing_and_errors_are_refreshed_by_the_timer(qtbot, panel, pipeline):
    assert panel.cell_text("add", panel.COL_MS) == "—"
    pipeline.set_enabled("bad", True)
    pipeline.apply(frame())
    pipeline.apply(frame())
    qtbot.waitUntil(lambda: panel.cell_text("add", panel.COL_MS) != "—", timeout=30000)
    assert float(panel.cell_text("add", panel.COL_MS)) >= 0
    qtbot.waitUntil(lambda: panel.cell_text("bad", panel.COL_ERRORS) == "2", timeout=30000)
    assert "boom" in panel.cell_text("bad", panel.COL_STATUS)
    assert "boom" in panel.error_label.text()


def test_kwargs_are_edited_as_json(qtbot, panel, pipeline):
    panel.select("add")
    assert json.loads(panel.kwargs_edit.toPlainText()) == {"value": 1}
    panel.kwargs_edit.setPlainText('{"value": 10}')
    qtbot.mouseClick(panel.apply_kwargs_button, QtCore.Qt.LeftButton)
    assert pipeline.steps[0].kwargs == {"value": 10}
    assert pipeline.apply(frame())[0][0, 0] == 22

    panel.kwargs_edit.setPlainText('{"value": ')
    assert panel.apply_kwargs() is False
    assert "invalid JSON" in panel.kwargs_status.text()
    panel.kwargs_edit.setPlainText('[1, 2]')
    assert panel.apply_kwargs() is False and "JSON object" in panel.kwargs_status.text()
    panel.kwargs_edit.setPlainText('{"valeu": 3}')
    assert panel.apply_kwargs() is False
    assert "previous kwargs kept" in panel.kwargs_status.text() and "TypeError" in panel.kwargs_status.text()
    assert pipeline.steps[0].kwargs == {"value": 10}


def test_a_parameter_the_step_ignores_is_said_when_applied(qtbot, workdir):
    config = write_config(workdir / "c" / "median.json", [
        step("median", "pystream.pipeline.processors", "MedianFilter", {"kernel_size": 3})])
    panel = PipelinePanel(Pipeline(load_config(config), check_interval=0), refresh_ms=20)
    qtbot.addWidget(panel)
    panel.select("median")
    panel.kwargs_edit.setPlainText('{"kernel_size": 5, "kernal_size": 7}')
    qtbot.mouseClick(panel.apply_kwargs_button, QtCore.Qt.LeftButton)
    assert panel.pipeline.steps[0].kwargs == {"kernel_size": 5, "kernal_size": 7}  # applied...
    assert "ignores kernal_size (not one of its parameters)" in panel.kwargs_status.text()  # ...and said
    panel.kwargs_edit.setPlainText('{"kernel_size": 5}')
    qtbot.mouseClick(panel.apply_kwargs_button, QtCore.Qt.LeftButton)
    assert panel.kwargs_status.text() == "median: kwargs applied"


def test_run_checkbox_switches_the_whole_pipeline(panel, pipeline):
    panel.run_checkbox.setChecked(False)
    assert pipeline.enabled is False
    assert pipeline.apply(frame())[0][0, 0] == 1
    panel.run_checkbox.setChecked(True)
    assert pipeline.enabled is True


def test_reload_shows_a_broken_plugin_and_keeps_the_old_one(qtbot, panel, pipeline, workdir):
    write_file(workdir / "c" / "arith.py", "class Add(:\n")
    qtbot.mouseClick(panel.reload_button, QtCore.Qt.LeftButton)
    assert "syntax error" in panel.cell_text("add", panel.COL_STATUS)
    assert panel.cell_text("add", panel.COL_STATUS).startswith("old version running")
    assert pipeline.apply(frame())[0][0, 0] == 4


def test_editor_saves_a_plugin_and_the_pipeline_reloads(qtbot, panel, pipeline, workdir):
    panel.select("add")
    editor = panel.edit_selected_plugin()
    qtbot.addWidget(editor)
    assert editor.path == (workdir / "c" / "arith.py").resolve()
    assert "class Add" in editor.text()
    if editor_module.HAVE_QSCINTILLA:
        assert type(editor.lexer).__name__ == "QsciLexerPython"
        assert editor.text_edit.marginLineNumbers(0)
    editor.set_text(editor.text().replace("img + np.float32(self.value)", "img + 100"))
    with qtbot.waitSignal(editor.saved, timeout=30000):
        assert editor.save()
    assert pipeline.apply(frame())[0][0, 0] == 202  # (1 + 100) * 2
    assert "reloaded" in editor.status_label.text()

    editor.set_text("class Add(:\n")
    editor.save()
    assert "kept its previous version" in editor.status_label.text()
    assert "syntax error" in editor.status_label.text()
    assert pipeline.apply(frame())[0][0, 0] == 202


def test_editor_edits_the_config_with_json_highlighting(qtbot, panel, pipeline):
    editor = panel.edit_config()
    qtbot.addWidget(editor)
    if editor_module.HAVE_QSCINTILLA:
        assert type(editor.lexer).__name__ == "QsciLexerJSON"
    data = json.loads(editor.text())
    data["processors"] = data["processors"][::-1]
    editor.set_text(json.dumps(data))
    editor.save()
    assert pipeline.names == ["bad", "mul", "add"]
    qtbot.waitUntil(lambda: panel.table.item(0, panel.COL_NAME).text() == "bad", timeout=30000)


def test_without_qscintilla_a_plain_editor_is_used_and_the_panel_says_so(qtbot, monkeypatch, pipeline,
                                                                         workdir):
    monkeypatch.setattr(editor_module, "HAVE_QSCINTILLA", False)
    monkeypatch.setattr(editor_module, "QSCINTILLA_MISSING", "QScintilla (PyQt5.Qsci) not available")
    panel = PipelinePanel(pipeline, refresh_ms=50)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.editor_notice.isVisible() and "QScintilla" in panel.editor_notice.text()
    editor = CodeEditor(pipeline)
    qtbot.addWidget(editor)
    assert isinstance(editor.text_edit, QtWidgets.QPlainTextEdit)
    path = workdir / "c" / "arith.py"
    assert editor.open(path) and "class Mul" in editor.text()
    editor.set_text(textwrap.dedent(ARITH_PLUGIN).replace("img * np.float32(self.factor)", "img * 0"))
    assert editor.save()
    assert pipeline.apply(frame())[0][0, 0] == 0


def test_panel_with_qscintilla_has_no_notice(qtbot, pipeline):
    if not editor_module.HAVE_QSCINTILLA:
        pytest.skip("QScintilla not installed")
    panel = PipelinePanel(pipeline)
    qtbot.addWidget(panel)
    assert panel.editor_notice.text() == "" and not panel.editor_notice.isVisibleTo(panel)
