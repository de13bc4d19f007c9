"""Persistent viewer settings: ``~/.pystream/viewer_config.json``.

A missing or corrupt file gives defaults and one warning, never a crash;
writes are atomic (temp file + rename) so a crash never leaves half a file.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Dict

log = logging.getLogger(__name__)

DEFAULTS: Dict[str, Any] = {"last_pv": "", "colormap": "gray"}


def config_dir() -> Path:
    return Path.home() / ".pystream"


def settings_path() -> Path:
    return config_dir() / "viewer_config.json"


def load_settings(path: Path | None = None) -> Dict[str, Any]:
    path = path or settings_path()
    settings = dict(DEFAULTS)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ValueError("top level is not a JSON object")
        settings.update(data)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("ignoring settings file %s (%s); using defaults", path, exc)
    return settings


def save_settings(settings: Dict[str, Any], path: Path | None = None) -> bool:
    """Write atomically; returns False (and logs) if it could not."""
    path = path or settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".viewer_config.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(settings, fh, indent=2, sort_keys=True)
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.warning("could not save settings to %s: %s", path, exc)
        return False
