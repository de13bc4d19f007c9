import numpy as np
import pytest

from pystream.flow import Counters
from pystream.spectra import SpectrumReceiver
from pystream.spectra.ring import SpectrumRing
from pystream.spectra.waterfall import WaterfallModel

from .conftest import prime, wait_until

pytestmark = pytest.mark.gui

from pystream.gui.spectrum_panel import SpectrumPanel  # noqa: E402


def grab_pixels(widget):
    image = widget.grab().toImage().convertToFormat(4)  # QImage.Format_RGB32
    width, height = image.width(), image.height()
    buffer = image.constBits()
    buffer.setsize(image.byteCount())
    return np.frombuffer(buffer, np.uint8).reshape(height, image.bytesPerLine() // 4, 4)[:, :width, :3].copy()


def make_ring():
    ring = SpectrumRing(100, 64)
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 64, dtype=np.float32)
    for i in range(60):
        ring.write(((1 + 10 * np.exp(-((x - 0.01 * i) / 0.05) ** 2)) * (1 + 0.1 * rng.random(64)))
                   .astype(np.float32), times=1000.0 + 0.25 * i)
    return ring


def test_panel_paints_the_model_and_counts_real_paints(qtbot):
    counters = Counters()
    ring = SpectrumRing(100, 64)
    model = WaterfallModel(ring, freq_range=(14.36, 87.83))
    panel = SpectrumPanel(model, counters=counters, fps=30)
    qtbot.addWidget(panel)
    panel.resize(600, 500)
    panel.show()
    qtbot.waitExposed(panel)
    empty = grab_pixels(panel.plots)
    assert counters.get("displayed") == 0  # nothing to show: nothing counted

    for i, row in enumerate(make_ring().latest()):
        ring.write(row, times=1000.0 + 0.25 * i)
    qtbot.waitUntil(lambda: counters.get("displayed") >= 1, timeout=30000)
    shown = grab_pixels(panel.plots)
    assert panel.image_item.image.shape == (60, 64)
    assert not np.array_equal(empty, shown)
    # the waterfall area (lower half) has many distinct colours, not a flat fill
    lower = shown[shown.shape[0] // 2:, :, :]
    assert len(np.unique(lower.reshape(-1, 3), axis=0)) > 20
    # x axis is frequency, the image spans 14.36..87.83 MHz and 14.75 s of rows
    rect = panel.image_item.mapRectToParent(panel.image_item.boundingRect())
    assert rect.left() < 14.36 < rect.left() + 1.5 and rect.height() == pytest.approx(14.75)

    painted = counters.get("displayed")
    ring.write(np.full(64, 50.0, np.float32), times=1100.0)
    qtbot.waitUntil(lambda: counters.get("displayed") > painted, timeout=30000)
    panel.stop()
    assert not model.running


def test_log_toggle_switches_the_spectrum_axis(qtbot):
    panel = SpectrumPanel(WaterfallModel(make_ring()), counters=Counters())
    qtbot.addWidget(panel)
    assert panel.spectrum_plot.ctrl.logYCheck.isChecked()
    panel.log_check.setChecked(False)
    assert not panel.spectrum_plot.ctrl.logYCheck.isChecked()
    panel.stop()


def test_panel_on_a_live_receiver(qtbot, publisher):
    receiver = SpectrumReceiver(endpoint=publisher.endpoint, buffer_length=200, plot_interval=0)
    receiver.start()
    try:
        panel = SpectrumPanel(receiver, fps=30)
        qtbot.addWidget(panel)
        panel.show()
        qtbot.waitExposed(panel)
        wait_until(lambda: receiver.state == "connected", message="connected")
        prime(publisher, lambda: receiver.ring.total)
        for _ in range(20):
            publisher.publish(np.abs(np.random.default_rng().standard_normal((1, 3072, 4))).astype(np.float32) + 0.1)
        qtbot.waitUntil(lambda: receiver.counters.get("displayed") >= 1, timeout=30000)
        qtbot.waitUntil(lambda: "connected" in panel.status_label.text(), timeout=30000)
        assert panel.image_item.image.shape[1] == 768
        snap = receiver.counters.snapshot()
        assert snap["latency_ms_p50"] is not None  # paints carry the producer's timestamp
        panel.stop()
    finally:
        receiver.stop()
