"""``--web`` as a user runs it: a real pystream process, offscreen, and a WebSocket client."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import aiohttp
import pytest

from pystream.cli import build_demo_parser, build_viewer_parser
from pystream.statusline import StatusLine, status_text
from pystream.web.options import parse_address

from .conftest import next_frame, run, wait_type
from .helpers import Pystream

pytestmark = [pytest.mark.pva, pytest.mark.web]


def test_web_options_parse_like_the_help_says():
    parser = build_viewer_parser()
    assert parser.parse_args([]).web is None
    assert parser.parse_args(["--web"]).web == ("127.0.0.1", 9527)
    assert parser.parse_args(["--start-webshow"]).web == ("127.0.0.1", 9527)  # seed 000's flag
    assert parser.parse_args(["--web", "8000"]).web == ("127.0.0.1", 8000)
    assert parser.parse_args(["--web", "0.0.0.0:9000"]).web == ("0.0.0.0", 9000)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    assert parse_address("myhost") == ("myhost", 9527)
    assert build_demo_parser().parse_args(["--web", "--web-token", "t"]).web_token == "t"
    for bad in ("host:port", "70000", "a:1:b"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_address(bad)
    text = parser.format_help()
    for option in ("--web", "--start-webshow", "--web-token", "--web-fps", "ssh -L"):
        assert option in text


def test_status_line_says_state_rates_drops_latency_and_clients(tmp_path):
    stats = {"state": "connected", "recv_fps": 29.84, "display_fps": 29.5, "dropped_upstream": 3,
             "skipped": 2, "latency_ms_p50": 7.2}
    text = status_text(stats, web_clients=2)
    assert text == ("connected | recv 29.8 fps | shown 29.5 fps | dropped 3 | skipped 2 | "
                    "latency 7 ms | web 2 clients")
    with open(tmp_path / "log", "w+") as stream:  # not a terminal: whole lines, not \r
        line = StatusLine(stream, log_interval=60)
        line.update(stats, 1)
        line.update(dict(stats, state="disconnected"), 1)  # within the interval: not repeated
        stream.seek(0)
        assert stream.read() == text.replace("2 clients", "1 client") + "\n"


def test_status_line_on_a_terminal_updates_in_place_and_log_records_end_it():
    import io
    import logging

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    line = StatusLine(term, interval=0)
    line.update({"state": "connecting"}, None)
    line.update({"state": "connected", "recv_fps": 3}, 1)
    record = logging.LogRecord("pystream", logging.INFO, __file__, 1, "hello", None, None)
    assert line.log_filter().filter(record) is True  # the record is still logged ...
    out = term.getvalue()
    assert out.startswith("\rconnecting | recv 0.0 fps") and "\rconnected | recv 3.0 fps" in out
    assert out.endswith("web 1 client\n")  # ... after the line was ended


def test_headless_demo_serves_the_web_view_and_a_web_stop_ends_it(home, pv_name):
    stats_path = home / "stats.json"
    app = Pystream(["demo", "--offscreen", "--size", "160x120", "--pv", pv_name, "--web",
                    "127.0.0.1:0", "--stats-json", str(stats_path), "--exit-after", "120"], home)
    try:
        assert app.url.startswith("http://127.0.0.1:") and "token" not in app.url
        app.wait_for(lambda: "ssh -L" in app.stderr, 30, "the SSH hint")
        assert "Ctrl-C stops" in app.stderr and f"ssh -L {app.port}:localhost:{app.port}" in app.stderr

        async def scenario():
            async with aiohttp.ClientSession() as http:
                async with http.get(app.url) as r:  # the page, from the package
                    assert r.status == 200 and "static/app.js" in await r.text()
                async with http.ws_connect(app.url + "ws") as ws:
                    welcome = await wait_type(ws, "welcome")
                    assert "ends this pystream run" in welcome["stop_action"]
                    meta, data = await next_frame(ws)
                    assert (meta["source_width"], meta["source_height"]) == (160, 120)
                    assert data[:2] == b"\xff\xd8"  # JPEG by default
                    stats = (await wait_type(ws, "stats"))["data"]
                    assert stats["viewer"]["source"] == f"pva://{pv_name}"
                    await ws.send_json({"type": "stop"})
                    state = await wait_type(ws, "control_state")
                    assert state["stop_requested"] is True

        run(scenario())
        assert app.wait_exit(60) == 0  # the stop ended the headless run
    finally:
        app.stop()
    final = json.loads(stats_path.read_text())
    assert final["web"]["frames_sent"] >= 1 and final["web"]["stop_requested"] is True
    assert final["web"]["clients_peak"] == 1
    # the one status line, with the web clients
    assert any(line.startswith("connected | recv") and "web" in line for line in app.lines) or \
        any("| web " in line for line in app.lines), app.stderr
    assert "stop requested from the web view" in app.stderr


def test_off_loopback_the_printed_url_carries_a_token(home, pv_name):
    app = Pystream(["demo", "--offscreen", "--size", "64x64", "--pv", pv_name, "--web", "0.0.0.0:0",
                    "--exit-after", "120"], home)
    try:
        assert "?token=" in app.url
        token = app.url.split("?token=")[1]
        local = f"http://127.0.0.1:{app.port}/"

        async def scenario():
            async with aiohttp.ClientSession() as http:
                async with http.get(local) as r:
                    assert r.status == 403
                async with http.get(f"{local}?token={token}") as r:
                    assert r.status == 200

        run(scenario())
    finally:
        app.stop()


def test_record_with_a_web_view_shows_frames_and_a_web_stop_ends_the_recording(home, pv_name):
    sim = subprocess.Popen([sys.executable, "-m", "pystream.cli", "sim", "pva", "--pv", pv_name,
                            "--size", "96x64", "--rate", "30"], env=dict(os.environ, HOME=str(home)),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = home / "rec"
    app = Pystream(["record", "--pv", pv_name, "--out", str(out), "--format", "hdf5", "--web",
                    "127.0.0.1:0", "--no-progress"], home)
    try:
        async def scenario():
            async with aiohttp.ClientSession() as http, http.ws_connect(app.url + "ws") as ws:
                welcome = await wait_type(ws, "welcome")
                assert "ends this recording" in welcome["stop_action"]
                meta, _ = await next_frame(ws)  # decoded for the browser while it watches
                assert (meta["source_width"], meta["source_height"]) == (96, 64)
                await ws.send_json({"type": "stop"})
                await wait_type(ws, "control_state", predicate=lambda m: m["stop_requested"])

        run(scenario())
        assert app.wait_exit(60) == 0, app.stderr
        assert "stopped: stop from the web view" in app.stderr
        assert list(out.glob("*.h5"))
    finally:
        app.stop()
        sim.terminate()
        sim.wait(15)


def test_record_web_refuses_a_spectrum_stream(home):
    app = Pystream(["record", "--zmq", "tcp://127.0.0.1:1", "--out", str(home / "r"), "--web"], home,
                   wait_url=False)
    assert app.wait_exit(60) == 2
    assert "shows images only" in app.stderr


def test_replay_takes_the_web_view_too(home):
    import numpy as np
    import tifffile
    folder = home / "run"
    folder.mkdir()
    for i in range(3):
        tifffile.imwrite(folder / f"frame_{i + 1:06d}.tiff", np.full((40, 50), i * 100, np.uint16))
    app = Pystream(["--replay", str(folder), "--fps", "20", "--loop", "--offscreen", "--web",
                    "127.0.0.1:0", "--exit-after", "120"], home)
    try:
        async def scenario():
            async with aiohttp.ClientSession() as http, http.ws_connect(app.url + "ws") as ws:
                await ws.send_json({"type": "view", "format": "png"})
                uids = set()
                while len(uids) < 3:
                    meta, _ = await next_frame(ws)
                    assert (meta["source_width"], meta["source_height"]) == (50, 40)
                    uids.add(meta["uid"])

        run(scenario())
    finally:
        app.stop()
