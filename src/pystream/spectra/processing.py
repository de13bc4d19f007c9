"""Spectrum processing: polarisation selection, frequency averaging, frequency axis.

Pure numpy, batch-friendly: every function accepts one message
``(nbeam, nchan, npol)`` or a batch ``(n, nbeam, nchan, npol)`` and works on
the whole batch in one call (no per-sample Python loops).

Polarisation axis order of the OVRO-LWA stream: XX, YY, CR (XY real),
CI (XY imaginary). Derived products: I = (XX + YY) / 2, V = CI.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np

#: pol axis order on the wire
POL_AXIS = ("XX", "YY", "CR", "CI")
#: what ``select_pol`` accepts
POL_CHOICES = ("XX", "YY", "I", "V")
#: frequency range (MHz) of the OVRO beam after averaging to 768 points:
#: 196·600/8192 to 196·3671/8192
OVRO_FREQ_RANGE_MHZ = (196.0 * 600 / 8192, 196.0 * 3671 / 8192)
DEFAULT_FREQ_AVG = 4


def normalise_pol(pol: Union[str, int]) -> str:
    """'xx' → 'XX', 0 → 'XX'; raises ValueError for anything else."""
    if isinstance(pol, (int, np.integer)):
        if 0 <= int(pol) < 2:
            return POL_AXIS[int(pol)]
        if int(pol) == 3:
            return "V"
        raise ValueError(f"pol index {pol} not supported (choose from {POL_CHOICES})")
    name = str(pol).strip().upper()
    if name == "CI":
        name = "V"
    if name not in POL_CHOICES:
        raise ValueError(f"pol {pol!r} not supported (choose from {', '.join(POL_CHOICES)})")
    return name


def select_pol(data: np.ndarray, pol: Union[str, int] = "XX", beam: int = 0) -> np.ndarray:
    """``(..., nbeam, nchan, npol)`` → ``(..., nchan)`` float32 for one beam.

    XX, YY: that pol; I: (XX + YY) / 2; V: CI.
    """
    pol = normalise_pol(pol)
    if data.ndim < 3:
        raise ValueError(f"expected (..., nbeam, nchan, npol), got shape {data.shape}")
    beam_data = data[..., beam, :, :]
    if pol == "XX":
        out = beam_data[..., 0]
    elif pol == "YY":
        out = beam_data[..., 1]
    elif pol == "V":
        out = beam_data[..., 3]
    else:  # I
        out = (beam_data[..., 0] + beam_data[..., 1]) * np.float32(0.5)
    return np.asarray(out, dtype=np.float32)


def average_freq(spectra: np.ndarray, factor: int = DEFAULT_FREQ_AVG) -> np.ndarray:
    """Average contiguous groups of ``factor`` channels along the last axis.

    ``(..., nchan)`` → ``(..., nchan // factor)``; trailing channels that do
    not fill a whole group are dropped (3072 / 4 = 768 exactly).
    """
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"freq_avg must be >= 1, got {factor}")
    spectra = np.asarray(spectra, dtype=np.float32)
    if factor == 1:
        return spectra
    nchan = spectra.shape[-1]
    nout = nchan // factor
    if nout == 0:
        raise ValueError(f"freq_avg {factor} larger than the {nchan} channels")
    grouped = spectra[..., : nout * factor].reshape(spectra.shape[:-1] + (nout, factor))
    # einsum sums a short inner axis ~3x faster than .mean() on strided data
    summed = np.einsum("...k->...", grouped)
    summed *= np.float32(1.0 / factor)
    return summed


def averaged_width(nchan: int, factor: int = DEFAULT_FREQ_AVG) -> int:
    """Number of points after averaging ``nchan`` channels by ``factor``."""
    return int(nchan) // max(int(factor), 1)


def frequency_axis(n_points: int, freq_range: Optional[Sequence[float]] = None) -> np.ndarray:
    """Frequency of each processed point: MHz from ``freq_range=(f_first, f_last)``
    (inclusive, evenly spaced), or the processed channel number 0..n-1 without it."""
    if freq_range is None:
        return np.arange(n_points, dtype=np.float64)
    f_first, f_last = (float(f) for f in freq_range)
    return np.linspace(f_first, f_last, int(n_points))


def parse_freq_range(text: Optional[str]) -> Optional[Tuple[float, float]]:
    """'14.36,87.83' → (14.36, 87.83); '' or None → None; 'ovro' → the OVRO beam range.

    For the CLI's ``--freq-range``; raises ValueError on bad input.
    """
    if text is None:
        return None
    text = str(text).strip()
    if not text:
        return None
    if text.lower() == "ovro":
        return OVRO_FREQ_RANGE_MHZ
    parts = [p for p in text.replace(":", ",").split(",") if p.strip()]
    if len(parts) != 2:
        raise ValueError(f"freq range must be 'FIRST,LAST' in MHz, got {text!r}")
    first, last = float(parts[0]), float(parts[1])
    if first == last:
        raise ValueError(f"freq range is empty: {text!r}")
    return first, last


@dataclass(frozen=True)
class SpectrumProcessing:
    """The processing choices of one receiver: pol, beam, frequency averaging."""

    pol: str = "XX"
    freq_avg: int = DEFAULT_FREQ_AVG
    beam: int = 0

    def __post_init__(self):
        object.__setattr__(self, "pol", normalise_pol(self.pol))
        if int(self.freq_avg) < 1:
            raise ValueError(f"freq_avg must be >= 1, got {self.freq_avg}")
        object.__setattr__(self, "freq_avg", int(self.freq_avg))

    def __call__(self, data: np.ndarray) -> np.ndarray:
        """``(n, nbeam, nchan, npol)`` → ``(n, nchan // freq_avg)`` float32."""
        return average_freq(select_pol(data, self.pol, self.beam), self.freq_avg)

    def out_width(self, nchan: int) -> int:
        return averaged_width(nchan, self.freq_avg)
