"""--stats-json: the final numbers are the last ones written."""
import json
import threading

from pystream.statsfile import StatsFileWriter


def test_a_periodic_write_in_flight_never_lands_after_the_final_one(tmp_path):
    path = tmp_path / "stats.json"
    entered, gate = threading.Event(), threading.Event()
    state = {"phase": "running"}

    def snapshot():
        if threading.current_thread() is writer and not entered.is_set():
            entered.set()  # the periodic write has taken its (soon stale) numbers...
            gate.wait(30)  # ... and is slow to write them
            return {"phase": "stale"}
        return dict(state)

    writer = StatsFileWriter(str(path), snapshot, interval=0.01)
    writer.start()
    assert entered.wait(30)
    state["phase"] = "final"
    stopper = threading.Thread(target=writer.stop)
    stopper.start()
    stopper.join(0.5)
    # the final write waits for the one in flight (nothing written yet)
    assert stopper.is_alive() and not path.exists()
    gate.set()
    stopper.join(30)
    assert not stopper.is_alive() and not writer.is_alive()
    assert json.loads(path.read_text())["phase"] == "final"


def test_an_unwritable_path_is_reported_once_and_never_raises(tmp_path, caplog):
    writer = StatsFileWriter(str(tmp_path / "no" / "such" / "dir" / "s.json"), lambda: {"a": 1})
    writer.write_now()
    writer.write_now()
    assert caplog.text.count("cannot write stats") == 1
