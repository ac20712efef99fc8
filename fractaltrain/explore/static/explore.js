// fractaltrain explore: pan and zoom into a config's trainability landscape.
// Plain JavaScript, no framework, nothing loaded from elsewhere.  The server does all
// computing (through the tile store); this page keeps the view, draws what arrives,
// and cancels stale work by numbering its views (the server drops older ones).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $("view");
  const ctx = canvas.getContext("2d");
  const client = Math.random().toString(36).slice(2, 12) || "page";
  const LEVELS = [8, 4, 2, 1]; // progressive refinement: 1/8 of the size first, then sharper
  const DEBOUNCE_MS = 250;
  const state = { cfg: null, W: 0, H: 0, view: null, steps: 0, readout: "", palette: "spectral" };
  let seq = 0; // number of the newest view; the server refuses older ones (409)
  let abort = null;
  let shown = null; // {img, win}: the last image drawn, with its window
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

  // The config's view widened to the canvas aspect, keeping its units per pixel ratio
  // (the rule zoom uses for its first frame).
  function homeWindow() {
    const c = state.cfg;
    const [x0, x1] = c.x.range, [y0, y1] = c.y.range;
    const ux = (x1 - x0) / c.resolution[0], uy = (y1 - y0) / c.resolution[1];
    const s = Math.max((x1 - x0) / (state.W * ux), (y1 - y0) / (state.H * uy));
    const cx = 0.5 * (x0 + x1), cy = 0.5 * (y0 + y1);
    const hw = 0.5 * state.W * ux * s, hh = 0.5 * state.H * uy * s;
    return { x0: cx - hw, x1: cx + hw, y0: cy - hh, y1: cy + hh };
  }

  // The hash holds the whole view, so back/forward and bookmarks work: #x0,x1,y0,y1;steps;readout;palette
  function hashOf() {
    const v = state.view;
    return "#" + [v.x0, v.x1, v.y0, v.y1].map(String).join(",") + ";" + state.steps + ";" +
      state.readout + ";" + state.palette;
  }

  function fromHash() {
    const parts = decodeURIComponent(location.hash.slice(1)).split(";");
    const w = (parts[0] || "").split(",").map(Number);
    if (w.length !== 4 || !w.every(Number.isFinite) || !(w[0] < w[1] && w[2] < w[3])) return false;
    state.view = { x0: w[0], x1: w[1], y0: w[2], y1: w[3] };
    const steps = parseInt(parts[1], 10);
    if (steps >= 1) state.steps = steps;
    if (state.cfg.readouts.includes(parts[2])) state.readout = parts[2];
    if (state.cfg.palettes.includes(parts[3])) state.palette = parts[3];
    return true;
  }

  function toAxis(px, py, v) {
    v = v || state.view;
    return { x: v.x0 + (px / state.W) * (v.x1 - v.x0), y: v.y1 - (py / state.H) * (v.y1 - v.y0) };
  }

  function draw() {
    ctx.fillStyle = "#888";
    ctx.fillRect(0, 0, state.W, state.H);
    if (shown) {
      const v = state.view, s = shown.win;
      const sx = state.W / (v.x1 - v.x0), sy = state.H / (v.y1 - v.y0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(shown.img, (s.x0 - v.x0) * sx, (v.y1 - s.y1) * sy, (s.x1 - s.x0) * sx, (s.y1 - s.y0) * sy);
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
      x0: String(v.x0), x1: String(v.x1), y0: String(v.y0), y1: String(v.y1), w: String(w), h: String(h),
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
        trace.requests.push({ view: my, w, h, final, window: [view.x0, view.x1, view.y0, view.y1] });
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
        await show(r);
        if (my !== seq) return;
        setStatus(`${w}×${h}: ${r.tiles_computed} tile(s) trained, ${r.tiles_reused} from the store, ` +
          `${r.seconds.toFixed(1)} s; ${(100 * r.converged_fraction).toFixed(0)}% converged` +
          (final ? "" : " — refining…"));
        if (final) trace.finals += 1;
      }
    })();
  }

  async function show(r) {
    const img = new Image();
    img.src = r.image;
    await img.decode();
    shown = { img, win: { x0: r.window[0], x1: r.window[1], y0: r.window[2], y1: r.window[3] } };
    trace.images += 1;
    draw();
    $("where-x").textContent = "x " + r.labels.x;
    $("where-y").textContent = "y " + r.labels.y;
    $("where-depth").textContent = r.labels.depth;
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
    const rows = [[r.x.param + " (x)", r.x.value], [r.y.param + " (y)", r.y.value]]
      .concat(r.hyperparameters.filter(([n]) => !n.startsWith(r.x.param) && !n.startsWith(r.y.param)))
      .concat([[r.readout + " (readout)", r.value], ["steps trained", r.steps_trained]]);
    for (const [n, val] of rows) {
      const tr = t.insertRow();
      tr.insertCell().textContent = n;
      tr.insertCell().textContent = val === null ? "not finite" : String(val);
    }
    box.appendChild(t);
    if (!r.curve_matches_kernel) {
      const warn = document.createElement("div");
      warn.textContent = "note: the curve's measure differs from the kernel's value";
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
  let drag = null;
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const f = Math.pow(2, Math.max(-3, Math.min(3, e.deltaY / 300)));
    const a = toAxis(e.offsetX, e.offsetY);
    const v = state.view;
    state.view = { x0: a.x - (a.x - v.x0) * f, x1: a.x + (v.x1 - a.x) * f, y0: a.y - (a.y - v.y0) * f, y1: a.y + (v.y1 - a.y) * f };
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
      const v = drag.view, dx = ((x - drag.x) / state.W) * (v.x1 - v.x0), dy = ((y - drag.y) / state.H) * (v.y1 - v.y0);
      state.view = { x0: v.x0 - dx, x1: v.x1 - dx, y0: v.y0 + dy, y1: v.y1 + dy };
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
      const a = toAxis(Math.min(x, d.x), Math.min(y, d.y), d.view), b = toAxis(Math.max(x, d.x), Math.max(y, d.y), d.view);
      const v = d.view, s = Math.max((b.x - a.x) / (v.x1 - v.x0), (a.y - b.y) / (v.y1 - v.y0));
      const cx = 0.5 * (a.x + b.x), cy = 0.5 * (a.y + b.y);
      const hw = 0.5 * s * (v.x1 - v.x0), hh = 0.5 * s * (v.y1 - v.y0);
      state.view = { x0: cx - hw, x1: cx + hw, y0: cy - hh, y1: cy + hh };
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
        const cx = 0.5 * (w[0] + w[1]), cy = 0.5 * (w[2] + w[3]);
        const s = Math.max((w[1] - w[0]) / state.W, (w[3] - w[2]) / state.H);
        state.view = { x0: cx - 0.5 * s * state.W, x1: cx + 0.5 * s * state.W, y0: cy - 0.5 * s * state.H, y1: cy + 0.5 * s * state.H };
        go(true);
      });
    }
    for (const b of document.querySelectorAll("button[data-copy]")) b.addEventListener("click", () => copy(b.dataset.copy));
    window.addEventListener("popstate", () => { if (fromHash()) go(false); });
    go(false);
  }

  start();
})();
