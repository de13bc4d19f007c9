"""The `pystream` command as a user runs it: a real process, offscreen."""
import json
import os
import subprocess
import sys

import pytest

from pystream.cli import build_viewer_parser


def run_pystream(args, home, timeout=90, env_extra=None, drop=()):
    env = dict(os.environ, HOME=str(home), QT_QPA_PLATFORM="offscreen")
    env.update(env_extra or {})
    for key in drop:
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "pystream.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_help_explains_every_option():
    text = build_viewer_parser().format_help()
    for option in ("--pv", "--max-fps", "--display-bin", "--log-level", "--log-file",
                   "--offscreen", "--stats-json", "--exit-after", "pystream demo", "pystream sim pva"):
        assert option in text


def test_demo_shows_frames_and_writes_stats(home):
    stats = home / "stats.json"
    proc = run_pystream(["demo", "--offscreen", "--exit-after", "5", "--stats-json", str(stats),
                         "--size", "256x256"], home)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(stats.read_text())
    assert data["state"] == "connected"
    assert data["displayed"] > 10 and data["received"] >= data["displayed"]
    assert data["rejected"] == 0
    assert data["latency_ms_p50"] is not None
    for key in ("dropped_upstream", "skipped", "decoded", "recv_fps", "display_fps",
                "latency_ms_p95", "rejected_by_reason"):
        assert key in data
    # the demo's throwaway PV is not remembered
    settings = home / ".pystream" / "viewer_config.json"
    assert not settings.exists() or "demo" not in json.loads(settings.read_text())["last_pv"]


def test_last_pv_is_remembered_and_explicit_pv_wins(home):
    stats = home / "s.json"
    assert run_pystream(["--pv", "TEST:A:Image", "--exit-after", "1", "--stats-json", str(stats)],
                        home).returncode == 0
    settings = json.loads((home / ".pystream" / "viewer_config.json").read_text())
    assert settings["last_pv"] == "TEST:A:Image"
    # no --pv: auto-connects to the saved one
    assert run_pystream(["--exit-after", "1", "--stats-json", str(stats)], home).returncode == 0
    assert json.loads(stats.read_text())["source"] == "pva://TEST:A:Image"
    # --pv wins over the saved one, and becomes the saved one
    assert run_pystream(["--pv", "TEST:B:Image", "--exit-after", "1", "--stats-json", str(stats)],
                        home).returncode == 0
    assert json.loads(stats.read_text())["source"] == "pva://TEST:B:Image"
    assert json.loads((home / ".pystream" / "viewer_config.json").read_text())["last_pv"] == "TEST:B:Image"


def test_corrupt_settings_mean_defaults_and_one_warning(home):
    cfg = home / ".pystream" / "viewer_config.json"
    cfg.parent.mkdir()
    cfg.write_text("{this is not json")
    stats = home / "s.json"
    proc = run_pystream(["--exit-after", "1", "--stats-json", str(stats)], home)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("ignoring settings file") == 1
    assert json.loads(stats.read_text())["state"] == "idle"  # no PV: nothing to watch
    assert isinstance(json.loads(cfg.read_text()), dict)  # rewritten whole (atomic write)


def test_no_display_falls_back_to_offscreen(home):
    proc = run_pystream(["--exit-after", "1"], home, drop=("QT_QPA_PLATFORM", "DISPLAY",
                                                           "WAYLAND_DISPLAY"))
    assert proc.returncode == 0, proc.stderr
    assert "no display found" in proc.stderr and "running offscreen" in proc.stderr


def test_sim_rejects_impossible_options_clearly(home):
    proc = run_pystream(["sim", "pva", "--pv", "x:y", "--codec", "jpeg", "--dtype", "uint16",
                         "--frames", "1"], home)
    assert proc.returncode == 2
    assert "jpeg codec needs --dtype uint8" in proc.stderr
    proc = run_pystream(["sim", "pva", "--size", "big"], home)
    assert proc.returncode == 2 and "WIDTHxHEIGHT" in proc.stderr


@pytest.mark.parametrize("bad", [["--max-fps", "-1"], ["--display-bin", "x"], ["--log-level", "LOUD"]])
def test_bad_viewer_options_are_usage_errors(bad, home):
    proc = run_pystream(bad, home)
    assert proc.returncode == 2 and "usage: pystream" in proc.stderr
