"""Helpers for pipeline tests: real plugin and config files in tmp_path."""
import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest


def write_file(path: Path, text: str) -> Path:
    """Write ``text`` and move the mtime forward, so a rewrite is always seen as a change."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    mtime = max(old + 1_000_000_000, path.stat().st_mtime_ns)
    os.utime(path, ns=(mtime, mtime))
    return path


def write_config(path: Path, steps, schema: str = "processors", **extra) -> Path:
    return write_file(path, json.dumps({schema: steps, **extra}, indent=1))


def step(name, module, cls=None, kwargs=None, enabled=True):
    entry = {"name": name, "module": module, "enabled": enabled}
    if cls is not None:
        entry["class"] = cls
    if kwargs is not None:
        entry["kwargs"] = kwargs
    return entry


# plugins used by many tests: add a constant, multiply by a factor
ARITH_PLUGIN = """
    import numpy as np

    class Add:
        def __init__(self, value=1.0):
            self.value = value

        def apply(self, img, meta):
            return img + np.float32(self.value)

    class Mul:
        def __init__(self, factor=2.0):
            self.factor = factor

        def apply(self, img, meta):
            return img * np.float32(self.factor)
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch, home):
    """An empty current directory and home, so no real plugin or config is found by accident."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return tmp_path


@pytest.fixture
def img():
    return np.arange(12, dtype=np.float32).reshape(3, 4)
