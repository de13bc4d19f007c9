"""Streaming buffers and statistics: ``RingBuffer``, ``RollingStats``, ``TimeSeries``.

Vectorised numpy throughout: a write or an update of k samples is a few
slice copies and one reduction per block, never a Python loop per sample.

- ``RingBuffer``: thread-safe FIFO of the newest ``capacity`` items (scalars
  or rows of ``item_shape``). ``read`` blocks until enough items are there and
  *consumes* them, oldest first; ``peek``/``latest`` look without consuming.
  Items overwritten before they were read are counted (``overflow_count``).
- ``RollingStats``: mean, std (population, ddof=0), min, max and peak-to-peak
  over the last ``window`` samples, exact over that window (min and max too),
  and stable for large offsets (1e9 ± 3).
- ``TimeSeries``: ``(t, uid, values)`` samples in a RingBuffer and the rolling
  statistics of each value: what a panel plots against time.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["RingBuffer", "RollingStats", "TimeSeries"]


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _item_shape(shape: Any) -> Tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"item_shape must be a tuple of positive integers, got {shape!r}") from None
    return tuple(_positive_int(d, "item_shape entries") for d in dims)


class RingBuffer:
    """Thread-safe ring of the newest ``capacity`` items, read oldest first.

    ``RingBuffer(5000)`` holds float64 samples; ``RingBuffer(1200,
    item_shape=(768,), dtype=np.float32)`` holds rows (spectra). A write of
    any length is at most two slice copies; one longer than the capacity
    keeps its newest ``capacity`` items. ``read(n, timeout)`` waits until
    ``n`` unread items are there and consumes them; on timeout it returns the
    fewer items there are, or raises ``TimeoutError`` when there are none.
    ``timeout`` defaults to the one given here (seconds).

    Subclasses store more than one column per item (e.g. a time beside each
    spectrum) by overriding ``_column_specs`` and writing with ``_write_columns``.
    """

    def __init__(self, capacity: int, item_shape: Sequence[int] = (), dtype: Any = np.float64, *,
                 timeout: float = 10.0):
        capacity = _positive_int(capacity, "capacity")
        self.item_shape = _item_shape(item_shape)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError as exc:
            raise ValueError(f"dtype {dtype!r} is not a numpy dtype: {exc}") from None
        if self.dtype.kind not in "biufc":
            raise ValueError(f"dtype must be numeric (bool, int, float, complex), got {self.dtype}")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._waiting = 0  # readers blocked in read(): a write without them notifies no one
        self._allocate(capacity)

    # -- storage (caller holds the lock, or is __init__) ---------------------------------
    def _column_specs(self) -> List[Tuple[Tuple[int, ...], np.dtype]]:
        """(item shape, dtype) of each column; column 0 is what ``write``/``read`` see."""
        return [(self.item_shape, self.dtype)]

    def _allocate(self, capacity: int) -> None:
        self._capacity = capacity
        self._cols = [np.zeros((capacity,) + tuple(shape), dtype=dtype)
                      for shape, dtype in self._column_specs()]
        self._total = 0  # items ever written (absolute index of the next one)
        self._read = 0  # absolute index of the oldest unread item
        self._overflow = 0  # items overwritten (or dropped) before they were read

    def _write_columns(self, arrays: Sequence[np.ndarray]) -> int:
        """Append k items given as one array per column (each of length k)."""
        k = len(arrays[0])
        if k == 0:
            return 0
        with self._cond:
            if self._closed:
                raise ValueError("write to a closed RingBuffer")
            cap = self._capacity
            skip = max(0, k - cap)  # only the newest `cap` survive anyway
            start = (self._total + skip) % cap
            n = k - skip
            first = min(n, cap - start)
            for col, arr in zip(self._cols, arrays):
                col[start:start + first] = arr[skip:skip + first]
                if first < n:  # wrap: the rest goes to the top
                    col[:n - first] = arr[skip + first:]
            self._total += k
            oldest_kept = self._total - cap
            if oldest_kept > self._read:
                self._overflow += oldest_kept - self._read
                self._read = oldest_kept
            if self._waiting:
                self._cond.notify_all()
            return k

    def _take(self, start: int, n: int, columns: Optional[int] = None) -> List[np.ndarray]:
        """Copies of items ``[start, start + n)`` (absolute indices) of every
        column (or of the first ``columns``)."""
        cap = self._capacity
        cols = self._cols if columns is None else self._cols[:columns]
        i = start % cap
        if i + n <= cap:
            return [col[i:i + n].copy() for col in cols]
        return [np.concatenate((col[i:], col[:i + n - cap])) for col in cols]

    def _stored_columns(self, n: Optional[int] = None) -> List[np.ndarray]:
        """The newest ``n`` kept items (all if None) of every column, oldest first."""
        kept = min(self._total, self._capacity)
        n = kept if n is None else max(0, min(int(n), kept))
        return self._take(self._total - n, n)

    # -- writing ----------------------------------------------------------------------
    def write(self, data: Any) -> int:
        """Append items: scalars (any array shape is flattened) when ``item_shape`` is
        ``()``, else one item of ``item_shape`` or a block ``(k,) + item_shape``.
        Returns k; items lost to overflow are counted in ``overflow_count``."""
        arr = np.asarray(data)
        if arr.dtype != self.dtype:
            if arr.dtype.kind not in "biufc":
                raise TypeError(f"RingBuffer takes numbers, got an array of {arr.dtype}")
            if not np.can_cast(arr.dtype, self.dtype, casting="same_kind"):
                raise TypeError(f"cannot store {arr.dtype} values in a {self.dtype} RingBuffer")
        if not self.item_shape:
            arr = arr.reshape(-1)
        elif arr.shape == self.item_shape:
            arr = arr[np.newaxis]
        elif arr.shape[1:] != self.item_shape:
            raise ValueError(f"items of shape {self.item_shape} expected, got an array of shape "
                             f"{arr.shape}")
        return self._write_columns([arr])

    # -- reading ----------------------------------------------------------------------
    def read(self, n: int, timeout: Optional[float] = None) -> np.ndarray:
        """Consume and return the oldest ``n`` unread items (blocking).

        Waits up to ``timeout`` seconds (default: the buffer's; 0 = do not
        wait) for ``n`` items; then returns the fewer there are, or raises
        ``TimeoutError`` if there are none. A closed buffer returns what is
        left without waiting (an empty array once drained).
        """
        if type(n) is not int:
            n = _positive_int(n, "n")
        if not 0 < n <= self._capacity:
            raise ValueError(f"n must be a positive integer at most the capacity "
                             f"{self._capacity}, got {n}")
        timeout = self.timeout if timeout is None else float(timeout)
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0, got {timeout}")
        with self._cond:
            if self._total - self._read < n and not self._closed and timeout > 0:
                self._waiting += 1
                try:
                    self._cond.wait_for(lambda: self._closed or self._total - self._read >= n,
                                        timeout)
                finally:
                    self._waiting -= 1
            m = min(n, self._total - self._read)
            if m == 0 and not self._closed:
                raise TimeoutError(f"no data within {timeout:g} s")
            out = self._take(self._read, m, 1)[0]
            self._read += m
            return out

    def chunks(self, n: int, timeout: Optional[float] = None) -> Iterator[np.ndarray]:
        """Yield chunks of up to ``n`` items as they arrive, until ``close()``
        and drained (a wait of ``timeout`` with nothing new yields nothing and goes on)."""
        while True:
            try:
                chunk = self.read(n, timeout)
            except TimeoutError:
                continue
            if len(chunk) == 0:  # closed and drained
                return
            yield chunk

    def peek(self, n: Optional[int] = None) -> np.ndarray:
        """The oldest ``n`` unread items (all if None), without consuming them."""
        with self._cond:
            avail = self._total - self._read
            n = avail if n is None else max(0, min(int(n), avail))
            return self._take(self._read, n, 1)[0]

    def latest(self, n: Optional[int] = None) -> np.ndarray:
        """The newest ``n`` items still held (read or not; all if None), oldest first."""
        with self._cond:
            return self._stored_columns(n)[0]

    def clear(self) -> None:
        """Forget the contents and the counts (the capacity and shape stay)."""
        with self._cond:
            self._allocate(self._capacity)
            self._cond.notify_all()

    def close(self) -> None:
        """No more writes; blocked readers wake and get what is left."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- state ------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def available(self) -> int:
        """Unread items."""
        with self._cond:
            return self._total - self._read

    @property
    def total(self) -> int:
        """Items ever written (since creation or ``clear()``)."""
        return self._total

    @property
    def overflow_count(self) -> int:
        return self._overflow

    def stats(self) -> Dict[str, int]:
        with self._cond:
            return {"total_samples": self._total, "overflow_count": self._overflow,
                    "available": self._total - self._read, "capacity": self._capacity}

    def __repr__(self) -> str:
        s = self.stats()
        return (f"RingBuffer(capacity={self._capacity}, item_shape={self.item_shape}, "
                f"dtype={self.dtype}, available={s['available']}, total={s['total_samples']})")


# Up to this window, statistics are recomputed over the raw window (a few numpy
# calls over at most this many samples); beyond it, merged from block summaries
DIRECT_WINDOW = 8192


class RollingStats:
    """Mean, std, min, max, peak-to-peak of the last ``window`` samples.

    A window up to ``DIRECT_WINDOW`` samples is kept raw and its statistics
    recomputed when asked (two passes: the mean, then the squared deviations
    from it). A larger one is cut into blocks of about sqrt(window) samples;
    each full block keeps its mean, sum of squared deviations (two-pass over
    its own samples), min and max, and the window's statistics merge the full
    blocks inside it (Chan et al.'s formula, vectorised) with the raw samples
    of the partial blocks at its ends: O(sqrt(window)) to ask. Either way the
    result is exact over the window (min and max included) and no running sum
    ever subtracts large numbers from each other: samples of 1e9 ± 3 give
    their std to ~1e-7, not the catastrophic cancellation of sum(x²)/n - mean².
    Asking twice without an update in between costs nothing.

    ``update(chunk)`` takes any number of samples (any shape is flattened);
    ``get_statistics()`` returns ``mean std min max peak_to_peak n_samples``
    (std is the population std, ddof=0). NaNs propagate.
    """

    def __init__(self, window: int, *, block: Optional[int] = None):
        self.window = _positive_int(window, "window")
        if block is None:  # a small window is cheaper to recompute than to merge from blocks
            block = self.window if self.window <= DIRECT_WINDOW else int(round(math.sqrt(self.window)))
        self.block = _positive_int(block, "block")
        # direct: the raw window is all there is (no block summaries to keep)
        self._direct = self.block >= self.window
        self._n_blocks = 1 if self._direct else -(-self.window // self.block) + 1  # + the one filling
        self._capacity = self.window if self._direct else self._n_blocks * self.block
        self._lock = threading.Lock()
        self._allocate()

    def _allocate(self) -> None:
        self._raw = np.zeros(self._capacity, dtype=np.float64)
        # per block slot: mean, sum of squared deviations, min, max
        self._blocks = np.zeros((self._n_blocks, 4), dtype=np.float64)
        self._total = 0
        self._cached: Optional[Tuple[int, Dict[str, float]]] = None

    def reset(self) -> None:
        with self._lock:
            self._allocate()

    @property
    def n_samples(self) -> int:
        """Samples in the window now (≤ window)."""
        return min(self._total, self.window)

    @property
    def total(self) -> int:
        """Samples ever given to ``update`` (since creation or ``reset()``)."""
        return self._total

    def update(self, data: Any) -> None:
        x = np.asarray(data)
        if x.dtype != np.float64:
            if x.dtype.kind not in "biuf":
                raise TypeError(f"RollingStats takes real numbers, got an array of {x.dtype}")
            x = x.astype(np.float64)
        x = x.reshape(-1)
        k = x.size
        if k == 0:
            return
        with self._lock:
            cap, b = self._capacity, self.block
            t0 = self._total
            t1 = t0 + k
            skip = max(0, k - cap)
            start = (t0 + skip) % cap
            n = k - skip
            first = min(n, cap - start)
            self._raw[start:start + first] = x[skip:skip + first]
            if first < n:
                self._raw[:n - first] = x[skip + first:]
            self._total = t1
            # summaries of the blocks this chunk completed whose samples are all still held
            j0 = max(t0 // b, -(-(t1 - cap) // b))
            j1 = t1 // b  # exclusive
            if j1 > j0 and not self._direct:
                slots = np.arange(j0, j1) % self._n_blocks
                blocks = self._raw.reshape(self._n_blocks, b)[slots]
                mean = blocks.mean(axis=1)
                dev = blocks - mean[:, None]
                self._blocks[slots] = np.column_stack((mean, np.einsum("ij,ij->i", dev, dev),
                                                       blocks.min(axis=1), blocks.max(axis=1)))

    def _raw_segment(self, a: int, c: int) -> np.ndarray:
        """Samples with absolute indices [a, c) (all still held)."""
        cap = self._capacity
        i = a % cap
        if i + (c - a) <= cap:
            return self._raw[i:i + (c - a)]
        return np.concatenate((self._raw[i:], self._raw[:i + (c - a) - cap]))

    def get_statistics(self) -> Dict[str, float]:
        """Statistics of the window; ValueError before the first sample."""
        with self._lock:
            t, b = self._total, self.block
            if self._cached is not None and self._cached[0] == t:
                return dict(self._cached[1])
            n = min(t, self.window)
            if n == 0:
                raise ValueError("no data accumulated yet")
            s = t - n
            first_full, head = -(-s // b), t // b
            if self._direct or first_full >= head:  # no full block inside: raw samples only
                raw, blocks = self._raw_segment(s, t), None
            else:  # the raw ends (partial blocks) and the full blocks between them
                raw = np.concatenate((self._raw_segment(s, first_full * b),
                                      self._raw_segment(head * b, t)))
                blocks = self._blocks.take(np.arange(first_full, head), axis=0, mode="wrap")
            # mean first, then every squared deviation from it: no large numbers cancel
            total = raw.sum()
            if blocks is not None:
                total += b * blocks[:, 0].sum()
            mean = float(total / n)
            dev = raw - mean
            m2 = float(np.dot(dev, dev))
            lo = float(raw.min()) if raw.size else math.inf
            hi = float(raw.max()) if raw.size else -math.inf
            if blocks is not None:
                d = blocks[:, 0] - mean
                m2 += float(blocks[:, 1].sum()) + b * float(np.dot(d, d))
                lo, hi = min(lo, float(blocks[:, 2].min())), max(hi, float(blocks[:, 3].max()))
            result = {"mean": mean, "std": math.sqrt(max(0.0, m2 / n)), "min": lo, "max": hi,
                      "peak_to_peak": hi - lo, "n_samples": n}
            self._cached = (t, result)
            return dict(result)


class _SeriesRing(RingBuffer):
    """A ring of (t, uid, values) samples."""

    def __init__(self, capacity: int, n_values: int):
        self.n_values = n_values
        super().__init__(capacity, (n_values,), np.float64)

    def _column_specs(self):
        return [((self.n_values,), np.dtype(np.float64)), ((), np.dtype(np.float64)),
                ((), np.dtype(np.int64))]


class TimeSeries:
    """Named values sampled over time, ``(t, uid, values)``, the newest
    ``window`` kept, with the rolling statistics of each name over them.

    Thread-safe: one thread adds (a worker), others read (a panel, a stats file).
    """

    def __init__(self, names: Sequence[str], window: int = 600):
        self.names = tuple(names)
        if not self.names:
            raise ValueError("a TimeSeries needs at least one value name")
        self._lock = threading.Lock()
        self.version = 0  # bumps with every change, so a reader can skip an unchanged series
        self._build(_positive_int(window, "window"))

    def _build(self, window: int, keep: Optional[List[np.ndarray]] = None) -> None:
        self.window = window
        self._ring = _SeriesRing(window, len(self.names))
        self._rolling = {name: RollingStats(window) for name in self.names}
        self._rolling_now: Dict[str, Dict[str, float]] = {}
        if keep is not None and len(keep[0]):
            self._append(keep[1], keep[2], keep[0])

    def _append(self, t: np.ndarray, uid: np.ndarray, values: np.ndarray) -> None:
        self._ring._write_columns([values, t, uid])
        for i, name in enumerate(self.names):
            self._rolling[name].update(values[:, i])
        # computed here, by the adding thread: readers (a GUI) only copy the result
        self._rolling_now = {name: rs.get_statistics() for name, rs in self._rolling.items()}
        self.version += 1

    def add(self, t: Any, uid: Any, values: Any) -> None:
        """One sample (``t`` scalar, ``values`` one per name) or k of them
        (``t``, ``uid`` of length k, ``values`` (k, n_names))."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[np.newaxis]
        if values.ndim != 2 or values.shape[1] != len(self.names):
            raise ValueError(f"values of {len(self.names)} names ({', '.join(self.names)}) "
                             f"expected, got shape {values.shape}")
        k = values.shape[0]
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), (k,))
        uid = np.broadcast_to(np.asarray(uid, dtype=np.int64), (k,))
        with self._lock:
            self._append(t, uid, values)

    def set_window(self, window: int) -> None:
        """Keep the newest ``window`` samples and compute the rolling statistics over them."""
        window = _positive_int(window, "window")
        with self._lock:
            if window != self.window:
                with self._ring._cond:
                    keep = self._ring._stored_columns(window)
                self._build(window, keep)
                self.version += 1

    def clear(self) -> None:
        with self._lock:
            self._build(self.window)
            self.version += 1

    def series(self, n: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(t, uid, values)`` of the newest ``n`` samples (all if None), oldest first;
        ``values`` is ``(n, len(names))``."""
        with self._lock, self._ring._cond:
            values, t, uid = self._ring._stored_columns(n)
        return t, uid, values

    def __len__(self) -> int:
        with self._lock:
            return min(self._ring.total, self.window)

    @property
    def total(self) -> int:
        """Samples ever added (since creation or ``clear()``)."""
        return self._ring.total

    def latest(self) -> Optional[Dict[str, float]]:
        """The newest sample: ``t``, ``uid`` and each name; None when empty."""
        t, uid, values = self.series(1)
        if not len(t):
            return None
        out: Dict[str, Any] = {"t": float(t[0]), "uid": int(uid[0])}
        out.update((name, float(v)) for name, v in zip(self.names, values[0]))
        return out

    def rolling(self) -> Dict[str, Dict[str, float]]:
        """name -> RollingStats.get_statistics() over the window, as of the last
        ``add`` ({} when empty)."""
        with self._lock:
            return {name: dict(st) for name, st in self._rolling_now.items()}

    def summary(self) -> Dict[str, Any]:
        """The numbers for ``--stats-json``: the latest sample and the rolling statistics."""
        return {"window": self.window, "samples": self.total, "latest": self.latest(),
                "rolling": self.rolling()}
