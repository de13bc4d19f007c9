"""Finding and executing plugin modules, building processors, every load failure."""
import sys

import numpy as np
import pytest

from pystream.pipeline import PluginError, ProcessorSpec, load_module
from pystream.pipeline import processors as builtins
from pystream.pipeline.loader import build_processor, file_signature

from .conftest import ARITH_PLUGIN, write_file


def test_dotted_module_is_found_on_the_search_path(tmp_path):
    write_file(tmp_path / "pkg" / "arith.py", ARITH_PLUGIN)
    loaded = load_module("pkg.arith", [tmp_path / "missing", tmp_path])
    assert loaded.file == (tmp_path / "pkg" / "arith.py").resolve()
    assert loaded.signature == file_signature(loaded.file)
    processor = build_processor(ProcessorSpec("a", "pkg.arith", "Add", {"value": 5}), loaded)
    assert processor.apply(np.zeros(2, np.float32), {}).tolist() == [5, 5]


def test_first_root_wins(tmp_path):
    write_file(tmp_path / "a" / "plug.py", "WHO = 'a'\n")
    write_file(tmp_path / "b" / "plug.py", "WHO = 'b'\n")
    assert load_module("plug", [tmp_path / "b", tmp_path / "a"]).module.WHO == "b"


def test_py_path_relative_to_a_root_or_absolute(tmp_path):
    path = write_file(tmp_path / "conf" / "my plug.py", "WHO = 'file'\n")
    assert load_module("my plug.py", [tmp_path / "conf"]).module.WHO == "file"
    assert load_module(str(path), []).module.WHO == "file"
    with pytest.raises(PluginError, match="plugin file 'gone.py' not found"):
        load_module("gone.py", [tmp_path / "conf"])


def test_installed_module_falls_back_to_a_normal_import(tmp_path):
    loaded = load_module("pystream.pipeline.processors", [tmp_path])
    assert loaded.module is builtins
    assert loaded.file is None and not loaded.changed()


def test_unknown_module_lists_the_search_path(tmp_path):
    with pytest.raises(PluginError) as info:
        load_module("no_such_plugin_xyz", [tmp_path])
    assert "not found on the plugin search path" in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_syntax_error_names_file_and_line_and_leaves_no_module(tmp_path):
    path = write_file(tmp_path / "broken.py", "x = 1\ndef oops(:\n")
    before = set(sys.modules)
    with pytest.raises(PluginError) as info:
        load_module("broken", [tmp_path])
    assert "syntax error at line 2" in str(info.value)
    assert info.value.file == path.resolve()
    assert not [name for name in set(sys.modules) - before if "broken" in name]


def test_import_error_inside_plugin(tmp_path):
    write_file(tmp_path / "needs.py", "import not_installed_package_xyz\n")
    with pytest.raises(PluginError, match="import failed: ModuleNotFoundError.*not_installed_package_xyz"):
        load_module("needs", [tmp_path])


def test_plugin_can_import_a_sibling_helper_and_use_dataclasses(tmp_path):
    write_file(tmp_path / "helper_for_plug.py", "OFFSET = 7\n")
    write_file(tmp_path / "withhelper.py", """
        from dataclasses import dataclass
        import helper_for_plug

        @dataclass
        class Shift:
            by: int = helper_for_plug.OFFSET

            def apply(self, img, meta):
                return img + self.by
    """)
    loaded = load_module("withhelper", [tmp_path])
    processor = build_processor(ProcessorSpec("s", "withhelper", "Shift"), loaded)
    assert processor.apply(np.zeros(1), {}).tolist() == [7]
    assert str(tmp_path) not in sys.path  # only on sys.path while loading


def test_each_load_executes_the_current_file(tmp_path):
    path = write_file(tmp_path / "ver.py", "VERSION = 1\n")
    first = load_module("ver", [tmp_path])
    write_file(path, "VERSION = 2\n")
    assert first.changed()
    second = load_module("ver", [tmp_path])
    assert (first.module.VERSION, second.module.VERSION) == (1, 2)
    assert not second.changed()


def test_missing_class_lists_the_classes_found(tmp_path):
    write_file(tmp_path / "arith.py", ARITH_PLUGIN)
    loaded = load_module("arith", [tmp_path])
    with pytest.raises(PluginError, match=r"no class 'Sub' \(classes found: Add, Mul\)"):
        build_processor(ProcessorSpec("x", "arith", "Sub"), loaded)


def test_bad_kwargs_are_a_load_error(tmp_path):
    write_file(tmp_path / "arith.py", ARITH_PLUGIN)
    loaded = load_module("arith", [tmp_path])
    with pytest.raises(PluginError, match=r"Add\(\*\*\{'bogus': 1\}\) failed: TypeError"):
        build_processor(ProcessorSpec("x", "arith", "Add", {"bogus": 1}), loaded)


def test_constructor_error_is_a_load_error(tmp_path):
    loaded = load_module("pystream.pipeline.processors", [])
    with pytest.raises(PluginError, match="kernel_size must be an odd integer"):
        build_processor(ProcessorSpec("m", "x", "MedianFilter", {"kernel_size": 4}), loaded)


def test_class_without_apply_is_rejected(tmp_path):
    write_file(tmp_path / "noapply.py", "class P:\n    def run(self, img, meta):\n        return img\n")
    with pytest.raises(PluginError, match="has no apply"):
        build_processor(ProcessorSpec("p", "noapply", "P"), load_module("noapply", [tmp_path]))


def test_function_form_binds_params_and_checks_them_at_load(tmp_path):
    write_file(tmp_path / "gain.py", """
        def process(img, meta=None, gain=1.0):
            if meta is not None:
                meta["gain"] = gain
            return img * gain
    """)
    loaded = load_module("gain", [tmp_path])
    processor = build_processor(ProcessorSpec("g", "gain", None, {"gain": 3}), loaded)
    meta = {}
    assert processor.apply(np.ones(2), meta).tolist() == [3, 3] and meta == {"gain": 3}
    with pytest.raises(PluginError, match="do not fit process"):
        build_processor(ProcessorSpec("g", "gain", None, {"gian": 3}), loaded)


def test_function_form_without_process(tmp_path):
    write_file(tmp_path / "empty.py", "X = 1\n")
    with pytest.raises(PluginError, match=r"no process\(img, meta=None, \*\*params\) function"):
        build_processor(ProcessorSpec("e", "empty", None), load_module("empty", [tmp_path]))
