"""A finite in-process source for engine tests (no server needed)."""
import threading
import time

import numpy as np

from pystream.frame import Frame
from pystream.sources._base import Source


class ListSource(Source):
    """A finite source on its own thread: the arrays given, then ``finished``.
    ``gate`` (an Event) holds the frames back until it is set."""

    kind = "list"

    def __init__(self, arrays, name="list", gate=None, first_uid=1, period=0.0):
        super().__init__(name)
        self.arrays = list(arrays)
        self.gate = gate
        self.period = period
        self.first_uid = first_uid
        self._halt = threading.Event()
        self._thread = None

    def start(self, sink):
        self.sink = sink
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        self.sink.on_state("connected")
        while self.gate is not None and not self.gate.wait(0.02):
            if self._halt.is_set():
                return
        for i, arr in enumerate(self.arrays):
            if self._halt.wait(self.period) if self.period else self._halt.is_set():
                return
            self.sink.on_frame(Frame.from_array(arr, uid=self.first_uid + i, source=self.name,
                                                t_source=time.time()))
        self.sink.on_state("finished")

    def stop(self):
        self._halt.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.sink is not None:
            self.sink.on_state("stopped")


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def frames(n, shape=(16, 24), start=0):
    return [np.full(shape, start + i, np.uint16) for i in range(n)]
