"""Helpers for the record tests: frames that carry their uid, a thread source."""
import os
import threading
import time

import numpy as np

from pystream.frame import Decoded, Frame, FrameRejected
from pystream.sources._base import Source


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


class ListSource(Source):
    """Emits frames from a thread (optionally at a rate), then reports 'finished'."""

    kind = "list"

    def __init__(self, frames, rate=0.0, finish=True, repeat=False):
        super().__init__("list")
        self.frames = frames
        self.rate = rate
        self.finish = finish
        self.repeat = repeat
        self.sent = 0
        self._stop = threading.Event()
        self._thread = None

    def start(self, sink):
        self.sink = sink
        sink.on_state("connected", "")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        period = 1.0 / self.rate if self.rate else 0.0
        i = 0
        while not self._stop.is_set():
            if i >= len(self.frames):
                if not self.repeat:
                    break
            frame = self.frames[i % len(self.frames)]
            self.sink.on_frame(frame)
            self.sent += 1
            i += 1
            if period:
                self._stop.wait(period)
        if self.finish and not self._stop.is_set():
            self.sink.on_state("finished", "")

    def stop(self):
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)


def wait_for(predicate, timeout=10.0, interval=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
