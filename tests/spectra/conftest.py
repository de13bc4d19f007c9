"""Shared helpers for the spectra tests: real PUB/SUB on 127.0.0.1, free ports, waits."""
import json
import time

import numpy as np
import pytest

from pystream.publish.zmq_spectra import SpectrumPublisher, make_header


def wait_until(condition, timeout=30.0, interval=0.005, message="condition"):
    """Poll ``condition`` until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def spectrum(nchan=3072, npol=4, nbeam=1, seed=0):
    """A positive test spectrum (nbeam, nchan, npol) float32."""
    rng = np.random.default_rng(seed)
    return (rng.random((nbeam, nchan, npol), dtype=np.float32) + 0.5).astype(np.float32)


def header_bytes(shape=(1, 3072, 4), **override):
    header = make_header(shape, time_tag=123)
    header.update(override)
    return json.dumps(header).encode()


def prime(publisher, delivered, timeout=30.0):
    """Send valid warm-up spectra until ``delivered()`` grows: beats PUB/SUB's slow joiner.

    Returns how many warm-up messages were sent.
    """
    before = delivered()
    sent = 0
    deadline = time.monotonic() + timeout
    while delivered() <= before:
        if time.monotonic() > deadline:
            raise AssertionError("subscriber never received a warm-up message")
        publisher.publish(spectrum(seed=sent))
        sent += 1
        time.sleep(0.02)
    return sent


@pytest.fixture
def publisher():
    pub = SpectrumPublisher(port=0, sndhwm=100_000)
    yield pub
    pub.close()


@pytest.fixture
def wait():
    return wait_until
