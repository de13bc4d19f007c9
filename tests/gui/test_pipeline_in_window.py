"""A user's plugin, loaded from a config, processes what the real window shows."""
import json

import numpy as np
import pytest

from pystream.cli import build_viewer_parser
from pystream.gui.assemble import attach_pipeline
from pystream.gui.app import make_app
from pystream.gui.main_window import MainWindow
from pystream.sources.pva import PvaSource

pytestmark = [pytest.mark.gui, pytest.mark.pva]


def test_plugin_output_is_what_the_window_shows_and_a_broken_one_is_bypassed(qtbot, publisher, tmp_path):
    (tmp_path / "double.py").write_text(
        "import numpy as np\n"
        "class Double:\n"
        "    def __init__(self, factor=2):\n"
        "        self.factor = factor\n"
        "    def apply(self, img, meta):\n"
        "        return img.astype(np.float32) * self.factor\n")
    (tmp_path / "broken.py").write_text(
        "class Broken:\n"
        "    def apply(self, img, meta):\n"
        "        raise RuntimeError('plugin bug')\n")
    config = tmp_path / "processors.json"
    config.write_text(json.dumps({"processors": [
        {"name": "Double", "module": "double", "class": "Double", "kwargs": {"factor": 3}},
        {"name": "Broken", "module": "broken", "class": "Broken"},
    ]}))
    make_app()
    window = MainWindow(source_factory=PvaSource)
    qtbot.addWidget(window)
    args = build_viewer_parser().parse_args(["--proc-config", str(config)])
    pipeline = attach_pipeline(window, args)
    window.show()
    image = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
    publisher.publish(image)
    window.connect_source(PvaSource(publisher.pv_name))
    try:
        qtbot.waitUntil(lambda: window.stats()["displayed"] >= 1, timeout=10000)
        np.testing.assert_array_equal(window.current.raw, image.astype(np.float32) * 3)
        stats = window.stats()
        assert set(stats["pipeline_ms_by_step"]) == {"Double", "Broken"}
        assert stats["pipeline_errors_by_step"]["Broken"] >= 1
        assert "plugin bug" in stats["pipeline_last_error"]
        assert pipeline is window.pipeline
    finally:
        window.disconnect_source()
