"""Shared test setup: offscreen Qt, pvAccess on loopback only, unique PV names."""
import itertools
import os
import uuid

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["EPICS_PVA_ADDR_LIST"] = "127.0.0.1"
os.environ["EPICS_PVA_AUTO_ADDR_LIST"] = "NO"
os.environ["EPICS_PVAS_INTF_ADDR_LIST"] = "127.0.0.1"
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from pystream.publish.pva_sim import NtndArrayPublisher  # noqa: E402

_counter = itertools.count()


@pytest.fixture
def pv_name():
    """A PV name no other test (or test run on this machine) uses."""
    return f"pystest:{uuid.uuid4().hex[:8]}:{next(_counter)}:Image"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home directory, so ~/.pystream never touches the real one."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def pva_server():
    """One PvaServer for the session; tests add uniquely named records to it."""
    import pvaccess as pva
    server = pva.PvaServer()
    yield server
    server.stop()


@pytest.fixture
def publisher(pva_server, pv_name):
    pub = NtndArrayPublisher(pv_name, server=pva_server)
    yield pub
    pub.stop()
