"""Pipeline configuration: the JSON schemas, their validation, and where files are found.

Two schemas are accepted (both are what users already have):

- class form (current)::

    {"processors": [{"name", "module", "class", "kwargs", "enabled"}],
     "processors_dir": optional, "hot_reload": optional}

- function form (older ``procplug``)::

    {"pipeline": [{"name", "module", "enabled", "params"}],
     "processors_dir": optional, "hot_reload": optional}

  where ``module`` defines ``process(img, meta=None, **params)``.

Errors are ``ConfigError`` with the file, the step and the reason in the
message. Unknown keys are not errors (a newer config must still load) but are
reported in ``PipelineConfig.warnings`` with a "did you mean" hint.
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

#: the ``--proc-config`` default, relative to the places listed in resolve_config_path
DEFAULT_CONFIG_NAME = os.path.join("pipelines", "processors.json")

#: folder of the viewer's own settings (``~/.pystream/viewer_config.json``)
USER_DIR_NAME = ".pystream"

CLASS_STEP_KEYS = ("name", "module", "class", "kwargs", "enabled")
FUNCTION_STEP_KEYS = ("name", "module", "enabled", "params")
TOP_LEVEL_KEYS = ("processors", "pipeline", "processors_dir", "hot_reload")


class ConfigError(ValueError):
    """A pipeline config that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class ProcessorSpec:
    """One step as the config describes it (no code loaded)."""

    name: str
    module: str  # dotted module name, or a path to a .py file
    class_name: Optional[str]  # None for the function form (module.process)
    kwargs: Dict[str, Any] = field(default_factory=dict)
    enabled: bool = True

    @property
    def kind(self) -> str:
        return "function" if self.class_name is None else "class"

    def to_json(self) -> Dict[str, Any]:
        if self.class_name is None:
            return {"name": self.name, "module": self.module, "enabled": self.enabled,
                    "params": dict(self.kwargs)}
        return {"name": self.name, "module": self.module, "class": self.class_name,
                "kwargs": dict(self.kwargs), "enabled": self.enabled}


@dataclass(frozen=True)
class PipelineConfig:
    """A validated config: steps in order, where plugins are looked for."""

    steps: Tuple[ProcessorSpec, ...] = ()
    path: Optional[Path] = None  # the file it came from (None: built in code)
    search_path: Tuple[Path, ...] = ()
    hot_reload: bool = True
    schema: str = "processors"  # "processors" (class form) or "pipeline" (function form)
    processors_dir: Optional[Path] = None
    warnings: Tuple[str, ...] = ()

    def with_steps(self, steps: Sequence[ProcessorSpec]) -> "PipelineConfig":
        return replace(self, steps=tuple(steps))

    def to_json(self) -> Dict[str, Any]:
        """The config as it would be written back, in the schema it was read in."""
        data: Dict[str, Any] = {self.schema: [s.to_json() for s in self.steps]}
        if self.processors_dir is not None:
            data["processors_dir"] = str(self.processors_dir)
        if not self.hot_reload:
            data["hot_reload"] = False
        return data


def package_dir() -> Path:
    """The installed ``pystream`` package folder (holds ``pipelines/processors.json``)."""
    return Path(__file__).resolve().parent.parent


def user_dir() -> Path:
    """``~/.pystream``: the folder of the viewer's config file."""
    return Path.home() / USER_DIR_NAME


def resolve_config_path(path: Optional[PathLike] = None, *,
                        config_dir: Optional[PathLike] = None,
                        cwd: Optional[PathLike] = None) -> Path:
    """Where the pipeline config is.

    ``path`` is the ``--proc-config`` value (None: the default
    ``pipelines/processors.json``). An absolute path is taken as is. A relative
    one is looked for, in order, in the current directory, ``config_dir`` (the
    folder of the viewer's config file, default ``~/.pystream``) and the
    installed package (which ships ``pipelines/processors.json``, so the
    default always resolves). Raises ConfigError listing the places tried when
    nothing exists.
    """
    requested = Path(os.path.expanduser(os.fspath(path if path is not None else DEFAULT_CONFIG_NAME)))
    if requested.is_absolute():
        if requested.is_file():
            return requested
        if requested.is_dir():
            raise ConfigError(f"pipeline config {requested} is a directory; give the JSON file in it")
        raise ConfigError(f"pipeline config not found: {requested}")
    bases = [Path(cwd) if cwd is not None else Path.cwd(),
             Path(config_dir) if config_dir is not None else user_dir(),
             package_dir()]
    tried = []
    for base in bases:
        candidate = base / requested
        if candidate.is_file():
            return candidate.resolve()
        if candidate.is_dir():
            raise ConfigError(f"pipeline config {candidate} is a directory; give the JSON file in it")
        tried.append(str(candidate))
    raise ConfigError(f"pipeline config {os.fspath(requested)!r} not found; tried: " + ", ".join(tried))


def plugin_search_path(config_path: Optional[PathLike] = None,
                       processors_dir: Optional[PathLike] = None,
                       cwd: Optional[PathLike] = None) -> Tuple[Path, ...]:
    """Folders a dotted plugin module is looked for in, first match wins.

    1. ``processors_dir`` from the config (relative to the config's folder),
    2. the config file's folder, 3. ``processors/`` beside it,
    4. the folder holding ``pipelines/`` when the config lives in a folder
       named ``pipelines`` (the seed layout ``pipelines/processors.json`` next
       to ``processors/``, so ``processors.filters`` resolves from anywhere),
    5. the current directory, 6. ``~/.pystream/processors``.
    """
    roots: List[Path] = []
    config_dir = Path(config_path).resolve().parent if config_path is not None else None
    if processors_dir is not None:
        pdir = Path(os.path.expanduser(os.fspath(processors_dir)))
        if not pdir.is_absolute() and config_dir is not None:
            pdir = config_dir / pdir
        roots.append(pdir)
    if config_dir is not None:
        roots += [config_dir, config_dir / "processors"]
        if config_dir.name == "pipelines":
            roots.append(config_dir.parent)
    roots.append(Path(cwd) if cwd is not None else Path.cwd())
    roots.append(user_dir() / "processors")
    unique: List[Path] = []
    for root in roots:
        root = root.resolve()
        if root not in unique:
            unique.append(root)
    return tuple(unique)


def _unknown_key_warnings(where: str, data: dict, known: Sequence[str]) -> List[str]:
    warnings = []
    for key in data:
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            warnings.append(f"{where}: unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return warnings


def _step_from_json(entry: Any, index: int, schema: str, where: str) -> Tuple[ProcessorSpec, List[str]]:
    at = f"{where}: {schema}[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{at}: each step must be an object, got {type(entry).__name__}")
    function_form = schema == "pipeline"
    args_key = "params" if function_form else "kwargs"
    module = entry.get("module")
    if not isinstance(module, str) or not module.strip():
        raise ConfigError(f"{at}: 'module' (a dotted module name or a .py path) is required")
    class_name = None
    if not function_form:
        class_name = entry.get("class")
        if not isinstance(class_name, str) or not class_name.strip():
            raise ConfigError(f"{at}: 'class' (the processor class in {module!r}) is required")
    name = entry.get("name")
    if name is None:
        if class_name:
            name = class_name
        elif module.endswith(".py"):
            name = Path(module).stem
        else:
            name = module.rsplit(".", 1)[-1]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{at}: 'name' must be a non-empty string")
    at = f"{at} ({name!r})"
    kwargs = entry.get(args_key, {})
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"{at}: {args_key!r} must be an object, got {type(kwargs).__name__}")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{at}: 'enabled' must be true or false, got {enabled!r}")
    known = FUNCTION_STEP_KEYS if function_form else CLASS_STEP_KEYS
    warnings = _unknown_key_warnings(at, entry, known)
    spec = ProcessorSpec(name=name.strip(), module=module.strip(), class_name=class_name,
                         kwargs=dict(kwargs), enabled=enabled)
    return spec, warnings


def parse_config(data: Any, path: Optional[PathLike] = None, *,
                 cwd: Optional[PathLike] = None) -> PipelineConfig:
    """Validate a decoded JSON config (either schema) into a PipelineConfig."""
    where = os.fspath(path) if path is not None else "<pipeline config>"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the config must be a JSON object with a 'processors' list, "
                          f"got {type(data).__name__}")
    has_class_form, has_function_form = "processors" in data, "pipeline" in data
    if has_class_form and has_function_form:
        raise ConfigError(f"{where}: has both 'processors' and 'pipeline'; use one "
                          "('processors' for classes, 'pipeline' for process() functions)")
    if not (has_class_form or has_function_form):
        raise ConfigError(f"{where}: no 'processors' list (or older 'pipeline' list) found; "
                          f"keys present: {sorted(data)}")
    schema = "processors" if has_class_form else "pipeline"
    entries = data[schema]
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: {schema!r} must be a list, got {type(entries).__name__}")
    hot_reload = data.get("hot_reload", True)
    if not isinstance(hot_reload, bool):
        raise ConfigError(f"{where}: 'hot_reload' must be true or false, got {hot_reload!r}")
    processors_dir = data.get("processors_dir")
    if processors_dir is not None and not isinstance(processors_dir, str):
        raise ConfigError(f"{where}: 'processors_dir' must be a string path")

    warnings = _unknown_key_warnings(where, data, TOP_LEVEL_KEYS)
    steps: List[ProcessorSpec] = []
    seen: Dict[str, int] = {}
    for index, entry in enumerate(entries):
        spec, step_warnings = _step_from_json(entry, index, schema, where)
        warnings += step_warnings
        if spec.name in seen:
            # stats, the panel and set_enabled() are keyed by name
            raise ConfigError(f"{where}: {schema}[{index}]: name {spec.name!r} is already used by "
                              f"{schema}[{seen[spec.name]}]; step names must be unique")
        seen[spec.name] = index
        steps.append(spec)

    config_path = Path(path).resolve() if path is not None else None
    pdir = Path(processors_dir) if processors_dir else None
    return PipelineConfig(
        steps=tuple(steps),
        path=config_path,
        search_path=plugin_search_path(config_path, pdir, cwd=cwd),
        hot_reload=hot_reload,
        schema=schema,
        processors_dir=pdir,
        warnings=tuple(warnings),
    )


def load_config(path: PathLike, *, cwd: Optional[PathLike] = None) -> PipelineConfig:
    """Read and validate a config file. Raises ConfigError with a clear reason."""
    path = Path(os.path.expanduser(os.fspath(path)))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"pipeline config not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"pipeline config {path} is a directory; give the JSON file in it") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text (UTF-8) file, so not a JSON pipeline config "
                          f"(byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return parse_config(data, path, cwd=cwd)


def save_config(config: PipelineConfig, path: Optional[PathLike] = None) -> Path:
    """Write ``config`` as JSON (atomically, so a hot reload never reads half a file)."""
    target = Path(path) if path is not None else config.path
    if target is None:
        raise ConfigError("no path to save the pipeline config to")
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(config.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target
