"""The web view's protocol with a Python WebSocket client against the real server,
fed by the real engine (PvaServer → PvaSource → display worker) on loopback."""
from __future__ import annotations

import asyncio
import base64
import io
import os
import socket
import time

import aiohttp
import numpy as np
import psutil
import pytest
from PIL import Image

from pystream.web import WebView
from pystream.web.encode import to_uint8

from .conftest import gradient, next_frame, receive, run, wait_type

pytestmark = [pytest.mark.pva, pytest.mark.web]


def ws_url(view, token=None):
    return f"http://127.0.0.1:{view.port}/ws" + (f"?token={token}" if token else "")


def base_url(view):
    return f"http://127.0.0.1:{view.port}"


def expected_pixels(pattern, meta):
    """What the page must show: the pattern decimated as announced, with its levels."""
    step = meta["bin"]
    return to_uint8(pattern[::step, ::step], tuple(meta["levels"]))


def test_welcome_then_frames_at_the_set_rate_that_decode_to_the_pattern(make_stream):
    pattern = gradient(240, 320)
    view = WebView("127.0.0.1", 0, fps=10)
    make_stream(view, [pattern], rate=60)

    async def scenario():
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(view)) as ws:
            kind, welcome = await receive(ws)
            assert kind == "text" and welcome["type"] == "welcome"
            assert welcome["fps"] == 10 and welcome["paused"] is False
            assert set(welcome["colormaps"]) >= {"gray", "viridis", "turbo", "inferno"}
            assert "stop_action" in welcome
            # PNG: exactly the pattern with the announced levels
            await ws.send_json({"type": "view", "format": "png", "width": 4000, "height": 4000})
            meta, data = await next_frame(ws)
            while meta["format"] != "png":
                meta, data = await next_frame(ws)
            img = np.asarray(Image.open(io.BytesIO(data)))
            assert (meta["width"], meta["height"]) == (320, 240) == (img.shape[1], img.shape[0])
            assert (meta["source_width"], meta["source_height"], meta["bin"]) == (320, 240, 1)
            assert meta["levels"] == [float(pattern.min()), float(pattern.max())]
            np.testing.assert_array_equal(img, expected_pixels(pattern, meta))
            # JPEG for a 100-pixel canvas: decimated to fit, equal within JPEG loss
            await ws.send_json({"type": "view", "format": "jpeg", "width": 100, "height": 100})
            meta, data = await next_frame(ws)
            while meta["format"] != "jpeg":
                meta, data = await next_frame(ws)
            img = np.asarray(Image.open(io.BytesIO(data)))
            assert meta["bin"] == 2 and img.shape == (120, 160)
            diff = np.abs(img.astype(int) - expected_pixels(pattern, meta).astype(int))
            assert diff.mean() < 3 and np.percentile(diff, 99) < 20
            # the rate: 10 fps from a 60 Hz stream (frames are dropped, never queued)
            t0, n = time.monotonic(), 0
            while n < 20:
                await next_frame(ws)
                n += 1
            rate = n / (time.monotonic() - t0)
            assert rate < 13, f"{rate:.1f} fps for a limit of 10"

    run(scenario())
    stats = view.stats()
    assert stats["frames_sent"] >= 22 and stats["bytes_sent"] > 0


def test_pause_resume_stop_reach_every_client_and_the_app(make_stream):
    calls = []
    view = WebView("127.0.0.1", 0, fps=20, stop_action="ends the test run",
                   on_stop=lambda: calls.append("stop"), on_pause=lambda: calls.append("pause"),
                   on_resume=lambda: calls.append("resume"))
    make_stream(view, [gradient(64, 64)], rate=50)

    async def scenario():
        async with aiohttp.ClientSession() as http, \
                http.ws_connect(ws_url(view)) as a, http.ws_connect(ws_url(view)) as b:
            welcome = await wait_type(a, "welcome")
            assert welcome["stop_action"] == "ends the test run"
            await next_frame(a)
            await a.send_json({"type": "pause"})
            # announced to all: a status line, then the new control state
            await wait_type(b, "status", predicate=lambda m: "paused" in m["message"])
            for ws in (a, b):
                state = await wait_type(ws, "control_state")
                assert state == {"type": "control_state", "paused": True, "stop_requested": False}
            sent = view.stats()["frames_sent"]
            # while paused nothing is sent: a second of stats messages and no frame
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                try:
                    kind, msg = await receive(a, timeout=deadline - time.monotonic())
                except asyncio.TimeoutError:
                    break
                assert not (kind == "text" and msg["type"] == "frame"), "a frame while paused"
            assert view.stats()["frames_sent"] <= sent + 2  # at most the ones already in flight
            await b.send_json({"type": "resume"})
            for ws in (a, b):
                state = await wait_type(ws, "control_state")
                assert state["paused"] is False
            await next_frame(a)
            await next_frame(b)
            await b.send_json({"type": "stop"})
            await wait_type(a, "status", predicate=lambda m: m["status"] == "warning"
                            and "ends the test run" in m["message"])
            for ws in (a, b):
                state = await wait_type(ws, "control_state")
                assert state["stop_requested"] is True

    run(scenario())
    assert calls == ["pause", "resume", "stop"]
    assert view.stats()["stop_requested"] is True


def test_ping_pong_stats_and_probe_of_the_real_value(make_stream):
    pattern = gradient(100, 120)
    view = WebView("127.0.0.1", 0, stats_provider=lambda: {"state": "connected", "recv_fps": 5.0})
    make_stream(view, [pattern])

    async def scenario():
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(view)) as ws:
            await ws.send_json({"type": "ping"})
            assert await wait_type(ws, "pong") == {"type": "pong"}
            stats = (await wait_type(ws, "stats"))["data"]
            for key in ("clients_connected", "frames_sent", "bytes_sent", "avg_fps", "uptime_seconds"):
                assert key in stats
            assert stats["clients_connected"] == 1
            assert stats["viewer"]["state"] == "connected"
            await next_frame(ws)
            await ws.send_json({"type": "probe", "x": 17, "y": 33, "id": 5})
            probe = await wait_type(ws, "probe")
            assert probe["value"] == int(pattern[33, 17]) and probe["id"] == 5
            await ws.send_json({"type": "probe", "x": 5000, "y": 1})
            assert (await wait_type(ws, "probe"))["value"] is None

    run(scenario())


def test_bad_messages_are_counted_and_never_fatal(make_stream):
    view = WebView("127.0.0.1", 0)
    make_stream(view, [gradient(32, 32)])

    async def scenario():
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(view)) as ws:
            await wait_type(ws, "welcome")
            for text in ("{not json", "[1, 2]", '{"type": "launch_missiles"}', '{"no": "type"}',
                         '{"type": "view", "format": "bmp"}', '{"type": "probe", "x": "a"}',
                         "x" * 10_000):
                await ws.send_str(text)
            await ws.send_bytes(b"\x00\x01binary")
            await ws.send_json({"type": "ping"})  # still served
            await wait_type(ws, "pong")

    run(scenario())
    reasons = view.stats()["bad_messages_by_reason"]
    assert reasons == {"bad_json": 1, "not_an_object": 1, "unknown_type": 2, "bad_fields": 2,
                       "oversized": 1, "binary": 1}

    async def flood():  # more messages a second than allowed: the excess is ignored
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(view)) as ws:
            for _ in range(300):
                await ws.send_json({"type": "ping"})
            await ws.send_json({"type": "view", "max_fps": 5})
            await asyncio.sleep(0.2)

    run(flood())
    assert view.stats()["bad_messages_by_reason"].get("rate_limited", 0) > 100


def test_token_cookie_origin_host_and_path_traversal():
    view = WebView("127.0.0.1", 0, token="s3cret")
    view.start()
    try:
        assert view.url.endswith("/?token=s3cret")

        async def scenario():
            async with aiohttp.ClientSession() as http:
                for url in ("/", "/static/app.js", "/?token=wrong", "/?token=s3cre"):
                    async with http.get(base_url(view) + url) as r:
                        assert r.status == 403 and "token" in await r.text()
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await http.ws_connect(ws_url(view))
                assert err.value.status == 403
                with pytest.raises(aiohttp.WSServerHandshakeError):
                    await http.ws_connect(ws_url(view, "nope"))
            # the token once in the query, then the cookie carries it
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.get(base_url(view) + "/?token=s3cret") as r:
                    assert r.status == 200 and "pystream" in await r.text()
                    assert "pystream_token" in r.cookies
                async with http.get(base_url(view) + "/static/style.css") as r:
                    assert r.status == 200
                async with http.ws_connect(ws_url(view)) as ws:
                    assert (await wait_type(ws, "welcome"))["type"] == "welcome"
                # a page of another site may not open the WebSocket, even with the cookie
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await http.ws_connect(ws_url(view), headers={"Origin": "http://evil.example"})
                assert err.value.status == 403
                async with http.ws_connect(ws_url(view), headers={
                        "Origin": f"http://127.0.0.1:{view.port}"}) as ws:
                    await wait_type(ws, "welcome")
                # nothing outside the static folder
                for path in ("/static/../server.py", "/static/%2e%2e/server.py",
                             "/static/..%2fserver.py", "/static/%2e%2e%2f%2e%2e%2fcli.py",
                             "/static//etc/passwd", "/../../etc/passwd"):
                    async with http.get(base_url(view) + path) as r:
                        body = await r.text()
                        assert r.status in (403, 404), path
                        assert "import" not in body and "root:" not in body

        run(scenario())
    finally:
        view.stop()
    refused = view.stats()["refused_by_reason"]
    assert refused["no_token"] >= 3 and refused["bad_token"] >= 3 and refused["origin"] == 1


def test_loopback_without_token_refuses_other_host_names():
    """A DNS-rebinding page (its own name resolving to 127.0.0.1) cannot reach it."""
    view = WebView("127.0.0.1", 0)
    view.start()
    try:
        assert view.token is None and view.url == f"http://127.0.0.1:{view.port}/"

        async def scenario():
            async with aiohttp.ClientSession() as http:
                async with http.get(base_url(view) + "/", headers={"Host": f"evil.example:{view.port}"}) as r:
                    assert r.status == 403
                async with http.get(f"http://localhost:{view.port}/") as r:
                    assert r.status == 200

        run(scenario())
    finally:
        view.stop()


def test_off_loopback_a_token_is_generated_and_required():
    view = WebView("0.0.0.0", 0)
    assert view.token and len(view.token) >= 24 and not view.loopback
    view.start()
    try:
        assert f"?token={view.token}" in view.url

        async def scenario():
            async with aiohttp.ClientSession() as http:
                async with http.get(base_url(view) + "/") as r:
                    assert r.status == 403
                async with http.get(base_url(view) + f"/?token={view.token}") as r:
                    assert r.status == 200
                with pytest.raises(aiohttp.WSServerHandshakeError):
                    await http.ws_connect(ws_url(view))

        run(scenario())
    finally:
        view.stop()


def test_a_taken_port_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        view = WebView("127.0.0.1", sock.getsockname()[1])
        with pytest.raises(OSError, match="cannot serve the web view on 127.0.0.1"):
            view.start()


def raw_websocket_that_never_reads(port):
    """A WebSocket handshake on a plain socket that then never reads a byte."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def test_twenty_clients_and_one_that_never_reads(make_stream):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 60000, (512, 512), dtype=np.uint16) for _ in range(3)]  # ~270 kB PNGs
    view = WebView("127.0.0.1", 0, fps=10)
    make_stream(view, frames, rate=40)
    stuck = raw_websocket_that_never_reads(view.port)
    rss = psutil.Process().memory_info().rss

    async def reader(http, counts, i, stop):
        async with http.ws_connect(ws_url(view)) as ws:
            await ws.send_json({"type": "view", "format": "png", "width": 600, "height": 600})
            while not stop.is_set():
                try:
                    what, data = await receive(ws, timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                if what == "binary":
                    counts[i] += 1

    async def scenario():
        stop = asyncio.Event()
        counts = [0] * 19
        async with aiohttp.ClientSession() as http:
            tasks = [asyncio.ensure_future(reader(http, counts, i, stop)) for i in range(19)]
            # wait until the stuck client has skipped frames (its socket is full) ...
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                stuck_stats = [c for c in view.stats()["clients"] if c["skips"] > 5]
                if stuck_stats and min(counts) > 0:
                    break
                await asyncio.sleep(0.2)
            assert view.stats()["clients_connected"] == 20
            # ... then measure the others over a few seconds
            before, t0 = list(counts), time.monotonic()
            while time.monotonic() - t0 < 3.0:
                await asyncio.sleep(0.1)
            rates = [(c - b) / (time.monotonic() - t0) for c, b in zip(counts, before)]
            stop.set()
            await asyncio.gather(*tasks)
            return rates

    rates = run(scenario(), timeout=90)
    clients = view.stats()["clients"]
    stuck_client = max(clients, key=lambda c: c["skips"]) if clients else None
    stuck.close()
    median = sorted(rates)[len(rates) // 2]
    assert median >= 4, f"readers got {rates} fps for a limit of 10"
    assert min(rates) >= 0.5 * median, rates  # nobody starves because of the stuck client
    assert stuck_client is not None and stuck_client["skips"] > 10
    # the stuck client holds one frame in its slot: memory does not grow with what it missed
    assert psutil.Process().memory_info().rss - rss < 150 * 2**20


def test_more_clients_than_allowed_are_refused_and_counted():
    view = WebView("127.0.0.1", 0, max_clients=2)
    view.start()
    try:
        async def scenario():
            async with aiohttp.ClientSession() as http, \
                    http.ws_connect(ws_url(view)) as a, http.ws_connect(ws_url(view)) as b:
                await wait_type(a, "welcome")
                await wait_type(b, "welcome")
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await http.ws_connect(ws_url(view))
                assert err.value.status == 503
            # the two have left: room again (once the server has seen them go)
            deadline = time.monotonic() + 20
            while view.clients_connected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(view)) as c:
                await wait_type(c, "welcome")

        run(scenario())
    finally:
        view.stop()
    assert view.stats()["refused_by_reason"] == {"too_many_clients": 1}
