"""The live web view: an aiohttp server in its own thread and event loop.

aiohttp serves the page, the static files and the WebSocket from one
well-kept asyncio server (``websockets`` would need a second server for
HTTP and static files). Nothing here touches Qt or the GUI thread.

    offer_display(display)  (display worker or GUI thread: stores a reference, returns)
        └► broadcast task (web thread): for each client due under its rate limit,
           encode once per (format, decimation) in the encoder thread,
           put the same bytes in each client's one-frame send slot
    sender task per client: its outbox (control, status, stats, spectra), then its slot.
           A client that reads slowly has its slot replaced (a counted skip):
           it never slows the others, the viewer, or memory.

Security (DESIGN.md): loopback by default; on any other address a token is
required (generated or given), checked in constant time on every request
and WebSocket upgrade (``?token=`` once, then a cookie); the Origin of a
request, when a browser sends one, must be the server itself; on loopback
without a token the Host must be a loopback name (a DNS-rebinding page
cannot reach it); limits on clients, message sizes and message rates;
files come only from the package's static folder.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import hmac
import ipaddress
import logging
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union
from urllib.parse import quote, urlsplit

import numpy as np
from aiohttp import WSMsgType, web

from . import encode, protocol
from .options import DEFAULT_HOST, DEFAULT_PORT

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_FPS = 30.0
MAX_CLIENTS = 64
OUTBOX_LIMIT = 256  # text messages waiting for one client; beyond, the oldest go (counted)
TOKEN_COOKIE = "pystream_token"
SPECTRUM_HISTORY_ROWS = 600  # rows a new client gets at once for its waterfall
SPECTRUM_ROWS_PER_TICK = 64  # newer rows beyond this in one tick are skipped (counted)
SPECTRUM_LEVELS_INTERVAL_S = 1.0

Outgoing = Union[str, Tuple[str, bytes]]


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _same_token(given: Optional[str], token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"),
                                                     token.encode("utf-8"))


class Client:
    """One WebSocket viewer: its wishes, its send slot, its counters."""

    def __init__(self, cid: int, ws: web.WebSocketResponse, remote: str, fps: float):
        self.id = cid
        self.ws = ws
        self.remote = remote
        self.max_fps = fps
        self.size: Optional[Tuple[int, int]] = None  # canvas (h, w) in device pixels
        self.format = "jpeg"
        self.next_due = 0.0
        self.last_offered = -1  # the display sequence number last put in the slot
        self.slot: Optional[Tuple[str, bytes]] = None  # one frame: (frame JSON, image bytes)
        self.outbox: Deque[Outgoing] = collections.deque()
        self.wake = asyncio.Event()
        self.limiter = protocol.MessageRateLimit()
        self.frames_sent = 0
        self.bytes_sent = 0
        self.skips = 0  # frames replaced in the slot before this client took them
        self.outbox_drops = 0
        self.connected_at = time.monotonic()
        self.sent_times: Deque[float] = collections.deque(maxlen=64)

    def send(self, item: Outgoing) -> None:
        if len(self.outbox) >= OUTBOX_LIMIT:
            self.outbox.popleft()
            self.outbox_drops += 1
        self.outbox.append(item)
        self.wake.set()

    def offer(self, item: Tuple[str, bytes]) -> None:
        if self.slot is not None:
            self.skips += 1
        self.slot = item
        self.wake.set()

    def fps(self) -> float:
        times = list(self.sent_times)  # one C-level copy: stats() reads it from another thread
        if len(times) < 2:
            return 0.0
        now = time.monotonic()
        recent = [t for t in times if now - t <= 2.0]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)

    def summary(self) -> Dict[str, Any]:
        return {"id": self.id, "remote": self.remote, "frames_sent": self.frames_sent,
                "bytes_sent": self.bytes_sent, "skips": self.skips, "fps": round(self.fps(), 2),
                "max_fps": self.max_fps, "format": self.format, "outbox_drops": self.outbox_drops}


class WebView:
    """The live web view of a stream. Qt-free; all its work is on its own thread.

    ``offer_display(display_frame)`` is the display listener (returns at
    once); ``attach_spectra(receiver)`` adds a ZMQ spectrum stream;
    ``on_pause``/``on_resume``/``on_stop`` are called (on the web thread, must
    not block) when a viewer asks; ``stop_action`` tells the page what Stop
    does. ``stats_provider()`` gives the app's counters for the page's status.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                 token: Optional[str] = None, fps: float = DEFAULT_FPS,
                 max_clients: int = MAX_CLIENTS, colormap: str = "gray",
                 stop_action: str = "stops the stream",
                 on_stop: Optional[Callable[[], None]] = None,
                 on_pause: Optional[Callable[[], None]] = None,
                 on_resume: Optional[Callable[[], None]] = None,
                 stats_provider: Optional[Callable[[], Dict[str, Any]]] = None,
                 title: str = "pystream"):
        self.host = host or DEFAULT_HOST
        self.port = int(port)
        self.loopback = is_loopback(self.host)
        # a token is required off loopback; one given is always required
        self.token = token if token else (None if self.loopback else secrets.token_urlsafe(24))
        self.fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
        self.max_clients = int(max_clients)
        self.colormap = colormap.lower() if colormap.lower() in encode.WEB_COLORMAPS else "gray"
        self.stop_action = stop_action
        self.on_stop, self.on_pause, self.on_resume = on_stop, on_pause, on_resume
        self.stats_provider = stats_provider
        self.title = title
        self.paused = False
        self.stop_requested = False

        self._display: Any = None  # the newest display frame (a reference; never copied here)
        self._session: Any = None
        self._only_while_watched = False
        self._listening = False
        self._display_seq = 0
        self._receiver: Any = None
        self._clients: Dict[int, Client] = {}
        self._next_id = 1
        self._bad = protocol.BadMessageCounter()
        self._refused: Dict[str, int] = {}
        self._frames_sent = 0
        self._bytes_sent = 0
        self._skips_gone = 0  # skips of clients that left
        self._frames_encoded = 0
        self._encode_s = 0.0
        self._clients_peak = 0
        self._t0 = time.monotonic()
        self._colormaps: Optional[Dict[str, list]] = None
        self._encode_errors = 0
        self._spectrum_levels: Optional[Tuple[float, float]] = None

        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._wake: Optional[asyncio.Event] = None
        self._wake_pending = False
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None
        self._started = threading.Event()
        self._start_error: Optional[BaseException] = None
        self._tasks: List[asyncio.Task] = []
        # one encoder thread: Pillow releases the GIL, and the event loop keeps serving
        self._encoder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pystream-web-encode")

    # ------------------------------------------------------------ the app's side
    def offer_display(self, display: Any) -> None:
        """Keep the newest display frame (any thread; returns at once)."""
        self._display = display
        self._display_seq += 1
        loop = self._loop
        if loop is not None and not self._wake_pending:
            self._wake_pending = True
            try:
                loop.call_soon_threadsafe(self._wake_up)
            except RuntimeError:  # the loop has closed: nothing to wake
                pass

    def watch(self, session: Any, *, only_while_watched: bool = False) -> None:
        """Show ``session``'s display frames (it calls ``offer_display``).

        ``only_while_watched``: listen only while a browser is connected, so
        a session with no other display listener decodes nothing for display
        while nobody looks (e.g. a headless recording)."""
        self._session = session
        self._only_while_watched = only_while_watched
        if not only_while_watched:
            session.add_display_listener(self.offer_display)

    def _watchers_changed(self) -> None:
        session = self._session
        if session is None or not self._only_while_watched:
            return
        if self._clients and not self._listening:
            session.add_display_listener(self.offer_display)
            self._listening = True
        elif not self._clients and self._listening:
            session.remove_display_listener(self.offer_display)
            self._listening = False

    def attach_spectra(self, receiver: Any) -> None:
        """Show a ``SpectrumReceiver``'s newest spectrum and waterfall (read at the web rate)."""
        self._receiver = receiver

    @property
    def url(self) -> str:
        """The address to open, with the token when one is needed."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        url = f"http://{host}:{self.port}/"
        return url + (f"?token={quote(self.token)}" if self.token else "")

    def start(self, timeout: float = 15.0) -> None:
        """Serve; raises OSError (e.g. the port is taken) if the server cannot start."""
        self._thread = threading.Thread(target=self._run, name="pystream-web", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise OSError(f"the web view did not start within {timeout:g} s")
        if self._start_error is not None:
            error = self._start_error
            self._thread.join(timeout=5)
            raise OSError(f"cannot serve the web view on {self.host}:{self.port}: "
                          f"{getattr(error, 'strerror', None) or error}") from error

    def stop(self, message: str = "pystream stopped") -> None:
        """Tell the viewers, close their connections and the server (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            self._encoder.shutdown(wait=False)
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(message), loop).result(timeout=10)
        except Exception as exc:  # the thread ends below whatever happened
            log.debug("web view shutdown: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._encoder.shutdown(wait=False)

    def stats(self) -> Dict[str, Any]:
        clients = [c.summary() for c in list(self._clients.values())]
        skips = self._skips_gone + sum(c["skips"] for c in clients)
        encoded = self._frames_encoded
        return {
            "url": self.url.split("?")[0],
            "token_required": self.token is not None,
            "clients_connected": len(clients),
            "clients_peak": self._clients_peak,
            "frames_offered": self._display_seq,
            "frames_encoded": encoded,
            "encode_ms_mean": round(1000.0 * self._encode_s / encoded, 2) if encoded else None,
            "encode_errors": self._encode_errors,
            "frames_sent": self._frames_sent,
            "bytes_sent": self._bytes_sent,
            "skips": skips,
            "clients": clients,
            "bad_messages": self._bad.total,
            "bad_messages_by_reason": self._bad.snapshot(),
            "refused": sum(self._refused.values()),
            "refused_by_reason": dict(self._refused),
            "paused": self.paused,
            "stop_requested": self.stop_requested,
        }

    @property
    def clients_connected(self) -> int:
        return len(self._clients)

    # ------------------------------------------------------------ the web thread
    def _wake_up(self) -> None:
        self._wake_pending = False
        if self._wake is not None:
            self._wake.set()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._start_error = exc
            self._started.set()
            loop.close()
            return
        self._loop = loop
        self._started.set()
        try:
            loop.run_forever()
        finally:
            self._loop = None
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _serve(self) -> None:
        self._wake = asyncio.Event()
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._websocket)
        # aiohttp's static route resolves each path and refuses any outside the folder
        app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:  # an ephemeral port: say which
            server = site._server  # aiohttp exposes no public accessor for the bound socket
            self.port = server.sockets[0].getsockname()[1]
        self._tasks = [asyncio.ensure_future(self._broadcast_loop()),
                       asyncio.ensure_future(self._stats_loop()),
                       asyncio.ensure_future(self._spectra_loop())]

    async def _shutdown(self, message: str) -> None:
        for task in self._tasks:
            task.cancel()
        for client in list(self._clients.values()):
            client.send(protocol.dumps(protocol.status("complete", message)))
        await asyncio.sleep(0.05)  # let the senders write it
        closing = [asyncio.wait_for(client.ws.close(code=1001, message=b"server shutdown"), 2.0)
                   for client in list(self._clients.values())]
        # a client that reads nothing cannot take its close frame: do not wait for it long
        await asyncio.gather(*closing, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------ HTTP
    def _refuse(self, reason: str, status: int, text: str) -> web.Response:
        self._refused[reason] = self._refused.get(reason, 0) + 1
        log.debug("web request refused: %s", reason)
        return web.Response(status=status, text=f"pystream: {text}\n")

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        host_name = (urlsplit(f"//{request.host}").hostname or "") if request.host else ""
        if self.token is None and not is_loopback(host_name):
            # bound to loopback with no token: only a loopback name may be asked for
            return self._refuse("host", 403, f"Host {request.host!r} is not this machine")
        query_token = request.query.get("token")
        if self.token is not None:
            if not (_same_token(query_token, self.token)
                    or _same_token(request.cookies.get(TOKEN_COOKIE), self.token)):
                given = query_token is not None or TOKEN_COOKIE in request.cookies
                reason = "bad_token" if given else "no_token"
                return self._refuse(reason, 403, "this web view needs its token: open the URL "
                                                 "pystream printed at start (.../?token=...)")
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
            return self._refuse("origin", 403, f"Origin {origin!r} is not this server")
        response = await handler(request)
        if isinstance(response, web.WebSocketResponse):
            return response
        if self.token is not None and _same_token(query_token, self.token):
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="Strict")
        headers = response.headers
        headers.setdefault("Cache-Control", "no-cache")
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"  # the token must not leak in a Referer
        headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' blob: data:; "
                                              "connect-src 'self'; object-src 'none'")
        return response

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    # ------------------------------------------------------------ WebSocket
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if len(self._clients) >= self.max_clients:
            return self._refuse("too_many_clients", 503,
                                f"too many viewers ({self.max_clients}); try again later")
        ws = web.WebSocketResponse(max_msg_size=protocol.MAX_WS_MESSAGE_BYTES, heartbeat=30.0,
                                   compress=False)  # images are compressed already
        await ws.prepare(request)
        if self._colormaps is None:  # matplotlib's tables, once, off the event loop
            self._colormaps = await asyncio.get_running_loop().run_in_executor(
                self._encoder, encode.colormap_tables)
        # from here to the welcome no await: the welcome is the client's first message
        client = Client(self._next_id, ws, request.remote or "?", self.fps)
        self._next_id += 1
        self._clients[client.id] = client
        self._clients_peak = max(self._clients_peak, len(self._clients))
        self._watchers_changed()
        log.info("web viewer %d connected from %s (%d connected)", client.id, client.remote,
                 len(self._clients))
        sender = asyncio.ensure_future(self._sender(client))
        try:
            client.send(protocol.dumps(self._welcome()))
            self._send_spectrum_history(client)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._handle_text(client, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._bad.add("binary")
                elif msg.type == WSMsgType.ERROR:
                    self._bad.add("protocol_error")
                    break
        finally:
            sender.cancel()
            self._clients.pop(client.id, None)
            self._skips_gone += client.skips
            self._watchers_changed()
            log.info("web viewer %d left (%d frames sent, %d skipped)", client.id,
                     client.frames_sent, client.skips)
        return ws

    def _welcome(self) -> Dict[str, Any]:
        receiver = self._receiver
        spectra = None
        if receiver is not None:
            spectra = {"freq_label": receiver.frequency_label,
                       "mhz": receiver.freq_range is not None}
        return protocol.welcome(self.fps, self.paused, stop_requested=self.stop_requested,
                                stop_action=self.stop_action, title=self.title,
                                colormap=self.colormap, colormaps=self._colormaps,
                                formats=list(protocol.IMAGE_FORMATS), spectra=spectra,
                                max_fps=self.fps)

    def _handle_text(self, client: Client, text: str) -> None:
        if not client.limiter.allow():
            self._bad.add("rate_limited")
            return
        try:
            kind, message = protocol.parse_client_message(text)
        except protocol.BadMessage as exc:
            self._bad.add(exc.reason)
            return
        if kind == "ping":
            client.send(protocol.dumps(protocol.pong()))
        elif kind == "view":
            client.size = message.get("size", client.size)
            client.format = message.get("format", client.format)
            client.max_fps = min(message.get("max_fps", client.max_fps), 120.0)
            client.last_offered = -1  # the new size or format: send the current frame again
            self._wake.set()
        elif kind == "probe":
            client.send(protocol.dumps(self._probe(message)))
        elif kind in ("pause", "resume"):
            self._set_paused(kind == "pause", client)
        elif kind == "stop":
            self._request_stop(client)

    def _set_paused(self, paused: bool, client: Client) -> None:
        if paused != self.paused:
            self.paused = paused
            callback = self.on_pause if paused else self.on_resume
            if callback is not None:
                try:
                    callback()
                except Exception:
                    log.exception("web %s callback failed", "pause" if paused else "resume")
            word = "paused" if paused else "resumed"
            log.info("web broadcast %s by viewer %d (%s)", word, client.id, client.remote)
            self._broadcast_text(protocol.status("info", f"broadcast {word} by viewer {client.id}"))
        if not paused:
            self._wake.set()
        self._broadcast_text(protocol.control_state(self.paused, self.stop_requested))

    def _request_stop(self, client: Client) -> None:
        first = not self.stop_requested
        self.stop_requested = True
        if first:
            log.warning("stop requested from the web view by viewer %d (%s): %s", client.id,
                        client.remote, self.stop_action)
            self._broadcast_text(protocol.status("warning", f"stop requested by viewer {client.id}: "
                                                            f"{self.stop_action}"))
        self._broadcast_text(protocol.control_state(self.paused, self.stop_requested))
        if first and self.on_stop is not None:
            try:
                self.on_stop()
            except Exception:
                log.exception("web stop callback failed")

    def _probe(self, message: Dict[str, Any]) -> Dict[str, Any]:
        """The real value of one detector pixel of the newest frame (not the JPEG's)."""
        reply: Dict[str, Any] = {"type": "probe", "x": message["x"], "y": message["y"],
                                 "id": message.get("id"), "value": None}
        display = self._display
        raw = getattr(display, "raw", None)
        if raw is None:
            return reply
        x, y = int(message["x"]), int(message["y"])
        shape = raw.shape
        if 0 <= y < shape[0] and len(shape) > 1 and 0 <= x < shape[1]:
            try:
                value = np.asarray(raw[y, x])
                if value.ndim:  # RGB
                    reply["value"] = value.tolist()
                elif value.dtype.kind == "f":
                    reply["value"] = protocol.finite(value)  # NaN is not JSON: null
                else:
                    reply["value"] = value.item()
                reply["uid"] = int(display.uid)
            except Exception as exc:  # a deferred correction that fails: say so, carry on
                reply["error"] = str(exc)
        return reply

    def _broadcast_text(self, message: Dict[str, Any]) -> None:
        text = protocol.dumps(message)
        for client in list(self._clients.values()):
            client.send(text)

    async def _sender(self, client: Client) -> None:
        ws = client.ws
        try:
            while not ws.closed:
                await client.wake.wait()
                client.wake.clear()
                while client.outbox:
                    item = client.outbox.popleft()
                    if isinstance(item, str):
                        await ws.send_str(item)
                    else:
                        await ws.send_str(item[0])
                        await ws.send_bytes(item[1])
                        client.bytes_sent += len(item[1])
                        self._bytes_sent += len(item[1])
                if client.slot is not None:
                    meta, data = client.slot
                    client.slot = None
                    await ws.send_str(meta)
                    await ws.send_bytes(data)
                    client.frames_sent += 1
                    client.bytes_sent += len(data)
                    client.sent_times.append(time.monotonic())
                    self._frames_sent += 1
                    self._bytes_sent += len(data)
        except (ConnectionError, RuntimeError) as exc:  # the client went away mid-send
            log.debug("web viewer %d: send failed: %s", client.id, exc)
            await ws.close()

    # ------------------------------------------------------------ broadcasting
    async def _broadcast_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wait = 0.5
            now = time.monotonic()
            display, seq = self._display, self._display_seq
            due: Dict[Tuple[str, int], List[Client]] = {}
            if display is not None and not self.paused:
                for client in list(self._clients.values()):
                    if client.last_offered == seq:
                        continue  # has this frame: wait for a new one
                    if now < client.next_due:
                        wait = min(wait, client.next_due - now)
                        continue
                    step = encode.decimation(display.image.shape, client.size)
                    due.setdefault((client.format, step), []).append(client)
            for (fmt, step), clients in due.items():
                t0 = time.perf_counter()
                try:
                    meta, data = await loop.run_in_executor(self._encoder, encode.encode_display,
                                                            display, fmt, step)
                except Exception as exc:  # a frame that cannot be encoded is skipped, said once
                    self._bad_frame(exc)
                    for client in clients:
                        client.last_offered = seq
                    continue
                self._encode_s += time.perf_counter() - t0
                self._frames_encoded += 1
                text = protocol.dumps(protocol.frame(meta))
                sent_at = time.monotonic()
                for client in clients:
                    if client.id not in self._clients:
                        continue
                    client.offer((text, data))
                    client.last_offered = seq
                    period = 1.0 / client.max_fps
                    # a fixed timetable: a late tick does not lower the client's rate
                    client.next_due = (client.next_due + period
                                       if sent_at - client.next_due < period else sent_at + period)
            if due:
                continue  # a new frame may have come while encoding
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(wait, 0.001))
            except asyncio.TimeoutError:
                pass

    def _bad_frame(self, exc: Exception) -> None:
        """A frame that cannot be encoded is skipped and counted; said once."""
        if not self._encode_errors:
            log.warning("web view: a frame could not be encoded: %s: %s", type(exc).__name__, exc)
        self._encode_errors += 1

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if not self._clients:
                continue
            uptime = time.monotonic() - self._t0
            common = {
                "clients_connected": len(self._clients),
                "frames_sent": self._frames_sent,
                "bytes_sent": self._bytes_sent,
                "avg_fps": round(self._frames_sent / uptime, 2) if uptime > 0 else 0.0,
                "uptime_seconds": round(uptime, 1),
                "bad_messages": self._bad.total,
                "paused": self.paused,
            }
            viewer = {}
            if self.stats_provider is not None:
                try:
                    s = self.stats_provider()
                    viewer = {k: s.get(k) for k in ("state", "recv_fps", "display_fps", "received",
                                                    "dropped_upstream", "skipped", "rejected",
                                                    "latency_ms_p50", "latency_ms_p95", "source")}
                except Exception as exc:
                    log.debug("stats provider failed: %s", exc)
            for client in list(self._clients.values()):
                data = dict(common, viewer=viewer, client=client.summary())
                client.send(protocol.dumps(protocol.stats(data)))

    # ------------------------------------------------------------ spectra
    def _spectrum_message(self, rows: np.ndarray, latest: np.ndarray, t_source: Optional[float],
                          total: int, reset: bool, missed: int, levels) -> Tuple[str, bytes]:
        receiver = self._receiver
        freqs = receiver.frequency_axis() if receiver is not None else np.arange(rows.shape[1])
        payload = encode.spectrum_payload(latest, rows)
        meta = {"kind": "spectrum", "n_freq": int(latest.shape[0]), "n_rows": int(rows.shape[0]),
                "freq_first": float(freqs[0]) if len(freqs) else 0.0,
                "freq_last": float(freqs[-1]) if len(freqs) else 0.0,
                "freq_label": receiver.frequency_label if receiver is not None else "Channel",
                "levels": [float(levels[0]), float(levels[1])], "t_source": t_source,
                "total": int(total), "reset": reset, "missed": int(missed), "bytes": len(payload)}
        return protocol.dumps(protocol.frame(meta)), payload

    def _send_spectrum_history(self, client: Client) -> None:
        receiver = self._receiver
        if receiver is None:
            return
        ring = receiver.ring
        rows, times = ring.latest_with_times(min(ring.count, SPECTRUM_HISTORY_ROWS))
        if rows.shape[0] == 0:
            return
        log_rows = _log10(rows)
        levels = self._spectrum_levels or _robust_levels(log_rows)
        t = float(times[-1]) if np.isfinite(times[-1]) else None
        client.send(self._spectrum_message(log_rows, rows[-1], t, ring.total, True, 0, levels))

    async def _spectra_loop(self) -> None:
        cursor, resets, levels_at = 0, -1, 0.0
        while True:
            await asyncio.sleep(1.0 / min(self.fps, 20.0))  # spectra come at a few Hz
            receiver = self._receiver
            if receiver is None or not self._clients or self.paused:
                if receiver is not None:
                    cursor, resets = receiver.ring.total, receiver.ring.resets
                continue
            ring = receiver.ring
            reset = ring.resets != resets
            if reset:
                resets, cursor = ring.resets, 0
            rows, times, total, missed = ring.read_since(cursor)
            cursor = total
            if rows.shape[0] == 0:
                continue
            if rows.shape[0] > SPECTRUM_ROWS_PER_TICK:
                missed += rows.shape[0] - SPECTRUM_ROWS_PER_TICK
                rows, times = rows[-SPECTRUM_ROWS_PER_TICK:], times[-SPECTRUM_ROWS_PER_TICK:]
            log_rows = _log10(rows)
            now = time.monotonic()
            if self._spectrum_levels is None or reset or now - levels_at > SPECTRUM_LEVELS_INTERVAL_S:
                history = ring.latest(min(ring.count, SPECTRUM_HISTORY_ROWS))
                self._spectrum_levels = _robust_levels(_log10(history))
                levels_at = now
            t = float(times[-1]) if np.isfinite(times[-1]) else None
            item = self._spectrum_message(log_rows, rows[-1], t, total, reset, missed,
                                          self._spectrum_levels)
            for client in list(self._clients.values()):
                client.send(item)


def _log10(rows: np.ndarray) -> np.ndarray:
    from ..spectra.waterfall import to_log_image
    return to_log_image(rows)


def _robust_levels(log_rows: np.ndarray) -> Tuple[float, float]:
    from ..spectra.waterfall import robust_levels
    return robust_levels(log_rows)
