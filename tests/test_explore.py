"""``fractaltrain explore``: the view API through a real HTTP client against a real server."""

import base64
import http.client
import io
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import imageio.v3 as iio
import numpy as np
import pytest
import yaml

from fractaltrain.config import load_config
from fractaltrain.compute.curve import loss_curve, measure_from_curve
from fractaltrain.explore.engine import Explorer
from fractaltrain.explore.params import Limits
from fractaltrain.explore.server import make_server
from fractaltrain.compute.kernel import run_pixels
from fractaltrain.problem import build_problem, pixel_hyperparams

SMALL = {
    "name": "small",
    "network": {"width": 4},
    "data": {"size": 12},
    "training": {"steps": 40},
    "axes": {"x": {"range": [-2, 5]}, "y": {"range": [-2, 5]}},
    "resolution": "24x16",
    "tile": 8,
}
VIEW = {"x0": -2.0, "x1": 5.0, "y0": -2.0, "y1": 5.0, "w": 24, "h": 16}


@pytest.fixture
def served(tmp_path):
    """A running explorer on a free port: (explorer, port, config path, output folder)."""
    cfg_path = tmp_path / "small.yaml"
    cfg_path.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "out"
    ex = Explorer(load_config(cfg_path), str(cfg_path), out, Limits(max_pixels=4096, max_side=128, max_steps=2000))
    server = make_server(ex, "127.0.0.1", 0)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield ex, server.server_address[1], cfg_path, out
    server.shutdown()
    server.server_close()


def get(port, path, headers=None):
    """(status, headers, body) of a GET sent with the path exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def api(port, endpoint, **params):
    status, _, body = get(port, f"/api/{endpoint}?" + urlencode(params))
    return status, json.loads(body)


def test_page_and_assets(served):
    ex, port, _, _ = served
    for path, ctype in (("/", "text/html"), ("/explore.js", "text/javascript"), ("/explore.css", "text/css")):
        status, headers, body = get(port, path)
        assert status == 200 and headers["Content-Type"].startswith(ctype) and body
        assert "default-src 'self'" in headers["Content-Security-Policy"]
    _, _, html = get(port, "/")
    assert b"http://" not in html and b"https://" not in html  # nothing loaded from elsewhere
    status, info = api(port, "config")
    assert status == 200 and info["name"] == "small" and info["x"]["param"] == "lr_input"


@pytest.mark.parametrize("path", [
    "/../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd", "//etc/passwd",
    "/explore.js/../../small.yaml", "/static/explore.js", "/index.html", "/api/../explore.js", "/api/",
    "/api/view/../../etc/passwd", "/out/tiles", "/small.yaml", "/.git/config", "http://example.com/",
    "/explore.js%00.html", "/api/config%2f..",
])
def test_path_tricks_are_404(served, path):
    ex, port, _, out = served
    status, _, body = get(port, path)
    assert status == 404, (path, status, body)
    assert not out.exists() or not any(p for p in out.rglob("*") if "tiles" not in p.parts)


def test_other_methods_and_hosts_refused(served):
    _, port, _, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/api/view", body=b"x")
    assert conn.getresponse().status in (405, 501)
    conn.close()
    # another Host (DNS rebinding): refused
    status, _, body = get(port, "/", headers={"Host": "evil.example:80"})
    assert status == 403 and b"Host" in body


@pytest.mark.parametrize("change, status, word", [
    ({"x0": None}, 400, "x0: missing"),
    ({"x0": "abc"}, 400, "x0: expected a number"),
    ({"x0": "nan"}, 400, "x0: must be finite"),
    ({"y1": "inf"}, 400, "y1: must be finite"),
    ({"x0": "1_0"}, 400, "x0: expected a number"),
    ({"x0": "6"}, 400, "need x0 < x1"),
    ({"y0": "400", "y1": "401"}, 400, "300 decades"),
    ({"w": "0"}, 400, "w: must be between"),
    ({"w": "-5"}, 400, "w: expected a whole number"),
    ({"h": "1.5"}, 400, "h: expected a whole number"),
    ({"steps": "0"}, 400, "steps: must be between"),
    ({"readout": "loss"}, 400, "readout: must be one of"),
    ({"palette": "viridis"}, 400, "palette: must be one of"),
    ({"client": "../x"}, 400, "client:"),
    ({"final": "yes"}, 400, "final:"),
    ({"bogus": "1"}, 400, "unknown parameter 'bogus'"),
    ({"w": "200"}, 413, "larger than this explorer allows"),
    ({"w": "100", "h": "100"}, 413, "larger than this explorer allows"),
    ({"w": "99999999999999"}, 400, "w: "),
    ({"steps": "5000"}, 413, "steps: 5000 is more than"),
    # pixel values float64 cannot hold: beyond 10**±300 (subnormal at -307.9, inf at 308.5), inf, 1e999
    ({"x0": "-400", "x1": "200"}, 400, "300 decades"),
    ({"x0": "-307.9"}, 400, "300 decades"),
    ({"y1": "308.5"}, 400, "300 decades"),
    ({"x0": "-1e308", "x1": "1e308"}, 400, "wider than float64 can represent"),
    ({"x0": "-inf"}, 400, "x0: must be finite"),
    ({"y0": "1e999"}, 400, "y0: must be finite"),
])
def test_bad_parameters_are_4xx_with_a_message(served, change, status, word):
    ex, port, _, out = served
    params = {k: str(v) for k, v in VIEW.items()}
    for k, v in change.items():
        if v is None:
            params.pop(k)
        else:
            params[k] = v
    got, body = api(port, "view", **params)
    assert got == status and word in body["error"], body
    assert not (out / "tiles").exists()  # nothing computed or written for a refused request


def test_widest_log_view_is_representable(served):
    """±300 decades (a window 600 decades wide) is the widest allowed, and every pixel value is a float64."""
    _, port, _, _ = served
    status, r = api(port, "view", x0=-300, x1=300, y0=-300, y1=300, w=8, h=8, steps=5)
    assert status == 200 and "1.000e-300" in r["labels"]["x"] and "1.000e+300" in r["labels"]["y"], r


def test_two_host_headers_are_refused(served):
    _, port, _, _ = served
    for second in ("evil.example", f"127.0.0.1:{port}"):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.putrequest("GET", "/api/config", skip_host=True)
            conn.putheader("Host", f"127.0.0.1:{port}")
            conn.putheader("Host", second)
            conn.endheaders()
            r = conn.getresponse()
            assert r.status == 400 and b"more than one Host header" in r.read()
        finally:
            conn.close()


def test_request_failures_are_short_messages_never_tracebacks(served, capfd, monkeypatch):
    """A tile path that is a folder, a full disk, a bug: 5xx with one line, the server keeps serving."""
    import errno

    ex, port, _, out = served
    monkeypatch.delenv("FRACTALTRAIN_DEBUG", raising=False)
    assert api(port, "view", **VIEW, steps=5)[0] == 200
    tile = sorted((out / "tiles").rglob("*.npz"))[-1]
    tile.unlink()
    tile.mkdir()  # a folder where the tile is written
    status, body = api(port, "view", **VIEW, steps=5)
    assert status == 500 and "cannot store tiles" in body["error"] and "Is a directory" in body["error"], body

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tile))

    monkeypatch.setattr(ex.store, "save", full)
    status, body = api(port, "view", **VIEW, steps=6)
    assert status == 507 and "No space left on device" in body["error"], body

    def bug(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ex, "view", bug)
    status, body = api(port, "view", **VIEW)
    assert status == 500 and body["error"].startswith("internal error (RuntimeError: boom)"), body
    assert get(port, "/")[0] == 200  # still serving
    err = capfd.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 3, err  # one line per failed request


def test_malformed_queries(served):
    _, port, _, _ = served
    assert get(port, "/api/view?x0=1&x0=2")[0] == 400
    assert get(port, "/api/view?x0")[0] == 400
    assert get(port, "/api/view?" + "&".join(f"a{i}=1" for i in range(100)))[0] == 400
    status, body = api(port, "pixel", **VIEW, px=24, py=0)
    assert status == 400 and "px: must be between 0 and 23" in body["error"]


def decode(image):
    assert image.startswith("data:image/png;base64,")
    return iio.imread(io.BytesIO(base64.b64decode(image.split(",", 1)[1])))


def test_view_through_the_tile_store_and_render_reuses_it(served, tmp_path):
    ex, port, cfg_path, out = served
    status, r = api(port, "view", **VIEW)
    assert status == 200
    img = decode(r["image"])
    assert img.shape == (16, 24, 3)
    assert r["tiles_computed"] == 6 and r["tiles_reused"] == 0
    assert 0 < r["converged_fraction"] < 1
    assert r["labels"]["x"] == "lr_input  1.000e-02 … 1.000e+05"
    assert r["labels"]["depth"] == "zoom 0.0 decades"
    # revisited: nothing trained; another readout or palette: nothing trained either
    for extra in ({}, {"readout": "final_loss"}, {"palette": "gray"}):
        status, again = api(port, "view", **VIEW, **extra)
        assert status == 200 and again["tiles_computed"] == 0 and again["tiles_reused"] == 6
    # the offered render command is the same grid: nothing left to train, identical picture
    cmd = r["commands"]["render"]
    assert "--window=-2.0,5.0,-2.0,5.0" in cmd and "--resolution 24x16" in cmd
    files_before = sorted(p.name for p in (out / "tiles").rglob("*.npz"))
    from typer.testing import CliRunner

    from fractaltrain.cli import app

    args = shlex.split(cmd)[1:] + ["--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "tiles").rglob("*.npz")) == files_before
    assert np.array_equal(iio.imread(out / "small.png"), img)


def test_pixel_value_and_curve_match_the_kernel(served):
    ex, port, _, _ = served
    api(port, "view", **VIEW)
    seen = set()
    for px, py in [(0, 0), (0, 15), (23, 0), (5, 10), (12, 8)]:
        status, r = api(port, "pixel", **VIEW, px=px, py=py)
        assert status == 200
        assert r["curve_matches_kernel"], (px, py)
        assert len(r["curve"]) == 40 and r["curve"][0] == 1.0
        seen.add(r["converged"])
        # the value is the stored tile's value of the pixel under the cursor (y up in the image)
        status, v = api(port, "view", **VIEW)
        cfg = ex.config_at(40)
        xv = np.array([r["x"]["value"]])
        yv = np.array([r["y"]["value"]])
        assert run_pixels(build_problem(cfg), pixel_hyperparams(cfg, xv, yv))[0, 0] == r["measure"]
        assert "fractaltrain zoom" in r["commands"]["zoom"] and f"--center={r['axis']['x']!r}," in r["commands"]["zoom"]
    assert seen == {True, False}
    # top-left pixel: largest output rate, smallest input rate
    _, r = api(port, "pixel", **VIEW, px=0, py=0)
    assert r["y"]["value"] > 1e4 and r["x"]["value"] < 0.1


@pytest.mark.parametrize("over", [{}, {"training": {"steps": 30, "batch": 4}}, {"network": {"width": 4, "depth": 3}}])
def test_curve_reproduces_kernel_measure_bitwise(over):
    from fractaltrain.config import config_from_dict

    cfg = config_from_dict({**SMALL, **over})
    problem = build_problem(cfg)
    rng = np.random.default_rng(1)
    xs, ys = 10 ** rng.uniform(-2, 5, 24), 10 ** rng.uniform(-2, 5, 24)
    hp = pixel_hyperparams(cfg, xs, ys)
    out = run_pixels(problem, hp)
    got = [measure_from_curve(loss_curve(problem, row)) for row in hp]
    assert got == list(out[:, 0])
    assert (out[:, 0] < 0).any() and (out[:, 0] > 0).any()


def test_stale_views_are_cancelled(served):
    ex, port, _, _ = served
    slow = dict(VIEW, w=64, h=64, steps=1500, client="c1", view=1)  # 64 tiles of 8x8
    result = {}
    t = threading.Thread(target=lambda: result.update(zip(("status", "body"), api(port, "view", **slow))))
    t.start()
    deadline = time.time() + 60
    while time.time() < deadline and not list((ex.outdir / "tiles").rglob("*.npz")):
        time.sleep(0.05)
    status, r = api(port, "view", **dict(VIEW, client="c1", view=2))
    assert status == 200
    t.join(60)
    assert result["status"] == 409 and "superseded" in result["body"]["error"]
    done = len(list((ex.outdir / "tiles").rglob("*.npz"))) - r["tiles_computed"]
    assert 0 < done < 64  # stopped part-way
    # an older view from the same page is refused at once; another page is independent
    assert api(port, "view", **dict(VIEW, client="c1", view=1))[0] == 409
    assert api(port, "view", **dict(VIEW, client="c2", view=1))[0] == 200
    assert [e["status"] for e in ex.log if e["client"] == "c1"] == [409, 200, 409]


def test_precision_warnings_near_the_float64_floor(served):
    ex, port, _, _ = served
    c = 1.2345
    for half, word in ((3e-14, "near the float64 floor"), (1e-15, "float64 floor: neighbouring")):
        status, r = api(port, "view", x0=c - half, x1=c + half, y0=c - half, y1=c + half, w=8, h=8, steps=5)
        assert status == 200 and any(word in w for w in r["warnings"]), r["warnings"]
    status, r = api(port, "view", **VIEW, steps=5)
    assert r["warnings"] == []


# a view 20 decades deep as the page sends it: the exact centre (past float64's digits) and half-extents
DEEP = {"cx": "1.2345678901234567890123456789", "cy": "0.98765432109876543210987654321",
        "hw": "3.5e-20", "hh": "3.5e-20", "w": 8, "h": 8, "steps": 5}


def test_view_given_as_an_exact_centre_is_the_same_grid(served):
    """A shallow view sent as centre and half-extents is the float view's grid (its tiles come back)."""
    _, port, _, _ = served
    status, r = api(port, "view", **VIEW, steps=5)
    assert status == 200 and r["precision"] == "float64" and r["window_exact"] == ["-2.0", "5.0", "-2.0", "5.0"]
    status, again = api(port, "view", cx="1.5", cy="1.5", hw="3.5", hh="3.5", w=24, h=16, steps=5)
    assert status == 200 and again["grid_key"] == r["grid_key"] and again["tiles_computed"] == 0, again
    assert again["labels"] == r["labels"] and again["center_exact"] == ["1.5", "1.5"]


def test_view_20_decades_deep_trains_in_double_double_and_render_reproduces_it(served):
    ex, port, cfg_path, out = served
    status, r = api(port, "view", **DEEP)
    assert status == 200, r
    assert r["precision"] == "double-double" and r["tiles_computed"] == 1
    assert r["window"][0] == r["window"][1]  # float64 edges collapse here; the exact ones do not
    assert r["window_exact"] == ["1.2345678901234567889773456789", "1.2345678901234567890473456789",
                                 "0.98765432109876543207487654321", "0.98765432109876543214487654321"]
    assert r["center_exact"] == [DEEP["cx"], DEEP["cy"]] and r["half"] == [3.5e-20, 3.5e-20]
    assert r["labels"]["depth"] == "zoom 20.0 decades"
    lo, hi = r["labels"]["x"].split("  ")[1].split(" … ")
    assert lo != hi and len(lo) > 20, r["labels"]  # the ends differ, in more digits than float64 has
    assert any("training in double-double" in w for w in r["warnings"]), r["warnings"]
    assert r["floor"]["precision"] == "double-double" and 5 < r["floor"]["decades_left"] < 15
    zoom = r["commands"]["zoom"]
    assert f"--center={DEEP['cx']},{DEEP['cy']}" in zoom and "--depth 20.07" in zoom, zoom
    # the render command is the same grid: exact edges, double-double, nothing left to train
    cmd = r["commands"]["render"]
    assert f"--window={','.join(r['window_exact'])}" in cmd and "--precision double-double" in cmd, cmd
    tiles_before = sorted(p.relative_to(out) for p in (out / "tiles").rglob("*.npz"))
    assert (out / "tiles" / r["grid_key"]).is_dir()
    from typer.testing import CliRunner

    from fractaltrain.cli import app

    res = CliRunner().invoke(app, shlex.split(cmd)[1:] + ["--quiet"])
    assert res.exit_code == 0, res.output
    assert sorted(p.relative_to(out) for p in (out / "tiles").rglob("*.npz")) == tiles_before
    assert np.array_equal(iio.imread(out / "small.png"), decode(r["image"]))


def test_pixel_of_a_double_double_view(served):
    """The clicked pixel's values are the double-double tile's; its curve is float64's and says so."""
    from fractaltrain.compute.landscape import compute_tile, grid_axes
    from fractaltrain.explore.params import parse_view

    ex, port, _, _ = served
    assert api(port, "view", **DEEP)[0] == 200
    status, r = api(port, "pixel", **DEEP, px=3, py=2)
    assert status == 200, r
    assert r["precision"] == "double-double" and r["curve_precision"] == "float64"
    assert r["curve_matches_kernel"] is None and len(r["curve"]) == 5
    assert r["x"]["exact"].startswith("1.716199970313950661") and r["x"]["value"] == float(r["x"]["exact"])
    p = parse_view({k: str(v) for k, v in DEEP.items()}, ex.cfg, ex.limits)
    grid = ex.grid(p)
    xv, yv = grid_axes(ex.config_at(5), grid)
    spec = next(iter(grid.tiles()))
    assert compute_tile(ex.problem(5), xv, yv, spec)[8 - 1 - 2, 3, 0] == r["measure"]
    # the pixel's coordinate, exact to a millionth of a pixel, is the zoom command's centre
    assert r["axis_exact"]["x"].startswith("1.23456789012345678")
    assert f"--center={r['axis_exact']['x']},{r['axis_exact']['y']}" in r["commands"]["zoom"]


def test_warnings_near_and_at_the_double_double_floor(served):
    _, port, _, _ = served
    near = dict(DEEP, hw="5e-30", hh="5e-30", w=4, h=4, steps=2)
    status, r = api(port, "view", **near)
    assert status == 200 and any("near the double-double floor" in w for w in r["warnings"]), r["warnings"]
    assert 0 < r["floor"]["decades_left"] < 2
    status, r = api(port, "view", **dict(near, hw="9e-32", hh="9e-32"))
    assert status == 200 and any(w.startswith("double-double floor") for w in r["warnings"]), r["warnings"]
    status, r = api(port, "view", **dict(near, hw="1e-33", hh="1e-33"))
    assert status == 400 and "even double-double cannot tell neighbouring pixels apart" in r["error"], r


@pytest.mark.parametrize("change, word", [
    ({"cx": "abc"}, "cx: expected a decimal number"),
    ({"cx": "1_0"}, "cx: expected a decimal number"),
    ({"cy": "nan"}, "cy: expected a finite decimal number"),
    ({"cx": "1e500"}, "cx: expected a finite decimal number"),
    ({"cx": "1" * 300}, "cx: expected a decimal number of at most 200 characters"),
    ({"hw": "0"}, "hw: the half-width must be positive"),
    ({"hh": "-1e-20"}, "hh: the half-height must be positive"),
    ({"cy": None}, "cy: missing"),
    ({"cx": "299.9999", "hw": "0.01"}, "300 decades"),
    ({"x0": "1.0"}, "not both"),
])
def test_bad_exact_centres_are_400_with_a_message(served, change, word):
    _, port, _, out = served
    params = {k: str(v) for k, v in DEEP.items()}
    for k, v in change.items():
        if v is None:
            params.pop(k)
        else:
            params[k] = v
    status, body = api(port, "view", **params)
    assert status == 400 and word in body["error"] and "\n" not in body["error"], body
    assert not (out / "tiles").exists()


def test_cli_serves_on_loopback_only(tmp_path):
    cfg_path = tmp_path / "small.yaml"
    cfg_path.write_text(yaml.safe_dump(SMALL))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fractaltrain", "explore", str(cfg_path), "--port", "0", "--no-browser",
         "--out", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "serving http://127.0.0.1:" in line, line + proc.stderr.read()
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        assert get(port, "/")[0] == 200
        assert get(port, "/../../etc/passwd")[0] == 404
        # not reachable on this machine's other addresses
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.connect(("10.255.255.255", 1))
                other = s.getsockname()[0]
            except OSError:
                other = None
        if other and not other.startswith("127."):
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=2).close()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("args, word", [
    (["--port", "70000"], "--port: must be between 0 and 65535"),
    (["--max-pixels", "0"], "--max-pixels: must be >= 1"),
    (["--host", "256.1.1.1"], "--host/--port: cannot listen"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, word):
    from typer.testing import CliRunner

    from fractaltrain.cli import app

    cfg_path = tmp_path / "small.yaml"
    cfg_path.write_text(yaml.safe_dump(SMALL))
    res = CliRunner().invoke(app, ["explore", str(cfg_path), "--no-browser", *args])
    assert res.exit_code == 2
    assert word in res.output and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize("make, word", [
    (lambda t: (t / "afile").write_text("x") and t / "afile", "exists and is not a folder"),
    (lambda t: (t / "afile").write_text("x") and t / "afile" / "sub", "Not a directory"),
    (lambda t: (t / "o" / "tiles").parent.mkdir() or (t / "o" / "tiles").write_text("x") and t / "o",
     "tiles exists and is not a folder"),
    (lambda t: Path("/proc/fractaltrain-test/out"), "cannot write tiles into"),
])
def test_cli_refuses_a_bad_out_before_serving(tmp_path, make, word):
    """--out must be a folder that can be created and written, checked before the server starts."""
    from typer.testing import CliRunner

    from fractaltrain.cli import app

    cfg_path = tmp_path / "small.yaml"
    cfg_path.write_text(yaml.safe_dump(SMALL))
    out = make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    res = CliRunner().invoke(app, ["explore", str(cfg_path), "--no-browser", "--port", "0", "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: --out:") and word in res.output and "serving" not in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_cli_refuses_a_read_only_out(tmp_path):
    from typer.testing import CliRunner

    from fractaltrain.cli import app

    cfg_path = tmp_path / "small.yaml"
    cfg_path.write_text(yaml.safe_dump(SMALL))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        res = CliRunner().invoke(app, ["explore", str(cfg_path), "--no-browser", "--port", "0", "--out", str(ro)])
    finally:
        ro.chmod(0o755)
    assert res.exit_code == 2 and res.output.startswith("error: --out:") and "serving" not in res.output


def test_named_views_are_offered(tmp_path):
    from fractaltrain.config import config_from_dict, view_window

    cfg = config_from_dict({**SMALL, "views": {"panel": {"x": [1.0, 2.0], "y": [3.0, 4.0]}}})
    info = Explorer(cfg, "small.yaml", tmp_path / "out").config_info()
    assert info["views"] == {"panel": list(view_window(cfg, "panel"))} == {"panel": [1.0, 2.0, 3.0, 4.0]}
    assert not (tmp_path / "out").exists()  # making an explorer writes nothing


def test_explore_takes_the_device_option(tmp_path):
    """explore trains through the same device door as render: --device is checked before anything is served."""
    from typer.testing import CliRunner

    from fractaltrain.cli import app

    demo = str(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
    r = CliRunner().invoke(app, ["explore", demo, "--device", "gpu", "--out", str(tmp_path / "o"),
                                 "--no-browser"], catch_exceptions=False)
    assert r.exit_code == 2 and "--device" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
