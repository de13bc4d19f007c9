"""The image tools without a window: a script measures the stream through the model."""
import numpy as np

import pystream
from pystream.imaging import roi_stats
from pystream.imaging.tools import ImageToolsModel, Measured

from .session_helpers import ListSource


def ramp(i):
    return (np.arange(40 * 60, dtype=np.uint16).reshape(40, 60) + 1000 * i).astype(np.uint16)


def test_a_script_measures_roi_crosshair_and_line_in_the_worker():
    tools = ImageToolsModel()
    tools.roi_rect = (10, 5, 20, 8)
    tools.crosshair_pixel = (7, 3)
    tools.line_points = ((0.5, 20.5), (59.5, 20.5))
    measured = {}
    with pystream.Session() as session:
        tools.attach(session)
        session.connect(ListSource([ramp(i) for i in range(20)], rate=200))
        shown = list(session.frames(timeout=30))
    # the worker measures a frame while it is shown and is done before it takes the next
    for display in shown:
        for name in ("roi_stats", "crosshair", "line_profile"):
            result = tools.result(display, name)
            if result is not None:
                measured[name] = (display, result)
    assert set(measured) == {"roi_stats", "crosshair", "line_profile"}
    display, roi = measured["roi_stats"]
    assert isinstance(roi, Measured) and roi.uid == display.uid
    expected = roi_stats(ramp(display.uid - 1), (10, 5, 20, 8))
    assert roi.value.mean == expected.mean and roi.value.max == expected.max
    display, cross = measured["crosshair"]
    assert cross.value[0].value == ramp(display.uid - 1)[3, 7]
    display, line = measured["line_profile"]
    np.testing.assert_array_equal(line.value.values[[0, -1]], ramp(display.uid - 1)[20, [0, 59]])


def test_measure_a_single_frame_and_switch_measurements_off():
    tools = ImageToolsModel()
    frame = ramp(0)
    assert tools.measure(frame).keys() == {"image_info"}
    tools.roi_rect = (0, 0, 2, 2)
    result = tools.measure(frame, uid=7)
    assert result["roi_stats"].uid == 7 and result["roi_stats"].value.sum == 0 + 1 + 60 + 61
    with pystream.Session() as session:
        tools.attach(session, measurements=("roi_stats",))
        assert set(session.analyses) == {"roi_stats"} and session.processors[0] is tools.corrections
        tools.disable("roi_stats")
        tools.enable("crosshair")
        assert set(session.analyses) == {"crosshair"}
        tools.detach()
        assert session.analyses == {} and session.processors == []
        assert session.display.auto_levels_schedule is None
