"""Loading plugin code: find a module, execute it, build the step, reload on change.

A plugin module found on the search path (or given as a ``.py`` path) is
executed from its file into a fresh module object every time it is loaded, so
a reload never depends on ``importlib.reload`` or on stale ``sys.modules``
entries. While it runs, the module is registered under a private name
(``_pystream_plugin_<hash>_<name>``; dataclasses and pickle look a class's
module up there) and its search root is put on ``sys.path`` so it can import
sibling helpers with absolute imports (those helpers are imported normally and
are not hot reloaded). If executing the new version fails, the previous
module object is put back: the last working version keeps running.

A dotted name found nowhere on the search path falls back to a normal import
(e.g. ``pystream.pipeline.processors``); such modules are not hot reloaded.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from .config import ProcessorSpec

#: (mtime_ns, size) of a file, or None when it is missing or not a file we watch
FileSignature = Optional[Tuple[int, int]]

_sys_path_lock = threading.RLock()  # loads in two threads must not interleave sys.path edits


class PluginError(Exception):
    """A plugin that cannot be loaded or built; the message is the reason.

    ``file`` is the plugin's source file when it was found (watched for a fix).
    """

    def __init__(self, message: str, file: Optional[Path] = None):
        super().__init__(message)
        self.file = file


def file_signature(path: Optional[Path]) -> FileSignature:
    """What changes when a file is saved: cheap (one stat)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _looks_like_path(module_ref: str) -> bool:
    return module_ref.endswith(".py") or "/" in module_ref or os.sep in module_ref


def find_module_file(module_ref: str, search_path: Sequence[Path]) -> Tuple[Optional[Path], Optional[Path]]:
    """(file, search root) of a plugin module, or (None, None) if not on the search path.

    Raises PluginError for a ``.py`` path that does not exist.
    """
    if _looks_like_path(module_ref):
        given = Path(os.path.expanduser(module_ref))
        candidates = [given] if given.is_absolute() else [root / given for root in search_path]
        for candidate in candidates:
            if candidate.is_file():
                candidate = candidate.resolve()
                return candidate, candidate.parent
        raise PluginError(f"plugin file {module_ref!r} not found; tried: "
                          + ", ".join(str(c) for c in candidates))
    parts = module_ref.split(".")
    if not all(part.isidentifier() for part in parts):
        raise PluginError(f"{module_ref!r} is neither a dotted module name nor a .py path")
    for root in search_path:
        base = root.joinpath(*parts)
        for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate.resolve(), root
    return None, None


def _private_name(module_ref: str, file: Path) -> str:
    # crc32, not hashlib: hashlib loads libcrypto (3.6 MB of RSS) for 8 hex digits
    digest = f"{zlib.crc32(str(file).encode()):08x}"
    base = Path(module_ref).stem if module_ref.endswith(".py") else module_ref
    stem = "".join(ch if ch.isalnum() else "_" for ch in base)
    return f"_pystream_plugin_{digest}_{stem}"


def exec_module_file(file: Path, private_name: str, root: Optional[Path]) -> ModuleType:
    """Execute ``file`` into a new module object; on failure restore sys.modules."""
    spec = importlib.util.spec_from_file_location(private_name, file)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot load {file}")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(private_name)
    sys.modules[private_name] = module
    try:
        with _sys_path_lock:
            added = root is not None and str(root) not in sys.path
            if added:
                sys.path.insert(0, str(root))
            try:
                spec.loader.exec_module(module)
            finally:
                if added:
                    try:
                        sys.path.remove(str(root))
                    except ValueError:
                        pass
    except BaseException:
        if previous is not None:
            sys.modules[private_name] = previous
        else:
            sys.modules.pop(private_name, None)
        raise
    return module


@dataclass
class LoadedModule:
    """A module as loaded, and what its file looked like then."""

    ref: str
    module: ModuleType
    file: Optional[Path]  # None for a normally imported (not hot-reloadable) module
    signature: FileSignature

    def changed(self) -> bool:
        return self.file is not None and file_signature(self.file) != self.signature


def load_module(module_ref: str, search_path: Sequence[Path]) -> LoadedModule:
    """Find and execute a plugin module. Raises PluginError with the reason."""
    file, root = find_module_file(module_ref, search_path)
    if file is None:
        try:
            module = importlib.import_module(module_ref)
        except ModuleNotFoundError as exc:
            if exc.name and (module_ref == exc.name or module_ref.startswith(exc.name + ".")):
                raise PluginError(f"module {module_ref!r} not found on the plugin search path ("
                                  + ", ".join(str(r) for r in search_path) + ") nor importable") from None
            raise PluginError(f"importing {module_ref!r} failed: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            raise PluginError(f"importing {module_ref!r} failed: {type(exc).__name__}: {exc}") from exc
        return LoadedModule(module_ref, module, None, None)
    signature = file_signature(file)  # before executing: a save during the load is seen next time
    try:
        module = exec_module_file(file, _private_name(module_ref, file), root)
    except SyntaxError as exc:
        raise PluginError(f"{file}: syntax error at line {exc.lineno}: {exc.msg}", file) from exc
    except Exception as exc:
        raise PluginError(f"{file}: import failed: {type(exc).__name__}: {exc}", file) from exc
    return LoadedModule(module_ref, module, file, signature)


class FunctionProcessor:
    """Adapts the older function form ``process(img, meta=None, **params)`` to ``apply``."""

    def __init__(self, function: Callable[..., Any], params: Dict[str, Any]):
        self.function = function
        self.params = dict(params)

    def apply(self, img, meta):
        return self.function(img, meta, **self.params)


def ignored_params(processor: Any, kwargs: dict) -> list:
    """The kwargs a processor class takes without using: those its ``__init__``
    does not name, when it gathers the rest in a ``**_ignored``-style
    parameter (leading underscore: accepted for compatibility, never read).
    A class whose ``**kwargs`` has a plain name may use them: nothing to say."""
    try:
        params = inspect.signature(type(processor)).parameters.values()
    except (TypeError, ValueError):
        return []
    if not any(p.kind is p.VAR_KEYWORD and p.name.startswith("_") for p in params):
        return []
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return sorted(k for k in kwargs if k not in named)


def build_processor(spec: ProcessorSpec, loaded: LoadedModule) -> Any:
    """Instantiate the step's processor from a loaded module. Raises PluginError."""
    module = loaded.module
    where = loaded.file or loaded.ref
    if spec.class_name is None:
        function = getattr(module, "process", None)
        if not callable(function):
            raise PluginError(f"{where}: no process(img, meta=None, **params) function")
        try:
            # catch a misspelt param now, not as an error on every frame
            inspect.signature(function).bind(None, None, **spec.kwargs)
        except TypeError as exc:
            raise PluginError(f"{spec.name}: params {spec.kwargs} do not fit process(): {exc}") from None
        except ValueError:
            pass  # builtins without a signature: find out at call time
        return FunctionProcessor(function, spec.kwargs)
    cls = getattr(module, spec.class_name, None)
    if cls is None:
        public = sorted(n for n, v in vars(module).items() if isinstance(v, type) and not n.startswith("_"))
        raise PluginError(f"{where}: no class {spec.class_name!r} (classes found: {', '.join(public) or 'none'})")
    if not callable(cls):
        raise PluginError(f"{where}: {spec.class_name!r} is not a class")
    try:
        processor = cls(**spec.kwargs)
    except Exception as exc:
        raise PluginError(f"{spec.name}: {spec.class_name}(**{spec.kwargs}) failed: "
                          f"{type(exc).__name__}: {exc}") from exc
    if not callable(getattr(processor, "apply", None)):
        raise PluginError(f"{where}: {spec.class_name} has no apply(img, meta) method")
    return processor
