"""``processors.filters`` as the README's example config names it: the built-in filters."""
from pystream.pipeline.processors import Bin, Clip, Invert, MedianFilter, Normalize, Threshold  # noqa: F401
