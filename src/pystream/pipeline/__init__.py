"""The processor pipeline: JSON config, plugin loading, hot reload, built-in processors.

Engine only (no Qt). Typical use by the viewer::

    from pystream.pipeline import open_pipeline
    pipeline = open_pipeline(args.proc_config, no_plugins=args.no_plugins)
    img, meta = pipeline.apply(frame.array, frame.metadata())   # worker thread
    counters.extra["pipeline"] = pipeline.stats                  # or merge pipeline.stats()
"""
from .config import (DEFAULT_CONFIG_NAME, ConfigError, PipelineConfig, ProcessorSpec, load_config,
                     package_dir, parse_config, plugin_search_path, resolve_config_path, save_config,
                     user_dir)
from .loader import FunctionProcessor, LoadedModule, PluginError, load_module
from .processors import (Bin, BackgroundSubtract, Clip, DarkSubtract, FlatField, Invert, MedianFilter,
                         Normalize, Threshold, flat_field_correct, flat_field_gain, median_filter)
from .runner import Pipeline, StepInfo, check_output, open_pipeline

__all__ = [
    "DEFAULT_CONFIG_NAME", "ConfigError", "PipelineConfig", "ProcessorSpec", "load_config",
    "package_dir", "parse_config", "plugin_search_path", "resolve_config_path", "save_config",
    "user_dir", "FunctionProcessor", "LoadedModule", "PluginError", "load_module",
    "Bin", "BackgroundSubtract", "Clip", "DarkSubtract", "FlatField", "Invert", "MedianFilter",
    "Normalize", "Threshold", "flat_field_correct", "flat_field_gain", "median_filter",
    "Pipeline", "StepInfo", "check_output", "open_pipeline",
]
