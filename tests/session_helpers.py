"""A finite in-process source for engine tests (no server needed)."""
import threading
import time

import numpy as np

from pystream.frame import Frame
from pystream.sources._base import Source


class ListSource(Source):
    """Emits frames from a thread, then reports ``finished``: ``Frame`` objects as
    they are, or arrays made into frames (uids from ``first_uid``, stamped when
    sent). ``rate``: frames per second (0: as fast as taken); ``repeat``: start
    again at the end; ``gate``: an Event that holds the frames back until set."""

    kind = "list"

    def __init__(self, items, name="list", rate=0.0, finish=True, repeat=False, gate=None,
                 first_uid=1):
        super().__init__(name)
        self.items = list(items)
        self.rate = rate
        self.finish = finish
        self.repeat = repeat
        self.gate = gate
        self.first_uid = first_uid
        self.sent = 0
        self._halt = threading.Event()
        self._thread = None

    def start(self, sink):
        self.sink = sink
        sink.on_state("connected", "")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _frame(self, i):
        item = self.items[i % len(self.items)]
        if isinstance(item, Frame):
            return item
        return Frame.from_array(item, uid=self.first_uid + i, source=self.name, t_source=time.time())

    def _run(self):
        while self.gate is not None and not self.gate.wait(0.02):
            if self._halt.is_set():
                return
        period = 1.0 / self.rate if self.rate else 0.0
        i = 0
        while not self._halt.is_set() and self.items and (self.repeat or i < len(self.items)):
            self.sink.on_frame(self._frame(i))
            self.sent += 1
            i += 1
            if period:
                self._halt.wait(period)
        if self.finish and not self._halt.is_set():
            self.sink.on_state("finished", "")

    def stop(self):
        self._halt.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.sink is not None:
            self.sink.on_state("stopped", "")


def wait_for(predicate, timeout=30.0, interval=0.01):
    """Poll until ``predicate()`` or ``timeout`` seconds (generous: a loaded machine is slow)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def frames(n, shape=(16, 24), start=0):
    return [np.full(shape, start + i, np.uint16) for i in range(n)]
