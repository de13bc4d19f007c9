import time

import numpy as np
import pytest

from pystream.flow import Counters
from pystream.spectra.receiver import LAYOUT_CONFIRM
from pystream.spectra import SpectrumReceiver
from pystream.spectra.processing import OVRO_FREQ_RANGE_MHZ

from .conftest import header_bytes, prime, spectrum, wait_until


@pytest.fixture
def make_receiver(publisher):
    made = []

    def make(**kwargs):
        kwargs.setdefault("plot_interval", 0)
        host, port = publisher.endpoint[len("tcp://"):].rsplit(":", 1)
        receiver = SpectrumReceiver(stream_addr=host, stream_port=int(port), **kwargs)
        made.append(receiver)
        receiver.start()
        wait_until(lambda: receiver.state == "connected", message="connected")
        prime(publisher, lambda: receiver.ring.total)
        return receiver

    yield make
    for receiver in made:
        receiver.stop()


def test_seed_constructor_arguments_are_accepted():
    receiver = SpectrumReceiver("127.0.0.1", 9798, 1200, gc_interval=100, plot_interval=0,
                                plot_dir="/nonexistent/never/created", start_webshow=False,
                                log_level="WARNING")
    assert receiver.endpoint == "tcp://127.0.0.1:9798"
    assert receiver.get_buffer_status()["buffer_shape"] == (1200, 768)
    assert receiver.get_latest_data(5).shape == (0, 768)
    assert receiver.get_current_delay() is None  # no spectrum yet: no delay to tell
    assert receiver.get_buffer_status()["current_delay"] is None
    receiver.stop()  # never started: harmless


def test_latest_data_is_pol_xx_averaged_by_4_oldest_first(publisher, make_receiver):
    receiver = make_receiver(buffer_length=100)
    sent = [spectrum(seed=s) for s in range(5)]
    for i, data in enumerate(sent):
        publisher.publish(data, timestamp=1000.0 + i)
    wait_until(lambda: receiver.get_buffer_status()["last_header"]["timestamp"] == 1004.0
               and receiver.ring.last_row()[1] == 1004.0, message="5 spectra in the ring")
    latest = receiver.get_latest_data(n_frames=5)
    expected = np.stack([d[0, :, 0].reshape(768, 4).mean(-1) for d in sent])
    assert latest.shape == (5, 768)
    np.testing.assert_allclose(latest, expected, rtol=1e-6)
    rows, times = receiver.ring.latest_with_times(5)
    assert times.tolist() == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]


def test_stokes_i_and_other_averaging(publisher, make_receiver):
    receiver = make_receiver(pol="I", freq_avg=2, buffer_length=10)
    assert receiver.ring.shape == (10, 1536)
    data = spectrum(seed=9)
    publisher.publish(data, timestamp=77.0)
    wait_until(lambda: receiver.ring.last_row()[1] == 77.0, message="spectrum")
    expected = ((data[0, :, 0] + data[0, :, 1]) / 2).reshape(1536, 2).mean(-1)
    np.testing.assert_allclose(receiver.get_latest_data(1)[0], expected, rtol=1e-6)


def test_buffer_status_and_delay(publisher, make_receiver):
    receiver = make_receiver(buffer_length=50)
    t0 = time.time()
    publisher.publish(spectrum(), timestamp=t0 - 2.5)
    wait_until(lambda: receiver.get_current_delay() > 2.0, message="delay")
    t1 = time.time()
    # now - header timestamp, taken when it arrived: between t0 and t1, however loaded the machine
    assert 2.5 <= receiver.get_current_delay() <= 2.5 + (t1 - t0)
    status = receiver.get_buffer_status()
    for key in ("buffer_index", "buffer_shape", "running", "latest_stats", "current_delay",
                "plot_running", "last_plot_time"):
        assert key in status
    assert status["running"] is True and status["plot_running"] is False
    assert status["buffer_shape"] == (50, 768)
    assert status["buffer_index"] == receiver.ring.total % 50
    assert status["latest_stats"]["min"] > 0
    assert receiver.counters.snapshot()["delay_s"] == pytest.approx(receiver.get_current_delay(), abs=1e-3)


def test_every_valid_message_lands_in_the_ring(publisher, make_receiver):
    counters = Counters()
    receiver = make_receiver(buffer_length=1200, counters=counters)
    data = spectrum()
    for _ in range(3000):
        publisher.publish(data)
    publisher.send_raw([b"data", header_bytes(data_type="<c8"), data.tobytes()])  # one bad
    publisher.publish(data, timestamp=4242.0)
    wait_until(lambda: receiver.ring.last_row()[1] == 4242.0, timeout=20, message="the last spectrum")
    snap = counters.snapshot()
    assert snap["received"] == receiver.ring.total == snap["decoded"]
    assert snap["received"] >= 3001
    assert snap["rejected_by_reason"] == {"bad_dtype": 1}
    assert snap["ring_drops"] == 0
    assert receiver.ring.count == 1200


def test_layout_change_restarts_history_with_new_width(publisher, make_receiver):
    receiver = make_receiver(buffer_length=20)
    assert receiver.ring.n_cols == 768
    publisher.publish(spectrum(), timestamp=4.0)
    wait_until(lambda: receiver.ring.last_row()[1] == 4.0, message="a spectrum of the first layout")
    rows_before = receiver.ring.count
    # one stray message of another layout is refused, and the history stays
    publisher.publish(spectrum(nchan=1024), timestamp=4.5)
    wait_until(lambda: receiver.counters.snapshot()["rejected_by_reason"].get("layout_unconfirmed") == 1,
               message="the stray message refused")
    publisher.publish(spectrum(), timestamp=4.8)
    wait_until(lambda: receiver.ring.last_row()[1] == 4.8, message="the stream goes on")
    assert receiver.ring.n_cols == 768 and receiver.ring.count == rows_before + 1
    # a publisher that changed its layout: confirmed after LAYOUT_CONFIRM in a row
    for k in range(LAYOUT_CONFIRM):
        publisher.publish(spectrum(nchan=1024), timestamp=5.0 + k)
    last = 5.0 + LAYOUT_CONFIRM - 1
    wait_until(lambda: receiver.ring.last_row()[1] == last, message="new layout")
    assert receiver.ring.shape == (20, 256)
    assert receiver.counters.get("layout_changes") == 1
    # each of them is either in the new history or counted as refused before the
    # confirmation (one batch may carry all of them: then all are kept)
    kept = receiver.get_latest_data(LAYOUT_CONFIRM).shape[0]
    refused = receiver.counters.snapshot()["rejected_by_reason"]["layout_unconfirmed"] - 1
    assert kept >= 1 and kept + refused == LAYOUT_CONFIRM


def test_fewer_channels_than_freq_avg_is_a_bad_shape_not_an_error(publisher, make_receiver):
    receiver = make_receiver(buffer_length=20)
    publisher.publish(spectrum(nchan=2), timestamp=1.0)
    publisher.publish(spectrum(), timestamp=2.0)
    wait_until(lambda: receiver.ring.last_row()[1] == 2.0, message="the next good one")
    reasons = receiver.counters.snapshot()["rejected_by_reason"]
    assert reasons.get("bad_shape") == 1 and "processing_error" not in reasons


def test_frequency_axis_from_range_string():
    receiver = SpectrumReceiver(plot_interval=0, freq_range="14.36,87.83")
    freqs = receiver.frequency_axis()
    assert freqs.shape == (768,) and freqs[0] == 14.36 and freqs[-1] == 87.83
    assert receiver.frequency_label == "Frequency (MHz)"
    receiver = SpectrumReceiver(plot_interval=0, freq_range=OVRO_FREQ_RANGE_MHZ)
    assert receiver.frequency_axis()[-1] == pytest.approx(87.83, abs=0.01)
    assert SpectrumReceiver(plot_interval=0).frequency_label.startswith("Channel")


def test_stop_twice_and_restart(publisher, make_receiver):
    receiver = make_receiver(buffer_length=20)
    receiver.stop()
    receiver.stop()
    assert receiver.get_buffer_status()["running"] is False
    total = receiver.ring.total
    receiver.start()
    wait_until(lambda: receiver.state == "connected", message="reconnected")
    prime(publisher, lambda: receiver.ring.total)
    assert receiver.ring.total > total


def test_latest_data_with_a_timeout_waits_for_the_rows(publisher):
    import threading
    host, port = publisher.endpoint[len("tcp://"):].rsplit(":", 1)
    receiver = SpectrumReceiver(stream_addr=host, stream_port=int(port), plot_interval=0)
    stop = threading.Event()

    def publish():  # until the test ends: PUB/SUB drops what is sent before it joins
        seed = 0
        while not stop.wait(0.02):
            publisher.publish(spectrum(seed=seed % 7))
            seed += 1

    thread = threading.Thread(target=publish, daemon=True)
    try:
        receiver.start()
        assert receiver.get_latest_data(5).shape == (0, 768)  # right after start(): nothing yet
        assert receiver.get_current_delay() is None
        thread.start()
        rows = receiver.get_latest_data(n_frames=5, timeout=60)
        assert rows.shape == (5, 768)
        assert receiver.get_current_delay() is not None
    finally:
        stop.set()
        receiver.stop()
        thread.join(10)
