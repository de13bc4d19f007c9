"""Flat-field and dark correction for the display, and capturing their references.

The math is the pipeline's ``FlatField`` / ``DarkSubtract`` (one home for it).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from ..pipeline.processors import DarkSubtract, FlatField


class FrameAverager:
    """Mean of ``n`` frames (float32), accumulated in float64. Restarts if the shape changes."""

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self.count = 0
        self.restarts = 0
        self._sum: Optional[np.ndarray] = None

    def add(self, arr: np.ndarray) -> Optional[np.ndarray]:
        """Add a frame; the average once ``n`` frames are in, else None."""
        image = arr if arr.ndim == 2 else arr.mean(axis=2)  # references are 2-D
        if self._sum is None or self._sum.shape != image.shape:
            if self._sum is not None:
                self.restarts += 1
            self._sum = np.zeros(image.shape, np.float64)
            self.count = 0
        self._sum += image
        self.count += 1
        if self.count >= self.n:
            return (self._sum / self.count).astype(np.float32)
        return None


@dataclass(frozen=True)
class _Stage:
    """What the worker applies; replaced whole (one reference swap) on any change."""

    processor: Any = None  # FlatField or DarkSubtract (the pipeline's own processors)
    shape: Optional[Tuple[int, int]] = None  # the reference's shape
    kind: str = ""  # "flat", "flat+dark", "dark"


class ImageCorrections:
    """Flat-field / dark correction as a display-worker step ``(arr, meta) -> (arr, meta)``.

    The math is the pipeline's ``FlatField`` (with or without dark) or
    ``DarkSubtract`` (dark only). Capturing averages the next ``n`` frames
    *before* correction, in the worker thread. A reference whose shape does
    not match the frames is not applied: the frame passes uncorrected,
    ``meta["corrections_problem"]`` says why, ``problem`` keeps the message,
    ``not_applied`` counts the frames, and ``on_problem(message)`` is called
    once per new message (with "" once it is resolved). ``meta["raw_frame"]`` keeps the frame as received.
    """

    def __init__(self, on_captured: Optional[Callable[[str, np.ndarray], None]] = None,
                 on_problem: Optional[Callable[[str], None]] = None):
        self.flat: Optional[np.ndarray] = None
        self.dark: Optional[np.ndarray] = None
        self.apply_flat = False
        self.apply_dark = False
        self.on_captured = on_captured
        self.on_problem = on_problem
        self.problem = ""
        self.not_applied = 0
        self.masked_pixels = 0
        self._stage = _Stage()
        self._capture: Optional[Tuple[str, FrameAverager]] = None
        self._lock = threading.Lock()

    # -- control (GUI thread, or the worker when a capture completes)
    def set_reference(self, kind: str, arr: Optional[np.ndarray]) -> None:
        if kind not in ("flat", "dark"):
            raise ValueError(f"unknown reference {kind!r}")
        with self._lock:
            setattr(self, kind, None if arr is None else np.asarray(arr))
            self._rebuild()

    def set_applied(self, kind: str, on: bool) -> None:
        with self._lock:
            setattr(self, f"apply_{kind}", bool(on))
            self._rebuild()

    def capture(self, kind: str, n: int) -> None:
        """Average the next ``n`` frames the worker sees into the ``kind`` reference."""
        self._capture = (kind, FrameAverager(n))

    def cancel_capture(self) -> None:
        self._capture = None

    @property
    def capturing(self) -> Optional[Tuple[str, int, int]]:
        cap = self._capture
        return None if cap is None else (cap[0], cap[1].count, cap[1].n)

    def _rebuild(self) -> None:
        flat = self.flat if self.apply_flat else None
        dark = self.dark if self.apply_dark else None
        try:
            if flat is not None:
                processor = FlatField(flat=flat, dark=dark)
                stage = _Stage(processor, flat.shape, "flat+dark" if dark is not None else "flat")
                self.masked_pixels = processor.masked_pixels
            elif dark is not None:
                stage = _Stage(DarkSubtract(dark=dark), dark.shape, "dark")
                self.masked_pixels = 0
            else:
                stage, self.masked_pixels = _Stage(), 0
            self._set_problem("")
        except ValueError as exc:  # flat vs dark shapes, a flat with no usable pixel
            stage = _Stage()
            self._set_problem(f"correction not applied: {exc}")
        self._stage = stage

    def _set_problem(self, message: str) -> None:
        if message != self.problem:
            self.problem = message
            if self.on_problem is not None:  # "" when the problem is gone
                self.on_problem(message)

    # -- the step (worker thread)
    def _prepare(self, arr: np.ndarray, meta: Dict[str, Any]) -> Optional["_Stage"]:
        """Per-frame bookkeeping (capture, shape check); the stage to apply, or None."""
        meta.setdefault("raw_frame", arr)  # the frame as received, for probes, info and saving
        cap = self._capture
        if cap is not None:
            kind, averager = cap
            average = averager.add(arr)
            meta["capturing"] = (kind, averager.count, averager.n)
            if average is not None and self._capture is cap:
                self._capture = None
                self.set_reference(kind, average)
                if self.on_captured is not None:
                    self.on_captured(kind, average)
        stage = self._stage
        if stage.processor is None:
            if self.problem:
                meta["corrections_problem"] = self.problem
            return None
        if tuple(arr.shape[:2]) != stage.shape:
            self.not_applied += 1
            message = (f"{stage.kind} not applied: reference shape {stage.shape} does not match "
                       f"frame shape {tuple(arr.shape[:2])}; capture or load one of the frame's size")
            self._set_problem(message)
            meta["corrections_problem"] = message
            return None
        if self.problem.startswith(f"{stage.kind} not applied"):
            self._set_problem("")  # the stream came back to the reference's shape
        meta["corrections"] = stage.kind
        if isinstance(stage.processor, FlatField):
            meta["flat_masked_pixels"] = stage.processor.masked_pixels
        return stage

    def __call__(self, arr: np.ndarray, meta: Dict[str, Any]) -> Tuple[np.ndarray, Dict[str, Any]]:
        stage = self._prepare(arr, meta)
        if stage is None:
            return arr, meta
        return stage.processor.apply(arr, meta), meta

    def deferred(self, arr: np.ndarray, meta: Dict[str, Any]) -> Optional[Callable[[Any, Any], np.ndarray]]:
        """The display worker's cheaper form: bookkeeping now, and a function
        ``(part, key) -> corrected part`` so only the pixels that are shown or
        measured get corrected (the correction is pixel-wise)."""
        stage = self._prepare(arr, meta)
        return None if stage is None else stage.processor.correct_part
