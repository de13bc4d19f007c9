"""The display worker's processing: deferred pixel-wise corrections are exact."""
import numpy as np
import pytest

from pystream.display import DisplayWorker, PixelwiseDeferred, to_display
from pystream.flow import Counters, LatestFrameSlot
from pystream.imaging import ImageCorrections
from pystream.pipeline.processors import DarkSubtract, FlatField

from .session_helpers import wait_for

RNG = np.random.default_rng(3)
FLAT = RNG.uniform(0.5, 2.0, (40, 60)).astype(np.float32)
FLAT[3, 4] = 0  # a dead pixel: masked, never inf
DARK = RNG.uniform(0, 0.3, (40, 60)).astype(np.float32)

KEYS = [np.s_[...], np.s_[::3, ::2], np.s_[5:17, 20:33], (7, 9), np.s_[3, 4],
        (np.array([1, 5, 39]), np.array([0, 59, 30]))]


@pytest.mark.parametrize("rgb", [False, True])
@pytest.mark.parametrize("key", KEYS)
def test_correct_part_equals_the_full_correction_at_key(key, rgb):
    shape = (40, 60, 3) if rgb else (40, 60)
    raw = RNG.integers(0, 4000, shape).astype(np.uint16)
    for corrector in (FlatField(flat=FLAT, dark=DARK), FlatField(flat=FLAT), DarkSubtract(dark=DARK)):
        full = corrector.apply(raw)
        np.testing.assert_allclose(corrector.correct_part(raw[key], key), full[key], rtol=1e-6)


class Idle:
    active = False

    def __call__(self, arr, meta):
        raise AssertionError("an idle step is not called while corrections are deferred")


class Doubler:
    active = True

    def __call__(self, arr, meta):
        assert isinstance(arr, np.ndarray)
        return arr * 2, meta


def worker_with(*processors):
    return DisplayWorker(LatestFrameSlot(), Counters(), lambda d: None, processors=list(processors))


def corrections_with_flat():
    corrections = ImageCorrections()
    corrections.set_reference("flat", FLAT)
    corrections.set_reference("dark", DARK)
    corrections.set_applied("flat", True)
    corrections.set_applied("dark", True)
    return corrections


def test_flat_before_an_idle_pipeline_is_deferred_and_exact():
    raw = RNG.integers(0, 4000, (40, 60)).astype(np.uint16)
    expected = FlatField(flat=FLAT, dark=DARK).apply(raw)
    arr, meta = worker_with(corrections_with_flat(), Idle()).run_processors(raw, {}, 1)
    assert isinstance(arr, PixelwiseDeferred)
    assert meta["corrections"] == "flat+dark" and meta["flat_masked_pixels"] == 1
    assert meta["raw_frame"] is raw
    np.testing.assert_allclose(to_display(arr, 2), expected[::2, ::2], rtol=1e-6)
    np.testing.assert_allclose(arr[10:20, 5:9], expected[10:20, 5:9], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(arr), expected, rtol=1e-6)
    assert arr.shape == raw.shape and arr.dtype == np.float32


def test_an_active_step_after_the_flat_gets_the_whole_corrected_frame():
    raw = RNG.integers(0, 4000, (40, 60)).astype(np.uint16)
    expected = FlatField(flat=FLAT, dark=DARK).apply(raw) * 2
    arr, meta = worker_with(corrections_with_flat(), Doubler()).run_processors(raw, {}, 1)
    assert isinstance(arr, np.ndarray)
    np.testing.assert_allclose(arr, expected, rtol=1e-6)


def test_a_failing_step_is_bypassed_and_counted():
    def broken(arr, meta):
        raise RuntimeError("boom")

    worker = worker_with(broken, Doubler())
    raw = np.ones((4, 4), np.uint16)
    arr, _ = worker.run_processors(raw, {}, 1)
    np.testing.assert_array_equal(arr, raw * 2)
    assert worker.counters.get("process_errors") == 1
    assert "boom" in worker.counters.snapshot()["last_error"]


def test_max_fps_paces_deliveries_on_a_timetable():
    import threading
    import time

    from pystream.frame import Frame

    slot = LatestFrameSlot()
    times = []
    done = threading.Event()

    def deliver(display):
        times.append(time.monotonic())
        worker.consumed()
        if len(times) >= 16:
            done.set()

    worker = DisplayWorker(slot, Counters(), deliver, max_fps=50)
    feeding = threading.Event()

    def feed():
        uid = 0
        while not feeding.is_set():
            uid += 1
            slot.put(Frame.from_array(np.zeros((8, 8), np.uint16), uid=uid, source="t"))
            time.sleep(0.002)  # 500 Hz offered

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    worker.start()
    try:
        assert done.wait(10)
    finally:
        feeding.set()
        worker.stop()
        worker.join(2)
    # capped at 50/s, not the 500/s offered: delivery k never comes before
    # its slot (one period of slack for the first prepare); a stall of the
    # shared machine can only make them later, so this never flakes
    for k, t in enumerate(times):
        assert t - times[0] >= (k - 1) / 50, (k, t - times[0])


def test_a_frame_taken_as_pause_is_pressed_is_not_decoded():
    """The worker waits in ``slot.take`` when pause comes: the frame it gets
    then must wait for resume, undecoded."""
    import threading

    from pystream.frame import Frame

    slot, counters, shown = LatestFrameSlot(), Counters(), []
    delivered = threading.Event()

    def deliver(display):
        shown.append(display.uid)
        worker.consumed()
        delivered.set()

    worker = DisplayWorker(slot, counters, deliver)
    worker.start()
    try:
        worker.pause()  # the idle worker is inside slot.take(timeout=0.1)
        slot.put(Frame.from_array(np.zeros((8, 8), np.uint16), uid=1, source="t"))
        assert not delivered.wait(0.5)
        assert counters.get("decoded") == 0 and shown == []
        worker.resume()
        assert delivered.wait(10)
        assert shown == [1] and counters.get("decoded") == 1
    finally:
        worker.stop()
        worker.join(2)


def test_levels_ignore_nan_and_never_collapse():
    from pystream.display import compute_levels
    img = np.array([[np.nan, 1.0], [3.0, np.nan]], np.float32)
    assert compute_levels(img) == (1.0, 3.0)
    assert compute_levels(np.full((2, 2), 7, np.uint16)) == (7.0, 8.0)
    assert compute_levels(np.full((2, 2), np.nan, np.float32)) == (0.0, 1.0)


def test_auto_levels_hold_still_for_small_changes_and_follow_big_ones():
    worker = worker_with()
    assert worker._steady((0.0, 1000.0)) == (0.0, 1000.0)
    assert worker._steady((5.0, 995.0)) == (0.0, 1000.0)  # 0.5 %: no LUT rebuild
    assert worker._steady((0.0, 1200.0)) == (0.0, 1200.0)  # 20 %: follows


def test_analyses_run_after_the_frame_is_handed_over_and_fill_it():
    import threading

    from pystream.frame import Frame

    slot = LatestFrameSlot()
    handed = []
    release = threading.Event()  # analyses wait until the "GUI" has the frame

    def deliver(display):
        handed.append((display, dict(display.analysis)))  # what the GUI saw at hand-over
        release.set()

    def roi_sum(arr, meta):
        assert release.wait(5)  # would dead-lock if analyses ran before deliver
        return float(np.asarray(arr)[1:3, 2:5].sum())

    def broken(arr, meta):
        raise RuntimeError("bad geometry")

    asked = []

    def schedule():
        asked.append(True)
        return len(asked) == 1  # levels applied on the first frame only

    worker = DisplayWorker(slot, Counters(), deliver, analyses={"roi_sum": roi_sum, "broken": broken})
    worker.auto_levels_schedule = schedule
    image = np.arange(48, dtype=np.uint16).reshape(6, 8)
    worker.start()
    try:
        slot.put(Frame.from_array(image, uid=1, source="t"))
        assert wait_for(lambda: handed and "broken" in handed[0][0].analysis)
        display = handed[0][0]
        assert handed[0][1] == {}  # nothing measured yet when the frame was handed over
        assert display.analysis["roi_sum"] == float(image[1:3, 2:5].sum())
        assert isinstance(display.analysis["broken"], RuntimeError)
        assert display.auto_levels is True
        worker.consumed()
        slot.put(Frame.from_array(image, uid=2, source="t"))
        assert wait_for(lambda: len(handed) == 2)
        assert handed[1][0].auto_levels is False and len(asked) == 2
    finally:
        worker.stop()
        worker.join(2)


def test_an_error_leaves_last_error_once_its_cause_is_gone():
    from pystream.frame import Frame, FrameRejected

    class Flaky:
        active = True
        fail = True

        def __call__(self, arr, meta):
            if Flaky.fail:
                raise RuntimeError("reference shape (512, 512)")
            return arr, meta

    counters = Counters()
    worker = DisplayWorker(LatestFrameSlot(), counters, lambda d: None, processors=[Flaky()])
    good = Frame.from_array(np.zeros((4, 4), np.uint16), uid=1, source="t")
    assert worker.prepare(good) is not None
    assert "reference shape" in counters.snapshot()["last_error"]
    Flaky.fail = False
    worker.prepare(good)
    assert counters.snapshot()["last_error"] == "" and counters.get("process_errors") == 1

    def broken(payload):
        raise FrameRejected("size_mismatch", "1000 bytes for 16 pixels")

    assert worker.prepare(Frame(b"x", uid=2, source="t", decode=broken)) is None
    assert counters.snapshot()["last_error"].startswith("size_mismatch")
    worker.prepare(good)
    snap = counters.snapshot()
    assert snap["last_error"] == "" and snap["rejected"] == 1  # the count stays


def test_a_connection_error_clears_when_the_connection_is_back():
    from pystream.flow import FrameRouter
    counters = Counters()
    router = FrameRouter(counters)
    router.on_state("disconnected", "server went away")
    assert counters.snapshot()["last_error"] == "server went away"
    router.on_state("connected")
    assert counters.snapshot()["last_error"] == ""
