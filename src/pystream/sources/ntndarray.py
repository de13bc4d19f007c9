"""NTNDArray ⇄ numpy: the one home of the format (SPEC.md section 1).

``decode_ntndarray(pv)`` turns a received PvObject into a ``Decoded`` image:
every union value type, Mono/RGB1/RGB2/RGB3 (Bayer/YUV shown raw as Mono),
and the areaDetector codecs. Anything it cannot trust raises
``FrameRejected`` with a stable reason key.

``build_ntndarray(array, ...)`` is the inverse, used by the simulator and the
tests: it produces exactly what areaDetector's NDPluginPva / NDPluginCodec
put on the wire.
"""
from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ..frame import Decoded, FrameRejected

# union member → numpy dtype
FIELD_DTYPES: Dict[str, np.dtype] = {
    "booleanValue": np.dtype(np.bool_),
    "byteValue": np.dtype(np.int8),
    "ubyteValue": np.dtype(np.uint8),
    "shortValue": np.dtype(np.int16),
    "ushortValue": np.dtype(np.uint16),
    "intValue": np.dtype(np.int32),
    "uintValue": np.dtype(np.uint32),
    "longValue": np.dtype(np.int64),
    "ulongValue": np.dtype(np.uint64),
    "floatValue": np.dtype(np.float32),
    "doubleValue": np.dtype(np.float64),
}
DTYPE_FIELDS = {dtype: name for name, dtype in FIELD_DTYPES.items()}

# codec.parameters: NDDataType_t of the uncompressed data
CODEC_DTYPES: Dict[int, np.dtype] = {
    1: np.dtype(np.int8), 2: np.dtype(np.int16), 3: np.dtype(np.int32), 4: np.dtype(np.int64),
    5: np.dtype(np.uint8), 6: np.dtype(np.uint16), 7: np.dtype(np.uint32), 8: np.dtype(np.uint64),
    9: np.dtype(np.float32), 10: np.dtype(np.float64),
}
DTYPE_CODES = {dtype: code for code, dtype in CODEC_DTYPES.items()}

COLOR_MODES = {0: "Mono", 1: "Bayer", 2: "RGB1", 3: "RGB2", 4: "RGB3",
               5: "YUV444", 6: "YUV422", 7: "YUV411"}
COLOR_MODE_CODES = {name.lower(): code for code, name in COLOR_MODES.items()}

CODECS = ("", "lz4", "bslz4", "blosc", "jpeg", "zlib", "lz4hdf5")
MAX_PIXELS = 1 << 32  # values per frame beyond which dimensions are taken as lying (a 65536² image)


# ---------------------------------------------------------------- helpers

def first_scalar(value: Any, kinds=(int, float, str)) -> Any:
    """The first scalar in pvapy's nested rendering of an ``any`` field.

    pvapy shows a variant as ``({'value': 6}, {'value': <type>})``; PVXS may
    send a long instead of an int, or wrap it in a structure. Walk it all and
    return the first value of one of ``kinds`` (bools are not integers here).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, kinds) and not isinstance(value, bool):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        for item in value.values():
            found = first_scalar(item, kinds)
            if found is not None:
                return found
    elif isinstance(value, (tuple, list)):
        # (values, introspection): only the first element holds data
        items = value[:1] if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict) else value
        for item in items:
            found = first_scalar(item, kinds)
            if found is not None:
                return found
    return None


def _attributes(raw) -> Dict[str, Any]:
    attrs = {}
    for item in raw or ():
        name = item.get("name")
        if name:
            attrs[name] = first_scalar(item.get("value"))
    return attrs


def _timestamp(ts) -> Optional[float]:
    try:
        sec, nsec = ts["secondsPastEpoch"], ts["nanoseconds"]
    except (KeyError, TypeError):
        return None
    if not sec and not nsec:
        return None
    return sec + nsec * 1e-9


@dataclass
class NtndSnapshot:
    """What a monitor callback must copy out of the PvObject it is given.

    pvapy hands the callback a PvObject whose structure pvAccess *reuses* for
    later updates: read after the callback returns, it shows another frame
    (or half of one). A numpy view of the value array, taken inside the
    callback, stays valid (pvData copies on write, and ``PvaSource`` takes
    the buffer away so that it need not), so the snapshot keeps that view
    plus the small metadata fields: about 30 us, no pixel copy.
    """

    field: str
    data: Optional[np.ndarray]
    dims: Tuple[int, ...]
    codec: Dict[str, Any]
    uncompressed_size: int
    timestamp: Dict[str, Any]
    attributes: List[Dict[str, Any]]
    uid: int

    @property
    def nbytes(self) -> int:
        """Size of the decoded frame (for byte-bounded queues)."""
        if self.uncompressed_size:
            return self.uncompressed_size
        return int(self.data.nbytes) if self.data is not None else 0

    @property
    def awaiting_image(self) -> bool:
        """No array and no dimensions: what an areaDetector PV holds from its
        creation until the first acquisition. Not a malformed frame: a PV
        with no image yet. (An empty array *with* dimensions is still
        rejected, as ``size_mismatch``; no array with dimensions as ``no_value``.)"""
        return not self.dims and (self.data is None or not self.data.size)


def snapshot_ntndarray(pv) -> NtndSnapshot:
    """Copy out of a (callback-owned) PvObject everything decoding needs."""
    try:
        field = pv.getSelectedUnionFieldName("value")
    except Exception:
        field = ""
    data = pv.getUnion("value")[field] if field in FIELD_DTYPES else None
    return NtndSnapshot(
        field=field,
        data=data,
        dims=tuple(int(d["size"]) for d in pv["dimension"]),
        codec=pv["codec"],
        uncompressed_size=int(pv["uncompressedSize"] or 0),
        timestamp=pv["dataTimeStamp"],
        attributes=pv["attribute"],
        uid=int(pv["uniqueId"]),
    )


# ---------------------------------------------------------------- codecs

def _need(module: str, package: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise FrameRejected("codec_unavailable",
                            f"decoder library missing: pip install {package}") from None


def _oversize(name: str, claimed: int, nbytes: int) -> FrameRejected:
    return FrameRejected("decompressed_size", f"{name}: the payload says {claimed} bytes, "
                                              f"the dimensions {nbytes}")


def _decompress(name: str, data: np.ndarray, dtype: np.dtype, nbytes: int) -> np.ndarray:
    """Compressed bytes → flat array of ``dtype`` (``nbytes`` long).

    Never produces more than ``nbytes`` + 1 bytes: a small payload that claims
    or expands to gigabytes (a decompression bomb) is refused before it is
    unpacked, or cut off (zlib), instead of filling memory."""
    raw = memoryview(np.ascontiguousarray(data).view(np.uint8))
    try:
        if name == "lz4":
            block = _need("lz4.block", "lz4")
            out = block.decompress(raw, uncompressed_size=nbytes)
        elif name == "bslz4":
            bitshuffle = _need("bitshuffle", "bitshuffle")
            count = nbytes // dtype.itemsize
            # bitshuffle's own decoder: imagecodecs' gives garbage for block size 0
            return bitshuffle.decompress_lz4(np.frombuffer(raw, np.uint8), (count,), dtype, 0)
        elif name == "blosc":
            blosc2 = _need("blosc2", "blosc2")
            claimed = blosc2.get_cbuffer_sizes(bytes(raw[:32]))[0]  # from the chunk header
            if claimed != nbytes:
                raise _oversize(name, claimed, nbytes)
            out = blosc2.decompress(bytes(raw))
        elif name == "zlib":
            inflater = zlib.decompressobj()
            out = inflater.decompress(raw, nbytes + 1)  # one byte more tells "too long"
        elif name == "lz4hdf5":
            imagecodecs = _need("imagecodecs", "imagecodecs")
            claimed = int.from_bytes(bytes(raw[:8]), "big")  # the HDF5 LZ4 header: total size
            if claimed != nbytes:
                raise _oversize(name, claimed, nbytes)
            out = imagecodecs.lz4h5_decode(bytes(raw), out=nbytes)
        else:
            raise FrameRejected("unknown_codec", f"unknown codec {name!r}")
    except FrameRejected:
        raise
    except Exception as exc:
        raise FrameRejected("corrupt_payload", f"{name} decompression failed: {exc}") from exc
    if len(out) != nbytes:
        raise FrameRejected("decompressed_size",
                            f"{name}: decompressed {len(out)} bytes, expected {nbytes}")
    return np.frombuffer(out, dtype=dtype)


def _decode_jpeg(data: np.ndarray, max_pixels: int) -> np.ndarray:
    from io import BytesIO

    from PIL import Image
    try:
        with warnings.catch_warnings():  # Pillow's bomb warning: the check below is ours
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(BytesIO(np.ascontiguousarray(data).view(np.uint8).tobytes()))
        with img:
            width, height = img.size  # from the header: nothing decoded yet
            if width * height > max_pixels:
                raise FrameRejected("size_mismatch", f"jpeg image {width}x{height} is larger than "
                                                     f"its dimensions allow ({max_pixels} pixels)")
            if img.mode not in ("L", "RGB"):
                img = img.convert("RGB")
            return np.asarray(img)
    except FrameRejected:
        raise
    except Exception as exc:
        raise FrameRejected("corrupt_payload", f"jpeg decoding failed: {exc}") from exc


# ---------------------------------------------------------------- decode

def _to_display_layout(arr: np.ndarray, dims: Tuple[int, ...], mode: Optional[int]) -> Tuple[np.ndarray, str, str]:
    """Flat or (ny, nx[,3]) data + dimension sizes → (array, color, notice)."""
    shape = tuple(reversed(dims))
    arr = arr.reshape(shape)
    if mode is None:  # no ColorMode attribute: infer from the shape
        if len(dims) == 2:
            mode = 0
        elif len(dims) == 3:
            mode = 2 if dims[0] == 3 else 3 if dims[1] == 3 else 4 if dims[2] == 3 else 0
        else:
            mode = 0
    if mode in (1, 5, 6, 7):  # Bayer / YUV: raw plane as Mono, never a crash
        notice = f"{COLOR_MODES[mode]} frames are shown raw, as Mono"
        return (arr if arr.ndim == 2 else arr.reshape(arr.shape[0], -1)), "mono", notice
    if len(dims) == 2:
        return arr, "mono", ""
    if len(dims) == 3:
        if mode == 2 and dims[0] == 3:
            return arr, "rgb", ""
        if mode == 3 and dims[1] == 3:
            return arr.transpose(0, 2, 1), "rgb", ""
        if mode == 4 and dims[2] == 3:
            return arr.transpose(1, 2, 0), "rgb", ""
        if 1 in dims:  # a "mono" frame carrying a singleton axis
            return arr.reshape([s for s in shape if s != 1][:2]), "mono", ""
        raise FrameRejected("bad_color_mode",
                            f"ColorMode {COLOR_MODES.get(mode, mode)} does not fit dimensions {list(dims)}")
    if len(dims) == 1:
        return arr.reshape(1, -1), "mono", ""
    raise FrameRejected("bad_dimensions", f"{len(dims)} dimensions are not an image")


def decode_ntndarray(pv) -> Decoded:
    """An NTNDArray (``NtndSnapshot`` or PvObject) → ``Decoded``; raises FrameRejected."""
    snap = pv if isinstance(pv, NtndSnapshot) else snapshot_ntndarray(pv)
    field, data, dims = snap.field, snap.data, snap.dims
    if data is None:
        raise FrameRejected("no_value", "the value union has no array selected")
    if not dims or any(d <= 0 for d in dims):
        raise FrameRejected("bad_dimensions", f"dimension sizes {list(dims)}")
    count = math.prod(dims)  # Python ints: np.prod wraps around to 0 or less for huge sizes
    if count > MAX_PIXELS:
        raise FrameRejected("bad_dimensions", f"dimension sizes {list(dims)}: {count} pixels, more "
                                              f"than any detector ({MAX_PIXELS})")
    codec = snap.codec or {}
    name = codec.get("name", "") or ""
    attrs = _attributes(snap.attributes)
    t_source = _timestamp(snap.timestamp)
    mode = first_scalar(attrs.get("ColorMode"), (int,))
    if mode is not None and mode not in COLOR_MODES:
        raise FrameRejected("bad_color_mode", f"unknown ColorMode {mode}")

    if name == "":
        arr = data if data.dtype == FIELD_DTYPES[field] else data.astype(FIELD_DTYPES[field])
    elif name == "jpeg":
        arr = _decode_jpeg(data, count)
        if arr.size != count:
            raise FrameRejected("size_mismatch",
                                f"jpeg image {arr.shape} does not match dimensions {list(dims)}")
        if arr.ndim == 3:  # a JPEG is always pixel-interleaved: RGB1 order
            if dims[0] != 3:
                raise FrameRejected("bad_color_mode", "jpeg colour needs RGB1 dimensions [3, nx, ny]")
            return Decoded(arr, t_source, attrs, "rgb")
        arr = arr.reshape(-1)
    elif name in CODECS:
        code = first_scalar(codec.get("parameters"), (int,))
        dtype = CODEC_DTYPES.get(code) if code is not None else None
        if dtype is None:
            raise FrameRejected("codec_parameters",
                                f"{name}: codec.parameters holds no element type (got {code!r})")
        nbytes = count * dtype.itemsize
        expected = snap.uncompressed_size
        if expected and expected != nbytes:
            raise FrameRejected("decompressed_size",
                                f"uncompressedSize {expected} does not match dimensions × "
                                f"{dtype.name} = {nbytes}")
        arr = _decompress(name, data, dtype, nbytes)
    else:
        raise FrameRejected("unknown_codec", f"unknown codec {name!r}")

    if arr.size != count:
        raise FrameRejected("size_mismatch",
                            f"{arr.size} elements do not match dimensions {list(dims)} ({count})")
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    arr, color, notice = _to_display_layout(arr, dims, mode)
    return Decoded(arr, t_source, attrs, color, notice)


# ---------------------------------------------------------------- encode

def check_codec(name: Optional[str]) -> str:
    """A codec name as ``build_ntndarray`` takes it ("" for none; "none" and
    None mean the same); ValueError listing the choices for any other."""
    name = "" if name in (None, "none") else name
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; choose from {', '.join(c or 'none' for c in CODECS)}")
    return name


def _compress(name: str, wire: np.ndarray, quality: int = 90) -> bytes:
    raw = np.ascontiguousarray(wire)
    if name == "lz4":
        import lz4.block
        return lz4.block.compress(raw.tobytes(), store_size=False)
    if name == "bslz4":
        import bitshuffle
        return bitshuffle.compress_lz4(raw.reshape(-1), 0).tobytes()
    if name == "blosc":
        import blosc2
        return blosc2.compress(raw, typesize=raw.dtype.itemsize)
    if name == "zlib":
        return zlib.compress(raw.tobytes(), 1)
    if name == "lz4hdf5":
        import imagecodecs
        return imagecodecs.lz4h5_encode(raw.tobytes())
    raise ValueError(f"no encoder for codec {name!r}")  # check_codec let through a name added to CODECS


def _jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    from io import BytesIO

    from PIL import Image
    buf = BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def wire_layout(image: np.ndarray, color_mode: str) -> Tuple[np.ndarray, Tuple[int, ...]]:
    """(ny, nx[, 3]) image → (array as laid out on the wire, dimension sizes)."""
    mode = color_mode.lower()
    if image.ndim == 2:
        if mode not in ("mono", "bayer", "yuv444", "yuv422", "yuv411"):
            raise ValueError(f"a 2-D image cannot be sent as {color_mode}")
        return image, (image.shape[1], image.shape[0])
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image shape {image.shape} is neither (ny, nx) nor (ny, nx, 3)")
    ny, nx = image.shape[:2]
    if mode == "rgb1":
        return image, (3, nx, ny)
    if mode == "rgb2":
        return image.transpose(0, 2, 1), (nx, 3, ny)
    if mode == "rgb3":
        return image.transpose(2, 0, 1), (nx, ny, 3)
    raise ValueError(f"a colour image needs color mode rgb1, rgb2 or rgb3, not {color_mode}")


def build_ntndarray(
    image: np.ndarray,
    *,
    uid: int,
    codec: str = "",
    color_mode: str = "mono",
    timestamp: Union[None, float, Tuple[int, int]] = None,
    attributes: Optional[Dict[str, Any]] = None,
    codec_param: str = "int",
    jpeg_quality: int = 90,
    include_color_mode: bool = True,
):
    """numpy image (ny, nx) or (ny, nx, 3) → ``pvaccess.NtNdArray`` as areaDetector sends it.

    ``codec_param`` chooses how ``codec.parameters`` is encoded: ``int``
    (NDPluginPva), ``long`` or ``struct`` (PVXS variants). ``timestamp``:
    POSIX seconds, or ``(secondsPastEpoch, nanoseconds)`` to copy one exactly.
    """
    import time

    import pvaccess as pva

    image = np.asarray(image)
    codec = check_codec(codec)
    wire, dims = wire_layout(image, color_mode)
    nt = pva.NtNdArray()
    if codec == "":
        field = DTYPE_FIELDS.get(image.dtype)
        if field is None:
            raise ValueError(f"dtype {image.dtype} has no NTNDArray union member")
        nt["value"] = {field: np.ascontiguousarray(wire).reshape(-1)}
        nt["codec"] = pva.PvObject({"name": pva.STRING, "parameters": ()}, {"name": ""})
        size = image.nbytes
        compressed = size
    else:
        if image.dtype not in DTYPE_CODES:
            raise ValueError(f"dtype {image.dtype} cannot be compressed (no NDDataType code)")
        if codec == "jpeg":
            if image.dtype != np.uint8 or color_mode.lower() not in ("mono", "rgb1"):
                raise ValueError("jpeg needs uint8 Mono or RGB1 images")
            payload = _jpeg_bytes(image, jpeg_quality)
        else:
            payload = _compress(codec, wire)
        code = DTYPE_CODES[image.dtype]
        param = {"int": pva.PvInt(code), "long": pva.PvLong(code),
                 "struct": pva.PvObject({"dataType": pva.INT}, {"dataType": code})}[codec_param]
        nt["value"] = {"ubyteValue": np.frombuffer(payload, np.uint8)}
        nt["codec"] = pva.PvObject({"name": pva.STRING, "parameters": ()},
                                   {"name": codec, "parameters": param})
        size = image.nbytes
        compressed = len(payload)
    nt["compressedSize"] = compressed
    nt["uncompressedSize"] = size
    nt["dimension"] = [pva.PvDimension(int(d), 0, int(d), 1, False) for d in dims]
    nt["uniqueId"] = int(uid)
    if isinstance(timestamp, tuple):  # (seconds, nanoseconds) carried over exactly
        sec, nsec = int(timestamp[0]), int(timestamp[1])
    else:
        t = time.time() if timestamp is None else timestamp
        sec, nsec = int(t), int(round((t % 1) * 1e9)) % 1_000_000_000
    nt["dataTimeStamp"] = pva.PvTimeStamp(sec, nsec)
    nt["timeStamp"] = pva.PvTimeStamp(sec, nsec)  # as NDPluginPva: the record's own time changes too
    attrs = []
    if include_color_mode:
        attrs.append(pva.NtAttribute("ColorMode", pva.PvInt(COLOR_MODE_CODES[color_mode.lower()])))
    for key, value in (attributes or {}).items():
        if isinstance(value, bool) or isinstance(value, int):
            pv_value = pva.PvInt(int(value))
        elif isinstance(value, float):
            pv_value = pva.PvDouble(value)
        else:
            pv_value = pva.PvString(str(value))
        attrs.append(pva.NtAttribute(key, pv_value))
    nt["attribute"] = attrs
    return nt


# ---------------------------------------------------------------- processed frames

def _attribute_value(value: Any) -> Any:
    """A plugin's attribute value as ``build_ntndarray`` takes it (None: leave it out)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def result_ntndarray(image: np.ndarray, *, uid: int, timestamp=None,
                     attributes: Optional[Dict[str, Any]] = None, codec: str = ""):
    """A pipeline's result → NTNDArray, for republishing processed frames.

    The result's own dtype and shape go on the wire: (ny, nx) as Mono,
    (ny, nx, 3) as RGB1; an alpha plane (ny, nx, 4) is left out (NTNDArray
    has no RGBA mode); float16, which has no union member, becomes float32.
    ``attributes`` (the input's, plus what plugins added) are carried over;
    ColorMode is set from the result, not copied.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if image.dtype == np.float16:
        image = image.astype(np.float32)
    if image.ndim == 3 and image.shape[-1] == 3:
        color_mode = "rgb1"
    elif image.ndim == 2:
        color_mode = "mono"
    else:
        raise ValueError(f"a result of shape {image.shape} is not an image")
    attrs = {}
    for name, value in (attributes or {}).items():
        value = _attribute_value(value)
        if name != "ColorMode" and value is not None:
            attrs[str(name)] = value
    return build_ntndarray(image, uid=uid, codec=codec, color_mode=color_mode,
                           timestamp=timestamp, attributes=attrs)


def timestamp_of(pv) -> Optional[Tuple[int, int]]:
    """``dataTimeStamp`` of a PvObject or ``NtndSnapshot`` as (seconds, nanoseconds)."""
    ts = pv.timestamp if isinstance(pv, NtndSnapshot) else pv["dataTimeStamp"]
    try:
        return int(ts["secondsPastEpoch"]), int(ts["nanoseconds"])
    except (KeyError, TypeError):
        return None
