"""Snapshots from the real window: oriented, coloured and levelled as the screen shows the frame."""
import numpy as np
import pytest
from PIL import Image

from pystream.cli import build_viewer_parser
from pystream.gui.assemble import build_window
from pystream.gui.app import make_app
from pystream.imaging import Orientation
from pystream.sources.pva import PvaSource

pytestmark = [pytest.mark.gui, pytest.mark.pva]


def test_a_snapshot_follows_the_windows_orientation_colormap_and_levels(qtbot, publisher, home):
    make_app()
    args = build_viewer_parser().parse_args(["--snapshot-interval", "0.05",
                                             "--snapshot-dir", str(home / "snaps"), "--no-plugins"])
    window = build_window(args, colormap="viridis")
    qtbot.addWidget(window)
    window.show()
    window.image_tools.set_orientation(Orientation(quarter_turns=1))
    image = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
    publisher.publish(image)
    window.connect_source(PvaSource(publisher.pv_name))
    try:
        qtbot.waitUntil(lambda: window.snapshots.written >= 1, timeout=20000)
        assert window.stats()["snapshots_written"] >= 1
    finally:
        window.disconnect_source()
        window.snapshots.stop()
    picture = np.asarray(Image.open(window.snapshots.last_path).convert("RGB"))
    assert picture.shape == (30, 20, 3)  # turned a quarter, as on screen
    lut = window.image_view.histogram.item.gradient.getLookupTable(256, alpha=False)
    lo, hi = window.image_view.levels()
    # the darkest pixel (0, 0) turns to the top right; viridis's first colour
    np.testing.assert_array_equal(picture[0, -1], lut[0][:3])
    # auto levels (the 0.1-99.9 percentiles by default) span the frame
    assert lo <= np.percentile(image, 0.2) and hi >= np.percentile(image, 99.8) * 0.9
