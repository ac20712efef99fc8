// fractaltrain explore: pan and zoom into a config's trainability landscape.
// Plain JavaScript, no framework, nothing loaded from elsewhere.  The server does all
// computing (through the tile store); this page keeps the view, draws what arrives,
// and cancels stale work by numbering its views (the server drops older ones).
//
// The view is an exact centre (cx, cy: decimals held as BigInt, see "exact decimals")
// and half-extents (hw, hh: float64 numbers, whose relative precision is all a size
// needs).  30 decades deep the float64 edges of a view are all one number; the centre
// still moves by fractions of a pixel, and the server reads it exactly.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $("view");
  const ctx = canvas.getContext("2d");
  const client = Math.random().toString(36).slice(2, 12) || "page";
  const LEVELS = [8, 4, 2, 1]; // progressive refinement: 1/8 of the size first, then sharper
  const DEBOUNCE_MS = 250;
  const FLOOR_MARGIN = 1.05; // stop wheeling this far above the precision's floor
  const state = { cfg: null, W: 0, H: 0, view: null, steps: 0, readout: "", palette: "spectral", floor: null };
  let seq = 0; // number of the newest view; the server refuses older ones (409)
  let abort = null;
  let shown = null; // {img, win}: the last image drawn, with its view
  let pending = null; // debounce timer
  let picked = null; // {px, py} of the inspected pixel
  // What the page did, for tests and curious users (window.__explore in the console).
  const trace = (window.__explore = { requests: [], images: 0, finals: 0, errors: [] });

  async function getJSON(url, signal) {
    const r = await fetch(url, { signal });
    let body;
    try { body = await r.json(); } catch (e) { body = { error: r.statusText }; }
    if (!r.ok) {
      const err = new Error(body.error || r.statusText);
      err.status = r.status;
      throw err;
    }
    return body;
  }

  function setStatus(text, error) {
    $("status").textContent = text;
    $("status").className = error ? "error" : "";
  }

  // ---------------------------------------------------------------- exact decimals
  // A decimal is {m, e}: the BigInt m times 10^-e (e >= 0), exact at any length.
  const pow10 = (e) => 10n ** BigInt(e);
  function norm(m, e) {
    while (e > 0 && m % 10n === 0n) { m /= 10n; e -= 1; }
    return { m, e };
  }
  // A decimal string ("-1.25", "3e-21", as String(number) and the server write them) → decimal, or null.
  function dec(text) {
    const g = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,3}))?$/.exec(String(text).trim());
    if (!g || !(g[2] || g[3])) return null;
    const frac = g[3] || "";
    let m = BigInt((g[2] || "0") + frac), e = frac.length - (g[4] ? parseInt(g[4], 10) : 0);
    if (e < 0) { m *= pow10(-e); e = 0; }
    return norm(g[1] === "-" ? -m : m, e);
  }
  function align(a, b) {
    const e = Math.max(a.e, b.e);
    return [a.m * pow10(e - a.e), b.m * pow10(e - b.e), e];
  }
  const decAdd = (a, b) => { const [x, y, e] = align(a, b); return norm(x + y, e); };
  const decSub = (a, b) => { const [x, y, e] = align(a, b); return norm(x - y, e); };
  const decHalf = (a) => norm(a.m * 5n, a.e + 1);
  function decStr(d) {
    let s = (d.m < 0n ? -d.m : d.m).toString();
    if (d.e > 0) { s = s.padStart(d.e + 1, "0"); s = s.slice(0, -d.e) + "." + s.slice(-d.e); }
    return (d.m < 0n ? "-" : "") + s;
  }
  const decNum = (d) => Number(decStr(d)); // correctly rounded to float64
  // The float64 x as a decimal rounded to `places` decimal places (from its 17 significant digits).
  function decOf(x, places) {
    const d = dec(x.toExponential(16));
    if (d.e <= places) return d;
    const q = pow10(d.e - places), r = d.m % q;
    let m = d.m / q; // truncates towards zero
    if (2n * (r < 0n ? -r : r) >= q) m += d.m < 0n ? -1n : 1n;
    return norm(m, places);
  }
  // Decimal places that place a centre within a millionth of a pixel of a view of half-width hw.
  const places = (hw) => Math.max(0, Math.min(400, Math.ceil(6 - Math.log10((2 * hw) / state.W))));

  // The view moved by (ox, oy) axis units and scaled by f about its centre.
  function moved(v, ox, oy, f) {
    const hw = v.hw * f, hh = v.hh * f, p = places(hw);
    return { cx: decAdd(v.cx, decOf(ox, p)), cy: decAdd(v.cy, decOf(oy, p)), hw, hh };
  }
  function viewOf(cx, cy, hw, hh) { // from decimal strings (centre) and numbers (half-extents), or null
    const x = dec(cx), y = dec(cy);
    hw = Number(hw); hh = Number(hh);
    if (!x || !y || !(hw > 0 && hh > 0 && Number.isFinite(hw) && Number.isFinite(hh))) return null;
    return { cx: x, cy: y, hw, hh };
  }
  function fromEdges(x0, x1, y0, y1) { // a view from edges given as decimal strings or numbers
    const e = [x0, x1, y0, y1].map((v) => dec(String(v)));
    if (!e.every((v) => v)) return null;
    return viewOf(decStr(decHalf(decAdd(e[0], e[1]))), decStr(decHalf(decAdd(e[2], e[3]))),
      0.5 * (Number(x1) - Number(x0)), 0.5 * (Number(y1) - Number(y0)));
  }

  // The config's view widened to the canvas aspect, keeping its units per pixel ratio
  // (the rule zoom uses for its first frame).
  function homeWindow() {
    const c = state.cfg;
    const [x0, x1] = c.x.range, [y0, y1] = c.y.range;
    const ux = (x1 - x0) / c.resolution[0], uy = (y1 - y0) / c.resolution[1];
    const s = Math.max((x1 - x0) / (state.W * ux), (y1 - y0) / (state.H * uy));
    const home = fromEdges(...(c.x.range_exact || c.x.range), ...(c.y.range_exact || c.y.range));
    return { cx: home.cx, cy: home.cy, hw: 0.5 * state.W * ux * s, hh: 0.5 * state.H * uy * s };
  }

  // The hash holds the whole view, so back/forward and bookmarks work:
  // #c=CX,CY,HW,HH;steps;readout;palette (older bookmarks: #x0,x1,y0,y1;…)
  function hashOf() {
    const v = state.view;
    return "#c=" + [decStr(v.cx), decStr(v.cy), String(v.hw), String(v.hh)].join(",") + ";" + state.steps + ";" +
      state.readout + ";" + state.palette;
  }

  function fromHash() {
    const parts = decodeURIComponent(location.hash.slice(1)).split(";");
    const head = parts[0] || "";
    let v = null;
    if (head.startsWith("c=")) {
      const w = head.slice(2).split(",");
      if (w.length === 4) v = viewOf(...w);
    } else {
      const w = head.split(",").map(Number);
      if (w.length === 4 && w.every(Number.isFinite) && w[0] < w[1] && w[2] < w[3]) v = fromEdges(...w);
    }
    if (!v) return false;
    state.view = v;
    const steps = parseInt(parts[1], 10);
    if (steps >= 1) state.steps = steps;
    if (state.cfg.readouts.includes(parts[2])) state.readout = parts[2];
    if (state.cfg.palettes.includes(parts[3])) state.palette = parts[3];
    return true;
  }

  // Offset (axis units, float64) of canvas point (px, py) from the view's centre.
  function offset(px, py, v) {
    v = v || state.view;
    return { x: (px / state.W - 0.5) * 2 * v.hw, y: (0.5 - py / state.H) * 2 * v.hh };
  }

  function draw() {
    ctx.fillStyle = "#888";
    ctx.fillRect(0, 0, state.W, state.H);
    if (shown) {
      const v = state.view, s = shown.win;
      const sx = state.W / (2 * v.hw), sy = state.H / (2 * v.hh);
      const dx = decNum(decSub(s.cx, v.cx)), dy = decNum(decSub(s.cy, v.cy)); // exact, then rounded
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(shown.img, (dx - s.hw + v.hw) * sx, (v.hh - dy - s.hh) * sy, 2 * s.hw * sx, 2 * s.hh * sy);
    }
    if (picked && picked.win === state.view) {
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 1;
      ctx.strokeRect(picked.px - 4.5, picked.py - 4.5, 10, 10);
      ctx.strokeStyle = "#fff";
      ctx.strokeRect(picked.px - 5.5, picked.py - 5.5, 12, 12);
    }
  }

  function query(extra, w, h, final, view, v) {
    const q = new URLSearchParams({
      cx: decStr(v.cx), cy: decStr(v.cy), hw: String(v.hw), hh: String(v.hh), w: String(w), h: String(h),
      steps: String(state.steps), readout: state.readout, palette: state.palette, client, view: String(view),
      final: final ? "1" : "0",
    });
    for (const [k, val] of Object.entries(extra || {})) q.set(k, String(val));
    return q.toString();
  }

  function schedule() {
    draw();
    clearTimeout(pending);
    pending = setTimeout(() => go(true), DEBOUNCE_MS);
  }

  // Request the current view at increasing resolution; a newer view abandons this one.
  function go(push) {
    clearTimeout(pending);
    seq += 1;
    const my = seq;
    if (abort) abort.abort();
    abort = new AbortController();
    const signal = abort.signal;
    if (push) history.pushState(null, "", hashOf());
    else history.replaceState(null, "", hashOf());
    syncControls();
    draw();
    const view = state.view;
    (async () => {
      for (const k of LEVELS) {
        const w = Math.max(1, Math.ceil(state.W / k)), h = Math.max(1, Math.ceil(state.H / k));
        const final = k === 1;
        trace.requests.push({ view: my, w, h, final, window: [decStr(view.cx), decStr(view.cy), view.hw, view.hh] });
        setStatus(`computing ${w}×${h}…`);
        let r;
        try {
          r = await getJSON("/api/view?" + query({}, w, h, final, my, view), signal);
        } catch (e) {
          if (my !== seq || e.name === "AbortError" || e.status === 409) return;
          trace.errors.push(e.message);
          setStatus(e.message, true);
          return;
        }
        if (my !== seq) return;
        await show(r, view);
        if (my !== seq) return;
        setStatus(`${w}×${h}: ${r.tiles_computed} tile(s) trained, ${r.tiles_reused} from the store, ` +
          `${r.seconds.toFixed(1)} s; ${(100 * r.converged_fraction).toFixed(0)}% converged` +
          (final ? "" : " — refining…"));
        if (final) trace.finals += 1;
      }
    })();
  }

  async function show(r, view) {
    const img = new Image();
    img.src = r.image;
    await img.decode();
    shown = { img, win: view };
    trace.images += 1;
    trace.precision = r.precision;
    draw();
    $("where-x").textContent = "x " + r.labels.x;
    $("where-y").textContent = "y " + r.labels.y;
    $("where-depth").textContent = r.labels.depth;
    const left = r.floor.decades_left;
    $("where-precision").textContent = "trained in " + r.precision +
      (left === null ? "" : `; ${Math.max(0, left).toFixed(1)} decades to the ${r.floor.precision} floor`);
    $("where-precision").className = "mono " + (r.precision === "float64" ? "" : "deep");
    // The deepest half-width this size resolves here (a final image is at the page's size).
    if (r.w === state.W && r.h === state.H && left !== null) {
      state.floor = { hw: view.hw * Math.pow(10, -left) * FLOOR_MARGIN, precision: r.floor.precision };
    }
    const ul = $("warnings");
    ul.textContent = "";
    for (const w of r.warnings) {
      const li = document.createElement("li");
      li.textContent = w;
      ul.appendChild(li);
    }
    $("cmd-render").value = r.commands.render;
    if (!picked || picked.win !== state.view) $("cmd-zoom").value = r.commands.zoom;
  }

  // ---------------------------------------------------------------- pixel inspection
  async function inspect(px, py) {
    picked = { px, py, win: state.view };
    draw();
    $("pixel").textContent = "training this pixel…";
    let r;
    try {
      r = await getJSON("/api/pixel?" + query({ px, py }, state.W, state.H, true, seq, picked.win));
    } catch (e) {
      $("pixel").textContent = e.message;
      return;
    }
    if (!picked || picked.px !== px || picked.py !== py) return;
    const box = $("pixel");
    box.textContent = "";
    const phase = document.createElement("div");
    phase.className = r.converged ? "conv" : "div";
    phase.textContent = (r.converged ? "converged" : "diverged") +
      (r.diverged_at !== null ? ` (loss not finite at step ${r.diverged_at})` : "");
    box.appendChild(phase);
    const t = document.createElement("table");
    t.className = "hp mono";
    const rows = [[r.x.param + " (x)", r.x.exact || r.x.value], [r.y.param + " (y)", r.y.exact || r.y.value]]
      .concat(r.hyperparameters.filter(([n]) => !n.startsWith(r.x.param) && !n.startsWith(r.y.param)))
      .concat([[r.readout + " (readout)", r.value], ["steps trained", r.steps_trained], ["precision", r.precision]]);
    for (const [n, val] of rows) {
      const tr = t.insertRow();
      tr.insertCell().textContent = n;
      tr.insertCell().textContent = val === null ? "not finite" : String(val);
    }
    box.appendChild(t);
    if (r.curve_matches_kernel === false || r.curve_matches_kernel === null) {
      const warn = document.createElement("div");
      warn.textContent = r.curve_matches_kernel === false ? "note: the curve's measure differs from the kernel's value"
        : `note: the curve is trained in ${r.curve_precision} at the values rounded to it; ` +
          `the values above are the ${r.precision} kernel's`;
      box.appendChild(warn);
    }
    plot(r.curve, r.diverged_at);
    $("cmd-zoom").value = r.commands.zoom;
  }

  function svg(tag, attrs, text) {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // Normalised loss l_t / l_0 against step, log scale, drawn as SVG.
  function plot(curve, divergedAt) {
    const el = $("plot");
    el.textContent = "";
    $("plot-box").hidden = false;
    const W = 340, H = 180, L = 44, R = 8, T = 16, B = 22;
    const n = divergedAt === null ? curve.length : divergedAt + 1;
    const logs = curve.slice(0, n).map((v) => (v !== null && v > 0 ? Math.log10(v) : null));
    const finite = logs.filter((v) => v !== null);
    if (!finite.length) return;
    let lo = Math.floor(Math.min(0, ...finite)), hi = Math.ceil(Math.max(0, ...finite));
    if (hi === lo) hi = lo + 1;
    const X = (t) => L + (t / Math.max(1, curve.length - 1)) * (W - L - R);
    const Y = (l) => T + ((hi - l) / (hi - lo)) * (H - T - B);
    el.appendChild(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fafafa", stroke: "#ccc" }));
    const every = Math.max(1, Math.ceil((hi - lo) / 6));
    for (let d = lo; d <= hi; d += every) {
      el.appendChild(svg("line", { x1: L, x2: W - R, y1: Y(d), y2: Y(d), stroke: d === 0 ? "#999" : "#eee" }));
      el.appendChild(svg("text", { x: L - 4, y: Y(d) + 3, "text-anchor": "end" }, "1e" + d));
    }
    el.appendChild(svg("text", { x: L, y: H - 6 }, "0"));
    el.appendChild(svg("text", { x: W - R, y: H - 6, "text-anchor": "end" }, String(curve.length - 1)));
    el.appendChild(svg("text", { x: (L + W) / 2, y: H - 6, "text-anchor": "middle" }, "step"));
    el.appendChild(svg("text", { x: L, y: 11 }, "normalised loss  l_t / l_0  (log scale)"));
    let d = "";
    logs.forEach((l, t) => { if (l !== null) d += (d ? " L" : "M") + X(t).toFixed(1) + " " + Y(l).toFixed(1); });
    el.appendChild(svg("path", { d, fill: "none", stroke: "#2166ac", "stroke-width": 1.5 }));
    if (divergedAt !== null) {
      el.appendChild(svg("circle", { cx: X(divergedAt), cy: Y(hi), r: 3, fill: "#b2182b" }));
    }
  }

  // ---------------------------------------------------------------- mouse
  // The zoom factor f (< 1 zooms in) cut at the precision's floor; null (and a message) when already there.
  function limitZoom(v, f) {
    const floor = state.floor;
    if (f >= 1 || !floor || v.hw * f >= floor.hw) return f;
    if (v.hw <= floor.hw * 1.01) {
      setStatus(`${floor.precision} floor: neighbouring pixels cannot be told apart deeper than this at this ` +
        "size; zoom out or pan", true);
      return null;
    }
    return floor.hw / v.hw;
  }

  let drag = null;
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const v = state.view;
    const f = limitZoom(v, Math.pow(2, Math.max(-3, Math.min(3, e.deltaY / 300))));
    if (f === null) return;
    const o = offset(e.offsetX, e.offsetY); // the point under the cursor stays put
    state.view = moved(v, o.x * (1 - f), o.y * (1 - f), f);
    schedule();
  }, { passive: false });

  canvas.addEventListener("mousedown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    drag = { x: e.offsetX, y: e.offsetY, view: state.view, box: e.shiftKey, moved: false };
  });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const r = canvas.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    if (Math.abs(x - drag.x) + Math.abs(y - drag.y) > 3) drag.moved = true;
    if (!drag.moved) return;
    if (drag.box) {
      const b = $("box");
      b.hidden = false;
      b.style.left = Math.min(x, drag.x) + "px";
      b.style.top = Math.min(y, drag.y) + "px";
      b.style.width = Math.abs(x - drag.x) + "px";
      b.style.height = Math.abs(y - drag.y) + "px";
    } else {
      const v = drag.view;
      state.view = moved(v, -((x - drag.x) / state.W) * 2 * v.hw, ((y - drag.y) / state.H) * 2 * v.hh, 1);
      draw();
    }
  });
  window.addEventListener("mouseup", (e) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    const r = canvas.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    $("box").hidden = true;
    if (!d.moved) {
      if (x >= 0 && y >= 0 && x < state.W && y < state.H) inspect(Math.floor(x), Math.floor(y));
    } else if (d.box) {
      // box zoom: the box's centre, grown to the canvas aspect so nothing is stretched
      const a = offset(Math.min(x, d.x), Math.min(y, d.y), d.view);
      const b = offset(Math.max(x, d.x), Math.max(y, d.y), d.view);
      const v = d.view, s = limitZoom(v, Math.max((b.x - a.x) / (2 * v.hw), (a.y - b.y) / (2 * v.hh)));
      if (s === null) return;
      state.view = moved(v, 0.5 * (a.x + b.x), 0.5 * (a.y + b.y), s);
      go(true);
    } else {
      go(true);
    }
  });

  // ---------------------------------------------------------------- controls
  function syncControls() {
    $("readout").value = state.readout;
    $("palette").value = state.palette;
    $("steps").value = String(state.steps);
  }

  function fill(select, options) {
    for (const o of options) select.appendChild(new Option(o, o));
  }

  function copy(id) {
    const ta = $(id);
    ta.select();
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(ta.value).catch(() => {});
    else document.execCommand("copy");
  }

  async function start() {
    try {
      state.cfg = await getJSON("/api/config");
    } catch (e) {
      setStatus(e.message, true);
      return;
    }
    const c = state.cfg;
    $("name").textContent = c.name;
    $("name").title = c.description;
    fill($("readout"), c.readouts);
    fill($("palette"), c.palettes);
    $("steps").max = String(c.limits.max_steps);
    // The view size: ?size=WxH, or what fits the window, within the server's limits.
    const m = /(?:^|[?&])size=(\d+)x(\d+)/.exec(location.search);
    let W = m ? +m[1] : Math.floor(Math.min(900, Math.max(128, window.innerWidth - 460)));
    let H = m ? +m[2] : Math.floor(Math.min(720, Math.max(128, window.innerHeight - 90)));
    const shrink = Math.min(1, Math.sqrt(c.limits.max_pixels / (W * H)), c.limits.max_side / Math.max(W, H));
    state.W = canvas.width = Math.max(1, Math.floor(W * shrink));
    state.H = canvas.height = Math.max(1, Math.floor(H * shrink));
    state.steps = c.steps;
    state.readout = c.readout;
    if (!fromHash()) state.view = homeWindow();
    $("readout").addEventListener("change", (e) => { state.readout = e.target.value; go(true); });
    $("palette").addEventListener("change", (e) => { state.palette = e.target.value; go(true); });
    $("steps").addEventListener("change", (e) => {
      const s = parseInt(e.target.value, 10);
      if (s >= 1 && s <= c.limits.max_steps) { state.steps = s; picked = null; go(true); } else syncControls();
    });
    $("back").addEventListener("click", () => history.back());
    $("forward").addEventListener("click", () => history.forward());
    $("home").addEventListener("click", () => { state.view = homeWindow(); go(true); });
    // The config's named views (e.g. a published panel), widened to the canvas aspect about their centre.
    const names = Object.keys(c.views || {});
    if (names.length) {
      fill($("views"), names);
      $("views-box").hidden = false;
      $("views").addEventListener("change", (e) => {
        const w = c.views[e.target.value];
        e.target.value = "";
        if (!w) return;
        const s = Math.max((w[1] - w[0]) / state.W, (w[3] - w[2]) / state.H);
        const c = fromEdges(...w);
        state.view = { cx: c.cx, cy: c.cy, hw: 0.5 * s * state.W, hh: 0.5 * s * state.H };
        go(true);
      });
    }
    for (const b of document.querySelectorAll("button[data-copy]")) b.addEventListener("click", () => copy(b.dataset.copy));
    window.addEventListener("popstate", () => { if (fromHash()) go(false); });
    go(false);
  }

  start();
})();
