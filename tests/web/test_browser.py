"""The page in a real headless Chromium (Debian's, driven by Playwright), against a
real pystream serving an image stream and a ZMQ spectrum stream."""
from __future__ import annotations

import os
import shutil
import time

import pytest

from .helpers import Pystream, ZmqSim

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("PYSTREAM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)

pytestmark = [pytest.mark.pva, pytest.mark.web]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# a digest of the canvas' pixels, and whether it has any colour that is not gray
CANVAS_DIGEST = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0, lit = 0, colour = 0;
  for (let i = 0; i < d.length; i += 4) {
    sum = (sum * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007;
    if (d[i] || d[i + 1] || d[i + 2]) lit++;
    if (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2]) colour++;
  }
  return {w: c.width, h: c.height, sum, lit, colour, n: d.length / 4};
}"""


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def wait_until(page, js, timeout_s=30, arg=None):
    page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000)


def test_the_page_draws_frames_pauses_switches_colormap_and_shows_spectra(browser, home, pv_name,
                                                                           tmp_path):
    zmq = ZmqSim(home, rate=20)
    app = Pystream(["demo", "--offscreen", "--size", "320x240", "--pv", pv_name, "--web",
                    "127.0.0.1:0", "--zmq", zmq.endpoint, "--freq-range", "14.36,87.83",
                    "--exit-after", "170"], home)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(app.url)
        # frames drawn: the canvas takes the image's size, is not blank, and changes
        wait_until(page, "() => window.pystream.frames > 2 && document.getElementById('image').width === 320")
        first = page.evaluate(CANVAS_DIGEST, "image")
        assert (first["w"], first["h"]) == (320, 240)
        assert first["lit"] > 0.5 * first["n"], first
        wait_until(page, f"() => window.pystream.frames > {page.evaluate('window.pystream.frames') + 3}")
        second = page.evaluate(CANVAS_DIGEST, "image")
        assert second["sum"] != first["sum"], "the moving test pattern did not change on the canvas"
        assert first["colour"] == 0  # gray by default

        # Pause: frames stop, for this page (and everyone)
        page.click("#pause")
        wait_until(page, "() => document.getElementById('pause').textContent === 'Resume'")
        assert page.is_visible("#broadcast")
        paused_at = page.evaluate("window.pystream.frames")
        time.sleep(1.5)  # an absence needs a span of time to be seen
        assert page.evaluate("window.pystream.frames") <= paused_at + 1
        page.click("#pause")
        wait_until(page, f"() => window.pystream.frames > {paused_at + 3}")

        # colormap: the same frame in colour, from the LUT in the page
        page.select_option("#colormap", "viridis")
        wait_until(page, """() => { const c = document.getElementById('image');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 2]) return true; return false; }""")
        assert page.evaluate(CANVAS_DIGEST, "image")["colour"] > 0

        # the pixel value under the mouse comes from the server's real values
        box = page.locator("#image").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        wait_until(page, "() => /x \\d+, y \\d+: \\d/.test(document.getElementById('probe').textContent)")

        # spectra: the latest spectrum over a waterfall, frequency axis in MHz
        wait_until(page, "() => window.pystream.spectra && window.pystream.spectra.count > 5", 60)
        assert page.is_visible("#spectra-box")
        info = page.text_content("#spectra-info")
        assert "14.36–87.83 MHz" in info and "768 channels" in info, info
        spectrum = page.evaluate(CANVAS_DIGEST, "spectrum")
        waterfall = page.evaluate(CANVAS_DIGEST, "waterfall")
        assert spectrum["colour"] > 0 and waterfall["w"] == 768 and waterfall["colour"] > 0

        page.screenshot(path=str(tmp_path / "web.png"))
        assert (tmp_path / "web.png").stat().st_size > 10_000

        # Stop: a confirmation that says what it does, then the headless run ends
        page.click("#stop")
        assert "ends this pystream run" in page.text_content("#stop-text")
        page.click("#stop-confirm")
        assert app.wait_exit(60) == 0
        wait_until(page, "() => /reconnecting/.test(document.getElementById('conn').textContent)")
        assert not errors, errors
    finally:
        app.stop()
        zmq.stop()
