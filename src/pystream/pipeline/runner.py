"""``Pipeline``: runs the configured steps on each frame, isolates failures, reloads on change.

Threading:

- ``apply`` runs in a worker thread (the display worker; the recorder may own
  a second Pipeline). Each Pipeline owns its processor instances, and
  stateful ones (BackgroundSubtract's window) must see one stream, so give
  each consumer its own Pipeline (``clone()``). ``apply`` holds a
  per-pipeline lock, so sharing one instance is safe but serialises callers.
- Edits (``set_enabled``, ``move``, ``set_kwargs``) may come from the GUI
  thread: they build a new immutable tuple of steps and swap it in; ``apply``
  takes the tuple once per frame, so a frame sees one consistent pipeline.
- ``reload_if_changed`` may run in either thread; a lock keeps two reloads
  from interleaving, and the worker skips its check while the GUI reloads.

Each step receives its input read-only (an O(1) view): the frame's array may
be shared with the recorder, and a step that writes into its input and then
fails must leave nothing behind. A plugin that wants to modify in place must
copy first (the error message says so). The returned array may be read-only.

Failures are values: a step that raises, returns None or returns the wrong
kind of array is bypassed for that frame, counted, and logged with its
traceback (the first time, when the message changes, and at 10, 100, 1000...
to keep a broken step from flooding the log). A plugin that fails to load or
reload keeps its last working version, and the error is shown.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .config import (ConfigError, PipelineConfig, ProcessorSpec, load_config, resolve_config_path,
                     save_config)
from .loader import (LoadedModule, PluginError, build_processor, file_signature, ignored_params,
                     load_module)

log = logging.getLogger("pystream.pipeline")

# pystream's pipeline machinery (loader, runner): its frames say nothing to a
# plugin's author; the example plugins shipped in pystream/pipelines/ are not in it
_MACHINERY_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _steps_text(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def plugin_traceback(exc: BaseException) -> str:
    """The part of a plugin failure's traceback that is in the plugin's own
    code (pystream's loader and importlib frames say nothing to its author);
    a syntax error keeps its file, line and caret."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith((_MACHINERY_DIR, "<frozen"))]
    if not frames and not isinstance(exc, SyntaxError):
        return ""
    head = "Traceback (most recent call last):\n" if frames else ""
    text = head + "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(exc), exc))
    return text.rstrip("\n")

PathLike = Union[str, "os.PathLike[str]"]

_STATIC = object()  # a normally imported module: never reloaded

#: weight of the newest sample in the per-step timing average
EMA_ALPHA = 0.2


@dataclass(frozen=True)
class _Step:
    """One step as the pipeline runs it (immutable; edits make new ones)."""

    spec: ProcessorSpec
    processor: Any = None  # None: never loaded successfully (bypassed)
    module: Optional[LoadedModule] = None
    load_error: str = ""  # why the current code/kwargs are not the ones running


@dataclass
class _StepStats:
    ms_ema: Optional[float] = None
    calls: int = 0
    errors: int = 0
    last_error: str = ""
    last_logged: Tuple[str, int] = ("", 0)


@dataclass(frozen=True)
class StepInfo:
    """What the panel and scripts see of a step (a snapshot)."""

    name: str
    enabled: bool
    kind: str  # "class" or "function"
    module: str
    class_name: Optional[str]
    kwargs: Dict[str, Any]
    file: Optional[Path]  # the plugin's source file, when it was loaded from one
    loaded: bool  # False: no working version, the step is bypassed
    load_error: str
    ms: Optional[float]  # average time per frame (EMA), None before the first run
    calls: int
    errors: int
    last_error: str


def _read_only(img: Any) -> Any:
    """A read-only view (O(1)): the frame's array may be shared with the recorder, and a
    step that fails after writing into its input must leave nothing behind."""
    if not isinstance(img, np.ndarray) and hasattr(img, "__array__"):
        img = np.asarray(img)  # e.g. the display worker's frame with deferred corrections
    if isinstance(img, np.ndarray) and img.flags.writeable:
        img = img.view()
        img.flags.writeable = False
    return img


def check_output(out: Any, img_in: np.ndarray) -> Optional[str]:
    """Why a step's result cannot be used, or None when it can."""
    if out is None:
        return "returned None (expected a numpy array)"
    if not isinstance(out, np.ndarray):
        return f"returned {type(out).__name__} (expected a numpy array)"
    if out.dtype.kind not in "biuf":
        return f"returned dtype {out.dtype} (expected bool, integer or float)"
    if out.size == 0:
        return f"returned an empty array of shape {out.shape}"
    if not (out.ndim == 2 or (out.ndim == 3 and out.shape[-1] in (3, 4)) or out.ndim == img_in.ndim):
        return f"returned shape {out.shape} (expected (ny, nx) or (ny, nx, 3|4))"
    return None


class Pipeline:
    """The processor pipeline. Build with ``Pipeline(config)`` or ``open_pipeline(path)``."""

    def __init__(self, config: Optional[PipelineConfig] = None, *, check_interval: float = 0.5,
                 config_error: str = "", quiet: bool = False):
        self.config = config if config is not None else PipelineConfig()
        self.quiet = quiet  # a twin (``clone``) does not repeat what its original logs
        self.check_interval = check_interval
        self.enabled = True  # False: apply() returns frames untouched (--no-plugins, panel switch)
        self._apply_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._stats: Dict[str, _StepStats] = {}
        self._last_error = config_error
        self._config_error = config_error
        self._next_check = 0.0
        self._config_signature = file_signature(self.config.path)
        self._modules: Dict[str, LoadedModule] = {}  # working modules, by module ref
        self._watch: Dict[str, Any] = {}  # module ref -> (file, signature) at the last load attempt
        if not quiet:
            for warning in self.config.warnings:
                log.warning("%s", warning)
        self._steps: Tuple[_Step, ...] = tuple(self._build_step(spec) for spec in self.config.steps)

    # ------------------------------------------------------------------ building
    def _load(self, ref: str) -> LoadedModule:
        """Load ``ref`` from its file now; remember what the file looked like either way."""
        try:
            loaded = load_module(ref, self.config.search_path)
        except PluginError as exc:
            # a missing module is retried at every check (it may appear); a broken file when it changes
            self._watch[ref] = (exc.file, file_signature(exc.file))
            raise
        self._modules[ref] = loaded
        self._watch[ref] = (loaded.file, loaded.signature) if loaded.file is not None else _STATIC
        return loaded

    def _build_step(self, spec: ProcessorSpec, previous: Optional[_Step] = None,
                    module_error: Optional[PluginError] = None) -> _Step:
        """A step for ``spec``; on failure the previous working processor stays in use."""
        try:
            if module_error is not None:
                raise module_error
            loaded = self._modules.get(spec.module) or self._load(spec.module)
            processor = build_processor(spec, loaded)
        except PluginError as exc:
            reason = str(exc)
            if previous is None or previous.load_error != reason:  # log a reason once
                self._record_load_error(spec.name, reason, exc, spec.enabled)
            if previous is not None and previous.processor is not None:
                return replace(previous, spec=spec, load_error=reason)
            return _Step(spec, None, None, reason)
        ignored = ignored_params(processor, spec.kwargs)
        if ignored and not self.quiet and (previous is None or previous.spec.kwargs != spec.kwargs):
            named = [k for k in spec.kwargs if k not in ignored]
            log.warning("pipeline step %s: %s ignores %s (a typo?); it used %s", spec.name,
                        spec.class_name, ", ".join(ignored), ", ".join(named) or "no parameter")
        return _Step(spec, processor, loaded, "")

    def _record_load_error(self, name: str, reason: str, exc: BaseException,
                           enabled: bool = True) -> None:
        message = f"{name}: {reason}"
        if not self.quiet:
            where = plugin_traceback(exc.__cause__ or exc)
            # a step that is switched off breaks nothing by failing to load: not an ERROR
            log.log(logging.ERROR if enabled else logging.INFO, "pipeline step %s%s%s", message,
                    "" if enabled else " (the step is off)", f"\n{where}" if where else "")
        with self._stats_lock:
            self._last_error = message

    # ------------------------------------------------------------------ running
    def __call__(self, img: np.ndarray, meta: Optional[dict] = None) -> Tuple[np.ndarray, dict]:
        return self.apply(img, meta)

    @property
    def active(self) -> bool:
        """Would ``apply`` change a frame now? (Lets the display defer pixel-wise
        corrections placed before an idle pipeline.) Checks for changed files
        first, as ``apply`` would."""
        if not self.enabled:
            return False
        self.reload_if_changed()
        return any(step.spec.enabled and step.processor is not None for step in self._steps)

    def apply(self, img: np.ndarray, meta: Optional[dict] = None) -> Tuple[np.ndarray, dict]:
        """Run the enabled steps in order; returns ``(img, meta)``. Never raises for a plugin."""
        meta = dict(meta) if meta is not None else {}
        if not self.enabled:
            return img, meta
        self.reload_if_changed()
        steps = self._steps  # one consistent tuple for this frame
        if not any(step.spec.enabled for step in steps):
            return img, meta
        with self._apply_lock:
            for step in steps:
                if not step.spec.enabled or step.processor is None:
                    continue
                img, meta = self._run_step(step, _read_only(img), meta)
        return img, meta

    def apply_frame(self, frame: Any) -> Tuple[np.ndarray, dict]:
        """``apply(frame.array, frame.metadata())`` (a ``pystream.frame.Frame``)."""
        return self.apply(frame.array, frame.metadata())

    def _run_step(self, step: _Step, img: np.ndarray, meta: dict) -> Tuple[np.ndarray, dict]:
        name = step.spec.name
        t0 = time.perf_counter()
        try:
            out = step.processor.apply(img, meta)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ValueError) and "read-only" in str(exc):
                reason += " (frames are passed read-only: copy with img = img.copy() before writing)"
            self._step_failed(name, reason, exc)
            return img, meta
        elapsed_ms = (time.perf_counter() - t0) * 1e3
        new_meta = meta
        if isinstance(out, tuple) and len(out) == 2:
            out, returned_meta = out
            if isinstance(returned_meta, dict):
                new_meta = returned_meta
            elif returned_meta is not None:
                self._step_failed(name, f"returned (img, {type(returned_meta).__name__}); "
                                        "meta must be a dict", None)
                return img, meta
        problem = check_output(out, img)
        if problem is not None:
            self._step_failed(name, problem, None)
            return img, meta
        with self._stats_lock:
            stats = self._stats.setdefault(name, _StepStats())
            stats.calls += 1
            stats.ms_ema = elapsed_ms if stats.ms_ema is None else (
                stats.ms_ema + EMA_ALPHA * (elapsed_ms - stats.ms_ema))
        return out, new_meta

    def _step_failed(self, name: str, reason: str, exc: Optional[BaseException]) -> None:
        message = f"{name}: {reason}"
        with self._stats_lock:
            stats = self._stats.setdefault(name, _StepStats())
            stats.errors += 1
            stats.last_error = reason
            self._last_error = message
            n = stats.errors
            # log the traceback when something new happens, then at 10, 100, 1000... failures
            should_log = reason != stats.last_logged[0] or n in (10, 100, 1000) or n % 10000 == 0
            if should_log:
                stats.last_logged = (reason, n)
        if should_log:
            where = plugin_traceback(exc) if exc is not None else ""
            log.error("pipeline step %s (bypassed for this frame; %d failure%s so far)%s",
                      message, n, "" if n == 1 else "s", f"\n{where}" if where else "")

    # ------------------------------------------------------------------ reload
    def reload_if_changed(self, force: bool = False) -> bool:
        """Take changed plugin files or config into use; True if anything was reloaded.

        Checks file mtimes at most every ``check_interval`` seconds (``force``
        checks now, even with ``"hot_reload": false``).
        """
        now = time.monotonic()
        if not force:
            if not self.config.hot_reload or now < self._next_check:
                return False
        self._next_check = now + self.check_interval
        if not self._reload_lock.acquire(blocking=force):
            return False  # another thread is reloading right now
        try:
            return self._reload()
        finally:
            self._reload_lock.release()

    def _stale_modules(self) -> List[str]:
        stale = []
        for ref, watched in self._watch.items():
            if watched is _STATIC:
                continue
            file, signature = watched
            if file is None or file_signature(file) != signature:
                stale.append(ref)
        return stale

    def _reload(self) -> bool:
        changed = False
        stale = self._stale_modules()
        if stale:
            errors: Dict[str, PluginError] = {}
            reloaded = set()
            for ref in stale:
                try:
                    self._load(ref)
                    reloaded.add(ref)
                except PluginError as exc:
                    errors[ref] = exc
            steps = []
            for step in self._steps:
                ref = step.spec.module
                if ref in reloaded or ref in errors:
                    new = self._build_step(step.spec, step, errors.get(ref))
                    if ref in reloaded and not new.load_error and not self.quiet:
                        log.info("pipeline step %s reloaded from %s", step.spec.name, new.module.file)
                    changed |= new != step
                    step = new
                steps.append(step)
            self._steps = tuple(steps)
        if self.config.path is not None:
            signature = file_signature(self.config.path)
            if signature != self._config_signature:
                self._config_signature = signature
                changed |= self._reload_config(self.config.path)
        return changed

    def _reload_config(self, path: Path) -> bool:
        try:
            config = load_config(path)
        except ConfigError as exc:
            message = f"config not reloaded, previous pipeline kept: {exc}"
            if not self.quiet:
                log.error("%s", message)
            with self._stats_lock:
                self._last_error = self._config_error = message
            return False
        if not self.quiet:
            for warning in config.warnings:
                log.warning("%s", warning)
        old_by_name = {step.spec.name: step for step in self._steps}
        self.config = config
        self._config_error = ""
        steps = []
        for spec in config.steps:
            old = old_by_name.get(spec.name)
            if (old is not None and old.processor is not None and not old.load_error
                    and (old.spec.module, old.spec.class_name, old.spec.kwargs)
                    == (spec.module, spec.class_name, spec.kwargs)
                    and old.module is self._modules.get(spec.module)):
                steps.append(replace(old, spec=spec))  # same code and kwargs: keep its state
            else:
                steps.append(self._build_step(spec, old))
        self._steps = tuple(steps)
        if not self.quiet:
            log.info("pipeline config reloaded from %s (%s)", path, _steps_text(len(steps)))
        return True

    def request_reload(self) -> None:
        """Check files on the next frame instead of waiting for the interval."""
        self._next_check = 0.0

    # ------------------------------------------------------------------ edits
    def _index(self, name: str, steps: Sequence[_Step]) -> int:
        for i, step in enumerate(steps):
            if step.spec.name == name:
                return i
        raise KeyError(f"no pipeline step named {name!r} (steps: {[s.spec.name for s in steps]})")

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self._reload_lock:
            steps = list(self._steps)
            i = self._index(name, steps)
            steps[i] = replace(steps[i], spec=replace(steps[i].spec, enabled=bool(enabled)))
            self._steps = tuple(steps)
        if not enabled:  # its timing restarts when it is switched on again: no stale figure
            with self._stats_lock:
                stats = self._stats.get(name)
                if stats is not None:
                    stats.ms_ema = None

    def move(self, name: str, delta: int) -> int:
        """Move a step ``delta`` places (negative: earlier); returns its new index."""
        with self._reload_lock:
            steps = list(self._steps)
            i = self._index(name, steps)
            j = max(0, min(len(steps) - 1, i + int(delta)))
            steps.insert(j, steps.pop(i))
            self._steps = tuple(steps)
            return j

    def set_kwargs(self, name: str, kwargs: Dict[str, Any]) -> List[str]:
        """Rebuild a step with new kwargs; returns those its processor ignores
        (see ``ignored_params``). Raises PluginError (old ones kept) if they do not work."""
        if not isinstance(kwargs, dict):
            raise TypeError(f"kwargs must be a dict, got {type(kwargs).__name__}")
        with self._reload_lock:
            steps = list(self._steps)
            i = self._index(name, steps)
            old = steps[i]
            spec = replace(old.spec, kwargs=dict(kwargs))
            loaded = old.module
            if loaded is None:  # no working module: keep the kwargs for when it loads
                steps[i] = replace(old, spec=spec)
                self._steps = tuple(steps)
                return []
            processor = build_processor(spec, loaded)  # raises PluginError: nothing changed
            steps[i] = _Step(spec, processor, loaded, "")
            self._steps = tuple(steps)
        return ignored_params(processor, spec.kwargs)

    # ------------------------------------------------------------------ views
    @property
    def steps(self) -> Tuple[StepInfo, ...]:
        """Snapshot of the steps in order, with their timing and errors."""
        steps = self._steps
        with self._stats_lock:
            stats = {name: replace(s) for name, s in self._stats.items()}
        infos = []
        for step in steps:
            s = stats.get(step.spec.name, _StepStats())
            infos.append(StepInfo(
                name=step.spec.name, enabled=step.spec.enabled, kind=step.spec.kind,
                module=step.spec.module, class_name=step.spec.class_name,
                kwargs=dict(step.spec.kwargs),
                file=step.module.file if step.module is not None else None,
                loaded=step.processor is not None, load_error=step.load_error,
                ms=s.ms_ema if step.spec.enabled else None, calls=s.calls, errors=s.errors, last_error=s.last_error))
        return tuple(infos)

    @property
    def names(self) -> List[str]:
        return [step.spec.name for step in self._steps]

    def processor(self, name: str) -> Any:
        """The running processor object of a step (e.g. to call ``set_flat``)."""
        steps = self._steps
        return steps[self._index(name, steps)].processor

    @property
    def last_error(self) -> str:
        with self._stats_lock:
            return self._last_error

    @property
    def config_error(self) -> str:
        """Why the config file is not the one running ("" when it is)."""
        return self._config_error

    def stats(self) -> Dict[str, Any]:
        """For ``--stats-json``: per-step time (ms, EMA) and failure counts, keyed by step name."""
        steps = self._steps
        with self._stats_lock:
            ms = {}
            errors = {}
            for step in steps:
                s = self._stats.get(step.spec.name)
                off = s is None or s.ms_ema is None or not step.spec.enabled
                ms[step.spec.name] = None if off else round(s.ms_ema, 3)
                errors[step.spec.name] = 0 if s is None else s.errors
            return {
                "pipeline_ms_by_step": ms,
                "pipeline_errors_by_step": errors,
                "pipeline_last_error": self._last_error,
            }

    def current_config(self) -> PipelineConfig:
        """The config as currently edited (order, enabled flags, kwargs)."""
        return self.config.with_steps([step.spec for step in self._steps])

    def save_config(self, path: Optional[PathLike] = None) -> Path:
        """Write the current steps to ``path`` (default: the file they came from)."""
        target = save_config(self.current_config(), path)
        if self.config.path is not None and Path(target).resolve() == self.config.path:
            self._config_signature = file_signature(self.config.path)  # our own write, no reload
        return target

    def clone(self) -> "Pipeline":
        """A second, independent Pipeline with the same steps (e.g. for the recorder)."""
        twin = Pipeline(self.current_config(), check_interval=self.check_interval,
                        config_error=self._config_error, quiet=True)
        twin.enabled = self.enabled
        return twin


def open_pipeline(path: Optional[PathLike] = None, *, no_plugins: bool = False,
                  config_dir: Optional[PathLike] = None, check_interval: float = 0.5) -> Pipeline:
    """The pipeline for ``--proc-config PATH`` / ``--no-plugins``. Never raises.

    ``path`` None means the default ``pipelines/processors.json`` (see
    ``resolve_config_path``). With ``no_plugins`` no plugin code is loaded at
    all and ``apply`` returns frames untouched. A config that is missing or
    invalid gives an empty pipeline whose ``last_error`` says why; if the file
    has a path it is watched, and fixing it takes effect on a later frame.
    """
    if no_plugins:
        pipeline = Pipeline(check_interval=check_interval)
        pipeline.enabled = False
        return pipeline
    try:
        resolved = resolve_config_path(path, config_dir=config_dir)
    except ConfigError as exc:
        log.error("%s", exc)
        return Pipeline(check_interval=check_interval, config_error=str(exc))
    try:
        config = load_config(resolved)
    except ConfigError as exc:
        log.error("%s", exc)
        # watch the broken file: fixing it loads it (signature None forces the first check)
        empty = PipelineConfig(path=resolved.resolve())
        pipeline = Pipeline(empty, check_interval=check_interval, config_error=str(exc))
        pipeline._config_signature = file_signature(resolved)
        return pipeline
    log.info("pipeline config %s: %s", resolved, _steps_text(len(config.steps)))
    return Pipeline(config, check_interval=check_interval)
