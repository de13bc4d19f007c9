"""Config schemas, validation messages, default path and plugin search path."""
import json
from pathlib import Path

import pytest

from pystream.pipeline import (ConfigError, ProcessorSpec, load_config, package_dir, parse_config,
                               plugin_search_path, resolve_config_path, save_config)
from pystream.pipeline.config import DEFAULT_CONFIG_NAME

from .conftest import write_config, write_file

REPO = Path(__file__).resolve().parents[2]


def test_class_form_is_parsed_with_defaults(workdir):
    path = write_config(workdir / "p.json", [
        {"name": "A", "module": "m", "class": "Add", "kwargs": {"value": 2}},
        {"module": "pkg.m", "class": "Mul", "enabled": False},
    ])
    config = load_config(path)
    assert config.schema == "processors"
    assert config.steps == (
        ProcessorSpec("A", "m", "Add", {"value": 2}, True),
        ProcessorSpec("Mul", "pkg.m", "Mul", {}, False),  # name defaults to the class
    )
    assert config.path == path.resolve()
    assert config.hot_reload is True
    assert config.warnings == ()


def test_function_form_is_parsed(workdir):
    path = write_config(workdir / "old.json", [
        {"name": "gain", "module": "gainmod", "params": {"g": 3}},
        {"module": "other.py", "enabled": False},
    ], schema="pipeline", processors_dir="plugins", hot_reload=False)
    config = load_config(path)
    assert config.schema == "pipeline"
    assert [s.kind for s in config.steps] == ["function", "function"]
    assert config.steps[0].kwargs == {"g": 3} and config.steps[0].class_name is None
    assert config.steps[1].name == "other" and config.steps[1].enabled is False
    assert config.hot_reload is False
    assert config.search_path[0] == (workdir / "plugins").resolve()


@pytest.mark.parametrize("data, expected", [
    ([], "must be a JSON object"),
    ({"steps": []}, "no 'processors' list"),
    ({"processors": [], "pipeline": []}, "has both"),
    ({"processors": {"a": 1}}, "'processors' must be a list"),
    ({"processors": ["MedianFilter"]}, "processors[0]: each step must be an object"),
    ({"processors": [{"class": "X"}]}, "processors[0]: 'module'"),
    ({"processors": [{"module": "m"}]}, "processors[0]: 'class'"),
    ({"processors": [{"module": "m", "class": "C", "kwargs": [1]}]}, "'kwargs' must be an object"),
    ({"pipeline": [{"module": "m", "params": "x"}]}, "'params' must be an object"),
    ({"processors": [{"module": "m", "class": "C", "enabled": "yes"}]}, "'enabled' must be true or false"),
    ({"processors": [{"module": "m", "class": "C", "name": ""}]}, "'name' must be a non-empty string"),
    ({"processors": [{"module": "m", "class": "C"}, {"module": "n", "class": "C"}]},
     "name 'C' is already used by processors[0]"),
    ({"processors": [], "hot_reload": "on"}, "'hot_reload' must be true or false"),
])
def test_invalid_configs_say_where_and_why(data, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.json")
    assert expected in str(info.value)
    assert str(info.value).startswith("cfg.json")


def test_invalid_json_reports_line_and_column(workdir):
    path = write_file(workdir / "bad.json", '{\n  "processors": [\n    {"module": "m",}\n  ]\n}\n')
    with pytest.raises(ConfigError, match=r"invalid JSON at line 3 column"):
        load_config(path)


def test_missing_config_file_is_a_clear_error(workdir):
    with pytest.raises(ConfigError, match="not found"):
        load_config(workdir / "nope.json")


def test_a_binary_file_or_a_folder_as_config_is_a_clear_error(workdir):
    binary = workdir / "image.json"
    binary.write_bytes(b"\xff\xd8\xff\xe0 not json")
    with pytest.raises(ConfigError, match="not a text \\(UTF-8\\) file"):
        load_config(binary)
    folder = workdir / "cwd" / "pipelines"
    folder.mkdir()
    for path in (folder, "pipelines"):  # absolute, and found relative to the current directory
        with pytest.raises(ConfigError, match="is a directory; give the JSON file in it"):
            resolve_config_path(path)


def test_unknown_keys_are_warnings_with_a_hint(workdir):
    config = parse_config({"processors": [{"module": "m", "class": "C", "kwarg": {}}], "hotreload": True})
    assert any("unknown key 'kwarg'" in w and "did you mean 'kwargs'" in w for w in config.warnings)
    assert any("'hotreload'" in w and "'hot_reload'" in w for w in config.warnings)


def test_search_path_order(workdir):
    config_dir = workdir / "proj" / "pipelines"
    path = write_config(config_dir / "processors.json", [], processors_dir="../mine")
    config = load_config(path)
    assert config.search_path == (
        (workdir / "proj" / "mine").resolve(),
        config_dir.resolve(),
        (config_dir / "processors").resolve(),
        (workdir / "proj").resolve(),  # the folder holding pipelines/ (seed layout)
        (workdir / "cwd").resolve(),
        (workdir / ".pystream" / "processors").resolve(),
    )


def test_parent_folder_is_searched_only_for_a_pipelines_folder(workdir):
    roots = plugin_search_path(workdir / "configs" / "p.json")
    assert workdir.resolve() not in roots
    assert roots[0] == (workdir / "configs").resolve()


def test_explicit_relative_path_is_found_in_cwd_then_user_dir(workdir):
    in_user_dir = write_config(workdir / ".pystream" / "mine.json", [])
    assert resolve_config_path("mine.json") == in_user_dir.resolve()
    in_cwd = write_config(workdir / "cwd" / "mine.json", [])
    assert resolve_config_path("mine.json") == in_cwd.resolve()


def test_default_path_prefers_cwd_then_user_dir_then_package(workdir):
    packaged = resolve_config_path(None)
    assert packaged == (package_dir() / DEFAULT_CONFIG_NAME).resolve()
    user = write_config(workdir / ".pystream" / "pipelines" / "processors.json", [])
    assert resolve_config_path(None) == user.resolve()
    local = write_config(workdir / "cwd" / "pipelines" / "processors.json", [])
    assert resolve_config_path() == local.resolve()


def test_missing_explicit_config_lists_places_tried(workdir):
    with pytest.raises(ConfigError) as info:
        resolve_config_path("typo.json")
    message = str(info.value)
    assert "typo.json" in message and str(workdir / "cwd") in message and ".pystream" in message
    with pytest.raises(ConfigError, match="not found"):
        resolve_config_path(workdir / "absent.json")


def test_packaged_default_config_is_valid():
    config = load_config(package_dir() / "pipelines" / "processors.json")
    assert {"MedianFilter", "BackgroundSubtract", "FlatField"} <= {s.name for s in config.steps}
    assert all(s.module == "pystream.pipeline.processors" for s in config.steps)


def test_repo_config_matches_the_seed_example():
    config = load_config(REPO / "pipelines" / "processors.json")
    by_name = {s.name: s for s in config.steps}
    assert by_name["MedianFilter"].module == "processors.filters"
    assert by_name["MedianFilter"].kwargs == {"kernel_size": 3}
    assert by_name["BackgroundSubtract"].module == "processors.background"
    assert by_name["BackgroundSubtract"].kwargs == {"method": "rolling", "window": 10}


def test_save_round_trips_both_schemas(workdir):
    for schema, args in (("processors", "kwargs"), ("pipeline", "params")):
        entry = {"name": "s", "module": "m", "enabled": False, args: {"k": 1}}
        if schema == "processors":
            entry["class"] = "C"
        path = write_config(workdir / f"{schema}.json", [entry], schema=schema)
        config = load_config(path)
        out = save_config(config, workdir / f"{schema}-saved.json")
        saved = json.loads(out.read_text())
        assert saved == {schema: [entry]}
        assert load_config(out).steps == config.steps
