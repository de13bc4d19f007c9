"""Lossless recording: TIFF sequence, BigTIFF stack, HDF5 (SWMR).

Public API::

    rec = Recorder(out_dir, fmt="tiff"|"tiff-stack"|"hdf5", prefix="frame",
                   buffer_bytes=1 << 30, stack=False, compression=None, process=None,
                   writer_threads=None)   # TIFF sequence: 3 threads by default
    rec.start()                 # RecordError if the directory/format is unusable
    session.add_tap(rec.tap)    # tap runs on the source thread: put only
    ...
    session.remove_tap(rec.tap)
    rec.stop(drain=True)        # write what is queued, close the files
    rec.stats()                 # recording, recorded, record_drops, ... (STAT_KEYS)

    run_recording(source, out_dir, ...) -> RecordSummary   # headless, with progress
    parse_size("2GiB") -> 2147483648

No Qt here; the panel is ``pystream.gui.record_panel.RecordPanel``.
"""
from .headless import RecordSummary, parse_size, run_recording
from .recorder import STAT_KEYS, Recorder, RecordError
from .writers import (FrameWriter, Hdf5Writer, RecordIOError, TiffSequenceWriter,
                      TiffStackWriter, make_writer)

__all__ = [
    "Recorder", "RecordError", "RecordIOError", "STAT_KEYS",
    "FrameWriter", "TiffSequenceWriter", "TiffStackWriter", "Hdf5Writer", "make_writer",
    "run_recording", "RecordSummary", "parse_size",
]
