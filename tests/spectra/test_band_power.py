"""Band power over time: the model against numpy, fed by a live receiver, and its plot."""
import numpy as np
import pytest

from pystream.spectra import SpectrumReceiver
from pystream.spectra.band_power import BandPower, parse_band
from pystream.spectra.processing import frequency_axis

from .conftest import prime, spectrum, wait_until

AXIS = np.linspace(10.0, 90.0, 9)  # channels at 10, 20, ... 90


def test_parse_band():
    assert parse_band(None) is None and parse_band("all") is None and parse_band(" ") is None
    assert parse_band("14.36,30") == (14.36, 30.0)
    assert parse_band((30, 14)) == (14.0, 30.0)
    for bad in ("x", "1,2,3", "1,nan"):
        with pytest.raises(ValueError):
            parse_band(bad)


def test_power_in_a_band_is_the_mean_of_its_channels_per_spectrum():
    rng = np.random.default_rng(4)
    model = BandPower(lambda width: AXIS[:width], band=(25, 55), window=5, unit="MHz")
    rows = rng.random((8, 9)).astype(np.float32)
    model.update(rows, times=np.arange(8.0), uids=np.arange(1, 9))
    t, uid, values = model.series.series()
    expected = rows[:, 2:5].astype(np.float64).mean(axis=1)  # 30, 40, 50 MHz
    assert t.tolist() == [3.0, 4.0, 5.0, 6.0, 7.0] and uid.tolist() == [4, 5, 6, 7, 8]
    np.testing.assert_allclose(values[:, 0], expected[-5:], rtol=1e-12)
    rolling = model.series.rolling()["power"]
    assert rolling["mean"] == pytest.approx(expected[-5:].mean())
    assert rolling["std"] == pytest.approx(expected[-5:].std())
    assert model.channels(9) == 3
    summary = model.summary()
    assert summary["band"] == [25.0, 55.0] and summary["latest"]["power"] == pytest.approx(expected[-1])

    model.set_band(None)  # whole band: a fresh series
    assert len(model.series) == 0
    model.update(rows[:1], times=[9.0])
    assert model.series.latest()["power"] == pytest.approx(rows[0].astype(np.float64).mean())


def test_a_band_with_no_channel_says_so_and_measures_nothing():
    model = BandPower(lambda width: AXIS[:width], band="91,95", unit="MHz")
    model.update(np.ones((3, 9)), times=[1.0, 2.0, 3.0])
    assert len(model.series) == 0 and model.skipped == 3
    assert "no channel in the band 91–95 MHz" in model.problem and "10–90" in model.problem
    model.set_band("85,95")
    model.update(np.full((1, 9), 2.0), times=[4.0])
    assert model.problem == "" and model.series.latest()["power"] == 2.0


def test_the_receiver_measures_every_spectrum_and_reports_it(publisher):
    receiver = SpectrumReceiver(endpoint=publisher.endpoint, buffer_length=100, plot_interval=0,
                                freq_range=(14.36, 87.83), band=(30.0, 50.0))
    receiver.start()
    try:
        wait_until(lambda: receiver.state == "connected", message="connected")
        prime(publisher, lambda: receiver.ring.total)
        for i in range(20):  # a power step half way
            publisher.publish(spectrum(seed=i) * (1.0 if i < 10 else 3.0), timestamp=5000.0 + i)
        wait_until(lambda: receiver.band_power.series.latest() is not None
                   and receiver.band_power.series.latest()["t"] == 5019.0, message="20 spectra")
        rows, times = receiver.ring.latest_with_times(20)
        freqs = frequency_axis(rows.shape[1], (14.36, 87.83))
        inside = (freqs >= 30.0) & (freqs <= 50.0)
        expected = rows[:, inside].astype(np.float64).mean(axis=1)
        t, _, values = receiver.band_power.series.series(20)
        np.testing.assert_array_equal(t, times)
        np.testing.assert_allclose(values[:, 0], expected, rtol=1e-12)
        assert values[10:, 0].min() > 2 * values[:10, 0].max()  # the step is there
        stats = receiver.counters.snapshot()["band_power"]
        assert stats["band"] == [30.0, 50.0] and stats["unit"] == "MHz"
        assert stats["latest"]["power"] == pytest.approx(expected[-1])
    finally:
        receiver.stop()


@pytest.mark.gui
def test_the_spectrum_panel_plots_the_band_power(qtbot, publisher):
    from pystream.gui.spectrum_panel import SpectrumPanel

    receiver = SpectrumReceiver(endpoint=publisher.endpoint, buffer_length=100, plot_interval=0)
    receiver.start()
    try:
        panel = SpectrumPanel(receiver, fps=30)
        qtbot.addWidget(panel)
        panel.show()
        qtbot.waitExposed(panel)
        plot = panel.band_power
        assert plot is not None and plot.isVisible()
        wait_until(lambda: receiver.state == "connected", message="connected")
        prime(publisher, lambda: receiver.ring.total)
        for i in range(5):
            publisher.publish(spectrum(seed=i), timestamp=100.0 + i)
        wait_until(lambda: (receiver.band_power.series.latest() or {}).get("t") == 104.0,
                   message="5 spectra")
        _, _, values = receiver.band_power.series.series()
        qtbot.waitUntil(lambda: plot.curve.getData()[1] is not None
                        and len(plot.curve.getData()[1]) == len(values), timeout=10000)
        np.testing.assert_array_equal(plot.curve.getData()[1], values[:, 0])
        assert "rolling mean" in plot.numbers_label.text()
        panel.pause_check.setChecked(True)  # the panel's Pause freezes the band power too
        shown = len(plot.curve.getData()[1])
        publisher.publish(spectrum(seed=9), timestamp=105.0)
        wait_until(lambda: (receiver.band_power.series.latest() or {}).get("t") == 105.0,
                   message="one more spectrum")
        qtbot.wait(500)  # refreshes pass meanwhile
        assert len(plot.curve.getData()[1]) == shown
        panel.pause_check.setChecked(False)
        assert len(plot.curve.getData()[1]) == shown + 1
        assert not plot.set_band("bad band")
        assert "band not changed" in plot.numbers_label.text()
        assert plot.set_band("200,300")  # channel numbers: 0..767
        qtbot.waitUntil(lambda: plot.curve.getData()[1] is None or len(plot.curve.getData()[1]) == 0,
                        timeout=10000)  # a fresh series for the new band
        assert receiver.band_power.band == (200.0, 300.0)
        panel.stop()
    finally:
        receiver.stop()
