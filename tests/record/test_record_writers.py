"""Writers: what goes in comes back out, bit for bit, with its metadata."""
import json
import os

import h5py
import numpy as np
import pytest
import tifffile

from pystream.frame import FrameRejected
from pystream.record import Hdf5Writer, TiffSequenceWriter, TiffStackWriter

from .record_helpers import make_frames

DTYPES = ["uint8", "uint16", "int16", "int32", "uint32", "float32", "float64"]


def write_all(writer, frames):
    writer.open()
    for frame in frames:
        writer.write(frame.array, frame.metadata())
    writer.close()


def page_meta(page):
    return json.loads(page.description)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiff_sequence_round_trip(tmp_path, dtype):
    frames = make_frames(4, dtype=dtype)
    writer = TiffSequenceWriter(str(tmp_path), prefix="scan")
    write_all(writer, frames)
    names = sorted(os.listdir(tmp_path))
    assert names == [f"scan_{i:06d}.tiff" for i in range(1, 5)]
    for name, frame in zip(names, frames):
        with tifffile.TiffFile(tmp_path / name) as tif:
            data = tif.asarray()
            meta = page_meta(tif.pages[0])
            assert tif.pages[0].compression == 1  # compression off by default
        assert data.dtype == frame.array.dtype
        np.testing.assert_array_equal(data, frame.array)
        assert meta["uid"] == frame.uid
        assert meta["timestamp"] == pytest.approx(frame.t_source)
        assert meta["t_recv"] == pytest.approx(frame.t_recv)
        assert meta["source"] == "test://frames"
        assert meta["attributes"] == {"ColorMode": 0, "AcquireTime": pytest.approx(0.001 * frame.uid),
                                      "Label": f"frame {frame.uid}"}
    assert writer.frames_written == 4 and writer.file_count == 4
    assert writer.first_path.endswith("scan_000001.tiff") and writer.path.endswith("scan_000004.tiff")


def test_tiff_sequence_rgb(tmp_path):
    frames = make_frames(3, shape=(8, 10, 3), dtype="uint8")
    write_all(TiffSequenceWriter(str(tmp_path)), frames)
    for i, frame in enumerate(frames, 1):
        with tifffile.TiffFile(tmp_path / f"frame_{i:06d}.tiff") as tif:
            assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
            np.testing.assert_array_equal(tif.asarray(), frame.array)


def test_tiff_sequence_compression_round_trip(tmp_path):
    frames = make_frames(2, dtype="uint16")
    write_all(TiffSequenceWriter(str(tmp_path), compression="zlib"), frames)
    with tifffile.TiffFile(tmp_path / "frame_000002.tiff") as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        np.testing.assert_array_equal(tif.asarray(), frames[1].array)


def test_tiff_sequence_never_overwrites(tmp_path):
    existing = tmp_path / "frame_000002.tiff"
    existing.write_bytes(b"somebody else's data")
    (tmp_path / "frame_000007.tif").write_bytes(b"also theirs")
    frames = make_frames(3)
    write_all(TiffSequenceWriter(str(tmp_path)), frames)
    assert existing.read_bytes() == b"somebody else's data"
    assert (tmp_path / "frame_000007.tif").read_bytes() == b"also theirs"
    for i, frame in zip((8, 9, 10), frames):
        np.testing.assert_array_equal(tifffile.imread(tmp_path / f"frame_{i:06d}.tiff"), frame.array)
    # a second recording with the same prefix continues after the first
    more = make_frames(2, start_uid=100)
    write_all(TiffSequenceWriter(str(tmp_path)), more)
    assert page_meta(tifffile.TiffFile(tmp_path / "frame_000011.tiff").pages[0])["uid"] == 100


def test_tiff_sequence_skips_a_name_taken_meanwhile(tmp_path):
    writer = TiffSequenceWriter(str(tmp_path))
    writer.open()
    (tmp_path / "frame_000001.tiff").write_bytes(b"raced")  # appears after open() chose index 1
    frame = make_frames(1)[0]
    writer.write(frame.array, frame.metadata())
    writer.close()
    assert (tmp_path / "frame_000001.tiff").read_bytes() == b"raced"
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "frame_000002.tiff"), frame.array)


@pytest.mark.parametrize("shape,dtype", [((16, 20), "uint16"), ((8, 10, 3), "uint8"),
                                         ((12, 12), "float32")])
def test_tiff_stack_round_trip(tmp_path, shape, dtype):
    frames = make_frames(5, shape=shape, dtype=dtype)
    writer = TiffStackWriter(str(tmp_path), prefix="run")
    write_all(writer, frames)
    path = tmp_path / "run_stack_000001.tiff"
    assert writer.path == str(path) and os.listdir(tmp_path) == [path.name]
    with tifffile.TiffFile(path) as tif:
        assert tif.is_bigtiff
        stack = tif.asarray()
        metas = [page_meta(page) for page in tif.pages]
    assert stack.shape == (5,) + shape and stack.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(stack, np.stack([f.array for f in frames]))
    assert [m["uid"] for m in metas] == [1, 2, 3, 4, 5]
    assert metas[2]["attributes"]["Label"] == "frame 3"
    # a second stack gets a new file
    write_all(TiffStackWriter(str(tmp_path), prefix="run"), frames[:1])
    assert (tmp_path / "run_stack_000002.tiff").exists()


def test_stack_with_no_frames_leaves_no_file(tmp_path):
    writer = TiffStackWriter(str(tmp_path))
    writer.open()
    writer.close()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("shape,dtype", [((16, 20), "uint16"), ((8, 10, 3), "uint8"),
                                         ((6, 7), "float64"), ((6, 7), "int32")])
def test_hdf5_layout_and_round_trip(tmp_path, shape, dtype):
    frames = make_frames(6, shape=shape, dtype=dtype)
    writer = Hdf5Writer(str(tmp_path), prefix="scan")
    write_all(writer, frames)
    path = tmp_path / "scan_000001.h5"
    assert writer.path == str(path) and os.listdir(tmp_path) == [path.name]
    with h5py.File(path, "r") as f:
        data = f["/entry/data/data"]
        assert data.shape == (6,) + shape and data.dtype == np.dtype(dtype)
        assert data.chunks == (1,) + shape
        assert data.compression is None
        np.testing.assert_array_equal(data[()], np.stack([fr.array for fr in frames]))
        np.testing.assert_array_equal(f["/entry/data/uid"][()], [1, 2, 3, 4, 5, 6])
        np.testing.assert_allclose(f["/entry/data/timestamp"][()], [fr.t_source for fr in frames])
        np.testing.assert_allclose(f["/entry/data/t_recv"][()], [fr.t_recv for fr in frames])
        np.testing.assert_allclose(f["/entry/data/attributes/AcquireTime"][()],
                                   [0.001 * fr.uid for fr in frames])
        np.testing.assert_array_equal(f["/entry/data/attributes/ColorMode"][()], 0)
        first = json.loads(f["/entry/data/attributes"].attrs["first_frame"])
        assert first["Label"] == "frame 1"
        assert f["/entry/data"].attrs["signal"] == "data"
        assert f.attrs["source"] == "test://frames"


def test_hdf5_compression(tmp_path):
    frames = make_frames(3)
    write_all(Hdf5Writer(str(tmp_path), compression="gzip"), frames)
    with h5py.File(tmp_path / "frame_000001.h5", "r") as f:
        assert f["/entry/data/data"].compression == "gzip"
        np.testing.assert_array_equal(f["/entry/data/data"][2], frames[2].array)


def test_hdf5_readable_while_recording(tmp_path):
    """SWMR: another program sees the frames flushed so far while the file is open."""
    frames = make_frames(5)
    writer = Hdf5Writer(str(tmp_path), flush_interval=0.0)  # flush after every frame
    writer.open()
    for frame in frames[:3]:
        writer.write(frame.array, frame.metadata())
    reader = h5py.File(writer.path, "r", libver="latest", swmr=True)
    try:
        data, uid = reader["/entry/data/data"], reader["/entry/data/uid"]
        assert data.shape[0] == 3
        np.testing.assert_array_equal(data[2], frames[2].array)
        np.testing.assert_array_equal(uid[()], [1, 2, 3])
        for frame in frames[3:]:
            writer.write(frame.array, frame.metadata())
        data.refresh()
        uid.refresh()
        assert data.shape[0] == 5
        np.testing.assert_array_equal(data[4], frames[4].array)
        np.testing.assert_array_equal(uid[()], [1, 2, 3, 4, 5])
    finally:
        reader.close()
        writer.close()


def test_hdf5_never_overwrites_and_rejects_other_shapes(tmp_path):
    (tmp_path / "frame_000001.h5").write_bytes(b"not ours")
    writer = Hdf5Writer(str(tmp_path))
    writer.open()
    assert writer.path.endswith("frame_000002.h5")
    good = make_frames(2)
    writer.write(good[0].array, good[0].metadata())
    odd = make_frames(1, shape=(4, 4), start_uid=50)[0]
    with pytest.raises(FrameRejected) as info:
        writer.write(odd.array, odd.metadata())
    assert info.value.reason == "shape_changed"
    writer.write(good[1].array, good[1].metadata())  # carries on
    writer.close()
    assert (tmp_path / "frame_000001.h5").read_bytes() == b"not ours"
    with h5py.File(tmp_path / "frame_000002.h5", "r") as f:
        np.testing.assert_array_equal(f["/entry/data/uid"][()], [1, 2])


def test_hdf5_with_no_frames_leaves_no_file(tmp_path):
    writer = Hdf5Writer(str(tmp_path))
    writer.open()
    writer.close()
    assert os.listdir(tmp_path) == []


def test_metadata_with_numpy_and_odd_values_is_stored(tmp_path):
    frame = make_frames(1, attributes={"np": np.float32(1.5), "arr": np.arange(3),
                                       "raw": b"bytes", "nan": float("nan"), "obj": object()})[0]
    write_all(TiffSequenceWriter(str(tmp_path)), [frame])
    meta = page_meta(tifffile.TiffFile(tmp_path / "frame_000001.tiff").pages[0])
    assert meta["attributes"]["np"] == 1.5 and meta["attributes"]["arr"] == [0, 1, 2]
    assert meta["attributes"]["raw"] == "bytes" and meta["attributes"]["nan"] == "nan"
    write_all(Hdf5Writer(str(tmp_path)), [frame])
    with h5py.File(tmp_path / "frame_000001.h5", "r") as f:
        assert f["/entry/data/attributes/np"][0] == 1.5


def test_bad_prefix_is_refused(tmp_path):
    with pytest.raises(ValueError):
        TiffSequenceWriter(str(tmp_path), prefix="../evil")
