"""SpectrumRing: a fixed-size, thread-safe ring of spectra (rows) with timestamps.

A ``RingBuffer`` of rows (``item_shape=(n_cols,)``) with a time beside each
row: a write of k rows is at most two slice copies, a read at most two; no
per-row Python loops. Readers here never consume: the display, the plotter
and ``get_latest_data`` all look at the same history. A consumer that must
see every row (e.g. a file writer) keeps its own cursor and calls
``read_since(cursor)``, which says how many rows it missed if it fell more
than a whole ring behind.
"""
from __future__ import annotations

import time
from typing import Optional, Tuple

import numpy as np

from ..stats import RingBuffer


class SpectrumRing(RingBuffer):
    """``n_rows`` x ``n_cols`` float32 spectra, newest overwriting oldest."""

    def __init__(self, n_rows: int = 1200, n_cols: int = 768, dtype=np.float32):
        self.resets = 0
        super().__init__(int(n_rows), (int(n_cols),), dtype)

    def _column_specs(self):
        return [(self.item_shape, self.dtype), ((), np.dtype(np.float64))]  # rows, times

    # -- writing -------------------------------------------------------------
    def write(self, rows: np.ndarray, times: Optional[np.ndarray] = None) -> int:
        """Append one row ``(n_cols,)`` or a block ``(k, n_cols)``; returns k.

        ``times`` (POSIX seconds, one per row) defaults to now. A block longer
        than the ring keeps only its newest ``n_rows`` rows.
        """
        rows = np.asarray(rows, dtype=self.dtype)
        if rows.ndim == 1:
            rows = rows[np.newaxis, :]
        k = rows.shape[0]
        if k == 0:
            return 0
        if rows.shape[1:] != self.item_shape:
            raise ValueError(f"row width {rows.shape[1]} != ring width {self.n_cols}")
        if times is None:
            times = np.full(k, time.time())
        else:
            times = np.broadcast_to(np.asarray(times, dtype=np.float64), (k,))
        return self._write_columns([rows, times])

    def reset(self, n_cols: Optional[int] = None, n_rows: Optional[int] = None) -> None:
        """Forget everything; optionally change the width (a new stream layout)."""
        with self._cond:
            if n_cols is not None:
                self.item_shape = (int(n_cols),)
            self._allocate(int(n_rows or self._capacity))
            self.resets += 1
            self._cond.notify_all()

    # -- reading -------------------------------------------------------------
    def latest_with_times(self, n: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``(rows, times)`` of the newest ``n`` rows, oldest first."""
        with self._cond:
            rows, times = self._stored_columns(n)
            return rows, times

    def last_row(self) -> Tuple[Optional[np.ndarray], Optional[float]]:
        """The newest spectrum and its time, or (None, None) when empty."""
        with self._cond:
            if self._total == 0:
                return None, None
            rows, times = self._stored_columns(1)
            return rows[0], float(times[0])

    def read_since(self, cursor: int) -> Tuple[np.ndarray, np.ndarray, int, int]:
        """Rows written after ``cursor`` (a value of ``total``), oldest first.

        Returns ``(rows, times, new_cursor, missed)``; ``missed`` counts rows
        that were overwritten before this reader came back for them.
        """
        with self._cond:
            cursor = min(max(0, int(cursor)), self._total)
            pending = self._total - cursor
            missed = max(0, pending - self._capacity)
            rows, times = self._stored_columns(pending - missed)
            return rows, times, self._total, missed

    def wait_for(self, cursor: int, timeout: Optional[float] = None) -> bool:
        """Block until more than ``cursor`` rows were written; False on timeout."""
        with self._cond:
            self._waiting += 1  # so that writes notify
            try:
                return self._cond.wait_for(lambda: self._total > cursor, timeout)
            finally:
                self._waiting -= 1

    # -- state ---------------------------------------------------------------
    @property
    def shape(self) -> Tuple[int, int]:
        return (self._capacity, self.item_shape[0])

    @property
    def n_cols(self) -> int:
        return self.item_shape[0]

    @property
    def write_index(self) -> int:
        """Row the next spectrum goes to (the seed's ``buffer_index``)."""
        return self._total % self._capacity

    @property
    def count(self) -> int:
        """Valid rows held (≤ n_rows)."""
        return min(self._total, self._capacity)

    @property
    def overwritten(self) -> int:
        """Rows pushed out by wrap-around since the last reset."""
        return max(0, self._total - self._capacity)

    def __len__(self) -> int:
        return self.count
