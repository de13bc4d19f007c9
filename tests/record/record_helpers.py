"""Helpers for the record tests: frames that carry their uid (and the shared thread source)."""
import os

import numpy as np

from pystream.frame import Decoded, Frame, FrameRejected

from ..session_helpers import ListSource, wait_for  # noqa: F401 (the record tests' names)


def make_frames(n, shape=(16, 20), dtype="uint16", start_uid=1, attributes=None):
    """Frames whose pixels encode their uid (so order and identity can be checked)."""
    frames = []
    rng = np.random.default_rng(1234)
    for i in range(n):
        uid = start_uid + i
        if np.dtype(dtype).kind == "f":
            array = rng.standard_normal(shape).astype(dtype) + uid
        else:
            info = np.iinfo(dtype)
            array = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
        array.flat[0] = uid % (np.iinfo(dtype).max if np.dtype(dtype).kind in "ui" else 1 << 20)
        attrs = {"ColorMode": 0, "AcquireTime": 0.001 * uid, "Label": f"frame {uid}"}
        attrs.update(attributes or {})
        frames.append(Frame.from_array(array, uid=uid, source="test://frames",
                                       t_source=1.7e9 + uid * 0.01, attributes=attrs,
                                       t_recv=1.7e9 + uid * 0.01 + 0.002))
    return frames


def rejected_frame(uid, reason="size_mismatch"):
    """A frame whose decode fails, as a corrupt NTNDArray would."""
    def decode(_payload):
        raise FrameRejected(reason, "payload does not match the dimensions")
    return Frame(b"\0" * 64, uid=uid, source="test://bad", decode=decode, nbytes=64)


def lazy_frame(array, uid):
    """A frame decoded on demand, like a network source's."""
    def decode(payload):
        return Decoded(np.frombuffer(payload, array.dtype).reshape(array.shape), 1.7e9 + uid)
    return Frame(array.tobytes(), uid=uid, source="test://lazy", decode=decode,
                 nbytes=array.nbytes)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
