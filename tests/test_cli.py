"""The `pystream` command as a user runs it: a real process, offscreen."""
import json
import os
import re
import subprocess
import sys

import pytest

from pystream.cli import build_viewer_parser


def user_env(home):
    """The environment of a user whose home is ``home``, with no display."""
    return dict(os.environ, HOME=str(home), QT_QPA_PLATFORM="offscreen")


def run_pystream(args, home, timeout=90, env_extra=None, drop=()):
    env = user_env(home)
    env.update(env_extra or {})
    for key in drop:
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "pystream.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_until(args, home, stats, condition, timeout=60, env_changes=None):
    """Run ``pystream ARGS --stats-json STATS`` until ``condition(stats)`` holds
    (polling the file, written every second), then stop it as a user would
    (SIGTERM). Returns (exit code, stderr, final stats). A loaded machine only
    makes it take longer; a fixed --exit-after would make it fail.
    ``env_changes``: variables to set (a value of None removes one)."""
    import signal
    import time
    env = user_env(home)
    for name, value in (env_changes or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    proc = subprocess.Popen([sys.executable, "-m", "pystream.cli", *args, "--stats-json", str(stats),
                             "--exit-after", str(timeout + 30)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if condition(json.loads(stats.read_text())):
                    break
            except (OSError, ValueError, KeyError):
                pass  # not written yet
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return proc.returncode, err, json.loads(stats.read_text())


def test_help_explains_every_option():
    text = build_viewer_parser().format_help()
    for option in ("--pv", "--pva-queue", "--pva-lossless", "--max-fps", "--display-bin", "--log-level", "--log-file",
                   "--offscreen", "--stats-json", "--exit-after", "pystream demo", "pystream sim pva"):
        assert option in text


def test_pva_lossless_takes_every_update_with_nothing_recording(home, pv_name):
    stats = home / "stats.json"
    code, err, data = run_until(["demo", "--offscreen", "--size", "64x64", "--pv", pv_name,
                                 "--pva-lossless"], home, stats, lambda d: d["displayed"] > 5)
    assert code == 0, err
    assert data["receive_mode"] == "lossless" and data["skipped_upstream"] == 0


def test_demo_shows_frames_and_writes_stats(home, pv_name):
    stats = home / "stats.json"
    code, err, data = run_until(["demo", "--offscreen", "--size", "256x256", "--pv", pv_name], home,
                                stats, lambda d: d["displayed"] > 10)
    assert code == 0, err
    assert data["source"] == f"pva://{pv_name}"  # --pv names the simulated detector
    assert "never connected" not in err
    assert data["state"] == "stopped"  # the final numbers are written after the source stops
    assert data["receive_mode"] == "paced"  # nothing records: received as fast as shown
    assert data["displayed"] > 10 and data["received"] >= data["displayed"]
    assert data["rejected"] == 0
    assert data["latency_ms_p50"] is not None
    for key in ("dropped_upstream", "skipped", "decoded", "recv_fps", "display_fps",
                "latency_ms_p95", "rejected_by_reason"):
        assert key in data
    # the demo's throwaway PV is not remembered
    settings = home / ".pystream" / "viewer_config.json"
    assert not settings.exists() or "demo" not in json.loads(settings.read_text())["last_pv"]


def test_last_pv_is_remembered_and_explicit_pv_wins(home, pv_name):
    stats = home / "s.json"
    pv_a, pv_b = pv_name + "A", pv_name + "B"  # served by nobody
    proc = run_pystream(["--pv", pv_a, "--exit-after", "1", "--stats-json", str(stats)], home)
    assert proc.returncode == 0
    # no server: said once, at exit, with where to look
    assert proc.stderr.count(f"pva://{pv_a} never connected") == 1
    assert "EPICS_PVA_ADDR_LIST" in proc.stderr
    settings = json.loads((home / ".pystream" / "viewer_config.json").read_text())
    assert settings["last_pv"] == pv_a
    # no --pv: auto-connects to the saved one
    assert run_pystream(["--exit-after", "1", "--stats-json", str(stats)], home).returncode == 0
    final = json.loads(stats.read_text())
    assert final["source"] == f"pva://{pv_a}"
    assert final["monitor_restarts"] == 0  # the source's own counters are in the stats too
    # --pv wins over the saved one, and becomes the saved one
    assert run_pystream(["--pv", pv_b, "--exit-after", "1", "--stats-json", str(stats)],
                        home).returncode == 0
    assert json.loads(stats.read_text())["source"] == f"pva://{pv_b}"
    assert json.loads((home / ".pystream" / "viewer_config.json").read_text())["last_pv"] == pv_b


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
    proc = run_pystream(["sim", "pva", "--color-mode", "purple", "--frames", "1"], home)
    assert proc.returncode == 2 and "unknown color mode 'purple'; choose from mono," in proc.stderr
    assert "publishing" not in proc.stderr  # refused before it starts
    proc = run_pystream(["sim", "pva", "--codec", "lz5", "--frames", "1"], home)
    assert proc.returncode == 2 and "unknown codec 'lz5'; choose from none, lz4" in proc.stderr


@pytest.mark.parametrize("bad", [["--max-fps", "-1"], ["--display-bin", "x"], ["--log-level", "LOUD"],
                                 ["--pva-queue", "0"], ["--exit-after", "0"], ["--freq-avg", "0"],
                                 ["--buffer-length", "0"], ["--port", "99999"],
                                 ["--colormap", "bogus"],
                                 ["record", "--pv", "x", "--out", "o", "--frames", "-1"],
                                 ["record", "--pv", "x", "--out", "o", "--seconds", "0"],
                                 ["sim", "pva", "--frames", "0"], ["sim", "zmq", "--count", "0"]])
def test_bad_viewer_options_are_usage_errors(bad, home):
    proc = run_pystream(bad, home)
    assert proc.returncode == 2 and "usage: pystream" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_colormap_names_are_matched_whatever_the_case():
    assert build_viewer_parser().parse_args(["--colormap", "Viridis"]).colormap == "viridis"
    assert build_viewer_parser().parse_args(["--colormap", "cet-l3"]).colormap == "CET-L3"


def test_an_unwritable_log_file_is_a_clear_error(home):
    proc = run_pystream(["--log-file", str(home / "missing" / "x.log"), "--exit-after", "1"], home)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"cannot open the log file {home / 'missing' / 'x.log'}: No such file or directory" in proc.stderr


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_process(args, home):
    env = dict(os.environ, HOME=str(home))
    return subprocess.Popen([sys.executable, "-m", "pystream.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_headless_record_from_a_simulated_ioc(home, pv_name):
    import h5py
    import numpy as np
    sim = start_process(["sim", "pva", "--pv", pv_name, "--size", "64x32", "--rate", "100",
                         "--log-level", "WARNING"], home)
    try:
        out = home / "rec"
        proc = run_pystream(["record", "--pv", pv_name, "--out", str(out), "--format", "hdf5",
                             "--frames", "40"], home)
        assert proc.returncode == 0, proc.stderr
        assert "recorded 40 frames" in proc.stderr and "drops 0" in proc.stderr
        files = list(out.glob("*.h5"))
        assert len(files) == 1
        with h5py.File(files[0], "r") as f:
            data, uids = f["/entry/data/data"], f["/entry/data/uid"][:]
            assert data.shape == (40, 32, 64) and data.dtype == np.uint16
            # every frame received is in the file, in order; a frame the server
            # replaced before sending (a loaded machine) is a counted upstream loss
            steps = np.diff(uids)
            assert (steps >= 1).all()
            lost = int(re.search(r"lost upstream (\d+)", proc.stderr).group(1))
            assert int((steps - 1).sum()) == lost
    finally:
        sim.kill()
        sim.wait(10)


def test_viewer_shows_a_zmq_spectrum_stream(home):
    port = free_port()
    sim = start_process(["sim", "zmq", "--port", str(port), "--rate", "200", "--log-level",
                         "WARNING"], home)
    try:
        stats = home / "z.json"
        code, err, data = run_until(["--zmq", f"tcp://127.0.0.1:{port}", "--pol", "I"], home, stats,
                                    lambda d: d["spectra"]["received"] > 100
                                    and d["spectra"]["displayed"] > 10)
        assert code == 0, err
        spectra = data["spectra"]
        assert spectra["received"] > 100 and spectra["displayed"] > 10
        assert spectra["rejected"] == 0 and spectra["ring_rows"] > 100
        assert data["received"] == spectra["received"]  # the only stream: top-level counters
        # measured (now - header timestamp, both in seconds): a unit mix-up would be huge
        assert spectra["delay_s"] is not None and 0 <= spectra["delay_s"] < 30
    finally:
        sim.kill()
        sim.wait(10)


def test_viewer_records_every_frame_from_launch(home):
    import tifffile
    out = home / "rec"
    stats = home / "s.json"
    code, err, data = run_until(["demo", "--offscreen", "--size", "64x64", "--rate", "50", "--record",
                                 "--record-dir", str(out), "--record-format", "tiff-stack"], home,
                                stats, lambda d: d["recorded"] > 50)
    assert code == 0, err
    stacks = list(out.glob("*.tiff"))
    assert len(stacks) == 1
    frames = tifffile.imread(stacks[0])
    assert data["recorded"] == len(frames) > 50
    assert data["record_drops"] == 0
    # every received frame, not only the displayed ones
    assert data["recorded"] == data["received"]


def test_recording_that_gets_no_frame_fails_with_the_reason(home, pv_name):
    """A script must not take an empty recording for a good one."""
    proc = run_pystream(["record", "--pv", pv_name, "--out", str(home / "rec"), "--seconds", "1.5"], home)
    assert proc.returncode == 1
    assert f"no frame arrived from pva://{pv_name}" in proc.stderr and "EPICS_PVA_ADDR_LIST" in proc.stderr
    assert "(connecting)" in proc.stderr  # the progress line said why nothing came


def test_record_at_launch_that_cannot_start_ends_the_viewer(home, pv_name):
    blocker = home / "a-file"
    blocker.write_text("x")
    proc = run_pystream(["--pv", pv_name, "--record", "--record-dir", str(blocker),
                         "--exit-after", "30"], home)
    assert proc.returncode == 1
    assert f"Cannot record: not a directory: {blocker}" in proc.stderr


def test_bad_option_values_are_usage_errors_not_crashes(home):
    for bad in (["--record-buffer", "lots"], ["--freq-range", "a,b"]):
        proc = run_pystream(bad, home)
        assert proc.returncode == 2 and "usage: pystream" in proc.stderr, bad


def test_an_image_only_viewer_loads_no_zmq_no_libcrypto_no_editor(home):
    """Memory is a target (peak RSS at 2048²): pyzmq with its asyncio and ssl
    imports, hashlib's libcrypto and QScintilla (until an editor opens) cost
    about 13 MB that a PVA viewer never uses. The real viewer, with its
    default panels and pipeline."""
    code = ("import atexit, runpy, sys\n"
            "atexit.register(lambda: print('LOADED', sorted(m for m in ('zmq', 'asyncio', 'ssl', '_hashlib',"
            " 'PyQt5.Qsci')"
            " if m in sys.modules)))\n"
            "sys.argv = ['pystream', '--offscreen', '--exit-after', '1', '--pv', 'pystream:test:nobody']\n"
            "runpy.run_module('pystream.cli', run_name='__main__')\n")
    env = user_env(home)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=90)
    assert "LOADED []" in out.stdout, out.stdout + out.stderr


def test_version(home):
    from importlib.metadata import version
    result = run_pystream(["--version"], home, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"pystream {version('pystream')}"


def test_a_missing_proc_config_is_a_usage_error(home):
    missing = home / "nowhere" / "pipeline.json"
    result = run_pystream(["--offscreen", "--exit-after", "60", "--proc-config", str(missing)], home)
    assert result.returncode == 2, result.stderr
    assert f"--proc-config: pipeline config not found: {missing}" in result.stderr
    result = run_pystream(["demo", "--proc-config", "no_such.json"], home)
    assert result.returncode == 2 and "'no_such.json' not found; tried:" in result.stderr


def test_stream_receivers_flags_are_accepted(caplog):
    from pystream.cli import apply_receiver_flags
    parser = build_viewer_parser()
    args = parser.parse_args(["--start-webshow", "--gc-interval", "100", "--zmq", "tcp://127.0.0.1:1"])
    with caplog.at_level("INFO", logger="pystream"):
        apply_receiver_flags(args)
    assert "--gc-interval is not needed" in caplog.text
    assert args.web  # --start-webshow turned the web view on
