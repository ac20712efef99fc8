"""Screenshot of ``fractaltrain explore`` for the README (docs/images/explore.png).

Starts ``fractaltrain explore CONFIG`` on a free port, opens it in headless
Chromium (tests/cdp.py), optionally zooms into a window, waits for the sharp
image, clicks a pixel so the training curve shows, and saves a screenshot.

    python scripts/docs/explore_screenshot.py configs/demo.yaml docs/images/explore.png \
        --hash '-0.5,2.5,0.5,3.0;100;measure;spectral' --click 0.55,0.45
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from cdp import Browser, find_chromium  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("png", type=Path)
    ap.add_argument("--hash", default="", help="view as in the page's URL hash: x0,x1,y0,y1;steps;readout;palette")
    ap.add_argument("--click", default="0.5,0.5", help="pixel to inspect, as fractions of the view (from top-left)")
    ap.add_argument("--window-size", default="1280,800")
    ap.add_argument("--size", default="", help="the page's view WxH (default: what fits)")
    a = ap.parse_args()
    binary, why = find_chromium()
    if binary is None:
        sys.exit(why)
    # Serve from a scratch folder that sees the repository's configs/, so the page's commands read
    # as a user's would (configs/NAME.yaml, default --out) and no tiles land in the repository.
    work = Path(tempfile.mkdtemp(prefix="explore-shot-"))
    (work / "configs").symlink_to(ROOT / "configs")
    config = Path(a.config).resolve()
    rel = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
    proc = subprocess.Popen([sys.executable, "-m", "fractaltrain", "explore", str(rel), "--port", "0",
                             "--no-browser"], stdout=subprocess.PIPE, text=True, cwd=work)
    browser = None
    try:
        url = re.search(r"(http://\S+)", proc.stdout.readline()).group(1)
        w, h = (int(v) for v in a.window_size.split(","))
        browser = Browser(binary, w, h)
        query = f"?size={a.size}" if a.size else ""
        browser.call("Page.navigate", url=url + query + ("#" + a.hash if a.hash else ""))
        browser.wait_for("window.__explore && window.__explore.finals >= 1", timeout=600, poll=0.5)
        r = browser.eval("(() => { const r = document.getElementById('view').getBoundingClientRect();"
                         " return [r.left, r.top, r.width, r.height]; })()")
        fx, fy = (float(v) for v in a.click.split(","))
        x, y = r[0] + fx * r[2], r[1] + fy * r[3]
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            browser.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        browser.wait_for("!document.getElementById('plot-box').hidden", timeout=120)
        a.png.parent.mkdir(parents=True, exist_ok=True)
        height = browser.eval("document.documentElement.scrollHeight")
        a.png.write_bytes(browser.screenshot(clip={"x": 0, "y": 0, "width": w, "height": height}))
        print(f"wrote {a.png}")
    finally:
        if browser is not None:
            browser.close()
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
