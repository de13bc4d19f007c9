import os
import re

import numpy as np
import pytest
from PIL import Image

from pystream.spectra import SpectrumReceiver
from pystream.spectra.plots import PeriodicPlotter, plot_filename, render_spectrum_png

from .conftest import prime, wait_until

NAME = re.compile(r"spectrum_\d{8}_\d{6}(_\d+)?\.png")


def rows(n=40, width=96):
    rng = np.random.default_rng(0)
    out = rng.random((n, width), dtype=np.float32) + 1.0
    out[:, 10] = 0.0  # a dead channel must not break the log scales
    return out


def test_render_is_1800x1500_png_with_content(tmp_path):
    path = render_spectrum_png(str(tmp_path / "a.png"), rows(), times=np.arange(40.0) * 0.25,
                               freqs=np.linspace(14.36, 87.83, 96), freq_label="MHz", delay_s=0.3)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (1800, 1500)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10  # not a blank page
    assert not os.path.exists(path + ".part")


def test_render_single_row_and_refuses_empty(tmp_path):
    render_spectrum_png(str(tmp_path / "one.png"), rows(1))
    with pytest.raises(ValueError):
        render_spectrum_png(str(tmp_path / "none.png"), np.zeros((0, 8)))


def test_plot_filename_pattern_and_no_overwrite(tmp_path):
    first = plot_filename(str(tmp_path), when=1755552894.0)
    assert NAME.fullmatch(os.path.basename(first))
    open(first, "w").close()
    second = plot_filename(str(tmp_path), when=1755552894.0)
    assert second != first and NAME.fullmatch(os.path.basename(second))


def test_receiver_writes_plots_at_the_interval_into_a_new_dir(publisher, tmp_path):
    plot_dir = tmp_path / "figs" / "nested"
    receiver = SpectrumReceiver(endpoint=publisher.endpoint, buffer_length=30,
                                plot_interval=0.3, plot_dir=str(plot_dir))
    receiver.start()
    try:
        assert plot_dir.is_dir()  # created at start
        wait_until(lambda: receiver.state == "connected", message="connected")
        prime(publisher, lambda: receiver.ring.total)
        wait_until(lambda: receiver.plotter.plots_written >= 2, timeout=15, message="two plots")
        status = receiver.get_buffer_status()
        assert status["plot_running"] is True and status["last_plot_time"] > 0
    finally:
        receiver.stop()
    assert receiver.get_buffer_status()["plot_running"] is False
    files = sorted(p for p in os.listdir(plot_dir))
    assert len(files) >= 2 and all(NAME.fullmatch(f) for f in files)
    with Image.open(plot_dir / files[0]) as image:
        assert image.size == (1800, 1500)
    assert receiver.counters.snapshot()["plots_written"] == receiver.plotter.plots_written


def test_no_data_means_no_plot_and_zero_interval_means_no_thread(tmp_path):
    receiver = SpectrumReceiver(endpoint="tcp://127.0.0.1:1", plot_interval=0, plot_dir=str(tmp_path / "x"))
    assert receiver.plot_now() is None
    assert not (tmp_path / "x").exists()
    receiver.start()
    try:
        assert receiver.get_buffer_status()["plot_running"] is False
    finally:
        receiver.stop()


def test_plot_errors_are_counted_and_the_loop_carries_on(tmp_path):
    calls = []

    def broken_render(path, **kwargs):
        calls.append(path)
        raise RuntimeError("disk on fire")

    errors = []
    plotter = PeriodicPlotter(lambda: {"rows": rows(2)}, 0.05, str(tmp_path),
                              render=broken_render, on_error=errors.append)
    plotter.start()
    try:
        wait_until(lambda: plotter.errors >= 3, message="three failures")
        assert plotter.running
    finally:
        plotter.stop()
    assert plotter.plots_written == 0
    assert "disk on fire" in plotter.last_error and "disk on fire" in errors[0]
    assert len(calls) >= 3


def test_unwritable_plot_dir_is_an_error_not_a_crash(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    plotter = PeriodicPlotter(lambda: {"rows": rows(2)}, 0.05, str(blocker / "sub"))
    plotter.start()
    try:
        wait_until(lambda: plotter.errors >= 2, message="errors")
    finally:
        plotter.stop()
    assert plotter.plots_written == 0
