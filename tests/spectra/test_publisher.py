import json
import re
import threading
import time

import numpy as np
import pytest
import zmq

from pystream.publish.zmq_spectra import (
    SpectrumPublisher,
    SyntheticSpectra,
    format_block_time,
    run_sim,
    time_tag_of,
)

from .conftest import spectrum

HEADER_KEYS = {"timestamp", "last_block_time", "time_tag", "nbeam", "nchan", "npol",
               "data_shape", "data_type"}


@pytest.fixture
def bare_sub(publisher):
    """A plain pyzmq SUB, as the reference receiver uses."""
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.setsockopt(zmq.RCVTIMEO, 5000)
    socket.connect(publisher.endpoint)
    yield socket
    socket.close(0)
    context.term()


def receive_after_warmup(publisher, socket, send):
    """Beat the slow joiner: publish until something arrives, then send the real one."""
    deadline = time.monotonic() + 5
    while not socket.poll(20):
        assert time.monotonic() < deadline, "SUB never got a message"
        publisher.publish(spectrum())
    while socket.poll(50):  # drain warm-ups
        socket.recv_multipart()
    expected = send()
    return socket.recv_multipart(), expected


def test_wire_format_is_exactly_avgstreamingop(publisher, bare_sub):
    data = spectrum(seed=5)
    parts, header_sent = receive_after_warmup(
        publisher, bare_sub, lambda: publisher.publish(data, timestamp=1755552894.787341))
    assert len(parts) == 3
    topic, header_bytes, payload = parts
    assert topic == b"data"
    header = json.loads(header_bytes.decode("utf-8"))
    assert set(header) == HEADER_KEYS
    assert header["timestamp"] == pytest.approx(1755552894.787341)
    assert header["last_block_time"] == "2025-08-18 21:34:54.787341"
    assert isinstance(header["time_tag"], int) and header["time_tag"] == publisher.time_tag
    assert (header["nbeam"], header["nchan"], header["npol"]) == (1, 3072, 4)
    assert header["data_shape"] == [1, 3072, 4]
    assert header["data_type"] == "<f4"
    assert len(payload) == 49152
    np.testing.assert_array_equal(np.frombuffer(payload, "<f4").reshape(1, 3072, 4), data)
    assert header == header_sent


def test_float64_and_2d_arrays_are_sent_as_one_beam_of_f4(publisher, bare_sub):
    data = np.arange(64, dtype=np.float64).reshape(16, 4)
    parts, _ = receive_after_warmup(publisher, bare_sub, lambda: publisher.publish(data))
    header = json.loads(parts[1])
    assert header["data_shape"] == [1, 16, 4] and header["data_type"] == "<f4"
    np.testing.assert_array_equal(np.frombuffer(parts[2], "<f4"), data.ravel())
    with pytest.raises(ValueError):
        publisher.publish(np.zeros(5))


def test_block_time_format():
    assert format_block_time(1755552894.787341) == "2025-08-18 21:34:54.787341"
    assert format_block_time(1755552894.0) == "2025-08-18 21:34:54"  # no fraction at 0 µs
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?", format_block_time(time.time()))
    assert time_tag_of(1.0) == 196_000_000


def test_port_zero_binds_a_free_port_and_default_is_9798():
    with SpectrumPublisher(port=0) as pub:
        assert pub.endpoint.startswith("tcp://127.0.0.1:") and pub.port > 0
    import inspect
    assert inspect.signature(SpectrumPublisher).parameters["port"].default == 9798
    assert inspect.signature(run_sim).parameters["port"].default == 9798


def test_binding_a_busy_port_raises():
    with SpectrumPublisher(port=0) as pub:
        with pytest.raises(zmq.ZMQError):
            SpectrumPublisher(port=pub.port)


def test_synthetic_spectra_look_like_power_spectra():
    gen = SyntheticSpectra(seed=1, burst_probability=0.0)
    a, b = gen.next(), gen.next()
    assert a.shape == (1, 3072, 4) and a.dtype == np.float32
    assert np.all(a[..., :2] >= 0)
    assert not np.array_equal(a, b)  # noise
    # smooth bandpass: the middle of the band is brighter than its edges
    assert a[0, 1200:1500, 0].mean() > 3 * a[0, -100:, 0].mean()


def test_synthetic_bursts_appear_and_drift():
    quiet = SyntheticSpectra(seed=2, burst_probability=0.0).next()
    gen = SyntheticSpectra(seed=2, burst_probability=1.0, noise=0.0)
    first = gen.next()
    later = [gen.next() for _ in range(5)][-1]
    ratio_first = first[0, :, 0] / quiet[0, :, 0]
    assert ratio_first.max() > 2.0  # a burst adds strongly in XX
    peak_first = int(np.argmax(first[0, :, 0] / gen._base[0, :, 0]))
    peak_later = int(np.argmax(later[0, :, 0] / gen._base[0, :, 0]))
    assert peak_first != peak_later


def test_run_sim_paces_and_counts(publisher):
    t0 = time.monotonic()
    sent = run_sim(rate=50, count=10, publisher=publisher)
    elapsed = time.monotonic() - t0
    assert sent == 10 and publisher.sent == 10
    assert elapsed >= 0.15  # 10 messages at 50 Hz take about 0.2 s


def test_run_sim_full_speed_stops_on_event(publisher, wait):
    stop = threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault(
        "sent", run_sim(rate=0, stop_event=stop, publisher=publisher)))
    thread.start()
    wait(lambda: publisher.sent > 10, message="10 spectra at full speed")
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert result["sent"] == publisher.sent > 10  # what it returns is what it sent
