"""PipelineProcessor on pvapy's streaming framework: real processes on loopback.

``pystream sim pva`` is the source; consumers (``pvapy-hpc-consumer``) run
the pipeline; a pvapy monitor checks what comes out.
"""
import sys

import numpy as np
import pytest

from pystream.pipeline import Invert
from pystream.scale import ScaleStatus

from .scale_helpers import (INVERT, STAMP, Monitor, SimFrames, fail_every, published_count,
                            start, start_scale, start_sim, stop, wait_until, write_config)

pytestmark = pytest.mark.pva

SCALE = [sys.executable, "-m", "pystream.cli", "scale"]


def inverted(image: np.ndarray) -> np.ndarray:
    return np.iinfo(image.dtype).max - image


def test_two_consumers_and_the_collector_deliver_every_frame_once_in_order(tmp_path, pv_name):
    config = write_config(tmp_path, [INVERT, STAMP])
    out = pv_name + ":out"
    sim = start_sim(pv_name, tmp_path / "sim.log", rate=30)
    scale = start_scale(["--input", pv_name, "--output", out, "--proc-config", str(config),
                         "--consumers", "2", "--collector", "--log-dir", str(tmp_path / "logs")],
                        tmp_path / "scale.log")
    monitor = Monitor(out)
    try:
        # both consumers' outputs reach the collector: it delivers a frame of each
        assert monitor.wait_for(lambda items: {i[2].get("ConsumerId") for i in items[-10:]} == {1, 2}
                                and len(items) >= 10, 60), (
            f"collector output: {monitor.uids[-20:]}\n" + (tmp_path / "scale.log").read_text())
        start_uid = monitor.uids[-1]
        assert monitor.wait_for(lambda items: items[-1][0] >= start_uid + 40, 60)
        sim_status = stop(sim)
        assert sim_status == 0, (tmp_path / "sim.log").read_text()
        last = published_count(tmp_path / "sim.log")
        assert last is not None, (tmp_path / "sim.log").read_text()
        assert monitor.wait_for(lambda items: items[-1][0] >= last, 30), (monitor.uids[-10:], last)
    finally:
        monitor.stop()
        stop(sim)
        stop(scale)

    uids = monitor.uids
    window = uids[uids.index(start_uid):]
    # every uid from there to the source's last, exactly once, in order
    missing = sorted(set(range(start_uid, last + 1)) - set(window))
    assert window == list(range(start_uid, last + 1)), f"missing {missing}; got {window}"
    expected = SimFrames()
    consumers = set()
    for uid, image, attrs in monitor.items[uids.index(start_uid):]:
        assert image.dtype == np.uint16 and image.shape == (48, 64)
        np.testing.assert_array_equal(image, inverted(expected(uid)), err_msg=f"uid {uid}")
        consumers.add(attrs.get("ConsumerId"))
    assert consumers == {1, 2}  # both took part
    assert not monitor.errors


def _consumer(pv_name, out, config, on_error, log_path):
    """pvapy-hpc-consumer as the issue's users type it, one consumer."""
    import json
    return start(["pvapy-hpc-consumer", "--input-channel", pv_name, "--output-channel", f"{out}:*",
                  "--status-channel", f"{out}:*:status", "--consumer-id", "1",
                  "--processor-class", "pystream.hpc.PipelineProcessor",
                  "--processor-args", json.dumps({"config": str(config), "on_error": on_error}),
                  "--skip-initial-updates", "0", "--report-period", "1", "--disable-curses",
                  "--server-queue-size", "8"], log_path)


@pytest.mark.parametrize("on_error", ["pass", "drop"])
def test_a_step_that_raises_is_bypassed_or_dropped_and_counted(tmp_path, pv_name, on_error):
    config = write_config(tmp_path, [fail_every(3), INVERT])
    out = pv_name + ":out"
    sim = start_sim(pv_name, tmp_path / "sim.log", rate=30)
    consumer = _consumer(pv_name, out, config, on_error, tmp_path / "consumer.log")
    monitor = Monitor(f"{out}:1")
    status = ScaleStatus(out, [1]).start()
    try:
        assert monitor.wait_for(lambda items: len(items) >= 30, 60), (
            (tmp_path / "consumer.log").read_text()[-3000:])
        # the status channel counts the failures, and the consumer goes on after them
        assert wait_until(lambda: status.stats()["scale_step_errors"] >= 5, 60), status.stats()
        n = len(monitor.items)
        assert monitor.wait_for(lambda items: len(items) >= n + 10, 60)
        assert consumer.poll() is None
    finally:
        status.stop()
        monitor.stop()
        stop(sim)
        stop(consumer)
    expected = SimFrames()
    uids = monitor.uids
    failing = [uid for uid in uids if uid % 3 == 0]
    for uid, image, _ in monitor.items:
        # on a failing frame the step is bypassed and the rest of the pipeline still runs
        np.testing.assert_array_equal(image, inverted(expected(uid)), err_msg=f"uid {uid}")
    by_consumer = status.stats()["scale_by_consumer"]["1"]
    if on_error == "pass":
        assert failing, uids  # frames whose step failed were published
        assert uids == list(range(uids[0], uids[-1] + 1))  # and none is missing
        assert by_consumer["dropped"] == 0
    else:
        assert not failing, uids  # dropped, not published
        assert [u for u in range(uids[0], uids[-1] + 1) if u % 3] == uids
        assert by_consumer["dropped"] >= 5
    assert by_consumer["step_errors"] >= 5
    assert "broken on purpose" in by_consumer["last_error"]


# ---------------------------------------------------------------- the processor in this process

def _processor(tmp_path, steps, **args):
    from pystream.hpc import PipelineProcessor
    config = write_config(tmp_path, steps)
    return PipelineProcessor({"config": str(config), "processorId": 3, **args})


@pytest.mark.parametrize("dtype,color_mode,codec", [
    ("uint8", "mono", ""), ("int16", "mono", "lz4"), ("uint32", "mono", "zlib"),
    ("float32", "mono", ""), ("uint16", "rgb2", ""), ("uint8", "rgb1", "bslz4")])
def test_the_processor_decodes_every_layout_and_publishes_the_result(tmp_path, dtype, color_mode,
                                                                     codec):
    from pystream.sources.ntndarray import build_ntndarray, decode_ntndarray
    processor = _processor(tmp_path, [INVERT, STAMP])
    rng = np.random.default_rng(1)
    shape = (12, 16, 3) if color_mode != "mono" else (12, 16)
    image = (rng.random(shape) * 200).astype(dtype)
    nt_in = build_ntndarray(image, uid=42, codec=codec, color_mode=color_mode,
                            timestamp=(1700000000, 123456789), attributes={"Gain": 2.5})
    nt_out = processor.process(nt_in)
    out = decode_ntndarray(nt_out)
    expected = Invert().apply(image)
    np.testing.assert_array_equal(out.array, expected)
    assert out.array.dtype == image.dtype
    assert nt_out["uniqueId"] == 42
    assert (nt_out["dataTimeStamp"]["secondsPastEpoch"], nt_out["dataTimeStamp"]["nanoseconds"]) \
        == (1700000000, 123456789)
    assert out.attributes["Gain"] == 2.5 and out.attributes["ConsumerId"] == 3
    stats = processor.getStats()
    assert stats["framesProcessed"] == 1 and stats["stepErrors"] == 0


def test_the_processors_statistics_fit_its_status_structure(tmp_path):
    import pvaccess as pva

    from pystream.sources.ntndarray import build_ntndarray
    processor = _processor(tmp_path, [fail_every(2), INVERT], on_error="drop")
    for uid in range(1, 5):
        processor.process(build_ntndarray(np.zeros((4, 4), np.uint16), uid=uid))
    bad = build_ntndarray(np.zeros((4, 4), np.uint16), uid=5)
    bad["dimension"] = [pva.PvDimension(9, 0, 9, 1, False), pva.PvDimension(9, 0, 9, 1, False)]
    assert processor.process(bad) is None  # rejected, counted, not raised
    stats = processor.getStats()
    assert set(stats) == set(processor.getStatsPvaTypes())
    pva.PvObject({"userStats": processor.getStatsPvaTypes()}, {"userStats": stats})  # fits
    assert (stats["framesProcessed"], stats["framesDropped"], stats["framesRejected"]) == (2, 2, 1)
    assert stats["errors_Fail"] == 2 and stats["stepErrors"] == 2
    assert "size_mismatch" in stats["lastError"]
    processor.resetStats()
    assert processor.getStats()["stepErrors"] == 0 and processor.getStats()["framesDropped"] == 0


def test_bad_processor_arguments_are_refused_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match="pass, drop"):
        _processor(tmp_path, [INVERT], on_error="ignore")
    with pytest.raises(ValueError, match="unknown codec"):
        _processor(tmp_path, [INVERT], codec="gzip")
