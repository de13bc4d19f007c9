"""A real engine feeding a real web view on loopback, and WebSocket client helpers."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest

from pystream.publish.pva_sim import NtndArrayPublisher
from pystream.session import Session
from pystream.sources.pva import PvaSource


class Stream:
    """A PvaServer publishing ``frames`` in turn at ``rate`` Hz, watched by the
    engine (source → slot → display worker) whose display frames feed ``view``."""

    def __init__(self, pva_server, pv_name, view, frames, rate=50.0):
        self.view = view
        self.frames = frames
        self.publisher = NtndArrayPublisher(pv_name, server=pva_server)
        self._halt = threading.Event()
        self.published = 0
        self.pv_name = pv_name
        self.session = Session()
        self.session.display.target_size = (4096, 4096)  # the display keeps full resolution
        self.session.add_display_listener(view.offer_display)  # as the viewer wires it
        self._thread = threading.Thread(target=self._publish, args=(rate,), daemon=True)

    def _publish(self, rate):
        period = 1.0 / rate
        uid = 0
        while not self._halt.is_set():
            uid += 1
            self.publisher.publish(self.frames[(uid - 1) % len(self.frames)], uid=uid)
            self.published = uid
            self._halt.wait(period)

    def start(self):
        self.session.connect(PvaSource(self.pv_name))
        self._thread.start()
        return self

    def stop(self):
        self._halt.set()
        self._thread.join(5)
        self.session.close()
        self.publisher.stop()


@pytest.fixture
def make_stream(pva_server, pv_name):
    """make_stream(view, frames, rate) → a started Stream (stopped at teardown, with the view)."""
    made = []

    def make(view, frames, rate=50.0):
        view.start()
        stream = Stream(pva_server, pv_name, view, frames, rate).start()
        made.append(stream)
        return stream

    yield make
    for stream in made:
        stream.stop()
        stream.view.stop()


def gradient(h=240, w=320, dtype=np.uint16, scale=37):
    y, x = np.mgrid[0:h, 0:w]
    return ((x * scale + y * 11) % 60000).astype(dtype)


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def receive(ws, timeout=30):
    """The next message: ('text', dict) or ('binary', bytes)."""
    msg = await ws.receive(timeout=timeout)
    if msg.type.name == "TEXT":
        return "text", json.loads(msg.data)
    if msg.type.name == "BINARY":
        return "binary", msg.data
    raise ConnectionError(f"websocket {msg.type.name}: {msg.data!r} {msg.extra!r}")


async def wait_type(ws, kind, timeout=30, predicate=None):
    """The next JSON message of type ``kind`` (others, and pixels, are passed over)."""
    deadline = time.monotonic() + timeout
    while True:
        what, data = await receive(ws, max(0.01, deadline - time.monotonic()))
        if what == "text" and data.get("type") == kind and (predicate is None or predicate(data)):
            return data


async def next_frame(ws, kind="image", timeout=30):
    """(frame message data, its binary part) of the next frame of ``kind``."""
    deadline = time.monotonic() + timeout
    while True:
        what, data = await receive(ws, max(0.01, deadline - time.monotonic()))
        if what == "text" and data.get("type") == "frame":
            what2, payload = await receive(ws, max(0.01, deadline - time.monotonic()))
            assert what2 == "binary", "a frame message must be followed by its pixels"
            if data["data"]["kind"] == kind:
                return data["data"], payload
