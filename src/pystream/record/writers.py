"""File writers for the record path: TIFF sequence, BigTIFF stack, HDF5.

One interface: ``open()`` (check the directory, reserve a name), ``write(array,
meta)`` (one frame, exact dtype and values), ``close()`` (everything on disk
is complete). ``meta`` is ``Frame.metadata()``: uid, timestamp, t_recv,
source, attributes, ... It is stored with every frame.

Rules every writer keeps:
- never overwrite: names are chosen by the next free index and created with
  exclusive mode (``'x'``), so a race with another writer cannot clobber;
- a failed write leaves no half-written frame behind (the file is removed,
  or the stack is rolled back to its last complete page);
- an ``OSError`` (disk full, permission denied, directory removed) is raised
  as ``RecordIOError`` with a human message; a frame that does not fit the
  file (HDF5 shape change) raises ``FrameRejected`` and the writer carries on.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import struct
import threading
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..frame import FrameRejected

INDEX_WIDTH = 6
TIFF_COMPRESSIONS_ALIASES = {"gzip": "zlib", "deflate": "zlib", "none": None, "": None}
HDF5_COMPRESSIONS = {None: None, "": None, "none": None, "gzip": "gzip", "zlib": "gzip",
                     "deflate": "gzip", "lzf": "lzf"}
FREE_SPACE_MARGIN = 1 << 20  # keep 1 MiB free for file metadata (IFDs, HDF5 B-trees)
FILE_CHECK_INTERVAL = 1.0  # seconds between "is my file still there" checks


def check_still_there(path, inode: int) -> None:
    """Writing into a file someone removed loses data silently: say so instead."""
    try:
        same = os.stat(path).st_ino == inode
    except OSError:
        same = False
    if not same:
        raise RecordIOError(f"output file was removed: {path}", errno.ENOENT)
_SHORT_WRITE = re.compile(r"requested and \d+ written")


class RecordIOError(OSError):
    """The disk refused: recording must stop. ``message`` says why, for a human."""

    def __init__(self, message: str, errno_: Optional[int] = None):
        super().__init__(errno_, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def describe_os_error(exc: BaseException, path: str) -> str:
    """A clear sentence for the usual ways a disk says no."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        return f"disk full while writing {path}"
    if code == errno.EDQUOT:
        return f"disk quota exceeded while writing {path}"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied: {path}"
    if code == errno.ENOENT:
        return f"output directory or file was removed: {path}"
    if code == errno.EROFS:
        return f"read-only file system: {path}"
    if code is None and _SHORT_WRITE.search(str(exc)):
        # tifffile reports a short write without errno: the disk ran out of room
        return f"disk full while writing {path} ({exc})"
    return f"cannot write {path}: {exc}"


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of metadata (numpy scalars, bytes, odd objects → plain values)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return jsonable(value.item(), depth)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if depth > 8:
        return repr(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, np.ndarray):
        if value.size <= 1024:
            return jsonable(value.tolist(), depth + 1)
        return f"<array shape={value.shape} dtype={value.dtype}>"
    return repr(value)


def frame_description(meta: Dict[str, Any]) -> str:
    """The per-frame JSON stored in a TIFF page's ImageDescription (7-bit ASCII)."""
    clean = jsonable(meta)
    ordered = {key: clean.pop(key) for key in ("uid", "timestamp", "t_recv", "source")
               if key in clean}
    ordered.update(clean)
    return json.dumps(ordered, ensure_ascii=True, separators=(",", ":"))


def next_free_index(directory: str, pattern: "re.Pattern[str]") -> int:
    """1 + the highest index of the files in ``directory`` matching ``pattern``."""
    highest = 0
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 1
    for name in names:
        match = pattern.fullmatch(name)
        if match:
            highest = max(highest, int(match.group(1)))
    return highest + 1


def check_directory(directory: str) -> str:
    """The absolute directory, created if needed; RecordIOError if unusable."""
    directory = os.path.abspath(os.path.expanduser(directory))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise RecordIOError(f"not a directory: {directory}", errno.ENOTDIR)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:  # creating it, not writing: say so (ENOENT here is not "removed")
        reason = exc.strerror or str(exc)
        raise RecordIOError(f"cannot create the output directory {directory}: {reason}",
                            exc.errno) from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise RecordIOError(f"permission denied: {directory}", errno.EACCES)
    return directory


def check_free_space(directory: str, nbytes: int) -> None:
    """Refuse a frame that will not fit, before writing a single byte of it.

    Also notices a removed output directory, which an open file on Linux
    would otherwise hide until the data are lost.
    """
    try:
        st = os.statvfs(directory)
    except OSError as exc:
        raise RecordIOError(describe_os_error(exc, directory), exc.errno) from exc
    free = st.f_bavail * st.f_frsize
    if free < nbytes + FREE_SPACE_MARGIN:
        raise RecordIOError(
            f"disk full: {free / 1e6:.1f} MB free in {directory}, "
            f"{FREE_SPACE_MARGIN / 1e6:.0f} MB is kept free, "
            f"a frame needs {nbytes / 1e6:.1f} MB", errno.ENOSPC)


def _tiff_compression(compression: Optional[str]) -> Optional[str]:
    if compression is None:
        return None
    key = str(compression).lower()
    return TIFF_COMPRESSIONS_ALIASES.get(key, key)


def _photometric(array: np.ndarray) -> str:
    return "rgb" if array.ndim == 3 and array.shape[-1] == 3 else "minisblack"


class FrameWriter:
    """Common bookkeeping: directory, name choice, counts, space checks."""

    extension = ""
    kind = ""
    #: writer threads a Recorder uses by default / at most; a one-file writer is
    #: single-threaded (frames are appended in order to one file)
    default_threads = 1
    max_threads = 1

    def __init__(self, out_dir: str, prefix: str = "frame", compression: Optional[str] = None,
                 check_space: bool = True):
        if not prefix or os.sep in prefix or (os.altsep and os.altsep in prefix):
            raise ValueError(f"invalid file name prefix: {prefix!r}")
        self.out_dir = out_dir
        self.prefix = prefix
        self.compression = compression
        self.check_space = check_space
        self.frames_written = 0
        self.bytes_written = 0  # pixel bytes, what MB/s measures
        self.path = ""  # the file being written (or the last one, for a sequence)
        self.first_path = ""
        self.file_count = 0  # files holding at least one frame
        self._opened = False

    def _preflight(self, nbytes: int) -> None:
        if self.check_space:
            check_free_space(self.out_dir, nbytes)

    def open(self) -> None:
        raise NotImplementedError

    def write(self, array: np.ndarray, meta: Dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "FrameWriter":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _finish_single_file(self) -> None:
        """After closing a one-file recording: an empty file is not a recording."""
        if self.frames_written == 0 and self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            self.path = self.first_path = ""
        else:
            self.file_count = 1


class TiffSequenceWriter(FrameWriter):
    """One TIFF per frame: ``prefix_000001.tiff``, ``prefix_000002.tiff``, ...

    Numbering continues after the highest existing index, so a second
    recording with the same prefix never touches the first one's files.

    A frame is written in two steps so several threads can share the work
    (``Recorder`` runs ``default_threads`` of them on a sequence): ``reserve``
    picks and exclusively creates the next name (cheap; the caller calls it
    in frame order, one thread at a time), then ``write_reserved`` writes the
    pixels and closes the file (the slow part; any number at once, the file
    writes release the GIL). ``write`` does both.
    """

    extension = ".tiff"
    kind = "tiff"
    #: writer threads a Recorder uses by default (files are independent)
    default_threads = 3
    max_threads = 8

    def __init__(self, out_dir: str, prefix: str = "frame", compression: Optional[str] = None,
                 check_space: bool = True):
        super().__init__(out_dir, prefix, compression, check_space)
        self._pattern = re.compile(re.escape(prefix) + r"_(\d+)\.tiff?")
        self.next_index = 1
        self._lock = threading.Lock()  # counts and names shared by the writer threads
        self._first_index = 0
        self._last_index = 0

    def open(self) -> None:
        import tifffile  # noqa: F401  (fail at start, not at the first frame)

        self.out_dir = check_directory(self.out_dir)
        self.next_index = next_free_index(self.out_dir, self._pattern)
        self._opened = True

    def _name(self, index: int) -> str:
        return f"{self.prefix}_{index:0{INDEX_WIDTH}d}{self.extension}"

    def reserve(self, nbytes: int) -> Tuple[int, str, Any]:
        """Preflight, then exclusive create of the next free name: ``(index, path, fh)``.

        Skips names taken meanwhile. Call in frame order, one thread at a time.
        """
        if not self._opened:
            self.open()
        self._preflight(nbytes)
        while True:
            index = self.next_index
            path = os.path.join(self.out_dir, self._name(index))
            self.next_index += 1
            try:
                # buffered (a short write of a small header block raises instead of
                # passing unnoticed); the pixels bypass the buffer (numpy tofile)
                return index, path, open(path, "xb")
            except FileExistsError:
                continue
            except OSError as exc:
                raise RecordIOError(describe_os_error(exc, path), exc.errno) from exc

    def write_reserved(self, slot: Tuple[int, str, Any], array: np.ndarray,
                       meta: Dict[str, Any]) -> None:
        """Write one frame into the file ``reserve`` created, and close it.

        On any failure the file is removed: no half-written file looks like a frame.
        """
        import tifffile

        index, path, fh = slot
        try:
            with fh:
                tifffile.imwrite(fh, array, description=frame_description(meta), metadata=None,
                                 photometric=_photometric(array),
                                 compression=_tiff_compression(self.compression))
        except BaseException as exc:
            try:
                os.unlink(path)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise RecordIOError(describe_os_error(exc, path), exc.errno) from exc
            raise
        with self._lock:
            if index > self._last_index:
                self._last_index, self.path = index, path
            if not self._first_index or index < self._first_index:
                self._first_index, self.first_path = index, path
            self.file_count += 1
            self.frames_written += 1
            self.bytes_written += array.nbytes

    def write(self, array: np.ndarray, meta: Dict[str, Any]) -> None:
        self.write_reserved(self.reserve(array.nbytes), array, meta)

    def close(self) -> None:
        self._opened = False


class TiffStackWriter(FrameWriter):
    """All frames as pages of one BigTIFF: ``prefix_stack_000001.tiff``.

    Every page carries its own JSON description, and consecutive pages of
    the same shape read back as one (N, H, W[, 3]) series
    (``tifffile.imread(path)``). A failed page is rolled back so the file
    keeps its complete pages.
    """

    extension = ".tiff"
    kind = "tiff-stack"

    def __init__(self, out_dir: str, prefix: str = "frame", compression: Optional[str] = None,
                 check_space: bool = True):
        super().__init__(out_dir, prefix, compression, check_space)
        self._pattern = re.compile(re.escape(prefix) + r"_stack_(\d+)\.tiff?")
        self._fh = None
        self._tiff = None
        self._broken = False
        self._last_check = 0.0
        self._inode = None

    def open(self) -> None:
        import tifffile

        self.out_dir = check_directory(self.out_dir)
        index = next_free_index(self.out_dir, self._pattern)
        while True:
            path = os.path.join(self.out_dir, f"{self.prefix}_stack_{index:0{INDEX_WIDTH}d}.tiff")
            try:
                # unbuffered: an error surfaces at the write that caused it, nothing stays pending
                self._fh = open(path, "xb", buffering=0)
                break
            except FileExistsError:
                index += 1
            except OSError as exc:
                raise RecordIOError(describe_os_error(exc, path), exc.errno) from exc
        self.path = self.first_path = path
        self._inode = os.fstat(self._fh.fileno()).st_ino
        self._tiff = tifffile.TiffWriter(self._fh, bigtiff=True)
        self._opened = True

    def _check_file(self) -> None:
        now = time.monotonic()
        if now - self._last_check < FILE_CHECK_INTERVAL:
            return
        self._last_check = now
        check_still_there(self.path, self._inode)

    def write(self, array: np.ndarray, meta: Dict[str, Any]) -> None:
        if not self._opened:
            self.open()
        if self._broken:
            raise RecordIOError(f"stack file is closed after an error: {self.path}")
        self._preflight(array.nbytes)
        self._check_file()
        fd = self._fh.fileno()
        size_before = os.fstat(fd).st_size
        # where the previous page's "next IFD" pointer lives (tifffile internal;
        # without it a rollback still truncates, and readers stop at the end)
        pointer_at = getattr(self._tiff, "_ifdoffset", None)
        try:
            self._tiff.write(array, description=frame_description(meta), metadata=None,
                             photometric=_photometric(array),
                             compression=_tiff_compression(self.compression))
        except OSError as exc:
            self._rollback(fd, size_before, pointer_at)
            raise RecordIOError(describe_os_error(exc, self.path), exc.errno) from exc
        self.frames_written += 1
        self.bytes_written += array.nbytes

    def _rollback(self, fd: int, size: int, pointer_at: Optional[int]) -> None:
        """Cut the failed page off and end the IFD chain at the last good page."""
        self._broken = True
        try:
            os.ftruncate(fd, size)
            if isinstance(pointer_at, int) and 0 < pointer_at < size:
                os.pwrite(fd, struct.pack("<Q", 0), pointer_at)
        except OSError:
            pass

    def close(self) -> None:
        if self._tiff is not None:
            try:
                if not self._broken:
                    self._tiff.close()
            except OSError:
                pass
            self._tiff = None
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None
            self._finish_single_file()
        self._opened = False


class Hdf5Writer(FrameWriter):
    """One HDF5 file ``prefix_000001.h5`` (NeXus-like layout, SWMR-readable).

    ``/entry/data/data`` (N, H, W[, 3]) chunked one frame per chunk;
    ``/entry/data/uid``, ``/entry/data/timestamp``, ``/entry/data/t_recv`` (N,);
    numeric NTNDArray attributes as ``/entry/data/attributes/<name>`` (N,)
    float64 (NaN where a frame lacks it); the first frame's full attributes
    as JSON in the group attribute ``first_frame``. SWMR mode is switched on
    once the datasets exist, and the file is flushed every
    ``flush_interval`` seconds, so other programs can read it while it grows
    and a crash keeps what was flushed.

    A disk that fills up under HDF5 leaves it with dirty caches it cannot
    write, and then crashes the process when the file is closed (HDF5 2.0,
    with or without SWMR). So the writer keeps ``reserve_bytes`` of disk in a
    hidden ``.NAME.reserve`` file next to the data, and frees it before
    closing: the last metadata always has room, the file stays valid.
    """

    extension = ".h5"
    kind = "hdf5"
    reserve_bytes = 4 << 20

    def __init__(self, out_dir: str, prefix: str = "frame", compression: Optional[str] = None,
                 check_space: bool = True, flush_interval: float = 1.0):
        super().__init__(out_dir, prefix, compression, check_space)
        key = compression.lower() if isinstance(compression, str) else compression
        if key not in HDF5_COMPRESSIONS:
            raise ValueError(f"HDF5 compression must be one of gzip, lzf or none, not {compression!r}")
        self.h5_compression = HDF5_COMPRESSIONS[key]
        self.flush_interval = flush_interval
        self._pattern = re.compile(re.escape(prefix) + r"_(\d+)\.h5")
        self._file = None
        self._data = None
        self._uid = None
        self._timestamp = None
        self._t_recv = None
        self._attr_dsets: Dict[str, Any] = {}
        self._last_flush = 0.0
        self._last_check = 0.0
        self._inode = None
        self._frame_shape = None
        self._frame_dtype = None
        self._reserve_path = ""

    def _make_reserve(self, path: str) -> None:
        """Hold ``reserve_bytes`` of disk so closing after a full disk has room."""
        if self.reserve_bytes <= 0:
            return
        directory, name = os.path.split(path)
        reserve = os.path.join(directory, f".{name}.reserve")
        try:
            fd = os.open(reserve, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except OSError:
            return  # no reserve: the free-space check alone has to do
        try:
            try:
                os.posix_fallocate(fd, 0, self.reserve_bytes)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise
                os.write(fd, bytes(self.reserve_bytes))  # filesystems without fallocate
        except OSError as exc:
            os.close(fd)
            os.unlink(reserve)
            raise RecordIOError(describe_os_error(exc, path), exc.errno) from exc
        os.close(fd)
        self._reserve_path = reserve

    def _release_reserve(self) -> None:
        if self._reserve_path:
            try:
                os.unlink(self._reserve_path)
            except OSError:
                pass
            self._reserve_path = ""

    def open(self) -> None:
        import h5py

        self.out_dir = check_directory(self.out_dir)
        index = next_free_index(self.out_dir, self._pattern)
        while True:
            path = os.path.join(self.out_dir, f"{self.prefix}_{index:0{INDEX_WIDTH}d}{self.extension}")
            if os.path.exists(path):
                index += 1
                continue
            try:
                self._file = h5py.File(path, "x", libver="latest")
                break
            except FileExistsError:
                index += 1
            except OSError as exc:
                if os.path.exists(path) and getattr(exc, "errno", None) in (None, errno.EEXIST):
                    index += 1
                    continue
                raise RecordIOError(describe_os_error(exc, path), getattr(exc, "errno", None)) from exc
        self.path = self.first_path = path
        self._inode = os.stat(path).st_ino
        try:
            self._make_reserve(path)
        except RecordIOError:
            self._file.close()
            self._file = None
            os.unlink(path)
            raise
        self._opened = True

    def _create_datasets(self, array: np.ndarray, meta: Dict[str, Any]) -> None:
        f = self._file
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        group = entry.create_group("data")
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = "data"
        shape = array.shape
        self._data = group.create_dataset(
            "data", shape=(0,) + shape, maxshape=(None,) + shape, chunks=(1,) + shape,
            dtype=array.dtype, compression=self.h5_compression)
        self._data.attrs["color"] = "rgb" if array.ndim == 3 and array.shape[-1] == 3 else "mono"
        self._uid = group.create_dataset("uid", shape=(0,), maxshape=(None,), dtype="i8",
                                         chunks=(4096,))
        self._timestamp = group.create_dataset("timestamp", shape=(0,), maxshape=(None,),
                                               dtype="f8", chunks=(4096,))
        self._timestamp.attrs["units"] = "s"
        self._timestamp.attrs["description"] = "producer timestamp, POSIX seconds"
        self._t_recv = group.create_dataset("t_recv", shape=(0,), maxshape=(None,), dtype="f8",
                                            chunks=(4096,))
        self._t_recv.attrs["units"] = "s"
        attrs_group = group.create_group("attributes")
        attributes = meta.get("attributes") or {}
        attrs_group.attrs["first_frame"] = json.dumps(jsonable(attributes))
        # SWMR cannot add datasets later: numeric attributes seen in the first frame get one each
        for name, value in attributes.items():
            value = value.item() if isinstance(value, np.generic) else value
            if isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and "/" not in str(name) and str(name) not in (".", ""):
                self._attr_dsets[str(name)] = attrs_group.create_dataset(
                    str(name), shape=(0,), maxshape=(None,), dtype="f8", chunks=(4096,))
        f.attrs["source"] = str(meta.get("source", ""))
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.attrs["creator"] = "pystream"
        self._frame_shape = shape
        self._frame_dtype = array.dtype
        f.swmr_mode = True
        f.flush()
        self._last_flush = time.monotonic()

    def _check_file(self) -> None:
        check_still_there(self.path, self._inode)

    def write(self, array: np.ndarray, meta: Dict[str, Any]) -> None:
        if not self._opened:
            self.open()
        if self._data is None:
            self._preflight(array.nbytes)
            try:
                self._create_datasets(array, meta)
            except OSError as exc:
                raise RecordIOError(describe_os_error(exc, self.path), getattr(exc, "errno", None)) \
                    from exc
        if array.shape != self._frame_shape or array.dtype != self._frame_dtype:
            raise FrameRejected(
                "shape_changed",
                f"frame {array.shape} {array.dtype} does not fit {self.path} "
                f"({self._frame_shape} {self._frame_dtype}); start a new recording")
        self._preflight(array.nbytes)
        now = time.monotonic()
        if now - self._last_check >= FILE_CHECK_INTERVAL:
            self._last_check = now
            self._check_file()
        n = self.frames_written
        try:
            self._data.resize(n + 1, axis=0)
            if self.h5_compression is None:
                # the chunk is the frame: hand HDF5 the bytes, no hyperslab machinery
                data = np.ascontiguousarray(array)
                self._data.id.write_direct_chunk((n,) + (0,) * array.ndim,
                                                 memoryview(data).cast("B"))
            else:
                self._data[n] = array
            for dset, value in ((self._uid, meta.get("uid", -1)),
                                (self._timestamp, meta.get("timestamp", math.nan)),
                                (self._t_recv, meta.get("t_recv", math.nan))):
                dset.resize(n + 1, axis=0)
                dset[n] = value if value is not None else (math.nan if dset.dtype.kind == "f" else -1)
            attributes = meta.get("attributes") or {}
            for name, dset in self._attr_dsets.items():
                dset.resize(n + 1, axis=0)
                dset[n] = _as_float(attributes.get(name))
            if now - self._last_flush >= self.flush_interval:
                self._file.flush()
                self._last_flush = now
        except OSError as exc:
            self._recover(n)
            raise RecordIOError(describe_os_error(exc, self.path), getattr(exc, "errno", None)) \
                from exc
        self.frames_written += 1
        self.bytes_written += array.nbytes

    def _recover(self, frames: int) -> None:
        """After a failed write: free the reserve, cut the datasets back to complete frames."""
        self._release_reserve()
        for dset in (self._data, self._uid, self._timestamp, self._t_recv,
                     *self._attr_dsets.values()):
            try:
                if dset is not None and dset.shape[0] > frames:
                    dset.resize(frames, axis=0)
            except Exception:
                pass

    def flush(self) -> None:
        if self._file is not None and self._data is not None:
            self._file.flush()
            self._last_flush = time.monotonic()

    def close(self) -> None:
        self._release_reserve()  # room for the last metadata
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # a failed close after a disk error must not mask that error
                pass
            # drop every handle into the file: HDF5 objects outliving a failed close crash later
            self._file = self._data = self._uid = self._timestamp = self._t_recv = None
            self._attr_dsets = {}
            self._finish_single_file()
        self._opened = False


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def make_writer(out_dir: str, fmt: str = "tiff", prefix: str = "frame", stack: bool = False,
                compression: Optional[str] = None, check_space: bool = True,
                flush_interval: float = 1.0) -> FrameWriter:
    """The writer for a format name: ``tiff`` (sequence, or stack), ``tiff-stack``, ``hdf5``."""
    key = fmt.lower().replace("_", "-")
    if key in ("tiff", "tif"):
        cls = TiffStackWriter if stack else TiffSequenceWriter
        return cls(out_dir, prefix, compression, check_space)
    if key in ("tiff-stack", "bigtiff", "stack"):
        return TiffStackWriter(out_dir, prefix, compression, check_space)
    if key in ("hdf5", "h5"):
        return Hdf5Writer(out_dir, prefix, compression, check_space, flush_interval)
    raise ValueError(f"unknown record format {fmt!r} (tiff, tiff-stack, hdf5)")


def check_compression(fmt_writer: FrameWriter) -> None:
    """Fail at start, not at the first frame, when a TIFF codec is unavailable."""
    if isinstance(fmt_writer, (TiffSequenceWriter, TiffStackWriter)) and fmt_writer.compression:
        import io

        import tifffile

        try:
            tifffile.imwrite(io.BytesIO(), np.zeros((2, 2), np.uint16),
                             compression=_tiff_compression(fmt_writer.compression))
        except Exception as exc:
            raise ValueError(f"TIFF compression {fmt_writer.compression!r} is not available: "
                             f"{exc}") from exc
