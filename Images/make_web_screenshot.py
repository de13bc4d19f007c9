"""Regenerate Images/web.png: the web view in headless Chromium, from the real app.

    python Images/make_web_screenshot.py

Runs `pystream sim zmq` and `pystream demo --offscreen --web ... --zmq ...` as a
user would, opens the printed URL in Debian's chromium (Playwright with
executable_path), waits for frames and spectra, picks the viridis colormap,
points at a pixel and saves a screenshot.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    from playwright.sync_api import sync_playwright

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", EPICS_PVA_ADDR_LIST="127.0.0.1",
               EPICS_PVA_AUTO_ADDR_LIST="NO", EPICS_PVAS_INTF_ADDR_LIST="127.0.0.1")
    zport = free_port()
    zmq = subprocess.Popen([sys.executable, "-m", "pystream.cli", "sim", "zmq", "--port", str(zport),
                            "--rate", "10"], env=env, stderr=subprocess.DEVNULL)
    app = subprocess.Popen([sys.executable, "-m", "pystream.cli", "demo", "--offscreen", "--size",
                            "640x480", "--web", "127.0.0.1:0", "--zmq", f"tcp://127.0.0.1:{zport}",
                            "--freq-range", "14.36,87.83", "--colormap", "viridis"],
                           env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in app.stderr:
            match = re.search(r"web view at (http://\S+)", line)
            if match:
                url = match.group(1)
                break
        if url is None:
            raise RuntimeError("pystream printed no URL")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url)
            page.wait_for_function("() => window.pystream.frames > 10", timeout=60000)
            page.wait_for_function("() => window.pystream.spectra && window.pystream.spectra.count > 40",
                                   timeout=60000)
            page.click("#ping")
            box = page.locator("#image").bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.45)
            time.sleep(1.5)  # a stats message and a pong in the counters
            page.screenshot(path=str(HERE / "web.png"))
            browser.close()
        print(f"wrote {HERE / 'web.png'}")
    finally:
        for proc in (app, zmq):
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
