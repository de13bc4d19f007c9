"""Band power over time: how the power of a spectrum stream drifts.

``BandPower`` turns each processed spectrum into one number, the mean
linear power of its channels inside a frequency band (the whole band by
default), and keeps them in a ``TimeSeries`` with their rolling statistics.
The receiver's worker feeds it a whole batch at a time (one numpy reduction).
The mean, not the sum, so the number does not change with ``freq_avg``.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ..stats import TimeSeries

Band = Optional[Tuple[float, float]]


def parse_band(text: Any) -> Band:
    """'all' / '' / None → None (the whole band); 'F0,F1' or (F0, F1) → (low, high)."""
    if text is None:
        return None
    if isinstance(text, str):
        text = text.strip()
        if text.lower() in ("", "all"):
            return None
        parts = text.replace(" ", ",").split(",")
        parts = [p for p in parts if p]
    else:
        parts = list(text)
    try:
        lo, hi = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"a band is 'all' or two frequencies 'F0,F1', not {text!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"band edges must be finite numbers, got {lo}, {hi}")
    return (min(lo, hi), max(lo, hi))


class BandPower:
    """``BandPower(freq_axis, band=None, window=600)``; ``freq_axis(width)``
    gives the x value (MHz or channel number) of each processed channel.

    Thread-safe: the receiver's worker calls ``update``, the GUI reads
    ``series`` and calls ``set_band``.
    """

    def __init__(self, freq_axis: Callable[[int], np.ndarray], band: Any = None,
                 window: int = 600, unit: str = ""):
        self.freq_axis = freq_axis
        self.unit = unit
        self.series = TimeSeries(("power",), window)
        self.problem = ""  # why nothing is measured (a band with no channel), shown
        self.skipped = 0  # spectra not measured because of that
        self._lock = threading.Lock()
        self._band: Band = None
        self._columns: Dict[int, Optional[slice]] = {}  # width -> channels in the band
        self.set_band(band)

    @property
    def band(self) -> Band:
        return self._band

    def set_band(self, band: Any) -> None:
        """A new band (see ``parse_band``): the series restarts with it."""
        band = parse_band(band)
        with self._lock:
            self._band = band
            self._columns = {}
            self.problem = ""
            self.series.clear()

    def _columns_for(self, width: int) -> Optional[slice]:
        cols = self._columns.get(width, ...)
        if cols is not ...:
            return cols
        if self._band is None:
            cols = slice(0, width)
        else:
            freqs = np.asarray(self.freq_axis(width))
            lo, hi = self._band
            inside = np.nonzero((freqs >= lo) & (freqs <= hi))[0]  # the axis is monotonic
            cols = slice(int(inside[0]), int(inside[-1]) + 1) if inside.size else None
            self.problem = "" if inside.size else (
                f"no channel in the band {lo:g}–{hi:g} {self.unit}: the spectra span "
                f"{min(freqs[0], freqs[-1]):g}–{max(freqs[0], freqs[-1]):g} {self.unit}".rstrip())
        self._columns[width] = cols
        return cols

    def update(self, rows: np.ndarray, times: Sequence[float], uids: Any = -1) -> None:
        """Measure a batch of processed spectra ``(k, width)`` taken at ``times``."""
        rows = np.asarray(rows)
        if rows.ndim == 1:
            rows = rows[np.newaxis]
        if rows.shape[0] == 0:
            return
        with self._lock:
            cols = self._columns_for(rows.shape[1])
            if cols is None:
                self.skipped += rows.shape[0]
                return
            power = rows[:, cols].mean(axis=1, dtype=np.float64)
            self.series.add(times, uids, power[:, np.newaxis])

    def channels(self, width: int) -> int:
        """Channels of a spectrum of ``width`` inside the band."""
        with self._lock:
            cols = self._columns_for(width)
        return 0 if cols is None else cols.stop - cols.start

    def summary(self) -> Dict[str, Any]:
        """``--stats-json``'s ``band_power``: band, latest power, rolling statistics."""
        out = self.series.summary()
        band = self._band
        out["band"] = "all" if band is None else list(band)
        out["unit"] = self.unit
        out["problem"] = self.problem
        out["skipped"] = self.skipped
        out["rolling"] = out["rolling"].get("power", {})
        return out
