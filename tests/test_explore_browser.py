"""``fractaltrain explore configs/demo.yaml`` in real headless Chromium (Debian's package).

Starts the command as a user would (``--port 0 --no-browser``), loads the page,
waits for the first image, checks that the screenshot shows both phases, sends
a wheel event and checks, in the server's own request log, that a deeper view
was requested.  Then opens a view 28 decades deep (a bookmark: exact centre,
half-extents) and wheels in until the page stops at double-double's floor.
Chromium is installed with apt-get when absent and we are root on Debian (as
the Slurm self-test does); otherwise the test is skipped with the
reason.  FRACTALTRAIN_SKIP_BROWSER=1 skips it.
"""

import io
import os
import re
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import imageio.v3 as iio
import numpy as np
import pytest

from cdp import Browser, find_chromium
from fractaltrain.render.colour import palette_table

ROOT = Path(__file__).resolve().parent.parent
SIZE = (192, 192)  # the page's view: small, so a 2-core CI machine finishes quickly


def chromium_or_skip() -> str:
    if os.environ.get("FRACTALTRAIN_SKIP_BROWSER") == "1":
        pytest.skip("FRACTALTRAIN_SKIP_BROWSER=1")
    path, why = find_chromium(install=True)
    if path is None:
        pytest.skip(why)
    return path


class Served:
    """``python -m fractaltrain explore … --verbose`` with its request log collected from stderr."""

    def __init__(self, out: Path):
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fractaltrain", "explore", "configs/demo.yaml", "--port", "0", "--no-browser",
             "--verbose", "--out", str(out)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"serving (http://127\.0\.0\.1:(\d+)/)", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"no address printed: {line!r} {self.proc.stderr.read()}")
        self.url, self.port = m.group(1), int(m.group(2))
        self.lines: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def views(self) -> list[dict]:
        """Query parameters of every /api/view request answered so far."""
        out = []
        for line in list(self.lines):
            m = re.search(r'"GET (/api/view\?\S+) HTTP', line)
            if m:
                out.append({k: v[0] for k, v in parse_qs(urlsplit(m.group(1)).query).items()})
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def width(v: dict) -> float:
    """Width of a requested view: the page sends an exact centre and half-extents (cx, cy, hw, hh)."""
    return 2 * float(v["hw"]) if "hw" in v else float(v["x1"]) - float(v["x0"])


def phases(rgb: np.ndarray) -> tuple[float, float]:
    """(diverged, converged) fractions of pixels that are Spectral palette colours.

    The palette runs from red (diverged, low entries) to blue (converged, high
    entries); each pixel is matched to its nearest entry.
    """
    table = palette_table("spectral").astype(np.int32)
    px = rgb[..., :3].reshape(-1, 3).astype(np.int32)[::7]
    d = ((px[:, None, :] - table[None, ::4, :]) ** 2).sum(-1)
    idx, dist = d.argmin(1) * 4, d.min(1)
    on = dist < 12**2
    return float(np.mean(on & (idx < 512))), float(np.mean(on & (idx >= 512)))


@pytest.mark.browser
def test_page_in_headless_chromium(tmp_path):
    binary = chromium_or_skip()
    served = Served(tmp_path / "out")
    browser = None
    try:
        browser = Browser(binary)
        t0 = time.time()
        browser.call("Page.navigate", url=served.url + f"?size={SIZE[0]}x{SIZE[1]}")
        browser.wait_for("window.__explore && window.__explore.images >= 1", timeout=60)
        first_image_s = time.time() - t0
        print(f"first image after {first_image_s:.1f} s")
        assert first_image_s < 60
        rect = browser.eval("(() => { const r = document.getElementById('view').getBoundingClientRect();"
                            " return {x: r.left, y: r.top, width: r.width, height: r.height}; })()")
        assert (rect["width"], rect["height"]) == SIZE
        shot = iio.imread(io.BytesIO(browser.screenshot(clip=rect)))
        diverged, converged = phases(shot)
        print(f"screenshot: {100 * diverged:.0f}% diverged colours, {100 * converged:.0f}% converged colours")
        assert diverged > 0.1 and converged > 0.1, (diverged, converged)
        assert browser.eval("window.__explore.errors.length") == 0

        home = served.views()[0]
        home_width = width(home)
        cx, cy = rect["x"] + 0.3 * rect["width"], rect["y"] + 0.4 * rect["height"]
        browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=cx, y=cy)
        browser.call("Input.dispatchMouseEvent", type="mouseWheel", x=cx, y=cy, deltaX=0, deltaY=-300)
        deadline = time.time() + 30
        deeper = []
        while time.time() < deadline and not deeper:
            deeper = [v for v in served.views() if width(v) < 0.9 * home_width]
            time.sleep(0.1)
        assert deeper, f"no deeper view requested; requests: {served.views()}"
        # a newer view (so the server drops the old one), and the old view never asked for the new window
        assert all(int(v["view"]) > int(home["view"]) for v in deeper), served.views()
        # the page shows the new window and its depth
        browser.wait_for("document.getElementById('where-depth').textContent.includes('0.3 decades')", timeout=30)
        # click a pixel: its phase, values and training curve appear
        for kind in ("mousePressed", "mouseReleased"):
            browser.call("Input.dispatchMouseEvent", type=kind, x=cx, y=cy, button="left", clickCount=1)
        browser.wait_for("!document.getElementById('plot-box').hidden", timeout=30)
        text = browser.eval("document.getElementById('pixel').textContent")
        assert "lr_input (x)" in text and ("converged" in text or "diverged" in text), text
        assert browser.eval("document.querySelectorAll('#plot path').length") == 1
        assert "fractaltrain zoom configs/demo.yaml --center=" in browser.eval("document.getElementById('cmd-zoom').value")
        deep_view(browser, served)
    finally:
        if browser is not None:
            browser.close()
        served.stop()


DEEP_CX = "1.0550677825516483077993881911560823"  # 34 digits: past float64, as a bookmark holds it
DEEP_CY = "2.2311346612023847758115467381124098"


def deep_view(browser: Browser, served: Served) -> None:
    """A view 28 decades deep trains in double-double; wheeling in stops at double-double's floor."""
    n = len(served.views())
    bookmark = f"?size=32x32#c={DEEP_CX},{DEEP_CY},1e-28,1e-28;5;measure;spectral"  # 5 steps: quick
    browser.call("Page.navigate", url=served.url + bookmark)
    browser.wait_for("window.__explore && window.__explore.finals >= 1", timeout=120)
    assert browser.eval("window.__explore.errors.length") == 0, browser.eval("window.__explore.errors")
    sent = [v for v in served.views()[n:] if v["w"] == "32"]
    assert sent and all(v["cx"] == DEEP_CX and v["cy"] == DEEP_CY for v in sent), sent  # every digit
    label = browser.eval("document.getElementById('where-precision').textContent")
    assert "double-double" in label, label
    rect = browser.eval("(() => { const r = document.getElementById('view').getBoundingClientRect();"
                        " return {x: r.left + 8, y: r.top + 24}; })()")  # left of and below the centre
    for _ in range(6):  # 8x per notch: far past the floor, which is about 2 decades down
        status = browser.eval("document.getElementById('status').textContent")
        if "floor" in status:
            break
        finals = browser.eval("window.__explore.finals")
        browser.call("Input.dispatchMouseEvent", type="mouseWheel", x=rect["x"], y=rect["y"], deltaX=0, deltaY=-900)
        browser.wait_for(f"window.__explore.finals > {finals} || "
                         "document.getElementById('status').textContent.includes('floor')", timeout=120)
    status = browser.eval("document.getElementById('status').textContent")
    assert "double-double floor" in status, status
    assert browser.eval("window.__explore.errors.length") == 0, browser.eval("window.__explore.errors")
    deep = min((v for v in served.views()[n:] if v["w"] == "32"), key=lambda v: float(v["hw"]))
    assert 1e-31 < float(deep["hw"]) < 1e-28, deep  # deeper than the bookmark, stopped at the floor
    # the centre moved towards the cursor by fractions of a 1e-28 view, exactly (no float64 in between)
    dx, dy = Fraction(deep["cx"]) - Fraction(DEEP_CX), Fraction(deep["cy"]) - Fraction(DEEP_CY)
    assert -1e-28 < dx < 0 and -1e-28 < dy < 0, (deep, float(dx), float(dy))
    warnings = browser.eval("document.getElementById('warnings').textContent")
    assert "double-double floor" in warnings, warnings
