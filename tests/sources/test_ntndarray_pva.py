"""NTNDArray decoding through a real PvaServer and a real pvapy client."""
import numpy as np
import pytest

from pystream.frame import FrameRejected
from pystream.sources.ntndarray import CODEC_DTYPES, FIELD_DTYPES, build_ntndarray

from ..pva_helpers import subscribe

pytestmark = pytest.mark.pva

ALL_DTYPES = list(FIELD_DTYPES.values())


def make_image(dtype, color: bool, seed: int, shape=(12, 17)):
    rng = np.random.default_rng(seed)
    full = shape + (3,) if color else shape
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, full).astype(bool)
    if dtype.kind == "f":
        return (rng.standard_normal(full) * 1e3).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, full, dtype=dtype, endpoint=True)


def publish_and_receive(publisher, collector, image, **kwargs):
    uid = publisher.publish(image, **kwargs)
    frame = collector.wait_uid(uid)
    assert frame is not None, f"frame {uid} never arrived"
    return frame


@pytest.mark.parametrize("color_mode", ["mono", "rgb1", "rgb2", "rgb3"])
def test_every_dtype_and_color_mode_decodes_exactly(publisher, color_mode):
    color = color_mode != "mono"
    first = make_image(np.uint8, color, 0)
    publisher.publish(first, color_mode=color_mode)
    source, collector = subscribe(publisher.pv_name)
    try:
        for i, dtype in enumerate(ALL_DTYPES):
            image = make_image(dtype, color, i + 1)
            frame = publish_and_receive(publisher, collector, image, color_mode=color_mode)
            decoded = frame.decode()
            expected = image.view(np.uint8) if dtype == np.bool_ else image
            assert decoded.array.shape == expected.shape, (dtype, color_mode)
            assert decoded.array.dtype == expected.dtype
            np.testing.assert_array_equal(decoded.array, expected)
            assert decoded.color == ("rgb" if color else "mono")
            assert decoded.t_source is not None
    finally:
        source.stop()


@pytest.mark.parametrize("codec", ["lz4", "bslz4", "blosc", "zlib", "lz4hdf5"])
@pytest.mark.parametrize("param_form", ["int", "long", "struct"])
def test_codecs_decode_exactly(publisher, codec, param_form):
    pytest.importorskip("imagecodecs") if codec == "lz4hdf5" else None
    publisher.publish(make_image(np.uint16, False, 0))
    source, collector = subscribe(publisher.pv_name)
    try:
        for i, (dtype, mode) in enumerate([(np.uint16, "mono"), (np.float32, "mono"),
                                           (np.int8, "rgb2"), (np.uint64, "rgb3")]):
            image = make_image(dtype, mode != "mono", 10 + i, shape=(64, 80))
            frame = publish_and_receive(publisher, collector, image, codec=codec,
                                        color_mode=mode, codec_param=param_form)
            assert frame.payload.codec["name"] == codec  # really compressed on the wire
            np.testing.assert_array_equal(frame.array, image)
            assert frame.array.dtype == image.dtype
    finally:
        source.stop()


@pytest.mark.parametrize("color_mode", ["mono", "rgb1"])
def test_jpeg_within_its_loss(publisher, color_mode):
    y, x = np.mgrid[0:96, 0:128]
    mono = (x + y).astype(np.uint8)
    image = np.stack([mono, mono[::-1], 255 - mono], -1) if color_mode == "rgb1" else mono
    publisher.publish(image, codec="jpeg", color_mode=color_mode)
    source, collector = subscribe(publisher.pv_name)
    try:
        frame = publish_and_receive(publisher, collector, image, codec="jpeg", color_mode=color_mode)
        assert frame.payload.codec["name"] == "jpeg"
        out = frame.array
        assert out.shape == image.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - image).mean() < 3
    finally:
        source.stop()


def test_bayer_shown_raw_as_mono_with_notice(publisher):
    image = make_image(np.uint16, False, 3)
    publisher.publish(image, color_mode="bayer")
    source, collector = subscribe(publisher.pv_name)
    try:
        frame = publish_and_receive(publisher, collector, image, color_mode="bayer")
        decoded = frame.decode()
        np.testing.assert_array_equal(decoded.array, image)
        assert decoded.color == "mono" and "Bayer" in decoded.notice
    finally:
        source.stop()


def test_snapshot_survives_later_updates(publisher):
    """pvAccess reuses the callback's PvObject: what we keep must not change."""
    publisher.publish(np.zeros((32, 32), np.uint16))
    source, collector = subscribe(publisher.pv_name)
    try:
        uids = [publisher.publish(np.full((32, 32), i, np.uint16)) for i in range(1, 60)]
        assert collector.wait_uid(uids[-1])
        for frame in collector.frames[1:]:
            assert frame.array[0, 0] == frame.uid - 1, "frame content changed after the callback"
    finally:
        source.stop()


# ---------------------------------------------------------------- malformed frames

def _tampered(kind):
    import pvaccess as pva
    image = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)
    if kind == "size_mismatch":
        nt = build_ntndarray(image, uid=1)
        nt["dimension"] = [pva.PvDimension(65, 0, 65, 1, False), pva.PvDimension(48, 0, 48, 1, False)]
    elif kind == "unknown_codec":
        nt = build_ntndarray(image, uid=1, codec="lz4")
        nt["codec"] = pva.PvObject({"name": pva.STRING, "parameters": ()},
                                   {"name": "snappy", "parameters": pva.PvInt(6)})
    elif kind == "codec_parameters":
        nt = build_ntndarray(image, uid=1, codec="lz4")
        nt["codec"] = pva.PvObject({"name": pva.STRING, "parameters": ()}, {"name": "lz4"})
    elif kind == "decompressed_size":
        nt = build_ntndarray(image, uid=1, codec="lz4")
        nt["uncompressedSize"] = image.nbytes * 2
    elif kind == "corrupt_payload":
        nt = build_ntndarray(image, uid=1, codec="lz4")
        nt["value"] = {"ubyteValue": np.full(100, 0xFF, np.uint8)}
    elif kind == "bad_dimensions":
        nt = build_ntndarray(image, uid=1)
        nt["dimension"] = [pva.PvDimension(0, 0, 0, 1, False), pva.PvDimension(48, 0, 48, 1, False)]
    elif kind == "huge_dimensions":  # their product wraps around to 0 in int64
        nt = build_ntndarray(image, uid=1)
        nt["dimension"] = [pva.PvDimension(2 ** 21, 0, 2 ** 21, 1, False),
                           pva.PvDimension(2 ** 21, 0, 2 ** 21, 1, False),
                           pva.PvDimension(2 ** 22, 0, 2 ** 22, 1, False)]
        kind = "bad_dimensions"
    elif kind == "bad_color_mode":
        nt = build_ntndarray(np.zeros((4, 5, 3), np.uint8), uid=1, color_mode="rgb1",
                             include_color_mode=False)
        nt["attribute"] = [pva.NtAttribute("ColorMode", pva.PvInt(42))]
    elif kind == "no_value":
        nt = build_ntndarray(image, uid=1)
        nt["value"] = {"ushortValue": np.zeros(0, np.uint16)}
        nt["dimension"] = [pva.PvDimension(64, 0, 64, 1, False), pva.PvDimension(48, 0, 48, 1, False)]
        kind = "size_mismatch"  # an empty array is a size mismatch
    else:
        raise AssertionError(kind)
    return nt, kind


MALFORMED = ["size_mismatch", "unknown_codec", "codec_parameters", "decompressed_size",
             "corrupt_payload", "bad_dimensions", "huge_dimensions", "bad_color_mode", "no_value"]


def test_malformed_frames_rejected_with_reason_and_stream_goes_on(publisher):
    good = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)
    publisher.publish(good)
    source, collector = subscribe(publisher.pv_name)
    try:
        for i, kind in enumerate(MALFORMED):
            nt, reason = _tampered(kind)
            uid = 100 + i
            nt["uniqueId"] = uid
            publisher.publish_object(nt)
            frame = collector.wait_uid(uid)
            assert frame is not None
            with pytest.raises(FrameRejected) as info:
                frame.decode()
            assert info.value.reason == reason, kind
            assert info.value.message  # a human-readable explanation
            # and a good frame right after still decodes
            ok = publisher.publish(good + i, uid=200 + i)
            np.testing.assert_array_equal(collector.wait_uid(ok).array, good + i)
    finally:
        source.stop()


def test_missing_codec_library_is_a_reason_not_a_crash(monkeypatch):
    import sys
    nt = build_ntndarray(np.ones((8, 8), np.uint16), uid=1, codec="bslz4")
    monkeypatch.setitem(sys.modules, "bitshuffle", None)  # makes `import bitshuffle` fail
    from pystream.sources.ntndarray import decode_ntndarray
    with pytest.raises(FrameRejected) as info:
        decode_ntndarray(nt)
    assert info.value.reason == "codec_unavailable"
    assert "pip install bitshuffle" in info.value.message


def test_codec_dtype_table_matches_spec():
    # BYTE=1 SHORT=2 INT=3 LONG=4 UBYTE=5 USHORT=6 UINT=7 ULONG=8 FLOAT=9 DOUBLE=10
    names = [CODEC_DTYPES[i].name for i in range(1, 11)]
    assert names == ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                     "float32", "float64"]


def _bomb(codec):
    """A 64x48 uint16 NTNDArray whose payload unpacks (or claims to unpack) to 100 MB."""
    import zlib

    import pvaccess as pva
    big = np.zeros(100 << 20, np.uint8)
    if codec == "zlib":
        payload = zlib.compress(big.tobytes(), 9)
    elif codec == "blosc":
        import blosc2
        payload = blosc2.compress(big, typesize=2)
    elif codec == "lz4hdf5":
        import imagecodecs
        payload = imagecodecs.lz4h5_encode(big.tobytes())
    else:  # jpeg: a 10000 x 10000 image in a frame whose dimensions say 64 x 48
        from io import BytesIO

        from PIL import Image
        buf = BytesIO()
        Image.fromarray(big[: 10000 * 10000].reshape(10000, 10000)).save(buf, format="JPEG")
        payload = buf.getvalue()
    dtype = np.uint8 if codec == "jpeg" else np.uint16
    nt = build_ntndarray(np.zeros((48, 64), dtype), uid=1, codec=codec)
    nt["value"] = {"ubyteValue": np.frombuffer(payload, np.uint8)}
    assert isinstance(nt, pva.PvObject)
    return nt


@pytest.mark.parametrize("codec", ["zlib", "blosc", "lz4hdf5", "jpeg"])
def test_a_decompression_bomb_is_refused_without_unpacking_it(codec):
    """A small payload that unpacks to far more than its dimensions say is
    rejected, and never occupies that memory (a bigger one would meet the OOM killer)."""
    import tracemalloc

    from pystream.sources.ntndarray import decode_ntndarray
    nt = _bomb(codec)
    tracemalloc.start()
    try:
        with pytest.raises(FrameRejected) as info:
            decode_ntndarray(nt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason in ("decompressed_size", "size_mismatch"), info.value.message
    assert peak < 20 << 20, f"{peak / 2**20:.0f} MB allocated while refusing it"
