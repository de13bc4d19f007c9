import json

import numpy as np
import pytest

from pystream.flow import Counters, FrameRouter
from pystream.frame import FrameRejected
from pystream.publish.zmq_spectra import SpectrumPublisher
from pystream.sources.zmq_spectra import (
    ZmqSpectrumSource,
    decode_spectrum,
    make_endpoint,
    validate_message,
)

from .conftest import header_bytes, prime, spectrum, wait_until


class Collector:
    """A FrameRouter with a tap that keeps every frame, plus the states seen."""

    def __init__(self):
        self.counters = Counters()
        self.router = FrameRouter(self.counters)
        self.frames = []
        self.states = []
        self.router.add_tap(self.frames.append)
        self.router.add_state_listener(lambda state, message: self.states.append(state))


@pytest.fixture
def collected(publisher):
    sink = Collector()
    source = ZmqSpectrumSource(publisher.endpoint)
    source.start(sink.router)
    yield source, sink
    source.stop()


def test_make_endpoint():
    assert make_endpoint("127.0.0.1", 9798) == "tcp://127.0.0.1:9798"
    assert make_endpoint("tcp://10.0.0.1:30001") == "tcp://10.0.0.1:30001"


def test_valid_messages_become_frames_that_decode(publisher, collected):
    source, sink = collected
    wait_until(lambda: source.state == "connected", message="connected")
    prime(publisher, lambda: len(sink.frames))
    data = spectrum(seed=42)
    header = publisher.publish(data, timestamp=1755552894.787341)
    wait_until(lambda: sink.frames[-1].payload[0]["timestamp"] == header["timestamp"], message="frame")
    frame = sink.frames[-1]
    assert not frame.decoded  # the source thread never decodes
    assert frame.nbytes == 3072 * 4 * 4
    assert frame.source == publisher.endpoint
    decoded = frame.decode()
    assert decoded.array.shape == (1, 3072, 4) and decoded.array.dtype == np.float32
    np.testing.assert_array_equal(decoded.array, data)
    assert decoded.t_source == pytest.approx(1755552894.787341)
    assert decoded.attributes["last_block_time"] == "2025-08-18 21:34:54.787341"
    assert "connecting" in sink.states and "connected" in sink.states


BAD_MESSAGES = [
    ("wrong_topic", [b"junk", header_bytes(), spectrum().tobytes()]),
    ("wrong_part_count", [b"data", header_bytes()]),
    ("wrong_part_count", [b"data", header_bytes(), spectrum().tobytes(), b"extra"]),
    ("bad_json", [b"data", b"{not json", spectrum().tobytes()]),
    ("bad_json", [b"data", b"\xff\xfe\x00", spectrum().tobytes()]),
    ("bad_header", [b"data", b"[1, 2, 3]", spectrum().tobytes()]),
    ("bad_header", [b"data", header_bytes(timestamp="yesterday"), spectrum().tobytes()]),
    ("bad_header", [b"data", header_bytes(timestamp=float("nan")), spectrum().tobytes()]),
    ("bad_header", [b"data", header_bytes(timestamp=10 ** 300), spectrum().tobytes()]),
    ("bad_header", [b"data", header_bytes(timestamp=True), spectrum().tobytes()]),
    ("bad_shape", [b"data", header_bytes(data_shape=[1, 3072, 2], npol=2), spectrum(npol=2).tobytes()]),
    ("bad_shape", [b"data", header_bytes(nchan=1024), spectrum().tobytes()]),
    ("bad_shape", [b"data", header_bytes(data_shape=[1, -3072, 4]), spectrum().tobytes()]),
    ("bad_dtype", [b"data", header_bytes(data_type="<c8"), spectrum().tobytes()]),
    ("bad_dtype", [b"data", header_bytes(data_type="nonsense"), spectrum().tobytes()]),
    ("bad_dtype", [b"data", header_bytes(data_type=None), spectrum().tobytes()]),
    ("size_mismatch", [b"data", header_bytes(), spectrum().tobytes()[:-4]]),
    ("size_mismatch", [b"data", header_bytes(data_type="<f8"), spectrum().tobytes()]),
    # these two used to end reception for good (an exception nobody caught)
    ("bad_dtype", [b"data", header_bytes(data_type="(-1,)f4"), spectrum().tobytes()]),
    ("bad_json", [b"data", b"[" * 200_000, spectrum().tobytes()]),
    # consistent, but the waterfall ring would be 1200 rows of it (tens of GB)
    ("too_large", [b"data", header_bytes(data_shape=[1, 1 << 24, 4], nchan=1 << 24),
                   np.zeros(4, np.float32).tobytes()]),
]


@pytest.mark.parametrize("reason, parts", BAD_MESSAGES)
def test_validate_message_rejects_with_reason(reason, parts):
    with pytest.raises(FrameRejected) as info:
        validate_message(parts)
    assert info.value.reason == reason


def test_every_bad_kind_is_counted_by_reason_and_the_stream_carries_on(publisher, collected, caplog):
    source, sink = collected
    wait_until(lambda: source.state == "connected", message="connected")
    prime(publisher, lambda: sink.counters.get("received"))
    for _, parts in BAD_MESSAGES:
        publisher.send_raw(parts)
    publisher.publish(spectrum(seed=7), timestamp=12345.0)  # the stream goes on after them
    expected = {}
    for reason, _ in BAD_MESSAGES:
        expected[reason] = expected.get(reason, 0) + 1
    wait_until(lambda: sink.counters.get("rejected") == len(BAD_MESSAGES)
               and sink.frames[-1].payload[0]["timestamp"] == 12345.0, message="all messages")
    snap = sink.counters.snapshot()
    assert snap["rejected_by_reason"] == expected
    assert snap["last_error"].startswith("too_large")
    assert source.running
    # each reason is logged once, with its message; the rest are counted only
    logged = [r.getMessage() for r in caplog.records if "rejected at the source" in r.getMessage()]
    assert sorted(m.split("(")[1].split(")")[0] for m in logged) == sorted(expected)


def test_big_endian_and_integer_payloads_are_decoded_to_float32(publisher, collected):
    source, sink = collected
    wait_until(lambda: source.state == "connected", message="connected")
    prime(publisher, lambda: len(sink.frames))
    data = spectrum(nchan=16)
    publisher.send_raw([b"data", header_bytes((1, 16, 4), data_type=">f4"), data.astype(">f4").tobytes()])
    publisher.send_raw([b"data", header_bytes((1, 16, 4), data_type="<u2"),
                        np.arange(64, dtype="<u2").tobytes()])
    wait_until(lambda: sink.frames[-1].payload[0]["data_type"] == "<u2", message="two frames")
    big, ints = (f.decode().array for f in sink.frames[-2:])
    np.testing.assert_array_equal(big, data)
    assert ints.dtype == np.float32 and ints.shape == (1, 16, 4) and ints[0, -1, -1] == 63


def test_decode_of_a_validated_payload_without_timestamp():
    header = json.loads(header_bytes((1, 8, 4)))
    del header["timestamp"]
    decoded = decode_spectrum((header, spectrum(nchan=8).tobytes()))
    assert decoded.t_source is None and decoded.array.shape == (1, 8, 4)


def test_publisher_restart_is_seen_and_picked_up_again():
    first = SpectrumPublisher(port=0)
    endpoint = first.endpoint
    sink = Collector()
    source = ZmqSpectrumSource(endpoint, heartbeat_s=0.2)
    source.start(sink.router)
    second = None
    try:
        wait_until(lambda: source.state == "connected", message="connected")
        prime(first, lambda: sink.counters.get("received"))
        prime(first, lambda: sink.counters.get("received"))
        first.close()
        wait_until(lambda: source.state == "disconnected", message="disconnected")
        second = SpectrumPublisher(endpoint=endpoint)  # same port, new process in real life
        wait_until(lambda: source.state == "connected", timeout=10, message="reconnected")
        before = sink.counters.get("received")
        prime(second, lambda: sink.counters.get("received"))
        assert sink.counters.get("received") > before
        assert source.connects == 2
        assert sink.counters.get("restarts") == 1  # uid numbering restarted with the publisher
        assert sink.states[-3:] == ["connected", "disconnected", "connected"]
    finally:
        source.stop()
        if second is not None:
            second.close()
    assert source.state == "stopped"


def test_stop_is_safe_twice_and_before_start():
    source = ZmqSpectrumSource("tcp://127.0.0.1:1")
    source.stop()
    source.start(Collector().router)
    source.stop()
    source.stop()
    assert not source.running
