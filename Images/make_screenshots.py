"""Regenerate the README screenshots from the real application.

    xvfb-run -s "-screen 0 1600x1000x24" python Images/make_screenshots.py

(under Xvfb as a user's X server would draw it; offscreen when there is no display)

Starts the simulated detector and the simulated spectrum publisher
in-process, opens the real main window (every panel attached, as `pystream`
builds it), waits for frames to be painted and saves grabs of the window.
"""
import os
import sys
import threading
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("EPICS_PVA_ADDR_LIST", "127.0.0.1")
os.environ.setdefault("EPICS_PVA_AUTO_ADDR_LIST", "NO")
os.environ.setdefault("EPICS_PVAS_INTF_ADDR_LIST", "127.0.0.1")

HERE = Path(__file__).resolve().parent


def wait_until(app, predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("nothing was painted")
        app.processEvents()
        time.sleep(0.01)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    from pystream.cli import build_viewer_parser
    from pystream.gui.assemble import attach_spectra, build_window
    from pystream.gui.app import make_app
    from pystream.publish.pva_sim import run_pva_sim
    from pystream.publish.zmq_spectra import run_sim as run_zmq_sim

    app, _ = make_app()
    from pystream.sources.pva import PvaSource

    pv = f"pystream:screenshot:{os.getpid()}:Image"
    port = free_port()
    stop = threading.Event()
    ready = threading.Event()
    threads = [
        threading.Thread(target=run_pva_sim, args=(pv,), daemon=True,
                         kwargs=dict(size=(1024, 1024), rate=30, stop_event=stop, ready=ready)),
        threading.Thread(target=run_zmq_sim, daemon=True,
                         kwargs=dict(port=port, rate=20, stop_event=stop, seed=1)),
    ]
    for t in threads:
        t.start()
    ready.wait(10)

    # 1. the image viewer
    args = build_viewer_parser().parse_args(["--pv", pv])
    window = build_window(args, colormap="gray")
    window.resize(1600, 1000)
    window.show()
    window.connect_source(PvaSource(pv))
    wait_until(app, lambda: window.stats()["displayed"] >= 30)
    tools = window.image_tools  # the tools a user turns on first
    tools.crosshair_action.setChecked(True)
    tools.set_crosshair_pixel(600, 400)
    tools.line_action.setChecked(True)
    tools.set_line((150, 700), (900, 300))
    shown = window.stats()["displayed"]
    wait_until(app, lambda: window.stats()["displayed"] >= shown + 30)
    tools.refresh_panel()
    window.refresh_status()
    app.processEvents()
    window.grab().save(str(HERE / "pystream.png"))
    print("wrote", HERE / "pystream.png")

    # 2. an image and a spectrum stream in one window
    args = build_viewer_parser().parse_args(["--zmq", f"tcp://127.0.0.1:{port}",
                                             "--freq-range", "14.36,87.83"])
    stop_spectra = attach_spectra(window, args, args.zmq)
    wait_until(app, lambda: window.stats()["spectra"]["displayed"] >= 100)
    window.refresh_status()
    app.processEvents()
    window.grab().save(str(HERE / "pystream_spectra.png"))
    print("wrote", HERE / "pystream_spectra.png")

    stop_spectra()
    window.disconnect_source()
    window.record_panel.shutdown()
    stop.set()
    for t in threads:
        t.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
