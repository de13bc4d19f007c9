"""Fixtures for the record tests: a tiny tmpfs that fills up, a step that blocks the writer."""
import subprocess
import threading

import pytest


class BlockingProcess:
    """A processing step that holds the writer thread until released."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, array, meta):
        self.calls += 1
        self.entered.set()
        assert self.release.wait(20)
        return array


@pytest.fixture
def slow():
    """A BlockingProcess released at teardown: a test that fails while it
    blocks leaves no writer thread stuck behind it."""
    step = BlockingProcess()
    yield step
    step.release.set()


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs (a disk that fills up); skipped where mounting is not permitted."""
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
