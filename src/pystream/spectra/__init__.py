"""Spectra: ring buffer, processing, waterfall model, receiver and periodic plots.

Public API (no Qt here)::

    from pystream.spectra import SpectrumReceiver, SpectrumRing, WaterfallModel
"""
from .plots import PeriodicPlotter, render_spectrum_png
from .processing import (
    OVRO_FREQ_RANGE_MHZ,
    POL_CHOICES,
    SpectrumProcessing,
    average_freq,
    frequency_axis,
    parse_freq_range,
    select_pol,
)
from .receiver import SpectrumReceiver
from .ring import SpectrumRing
from .waterfall import WaterfallImage, WaterfallModel

__all__ = [
    "OVRO_FREQ_RANGE_MHZ", "POL_CHOICES", "PeriodicPlotter", "SpectrumProcessing",
    "SpectrumReceiver", "SpectrumRing", "WaterfallImage", "WaterfallModel", "average_freq",
    "frequency_axis", "parse_freq_range", "render_spectrum_png", "select_pol",
]
