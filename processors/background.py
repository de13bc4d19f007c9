"""``processors.background`` as the README's example config names it: the built-in corrections."""
from pystream.pipeline.processors import BackgroundSubtract, DarkSubtract, FlatField  # noqa: F401
