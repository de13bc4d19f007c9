import numpy as np
import pytest

from pystream.spectra.processing import (
    OVRO_FREQ_RANGE_MHZ,
    SpectrumProcessing,
    average_freq,
    frequency_axis,
    normalise_pol,
    parse_freq_range,
    select_pol,
)


@pytest.fixture
def batch():
    rng = np.random.default_rng(3)
    return rng.random((5, 2, 3072, 4), dtype=np.float32)  # (n, nbeam, nchan, npol)


@pytest.mark.parametrize("pol, expected", [
    ("XX", lambda d: d[:, 0, :, 0]),
    ("YY", lambda d: d[:, 0, :, 1]),
    ("I", lambda d: (d[:, 0, :, 0] + d[:, 0, :, 1]) / 2),
    ("V", lambda d: d[:, 0, :, 3]),
])
def test_select_pol_matches_numpy(batch, pol, expected):
    out = select_pol(batch, pol)
    assert out.shape == (5, 3072) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected(batch), rtol=1e-6)


def test_select_pol_other_beam_and_single_message(batch):
    np.testing.assert_array_equal(select_pol(batch, "YY", beam=1), batch[:, 1, :, 1])
    single = batch[0]  # (nbeam, nchan, npol)
    np.testing.assert_array_equal(select_pol(single, "XX"), single[0, :, 0])


def test_average_freq_is_contiguous_group_mean(batch):
    spectra = select_pol(batch, "XX")
    out = average_freq(spectra, 4)
    assert out.shape == (5, 768)
    expected = np.stack([[spectra[i, 4 * j:4 * j + 4].mean() for j in range(768)] for i in range(2)])
    np.testing.assert_allclose(out[:2], expected, rtol=1e-5)


def test_average_freq_drops_incomplete_last_group_and_factor_one():
    spectra = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(average_freq(spectra, 3), [1.0, 4.0, 7.0])
    np.testing.assert_array_equal(average_freq(spectra, 1), spectra)
    with pytest.raises(ValueError):
        average_freq(spectra, 0)
    with pytest.raises(ValueError):
        average_freq(spectra, 11)


def test_processing_pipeline_reference_case(batch):
    processing = SpectrumProcessing(pol="xx", freq_avg=4)
    out = processing(batch)
    assert processing.pol == "XX"
    assert out.shape == (5, 768)
    np.testing.assert_allclose(out, batch[:, 0, :, 0].reshape(5, 768, 4).mean(-1), rtol=1e-6)
    assert processing.out_width(3072) == 768


def test_stokes_i_after_averaging(batch):
    out = SpectrumProcessing(pol="I", freq_avg=2)(batch)
    expected = ((batch[:, 0, :, 0] + batch[:, 0, :, 1]) / 2).reshape(5, 1536, 2).mean(-1)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_pol_names():
    assert normalise_pol("ci") == "V"
    assert normalise_pol(1) == "YY"
    for bad in ("Q", "", 2):
        with pytest.raises(ValueError):
            normalise_pol(bad)


def test_frequency_axis_mhz_and_channels():
    freqs = frequency_axis(768, OVRO_FREQ_RANGE_MHZ)
    assert freqs.shape == (768,)
    assert freqs[0] == pytest.approx(14.36, abs=0.01)
    assert freqs[-1] == pytest.approx(87.83, abs=0.01)
    assert np.all(np.diff(freqs) > 0)
    np.testing.assert_array_equal(frequency_axis(4), [0, 1, 2, 3])


def test_parse_freq_range():
    assert parse_freq_range("14.36,87.83") == (14.36, 87.83)
    assert parse_freq_range(" 10 : 20 ") == (10.0, 20.0)
    assert parse_freq_range("ovro") == OVRO_FREQ_RANGE_MHZ
    assert parse_freq_range("") is None and parse_freq_range(None) is None
    for bad in ("14.36", "a,b", "5,5", "1,2,3"):
        with pytest.raises(ValueError):
            parse_freq_range(bad)
