"""``--publish``: the frames the viewer processes, served as an NTNDArray PV."""
import sys
from argparse import Namespace
from types import SimpleNamespace

import numpy as np
import pytest

from pystream.pipeline import Invert, Pipeline, PipelineConfig, ProcessorSpec
from pystream.publish.republish import attach_publisher
from pystream.session import Session
from pystream.sources.pva import PvaSource

from .pva_helpers import subscribe
from .scale_helpers import Monitor, stop, wait_until

pytestmark = pytest.mark.pva


def invert_pipeline() -> Pipeline:
    return Pipeline(PipelineConfig(steps=[ProcessorSpec("Invert", "pystream.pipeline.processors",
                                                        "Invert")]))


def viewer(session: Session, pipeline: Pipeline):
    """What attach_publisher uses of the window: its session, pipeline and stats."""
    return SimpleNamespace(session=session, pipeline=pipeline, add_stats_provider=session.add_stats)


def frames(n: int, shape=(40, 56), dtype=np.uint16):
    rng = np.random.default_rng(7)
    return [rng.integers(0, 60000, shape).astype(dtype) for _ in range(n)]


def test_every_received_frame_is_processed_and_republished(publisher, pv_name):
    out = pv_name + ":processed"
    session = Session(display=False)  # headless: the tap alone
    republisher = attach_publisher(viewer(session, invert_pipeline()),
                                   Namespace(publish=out, publish_displayed=False,
                                             publish_buffer=64 << 20))
    images = frames(20)
    monitor = None
    try:
        publisher.publish(images[0], uid=1)
        session.connect(PvaSource(pv_name))
        assert wait_until(lambda: session.stats().get("received", 0) >= 1, 30)
        assert wait_until(lambda: republisher.stats()["published"] >= 1, 30)
        monitor = Monitor(out)
        assert monitor.wait_for(lambda items: len(items) >= 1, 30)  # the current value
        # pystream itself can view it
        source, collector = subscribe(out)
        try:
            for uid, image in enumerate(images[1:], start=2):
                publisher.publish(image, uid=uid, attributes={"Exposure": 0.5})
            assert monitor.wait_for(lambda items: items[-1][0] == 20, 30), monitor.uids
            assert collector.wait_uid(20) is not None
            shown = collector.wait_uid(20).array
        finally:
            source.stop()
    finally:
        if monitor is not None:
            monitor.stop()
        session.close()
        republisher.stop()
    assert monitor.uids[-19:] == list(range(2, 21))  # every frame, in order
    for uid, image, attrs in monitor.items[-19:]:
        assert image.dtype == np.uint16 and image.shape == (40, 56)
        np.testing.assert_array_equal(image, Invert().apply(images[uid - 1]))
        assert attrs["Exposure"] == 0.5  # attributes carried over
    np.testing.assert_array_equal(shown, Invert().apply(images[19]))
    stats = republisher.stats()
    assert stats["published"] >= 20 and stats["publish_drops"] == 0


def test_a_result_of_another_dtype_and_shape_goes_out_as_it_is(publisher, pv_name):
    out = pv_name + ":binned"
    pipeline = Pipeline(PipelineConfig(steps=[
        ProcessorSpec("Bin", "pystream.pipeline.processors", "Bin", {"factor": 2}),
        ProcessorSpec("Broken", "numpy", None)]))  # no process() in numpy: bypassed
    session = Session(display=False)
    republisher = attach_publisher(viewer(session, pipeline),
                                   Namespace(publish=out, publish_displayed=False,
                                             publish_buffer=64 << 20))
    try:
        publisher.publish(frames(1)[0], uid=1)
        session.connect(PvaSource(pv_name))
        monitor = Monitor(out)
        assert monitor.wait_for(lambda items: len(items) >= 1, 30)
        monitor.stop()
    finally:
        session.close()
        republisher.stop()
    uid, image, _ = monitor.items[-1]
    expected = pipeline.apply(frames(1)[0], {})[0]
    assert uid == 1 and image.shape == (20, 28) and image.dtype == expected.dtype
    np.testing.assert_array_equal(image, expected)


def test_with_publish_displayed_the_displayed_frames_are_published(publisher, pv_name):
    out = pv_name + ":shown"
    session = Session()
    pipeline = invert_pipeline()
    session.processors.append(pipeline)  # as the window runs it: in the display worker
    republisher = attach_publisher(viewer(session, pipeline),
                                   Namespace(publish=out, publish_displayed=True,
                                             publish_buffer=64 << 20))
    images = frames(3)
    monitor = None
    try:
        publisher.publish(images[0], uid=1)
        session.connect(PvaSource(pv_name))
        assert wait_until(lambda: republisher.stats()["published"] >= 1, 30), session.stats()
        monitor = Monitor(out)
        assert monitor.wait_for(lambda items: len(items) >= 1, 30)
        publisher.publish(images[2], uid=3)
        assert monitor.wait_for(lambda items: items[-1][0] == 3, 30), monitor.uids
    finally:
        if monitor is not None:
            monitor.stop()
        session.close()
        republisher.stop()
    _, image, _ = monitor.items[-1]
    np.testing.assert_array_equal(image, Invert().apply(images[2]))
    assert "published" in session.stats() and "publish_drops" in session.stats()


def test_the_viewer_publishes_with_the_publish_option(publisher, pv_name, tmp_path, home):
    """``pystream --pv IN --publish OUT`` (offscreen window): the real wiring."""
    import json

    from .scale_helpers import start

    config = tmp_path / "invert.json"
    config.write_text(json.dumps({"processors": [
        {"name": "Invert", "module": "pystream.pipeline.processors", "class": "Invert"}]}))
    out = pv_name + ":viewer"
    stats = tmp_path / "stats.json"
    images = frames(4)
    publisher.publish(images[1], uid=1)  # frame uid goes with images[uid % 4]
    viewer_process = start([sys.executable, "-m", "pystream.cli", "--pv", pv_name, "--offscreen",
                            "--proc-config", str(config), "--publish", out, "--exit-after", "60",
                            "--stats-json", str(stats)], tmp_path / "viewer.log")
    monitor = Monitor(out)
    try:
        assert monitor.wait_for(lambda items: len(items) >= 1, 60), (
            (tmp_path / "viewer.log").read_text())
        uid = 1
        while not monitor.wait_for(lambda items: items[-1][0] >= 4, 0.5) and uid < 1000:
            uid += 1  # keep the stream going until the republished PV has caught up
            publisher.publish(images[uid % 4], uid=uid)
        assert monitor.uids[-1] >= 4
    finally:
        monitor.stop()
        stop(viewer_process)
    for uid, image, _ in monitor.items:
        np.testing.assert_array_equal(image, Invert().apply(images[uid % 4]))
    written = json.loads(stats.read_text())
    assert written["published"] >= len(monitor.items) and written["publish_drops"] == 0
