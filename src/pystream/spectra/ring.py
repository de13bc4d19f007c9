"""SpectrumRing: a fixed-size, thread-safe ring of spectra (rows) with timestamps.

Vectorised: a write of k rows is at most two slice copies, a read is at most
two slice copies; no per-row Python loops. Readers never consume: the display,
the plotter and ``get_latest_data`` all look at the same history. A consumer
that must see every row (e.g. a file writer) keeps its own cursor and calls
``read_since(cursor)``, which says how many rows it missed if it fell more
than a whole ring behind.
"""
from __future__ import annotations

import threading
import time
from typing import Optional, Tuple

import numpy as np


class SpectrumRing:
    """``n_rows`` x ``n_cols`` float32 spectra, newest overwriting oldest."""

    def __init__(self, n_rows: int = 1200, n_cols: int = 768, dtype=np.float32):
        if int(n_rows) < 1:
            raise ValueError(f"ring needs at least one row, got {n_rows}")
        if int(n_cols) < 1:
            raise ValueError(f"ring needs at least one column, got {n_cols}")
        self._cond = threading.Condition(threading.Lock())
        self._dtype = np.dtype(dtype)
        self._allocate(int(n_rows), int(n_cols))
        self.resets = 0

    def _allocate(self, n_rows: int, n_cols: int) -> None:
        self._data = np.zeros((n_rows, n_cols), dtype=self._dtype)
        self._times = np.full(n_rows, np.nan, dtype=np.float64)
        self._next = 0  # row the next write goes to
        self._total = 0  # rows ever written since the last reset
        self.overwritten = 0  # rows pushed out by wrap-around

    # -- writing -------------------------------------------------------------
    def write(self, rows: np.ndarray, times: Optional[np.ndarray] = None) -> int:
        """Append one row ``(n_cols,)`` or a block ``(k, n_cols)``; returns k.

        ``times`` (POSIX seconds, one per row) defaults to now. A block longer
        than the ring keeps only its newest ``n_rows`` rows.
        """
        rows = np.asarray(rows, dtype=self._dtype)
        if rows.ndim == 1:
            rows = rows[np.newaxis, :]
        k = rows.shape[0]
        if k == 0:
            return 0
        if times is None:
            times = np.full(k, time.time())
        else:
            times = np.broadcast_to(np.asarray(times, dtype=np.float64), (k,))
        with self._cond:
            n_rows, n_cols = self._data.shape
            if rows.shape[1] != n_cols:
                raise ValueError(f"row width {rows.shape[1]} != ring width {n_cols}")
            total_before = self._total
            if k > n_rows:  # only the newest n_rows survive anyway
                skip = k - n_rows
                self._next = (self._next + skip) % n_rows
                rows, times = rows[skip:], times[skip:]
                self._total += skip
                k = n_rows
            start = self._next
            first = min(k, n_rows - start)
            self._data[start:start + first] = rows[:first]
            self._times[start:start + first] = times[:first]
            if first < k:  # wrap: the rest goes to the top
                self._data[: k - first] = rows[first:]
                self._times[: k - first] = times[first:]
            self._next = (start + k) % n_rows
            self._total += k
            written = self._total - total_before
            self.overwritten += max(0, self._total - n_rows) - max(0, total_before - n_rows)
            self._cond.notify_all()
            return written

    def reset(self, n_cols: Optional[int] = None, n_rows: Optional[int] = None) -> None:
        """Forget everything; optionally change the width (a new stream layout)."""
        with self._cond:
            rows, cols = self._data.shape
            self._allocate(int(n_rows or rows), int(n_cols or cols))
            self.resets += 1
            self._cond.notify_all()

    # -- reading -------------------------------------------------------------
    def _newest(self, n: int) -> Tuple[np.ndarray, np.ndarray]:
        """Newest ``n`` rows oldest first (copies); caller holds the lock."""
        n_rows = self._data.shape[0]
        n = max(0, min(int(n), n_rows, self._total))
        start = (self._next - n) % n_rows
        if start + n <= n_rows:
            return self._data[start:start + n].copy(), self._times[start:start + n].copy()
        idx = np.r_[start:n_rows, 0:(start + n) - n_rows]  # two slices, one fancy-index copy
        return self._data[idx], self._times[idx]

    def latest(self, n: Optional[int] = None) -> np.ndarray:
        """Newest ``n`` rows (all valid rows if None), oldest first, as a copy."""
        with self._cond:
            return self._newest(self.count if n is None else n)[0]

    def latest_with_times(self, n: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``(rows, times)`` of the newest ``n`` rows, oldest first."""
        with self._cond:
            return self._newest(self.count if n is None else n)

    def last_row(self) -> Tuple[Optional[np.ndarray], Optional[float]]:
        """The newest spectrum and its time, or (None, None) when empty."""
        with self._cond:
            if self._total == 0:
                return None, None
            i = (self._next - 1) % self._data.shape[0]
            return self._data[i].copy(), float(self._times[i])

    def read_since(self, cursor: int) -> Tuple[np.ndarray, np.ndarray, int, int]:
        """Rows written after ``cursor`` (a value of ``total``), oldest first.

        Returns ``(rows, times, new_cursor, missed)``; ``missed`` counts rows
        that were overwritten before this reader came back for them.
        """
        with self._cond:
            n_rows = self._data.shape[0]
            cursor = min(max(0, int(cursor)), self._total)
            pending = self._total - cursor
            missed = max(0, pending - n_rows)
            rows, times = self._newest(pending - missed)
            return rows, times, self._total, missed

    def wait_for(self, cursor: int, timeout: Optional[float] = None) -> bool:
        """Block until more than ``cursor`` rows were written; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._total > cursor, timeout)

    # -- state ---------------------------------------------------------------
    @property
    def shape(self) -> Tuple[int, int]:
        return tuple(self._data.shape)  # type: ignore[return-value]

    @property
    def n_cols(self) -> int:
        return self._data.shape[1]

    @property
    def write_index(self) -> int:
        """Row the next spectrum goes to (the seed's ``buffer_index``)."""
        return self._next

    @property
    def total(self) -> int:
        """Rows written since creation or the last reset (a reader's cursor)."""
        return self._total

    @property
    def count(self) -> int:
        """Valid rows held (≤ n_rows)."""
        return min(self._total, self._data.shape[0])

    def __len__(self) -> int:
        return self.count
