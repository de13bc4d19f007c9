"""Replay: a recording played back as a stream, one frame read at a time.

    pystream --replay run42.h5                  # at the recorded capture rate
    pystream --replay 'run42/*.tiff' --fps 100 --loop

Plays what pystream records (a TIFF sequence, a BigTIFF stack, HDF5
``/entry/data/data``) and what other programs write: a folder or a glob of
TIFF files (one frame per file, in natural name order: ``f2`` before
``f10``), a multi-page TIFF, any HDF5 dataset of shape ``(N, H, W)`` or
``(N, H, W, 3)`` (``dataset=``), a ``.npy`` stack. The file is read lazily,
one frame at a time (tifffile pages, h5py slices, a memory-mapped ``.npy``),
so a 20 GB file never goes into memory.

A file that cannot be played is refused by the constructor with a
``ReplayError`` (a ``ValueError``) that says which file and why.
"""
from __future__ import annotations

import glob
import json
import logging
import math
import os
import re
from typing import Any, Iterator, List, Optional, Tuple, Union

import numpy as np

from ._arrays import SHOWN_KINDS, is_rgb
from .iterable import IterSource, Record, Rejected

log = logging.getLogger(__name__)

#: what pystream's Hdf5Writer writes
DEFAULT_DATASET = "/entry/data/data"
#: frames per second when the file does not say its capture rate
DEFAULT_FPS = 10.0
#: frames whose timestamps are read up front to learn the capture rate (TIFF: one
#: page or file each; an HDF5 file's timestamps are one small read, all of them)
RATE_SAMPLE = 50

TIFF_MAGICS = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
NPY_MAGIC = b"\x93NUMPY"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
TIFF_EXTENSIONS = (".tif", ".tiff")


class ReplayError(ValueError):
    """A file that cannot be replayed. ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot replay {path}: {reason}")
        self.path = path
        self.reason = reason


def _natural_key(path: str) -> List[Union[int, str]]:
    """``frame_2`` before ``frame_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path)]


def parse_description(text: Any) -> Tuple[Optional[int], Optional[float], Optional[dict]]:
    """uid, timestamp and attributes from a TIFF page description pystream wrote (JSON)."""
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return None, None, None
    try:
        meta = json.loads(text)
    except ValueError:
        return None, None, None
    if not isinstance(meta, dict):
        return None, None, None
    uid = meta.get("uid")
    uid = uid if isinstance(uid, int) and not isinstance(uid, bool) else None
    stamp = meta.get("timestamp")
    stamp = float(stamp) if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) \
        else None
    attributes = meta.get("attributes")
    return uid, stamp, attributes if isinstance(attributes, dict) else None


def capture_rate(timestamps: Any) -> Optional[float]:
    """Frames per second from recorded timestamps: (frames - 1) over the time they span.

    The mean, not the median interval: frames pushed in chunks share one
    timestamp per chunk, and the mean still gives their rate."""
    stamps = np.asarray([t for t in timestamps if t is not None], dtype=float)
    stamps = stamps[np.isfinite(stamps)]
    if stamps.size < 2:
        return None
    span = float(stamps.max() - stamps.min())
    return (stamps.size - 1) / span if span > 0 else None


def _check_frame_shape(path: str, shape: Tuple[int, ...], dtype: np.dtype, what: str) -> None:
    if dtype.kind not in SHOWN_KINDS:
        raise ReplayError(path, f"{what} holds {dtype} values, not an image")
    if not (len(shape) == 2 or (len(shape) == 3 and is_rgb(shape))) or 0 in shape:
        raise ReplayError(path, f"{what} has frames of shape {shape}: not an image "
                                f"(H, W) or (H, W, 3)")


class _Reader:
    """One file kind: checks the file in the constructor, reads frames on demand."""

    kind = ""
    count = 0
    capture_fps: Optional[float] = None

    def records(self) -> Iterator[Union[Record, Rejected]]:
        raise NotImplementedError


class Hdf5Reader(_Reader):
    """An ``(N, H, W[, 3])`` dataset; ``uid`` and ``timestamp`` beside it when present."""

    kind = "hdf5"

    def __init__(self, path: str, dataset: Optional[str]):
        import h5py

        self.path = path
        self.dataset = dataset or DEFAULT_DATASET
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise ReplayError(path, f"unreadable HDF5 file: {exc}") from exc
        with f:
            dset = f.get(self.dataset)
            if dset is None:
                found = _image_datasets(f)
                hint = f" (image stacks in this file: {', '.join(found)}; choose one with " \
                       f"--dataset)" if found else " (and no image stack anywhere in it)"
                raise ReplayError(path, f"no dataset {self.dataset}{hint}")
            if not isinstance(dset, h5py.Dataset):
                raise ReplayError(path, f"{self.dataset} is a group, not a dataset")
            shape, dtype = dset.shape, dset.dtype
            if len(shape) < 3:
                raise ReplayError(path, f"dataset {self.dataset} has shape {shape}: not a stack "
                                        f"of images (N, H, W) or (N, H, W, 3)")
            _check_frame_shape(path, shape[1:], dtype, f"dataset {self.dataset}")
            self.count = shape[0]
            if self.count == 0:
                raise ReplayError(path, f"dataset {self.dataset} holds no frames")
            stamps = self._sibling(dset, "timestamp")
            if stamps is not None:
                self.capture_fps = capture_rate(stamps[()])

    def _sibling(self, dset, name: str):
        """``uid`` / ``timestamp`` next to the data, one value per frame, or None."""
        import h5py

        other = dset.parent.get(name)
        if isinstance(other, h5py.Dataset) and other.shape == (self.count,):
            return other
        return None

    def records(self) -> Iterator[Union[Record, Rejected]]:
        import h5py

        with h5py.File(self.path, "r") as f:
            dset = f[self.dataset]
            uid_dset, stamp_dset = self._sibling(dset, "uid"), self._sibling(dset, "timestamp")
            # 8 bytes a frame: read once; the pixels are read one frame at a time below
            uids = uid_dset[()] if uid_dset is not None else None
            stamps = stamp_dset[()] if stamp_dset is not None else None
            for i in range(self.count):
                uid = int(uids[i]) if uids is not None and uids[i] >= 0 else None
                stamp = float(stamps[i]) if stamps is not None else None
                yield dset[i], uid, stamp, None


def _image_datasets(f) -> List[str]:
    """Names of the datasets in an HDF5 file that look like image stacks (at most 10)."""
    import h5py

    found: List[str] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim in (3, 4) and len(found) < 10:
            found.append("/" + name)

    f.visititems(visit)
    return found


class TiffStackReader(_Reader):
    """A multi-page TIFF (or BigTIFF): one frame per page."""

    kind = "tiff-stack"

    def __init__(self, path: str):
        import tifffile

        self.path = path
        try:
            with tifffile.TiffFile(path) as tif:
                self.count = len(tif.pages)
                if self.count == 0:
                    raise ReplayError(path, "the TIFF file has no pages")
                first = tif.pages[0]
                _check_frame_shape(path, tuple(first.shape), np.dtype(first.dtype), "the TIFF")
                sample = [parse_description(tif.pages[i].description)[1]
                          for i in range(min(self.count, RATE_SAMPLE))]
        except ReplayError:
            raise
        except Exception as exc:  # tifffile raises TiffFileError, ValueError, OSError...
            raise ReplayError(path, f"unreadable TIFF file: {exc}") from exc
        self.capture_fps = capture_rate(sample)

    def records(self) -> Iterator[Union[Record, Rejected]]:
        import tifffile

        with tifffile.TiffFile(self.path) as tif:
            for i in range(self.count):
                try:
                    page = tif.pages[i]
                    array = page.asarray()
                except Exception as exc:
                    yield Rejected("unreadable_page", f"{self.path} page {i}: {exc}")
                    continue
                yield (array, *parse_description(page.description))


class TiffSequenceReader(_Reader):
    """TIFF files, one frame each (the first page), in natural name order."""

    kind = "tiff"

    def __init__(self, pattern: str, files: List[str]):
        import tifffile

        self.path = pattern
        self.files = sorted(files, key=_natural_key)
        if not self.files:
            raise ReplayError(pattern, "no TIFF file found" if os.path.isdir(pattern)
                              else "no file matches")
        self.count = len(self.files)
        try:
            with tifffile.TiffFile(self.files[0]) as tif:
                first = tif.pages[0]
                _check_frame_shape(self.files[0], tuple(first.shape), np.dtype(first.dtype),
                                   "the TIFF")
        except ReplayError:
            raise
        except Exception as exc:
            raise ReplayError(self.files[0], f"unreadable TIFF file: {exc}") from exc
        sample = []
        for name in self.files[:RATE_SAMPLE]:
            try:
                with tifffile.TiffFile(name) as tif:
                    sample.append(parse_description(tif.pages[0].description)[1])
            except Exception:
                pass  # said when it is played
        self.capture_fps = capture_rate(sample)

    def records(self) -> Iterator[Union[Record, Rejected]]:
        import tifffile

        for name in self.files:
            try:
                with tifffile.TiffFile(name) as tif:
                    page = tif.pages[0]
                    array = page.asarray()
                    description = page.description
            except Exception as exc:  # one bad file costs one frame
                yield Rejected("unreadable_file", f"{name}: {exc}")
                continue
            yield (array, *parse_description(description))


class NpyReader(_Reader):
    """A ``.npy`` array ``(N, H, W[, 3])``, memory-mapped."""

    kind = "npy"

    def __init__(self, path: str):
        self.path = path
        array = self._open()
        _check_frame_shape(path, array.shape[1:] if array.ndim >= 3 else array.shape,
                           array.dtype, "the array")
        if array.ndim < 3:
            raise ReplayError(path, f"array of shape {array.shape}: not a stack of images "
                                    f"(N, H, W) or (N, H, W, 3)")
        self.count = array.shape[0]
        if self.count == 0:
            raise ReplayError(path, "the array holds no frames")

    def _open(self) -> np.ndarray:
        try:
            return np.load(self.path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:
            raise ReplayError(self.path, f"unreadable .npy file: {exc}") from exc

    def records(self) -> Iterator[Union[Record, Rejected]]:
        array = self._open()
        try:
            for i in range(self.count):
                yield np.array(array[i]), None, None, None  # one frame read, not a view
        finally:
            mm = getattr(array, "_mmap", None)
            if mm is not None:
                mm.close()


def open_reader(path: str, dataset: Optional[str] = None) -> _Reader:
    """The reader for ``path``: a folder, a glob, or a TIFF, HDF5 or .npy file."""
    if os.path.isdir(path):
        files = [os.path.join(path, n) for n in os.listdir(path)
                 if n.lower().endswith(TIFF_EXTENSIONS) and os.path.isfile(os.path.join(path, n))]
        _no_dataset(dataset, path, "TIFF sequence")
        return TiffSequenceReader(path, files)
    if not os.path.exists(path):
        if glob.has_magic(path):
            files = [p for p in glob.glob(path) if os.path.isfile(p)]
            _no_dataset(dataset, path, "TIFF sequence")
            return TiffSequenceReader(path, files)
        raise ReplayError(path, "no such file or directory")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ReplayError(path, exc.strerror or str(exc)) from exc
    if head.startswith(NPY_MAGIC):
        _no_dataset(dataset, path, ".npy file")
        return NpyReader(path)
    if head[:4] in TIFF_MAGICS:
        _no_dataset(dataset, path, "TIFF file")
        return TiffStackReader(path)
    if head == HDF5_MAGIC or _is_hdf5(path):
        return Hdf5Reader(path, dataset)
    raise ReplayError(path, "not a TIFF, HDF5 or .npy file")


def _is_hdf5(path: str) -> bool:
    """HDF5 with a user block does not start with the signature."""
    import h5py
    try:
        return bool(h5py.is_hdf5(path))
    except Exception:
        return False


def _no_dataset(dataset: Optional[str], path: str, what: str) -> None:
    if dataset:
        raise ReplayError(path, f"--dataset is for HDF5 files, and this is a {what}")


class ReplaySource(IterSource):
    """A recording played as a stream (see the module docstring for what it reads).

    ``fps``: frames per second; None (default) = the capture rate the
    recorded timestamps give (pystream's TIFF descriptions, HDF5
    ``/entry/data/timestamp``), else 10; ``0`` = as fast as taken. Frames
    keep a fixed timetable (see ``IterSource``).

    Recorded uids and timestamps are used when the file has them (so a
    recording of a replay carries the originals); otherwise frames are
    numbered 1, 2, 3... and stamped with the time they are played.

    ``loop=True`` starts again at the end, for ever (until ``stop()``). uids
    keep increasing: each pass continues from the last uid of the previous
    one (a recording of uids 101-200 plays 101-200, then 201-300, ...), and
    gaps in the recorded uids are kept; the recorded timestamps repeat. A
    frame that cannot be read (a damaged file in a sequence) is rejected
    (counted by reason) and the replay goes on.

    The end of the file is state ``finished``. ``stats()``: as
    ``IterSource`` with a ``replay_`` prefix, and ``replay_frames`` (frames
    in the file), ``replay_loops`` (times it started again), ``replay_path``.

    Raises ``ReplayError`` (a ``ValueError``) for a file it cannot play: not
    an image stack, a missing dataset, an empty folder, an unreadable file.
    """

    kind = "replay"
    stat_prefix = "replay"

    def __init__(self, path: Union[str, os.PathLike], fps: Optional[float] = None, *,
                 loop: bool = False, dataset: Optional[str] = None, name: Optional[str] = None):
        path = os.fspath(path)
        self.reader = open_reader(path, dataset)
        if fps is None:
            fps = self.reader.capture_fps or DEFAULT_FPS
        super().__init__((), fps, name=name or path)
        self.path = path
        self.loop = loop
        self.loops = 0

    def _records(self) -> Iterator[Union[Record, Rejected]]:
        offset = 0
        while True:
            frames = 0
            for record in self.reader.records():
                if isinstance(record, Rejected):
                    yield record
                    continue
                array, uid, stamp, attributes = record
                if uid is not None:
                    if frames == 0 and self.loops:  # a new pass continues the uids
                        offset = self._next_uid - uid
                    uid += offset
                if stamp is not None and not math.isfinite(stamp):
                    stamp = None
                frames += 1
                yield array, uid, stamp, attributes
            if frames == 0:
                raise ReplayError(self.path, "no frame in it could be read")
            if not self.loop or self._halt.is_set():
                return
            self.loops += 1

    def _failure(self, exc: Exception) -> str:
        if isinstance(exc, ReplayError):
            return str(exc)
        return f"reading {self.path} failed: {type(exc).__name__}: {exc}"

    def stats(self) -> dict:
        stats = super().stats()
        stats.update(replay_frames=self.reader.count, replay_loops=self.loops,
                     replay_path=self.path)
        return stats


def replay_source_from_args(args) -> Optional[ReplaySource]:
    """The source ``--replay PATH [--fps N] [--loop] [--dataset NAME]`` asks for, or None.

    Raises ``ReplayError`` for a file that cannot be played.
    """
    path = getattr(args, "replay", None)
    if not path:
        return None
    return ReplaySource(path, fps=args.fps, loop=args.loop, dataset=args.dataset)
