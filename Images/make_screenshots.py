"""Regenerate the README screenshots from the real application, offscreen.

    python Images/make_screenshots.py

Starts the simulated detector in-process, opens the real main window on it,
waits for frames to be painted and saves grabs of the window.
"""
import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("EPICS_PVA_ADDR_LIST", "127.0.0.1")
os.environ.setdefault("EPICS_PVA_AUTO_ADDR_LIST", "NO")
os.environ.setdefault("EPICS_PVAS_INTF_ADDR_LIST", "127.0.0.1")

HERE = Path(__file__).resolve().parent


def wait_until(app, predicate, timeout=20.0):
    import time
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("no frames painted")
        app.processEvents()
        time.sleep(0.01)


def main() -> int:
    from pystream.gui.app import make_app
    from pystream.publish.pva_sim import run_pva_sim

    app, _ = make_app()
    from pystream.gui.main_window import MainWindow
    from pystream.sources.pva import PvaSource

    pv = f"pystream:screenshot:{os.getpid()}:Image"
    stop = threading.Event()
    ready = threading.Event()
    sim = threading.Thread(target=run_pva_sim, args=(pv,), daemon=True,
                           kwargs=dict(size=(1024, 1024), rate=30, stop_event=stop, ready=ready))
    sim.start()
    ready.wait(10)
    window = MainWindow(source_factory=PvaSource, colormap="viridis")
    window.resize(1280, 900)
    window.show()
    window.connect_source(PvaSource(pv))
    wait_until(app, lambda: window.stats()["displayed"] >= 60)
    window.refresh_status()
    app.processEvents()
    window.grab().save(str(HERE / "pystream.png"))
    print("wrote", HERE / "pystream.png")
    window.disconnect_source()
    stop.set()
    sim.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
