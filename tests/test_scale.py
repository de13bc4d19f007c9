"""``pystream scale``: what it starts, and that it leaves nothing behind."""
import os
import re
import signal
import sys

import pytest

from pystream.scale import ScalePlan

from .scale_helpers import start_scale, wait_until

pytestmark = pytest.mark.pva


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def started_pids(text: str) -> dict:
    return {name: int(pid) for name, pid in re.findall(r"started (\w+ ?\d*): pid (\d+)", text)}


def test_the_consumer_command_line_splits_round_robin_and_reports_every_second():
    plan = ScalePlan(input="IN", output="OUT", proc_config=None, consumers=2, total_consumers=4,
                     distributor_updates=3)
    argv = plan.consumer_command(2)
    opts = dict(zip(argv[1::2], argv[2::2]))
    assert opts["--output-channel"] == "OUT:*" and opts["--consumer-id"] == "2"
    assert opts["--status-channel"] == "OUT:*:status"
    assert opts["--distributor-trigger"] == "uniqueId"  # measured: needed with pvapy 5.6.0
    assert opts["--oid-offset"] == str(3 * 3 + 1)  # pvapy's formula, over all 4 consumers
    assert opts["--skip-initial-updates"] == "0"
    collector = plan.collector_command()
    assert collector[collector.index("--producer-id-list") + 1] == "1,2,3,4"


def test_sigterm_stops_every_child_and_a_dead_child_is_reported(tmp_path, pv_name):
    log = tmp_path / "scale.log"
    # no source needed: the consumers wait for their input PV
    scale = start_scale(["--input", pv_name, "--output", pv_name + ":out", "--consumers", "2",
                         "--collector", "--log-dir", str(tmp_path / "logs")], log)
    try:
        assert wait_until(lambda: len(started_pids(log.read_text())) == 3, 60), log.read_text()
        pids = started_pids(log.read_text())
        assert set(pids) == {"consumer 1", "consumer 2", "collector"}
        assert wait_until(lambda: all(alive(pid) for pid in pids.values()), 30)
        # a child that dies is reported, with its exit status
        os.kill(pids["consumer 2"], signal.SIGKILL)
        assert wait_until(lambda: "consumer 2 (pid" in log.read_text(), 60), log.read_text()
        assert "exited with status -9" in log.read_text()
        assert scale.poll() is None  # the others go on
        scale.send_signal(signal.SIGTERM)
        code = scale.wait(60)
    finally:
        if scale.poll() is None:
            os.killpg(scale.pid, signal.SIGKILL)
    assert code == 1  # a child died: not a clean run
    text = log.read_text()
    assert "stopping 3 process(es) (SIGTERM)" in text
    assert wait_until(lambda: not any(alive(pid) for pid in pids.values()), 30), (
        {name: alive(pid) for name, pid in pids.items()})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_do_not_outlive_a_killed_scale_command(tmp_path, pv_name):
    """SIGKILL leaves pystream scale no time to stop them: the kernel does it."""
    log = tmp_path / "scale.log"
    scale = start_scale(["--input", pv_name, "--output", pv_name + ":out", "--consumers", "1",
                         "--collector", "--log-dir", str(tmp_path / "logs")], log)
    try:
        assert wait_until(lambda: len(started_pids(log.read_text())) == 2, 60), log.read_text()
        pids = started_pids(log.read_text())
        scale.send_signal(signal.SIGKILL)
        scale.wait(30)
        assert wait_until(lambda: not any(alive(pid) for pid in pids.values()), 30), (
            {name: alive(pid) for name, pid in pids.items()})
    finally:
        if scale.poll() is None:
            os.killpg(scale.pid, signal.SIGKILL)
