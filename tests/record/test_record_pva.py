"""End to end: a real pvAccess server → PvaSource → Recorder → files, re-read in full."""
import json
import os
import threading

import h5py
import numpy as np
import pytest
import tifffile

from pystream.flow import Counters
from pystream.record import Recorder, run_recording
from pystream.sources.pva import PvaSource

from ..pva_helpers import subscribe

pytestmark = pytest.mark.pva

N = 20


def images(n, shape, dtype, seed=7):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    return [rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True) for _ in range(n)]


def publish_each(publisher, collector, imgs, codec="", color_mode="mono", t0=1.7e9):
    """Publish frames one by one, each once the previous one arrived (no coalescing)."""
    base = len(collector.frames)
    for uid, image in enumerate(imgs, 1):
        publisher.publish(image, uid=uid, codec=codec, color_mode=color_mode,
                          timestamp=t0 + uid * 0.5, attributes={"Exposure": 0.25, "Run": "e2e"})
        assert collector.wait_for(lambda c: len(c.frames) >= base + uid), f"frame {uid} lost"


def connect(publisher, first_image, **kwargs):
    """Serve a first frame, subscribe, and wait until it arrived (the connect-time value)."""
    publisher.publish(first_image, uid=1, timestamp=1.7e9 + 0.5,
                      attributes={"Exposure": 0.25, "Run": "e2e"}, **kwargs)
    source, collector = subscribe(publisher.pv_name)
    assert collector.wait_for(lambda c: len(c.frames) >= 1)
    return source, collector


def check_meta(meta, uid, t0=1.7e9):
    assert meta["uid"] == uid
    assert meta["timestamp"] == pytest.approx(t0 + uid * 0.5, abs=1e-6)
    assert meta["source"]
    assert meta["attributes"]["Exposure"] == pytest.approx(0.25)
    assert meta["attributes"]["Run"] == "e2e"


@pytest.mark.parametrize("codec", ["", "lz4", "bslz4"])
def test_tiff_sequence_from_pva(publisher, tmp_path, codec):
    imgs = images(N, (24, 40), np.uint16)
    source, collector = connect(publisher, imgs[0], codec=codec)
    recorder = Recorder(tmp_path, prefix="pva").start()
    collector.add_tap(recorder.tap)
    try:
        publish_each(publisher, collector, imgs, codec=codec)
    finally:
        source.stop()
        collector.remove_tap(recorder.tap)
        recorder.stop(drain=True)
    stats = recorder.stats()
    assert stats["recorded"] == N and stats["record_drops"] == 0 and stats["record_rejected"] == 0
    names = sorted(os.listdir(tmp_path))
    assert names == [f"pva_{i:06d}.tiff" for i in range(1, N + 1)]
    uids = []
    for name in names:
        with tifffile.TiffFile(tmp_path / name) as tif:
            meta = json.loads(tif.pages[0].description)
            data = tif.asarray()
        uids.append(meta["uid"])
        check_meta(meta, meta["uid"])
        assert data.dtype == np.uint16
        np.testing.assert_array_equal(data, imgs[meta["uid"] - 1])
    assert uids == list(range(1, N + 1))  # in order, no gaps


def test_hdf5_rgb_from_pva(publisher, tmp_path):
    imgs = images(N, (12, 16, 3), np.uint8)
    source, collector = connect(publisher, imgs[0], color_mode="RGB1")
    recorder = Recorder(tmp_path, fmt="hdf5").start()
    collector.add_tap(recorder.tap)
    try:
        publish_each(publisher, collector, imgs, color_mode="RGB1")
    finally:
        source.stop()
        collector.remove_tap(recorder.tap)
        recorder.stop(drain=True)
    assert recorder.stats()["recorded"] == N
    with h5py.File(recorder.path, "r") as f:
        data = f["/entry/data/data"]
        assert data.shape == (N, 12, 16, 3) and data.dtype == np.uint8 and data.chunks == (1, 12, 16, 3)
        np.testing.assert_array_equal(data[()], np.stack(imgs))
        np.testing.assert_array_equal(f["/entry/data/uid"][()], np.arange(1, N + 1))
        np.testing.assert_allclose(f["/entry/data/timestamp"][()], 1.7e9 + np.arange(1, N + 1) * 0.5)
        np.testing.assert_allclose(f["/entry/data/attributes/Exposure"][()], 0.25)
        assert f["/entry/data/attributes/ColorMode"][0] == 2  # RGB1
        assert json.loads(f["/entry/data/attributes"].attrs["first_frame"])["Run"] == "e2e"


def test_headless_recording_from_pva(publisher, tmp_path):
    imgs = images(N, (32, 32), np.uint16, seed=11)
    publisher.publish(imgs[0], uid=1, timestamp=1.7e9 + 0.5,
                      attributes={"Exposure": 0.25, "Run": "e2e"})
    counters = Counters()
    source = PvaSource(publisher.pv_name)
    result = {}

    def record():
        result["summary"] = run_recording(source, tmp_path, fmt="tiff", stack=True, frames=N,
                                          counters=counters, progress=False,
                                          stream=open(os.devnull, "w"))

    worker = threading.Thread(target=record)
    worker.start()
    try:
        assert source.connected.wait(10)
        for uid, image in enumerate(imgs[1:], 2):
            # the connect-time value is uid 1; wait for each frame before the next
            assert _wait(lambda: counters.get("received") >= uid - 1)
            publisher.publish(image, uid=uid, timestamp=1.7e9 + uid * 0.5,
                              attributes={"Exposure": 0.25, "Run": "e2e"})
        worker.join(20)
        assert not worker.is_alive()
    finally:
        source.stop()
        worker.join(5)
    summary = result["summary"]
    assert summary.ok and summary.frames == N and summary.drops == 0 and summary.dropped_upstream == 0
    assert summary.stop_reason == f"{N} frames"
    with tifffile.TiffFile(summary.path) as tif:
        stack = tif.asarray()
        metas = [json.loads(page.description) for page in tif.pages]
    np.testing.assert_array_equal(stack, np.stack(imgs))
    assert [m["uid"] for m in metas] == list(range(1, N + 1))
    for meta in metas:
        check_meta(meta, meta["uid"])


def _wait(predicate, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return False
