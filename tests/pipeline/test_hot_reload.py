"""Hot reload: changed plugins and configs take effect on the next frame; broken ones do not."""
import numpy as np
import pytest

from pystream.pipeline import Pipeline, load_config, open_pipeline

from .conftest import step, write_config, write_file

ADD = """
    class Add:
        def __init__(self, value=1):
            self.value = value
            self.frames = 0

        def apply(self, img, meta):
            self.frames += 1
            return img + {offset} + self.value
"""


@pytest.fixture
def setup(workdir):
    """A plugin folder with plug.py (Add, offset 0) and a config using it; check on every frame."""
    folder = workdir / "conf"
    plugin = write_file(folder / "plug.py", ADD.format(offset=0))
    config = write_config(folder / "p.json", [step("add", "plug", "Add", {"value": 1})])
    return folder, plugin, config, Pipeline(load_config(config), check_interval=0)


def out(pipeline, value=0.0):
    return float(pipeline.apply(np.full((2, 2), value, np.float32), {})[0][0, 0])


def test_changed_plugin_takes_effect_on_the_next_frame(setup):
    _, plugin, _, pipeline = setup
    assert out(pipeline) == 1
    write_file(plugin, ADD.format(offset=100))
    assert out(pipeline) == 101
    assert pipeline.steps[0].load_error == ""


@pytest.mark.parametrize("broken, reason", [
    ("class Add(:\n", "syntax error at line 1"),
    ("import no_such_dependency_xyz\n", "import failed: ModuleNotFoundError"),
    ("class Other:\n    pass\n", "no class 'Add'"),
    ("class Add:\n    def __init__(self):\n        pass\n    def apply(self, img, meta):\n        return img\n",
     "TypeError"),
])
def test_broken_plugin_keeps_the_previous_version_running(setup, broken, reason):
    _, plugin, _, pipeline = setup
    assert out(pipeline) == 1
    write_file(plugin, broken)
    assert out(pipeline) == 1  # old code still runs
    info = pipeline.steps[0]
    assert info.loaded and reason in info.load_error
    assert reason in pipeline.last_error
    assert pipeline.stats()["pipeline_errors_by_step"]["add"] == 0  # frames did not fail
    write_file(plugin, ADD.format(offset=50))
    assert out(pipeline) == 51
    assert pipeline.steps[0].load_error == ""


def test_reload_is_rate_limited_unless_forced(setup):
    _, plugin, _, pipeline = setup
    pipeline.check_interval = 3600
    pipeline.reload_if_changed(force=True)  # starts a fresh interval
    write_file(plugin, ADD.format(offset=10))
    assert out(pipeline) == 1  # not checked yet
    assert pipeline.reload_if_changed(force=True) is True
    assert out(pipeline) == 11


def test_request_reload_checks_on_the_next_frame(setup):
    _, plugin, _, pipeline = setup
    pipeline.check_interval = 3600
    pipeline.reload_if_changed(force=True)
    write_file(plugin, ADD.format(offset=20))
    pipeline.request_reload()
    assert out(pipeline) == 21


def test_unchanged_files_do_not_reload(setup):
    _, _, _, pipeline = setup
    processor = pipeline.processor("add")
    assert pipeline.reload_if_changed(force=True) is False
    assert pipeline.processor("add") is processor


def test_config_change_reorders_and_adds_steps_keeping_unchanged_state(setup):
    folder, _, config, pipeline = setup
    write_file(folder / "mul.py", "class Mul:\n    def apply(self, img, meta):\n        return img * 10\n")
    assert out(pipeline) == 1
    add = pipeline.processor("add")
    write_config(config, [step("mul", "mul", "Mul"), step("add", "plug", "Add", {"value": 1})])
    assert out(pipeline, 1.0) == 11  # (1 * 10) + 1
    assert pipeline.names == ["mul", "add"]
    assert pipeline.processor("add") is add and add.frames == 2  # same instance, state kept
    write_config(config, [step("mul", "mul", "Mul", enabled=False), step("add", "plug", "Add", {"value": 3})])
    assert out(pipeline, 1.0) == 4
    assert pipeline.processor("add") is not add  # new kwargs: new instance


def test_broken_config_keeps_the_previous_pipeline(setup):
    _, _, config, pipeline = setup
    write_file(config, '{"processors": [ {"module": ')
    assert out(pipeline) == 1
    assert "invalid JSON" in pipeline.config_error and "previous pipeline kept" in pipeline.last_error
    write_config(config, [step("add", "plug", "Add", {"value": 7})])
    assert out(pipeline) == 7
    assert pipeline.config_error == ""


def test_invalid_config_schema_keeps_the_previous_pipeline(setup):
    _, _, config, pipeline = setup
    write_config(config, [{"module": "plug"}])  # no class
    assert out(pipeline) == 1
    assert "'class'" in pipeline.config_error


def test_hot_reload_false_only_reloads_when_forced(workdir):
    plugin = write_file(workdir / "c" / "plug.py", ADD.format(offset=0))
    config = write_config(workdir / "c" / "p.json", [step("add", "plug", "Add")], hot_reload=False)
    pipeline = Pipeline(load_config(config), check_interval=0)
    write_file(plugin, ADD.format(offset=5))
    assert out(pipeline) == 1
    pipeline.reload_if_changed(force=True)
    assert out(pipeline) == 6


def test_missing_plugin_loads_once_it_appears(workdir):
    config = write_config(workdir / "c" / "p.json", [step("add", "later", "Add")])
    pipeline = Pipeline(load_config(config), check_interval=0)
    assert out(pipeline) == 0 and not pipeline.steps[0].loaded
    write_file(workdir / "c" / "later.py", ADD.format(offset=0))
    assert out(pipeline) == 1 and pipeline.steps[0].loaded


def test_plugin_broken_at_start_loads_once_fixed(workdir):
    plugin = write_file(workdir / "c" / "plug.py", "class Add(:\n")
    config = write_config(workdir / "c" / "p.json", [step("add", "plug", "Add")])
    pipeline = Pipeline(load_config(config), check_interval=0)
    assert out(pipeline) == 0 and "syntax error" in pipeline.steps[0].load_error
    write_file(plugin, ADD.format(offset=0))
    assert out(pipeline) == 1 and pipeline.steps[0].load_error == ""


def test_config_broken_at_start_is_watched_and_loads_once_fixed(workdir):
    write_file(workdir / "c" / "plug.py", ADD.format(offset=0))
    config = write_file(workdir / "c" / "p.json", "{ not json")
    pipeline = open_pipeline(config, check_interval=0)
    assert "invalid JSON" in pipeline.last_error and pipeline.names == []
    write_config(config, [step("add", "plug", "Add")])
    assert out(pipeline) == 1


def test_saving_from_the_pipeline_does_not_trigger_a_reload(setup):
    _, _, config, pipeline = setup
    pipeline.set_enabled("add", False)
    pipeline.save_config()
    assert pipeline.reload_if_changed(force=True) is False
    assert '"enabled": false' in config.read_text()
