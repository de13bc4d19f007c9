import numpy as np

from pystream.spectra.ring import SpectrumRing
from pystream.spectra.waterfall import WaterfallModel, robust_levels, to_log_image

from .conftest import wait_until


def filled_ring(n=10, width=32):
    ring = SpectrumRing(20, width)
    for i in range(n):
        ring.write(np.full(width, 10.0 ** (i % 4), np.float32), times=100.0 + 0.5 * i)
    return ring


def test_image_is_log_newest_first_float32_with_levels():
    ring = filled_ring()
    model = WaterfallModel(ring, freq_range=(10.0, 20.0))
    assert model.latest() is None
    assert model.update() is True
    result = model.latest()
    assert result.image.dtype == np.float32 and result.image.flags.c_contiguous
    assert result.image.shape == (10, 32)
    # newest row (i = 9 → 10**1) first, oldest (i = 0 → 10**0) last, in log10
    assert result.image[0, 0] == 1.0 and result.image[-1, 0] == 0.0
    assert result.levels[0] < result.levels[1]
    assert result.span_s == 4.5 and result.t_source == 104.5
    assert result.freqs[0] == 10.0 and result.freqs[-1] == 20.0
    np.testing.assert_array_equal(result.latest, np.full(32, 10.0))
    assert result.version == 10


def test_update_only_when_the_ring_changed_and_linear_mode():
    ring = filled_ring()
    model = WaterfallModel(ring)
    assert model.update() and not model.update()
    ring.write(np.full(32, 5.0, np.float32))
    assert model.update()
    model.set_log_scale(False)
    assert model.update()
    assert model.latest().image[0, 0] == 5.0 and not model.latest().log


def test_empty_ring_gives_nothing_and_non_positive_values_are_floored():
    assert WaterfallModel(SpectrumRing(4, 4)).update() is False
    image = to_log_image(np.array([[0.0, -1.0, 10.0, 100.0]], np.float32))
    assert np.isfinite(image).all()
    np.testing.assert_allclose(image, [[1.0, 1.0, 1.0, 2.0]], rtol=1e-6)
    assert robust_levels(np.zeros((3, 3), np.float32)) == (0.0, 1.0)


def test_worker_thread_follows_the_ring():
    ring = filled_ring()
    model = WaterfallModel(ring)
    model.start(rate_hz=50)
    try:
        wait_until(lambda: model.latest() is not None and model.latest().version == 10, message="first")
        ring.write(np.ones(32, np.float32))
        wait_until(lambda: model.latest().version == 11, message="second")
    finally:
        model.stop()
    assert not model.running and model.errors == 0
