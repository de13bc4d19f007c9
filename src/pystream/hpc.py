"""The processor pipeline as a processor of pvapy's streaming framework.

``pvapy-hpc-consumer`` fans a PV's updates out to many consumer processes
(on one host or many, through the server-side data distributor) and calls a
``UserDataProcessor`` on each; ``pvapy-hpc-collector`` gathers their outputs
back in ``uniqueId`` order. ``PipelineProcessor`` is such a processor: it
runs the same pipeline config and plugins as the viewer's ``--proc-config``
on every NTNDArray update and publishes the result as an NTNDArray::

    pvapy-hpc-consumer --input-channel IN --output-channel 'OUT:*' \\
        --processor-class pystream.hpc.PipelineProcessor \\
        --processor-args '{"config": "pipelines/processors.json"}' \\
        --n-consumers 4 --distributor-updates 1 --skip-initial-updates 0

``--processor-args`` keys:

- ``config``: the pipeline JSON (either schema; default: as the viewer finds
  ``pipelines/processors.json``)
- ``on_error``: ``"pass"`` (default) publishes a frame on which a step failed
  with that step bypassed, as the viewer shows it; ``"drop"`` publishes
  nothing for it. Either way the failure is counted by step.
- ``codec``: compress the output (``lz4``, ``bslz4``, ``blosc``, ``zlib``...;
  default none)

Its statistics (``userStats`` in the consumer's status channel, see
``getStatsPvaTypes``) count frames processed, passed with a failed step,
dropped, rejected, and the errors and milliseconds of each step.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Any, Dict, Optional

import pvaccess as pva
from pvapy.hpc.userDataProcessor import UserDataProcessor

from .frame import FrameRejected
from .pipeline import open_pipeline
from .sources.ntndarray import check_codec, decode_ntndarray, result_ntndarray, timestamp_of

ON_ERROR_CHOICES = ("pass", "drop")

# status fields that are always there (the per-step ones are added from the config)
STATS_TYPES = {
    "framesProcessed": pva.UINT,    # published with every enabled step applied
    "framesPassedWithErrors": pva.UINT,  # published with a failed step bypassed
    "framesDropped": pva.UINT,      # not published: a step failed and on_error is "drop"
    "framesRejected": pva.UINT,     # could not be decoded (reason in lastError)
    "publishErrors": pva.UINT,      # the result could not be encoded
    "stepErrors": pva.UINT,         # failures of all steps together
    "msPerFrame": pva.DOUBLE,       # decode + pipeline + encode, average of the last frames
    "lastError": pva.STRING,
    "config": pva.STRING,
}


def stat_field(prefix: str, step: str) -> str:
    """A pvData field name for a per-step statistic (letters, digits, _ only)."""
    return prefix + re.sub(r"\W", "_", step)


class PipelineProcessor(UserDataProcessor):
    """Run a pystream pipeline on each NTNDArray update; publish the result."""

    EMA_ALPHA = 0.1

    def __init__(self, configDict: Optional[dict] = None):
        super().__init__(configDict or {})
        config = dict(configDict or {})
        self.consumer_id = config.get("processorId")
        self.config_path = config.get("config")
        self.on_error = self._on_error(config.get("on_error", "pass"))
        self.codec = check_codec(config.get("codec", ""))
        self.pipeline = open_pipeline(self.config_path, no_plugins=bool(config.get("no_plugins")))
        # the status structure is fixed at startup: the steps of the config as it is now
        self._step_names = list(self.pipeline.names)
        self._lock = threading.Lock()
        self.resetStats()

    @staticmethod
    def _on_error(value: Any) -> str:
        if value not in ON_ERROR_CHOICES:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR_CHOICES)}, not {value!r}")
        return value

    # ------------------------------------------------------------------ framework interface
    def configure(self, configDict: dict) -> None:
        """Runtime changes through the control channel: ``on_error``, ``codec``."""
        if not isinstance(configDict, dict):
            return
        try:
            if "on_error" in configDict:
                self.on_error = self._on_error(configDict["on_error"])
            if "codec" in configDict:
                self.codec = check_codec(configDict["codec"])
        except ValueError as exc:
            self.logger.error("configure: %s", exc)
            with self._lock:
                self.last_error = str(exc)

    def process(self, pvObject):
        """Decode, run the pipeline, publish. Never raises: a raising processor
        makes pvapy's monitor drop the update (and a raising monitor callback
        can stop the subscription), so every failure is counted instead."""
        t0 = time.perf_counter()
        try:
            decoded = decode_ntndarray(pvObject)
        except FrameRejected as exc:
            self._count("framesRejected", f"frame rejected ({exc.reason}): {exc.message}")
            return None
        uid = int(pvObject["uniqueId"])
        meta = {
            "uid": uid,
            "timestamp": decoded.t_source if decoded.t_source is not None else time.time(),
            "t_recv": time.time(),
            "source": f"pva://{self.inputChannel}",
            "attributes": dict(decoded.attributes),
            "color": decoded.color,
            "consumer_id": self.consumer_id,
        }
        errors_before = self._step_error_total()
        img, meta = self.pipeline.apply(decoded.array, meta)
        failed = self._step_error_total() > errors_before
        if failed and self.on_error == "drop":
            self._count("framesDropped", self.pipeline.last_error)
            return None
        try:
            nt = result_ntndarray(img, uid=uid, timestamp=timestamp_of(pvObject),
                                  attributes=meta.get("attributes"), codec=self.codec)
        except Exception as exc:  # a result no NTNDArray can carry, a codec library missing
            self._count("publishErrors", f"cannot publish the result of frame {uid}: "
                                         f"{type(exc).__name__}: {exc}")
            return None
        self.updateOutputChannel(nt)
        elapsed_ms = (time.perf_counter() - t0) * 1e3
        with self._lock:
            self.counts["framesPassedWithErrors" if failed else "framesProcessed"] += 1
            self.ms_per_frame = elapsed_ms if self.ms_per_frame is None else (
                self.ms_per_frame + self.EMA_ALPHA * (elapsed_ms - self.ms_per_frame))
        return nt

    def getOutputPvObjectType(self, pvObject):
        # the result's type, not the input's: an areaDetector input may carry
        # extra fields, and the output is what result_ntndarray builds
        return pva.NtNdArray()

    def resetStats(self) -> None:
        with self._lock:
            self.counts = {key: 0 for key in ("framesProcessed", "framesPassedWithErrors",
                                              "framesDropped", "framesRejected", "publishErrors")}
            self.ms_per_frame: Optional[float] = None
            self.last_error = ""
            self._error_base = self._step_errors()  # step errors count from here

    def getStats(self) -> Dict[str, Any]:
        steps = self.pipeline.stats()
        errors = steps["pipeline_errors_by_step"]
        with self._lock:
            stats: Dict[str, Any] = dict(self.counts)
            stats["msPerFrame"] = round(self.ms_per_frame or 0.0, 3)
            stats["lastError"] = self.last_error or steps["pipeline_last_error"] or ""
            base = dict(self._error_base)
        stats["config"] = str(self.pipeline.config.path or "")
        stats["stepErrors"] = sum(max(0, n - base.get(name, 0)) for name, n in errors.items())
        for name in self._step_names:
            stats[stat_field("errors_", name)] = max(0, errors.get(name, 0) - base.get(name, 0))
            stats[stat_field("ms_", name)] = steps["pipeline_ms_by_step"].get(name) or 0.0
        return stats

    def getStatsPvaTypes(self) -> Dict[str, Any]:
        types = dict(STATS_TYPES)
        for name in self._step_names:
            types[stat_field("errors_", name)] = pva.UINT
            types[stat_field("ms_", name)] = pva.DOUBLE
        return types

    # ------------------------------------------------------------------ helpers
    def _step_errors(self) -> Dict[str, int]:
        return dict(self.pipeline.stats()["pipeline_errors_by_step"])

    def _step_error_total(self) -> int:
        return sum(step.errors for step in self.pipeline.steps)

    def _count(self, key: str, message: str) -> None:
        with self._lock:
            self.counts[key] += 1
            n = self.counts[key]
            self.last_error = message
        if n in (1, 10, 100, 1000) or n % 10000 == 0:  # a broken stream must not flood the log
            self.logger.warning("%s (%d so far)", message, n)
