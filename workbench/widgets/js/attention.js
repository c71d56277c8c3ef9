// Attention view (workbench/widgets/attention_view.py): every layer and head of one input is in the model's
// `weights` (float16, (blocks, heads, T, T)) and `rollout` ((blocks, T, T)) traits; the controls below only pick
// what to show, so a slider move is a redraw in this page, with no kernel round trip. `blocks` lists the layers
// present (all of them, or, past the size limit, the current one: Python sends another when `layer` changes).
// Four pictures of the same data (`view`): one head's heat map, the rollout, the model grid (every layer x head;
// js/heads.js wbGrid) and the head view (lines from queries to keys; wbLines). Hovering and clicking the canvas
// are handled here too: a grid cell click selects that layer/head, a head-view token click pins that query.

function wbNormalise(m, T, norm, causal) {
  // as workbench.plots.attention.normalize_map: one (T, T) map -> the values shown (NaN above the diagonal)
  const z = new Float32Array(m);
  for (let q = 0; q < T; q++) {
    const o = q * T;
    if (norm === "row max") {
      let mx = 1e-12;
      for (let k = 0; k < T; k++) mx = Math.max(mx, z[o + k]);
      for (let k = 0; k < T; k++) z[o + k] /= mx;
    } else if (norm === "drop first") {
      z[o] = 0;
      let s = 0;
      for (let k = 0; k < T; k++) s += z[o + k];
      s = Math.max(s, 1e-12);
      for (let k = 0; k < T; k++) z[o + k] /= s;
    } else if (norm === "log") {
      for (let k = 0; k < T; k++) z[o + k] = Math.log10(Math.max(z[o + k], 1e-6));
    }
    if (causal) for (let k = q + 1; k < T; k++) z[o + k] = NaN;
  }
  return z;
}

function render({ model, el }) {
  const parts = wbRoot(el, "wb-attention-view");
  const heat = wbHeatmap(parts), grid = wbGrid(parts), lines = wbLines(parts);
  const get = (n) => model.get(n);
  const set = (n, v) => { model.set(n, v); model.save_changes(); };
  const is = (...views) => () => views.includes(get("view"));
  const ctl = wbControls(parts.controls, [
    { name: "layer", kind: "slider", label: "layer", max: () => get("n_layers") - 1 },
    { name: "head", kind: "slider", label: "head", max: () => get("n_heads") - 1, visible: is("attention", "grid") },
    { name: "mean", kind: "check", label: "mean of heads", visible: is("attention") },
    { name: "heads", kind: "multi", label: "heads", visible: is("head view"),
      options: () => [...Array(get("n_heads")).keys()].map((h) => ["H" + h, h]),
      colors: () => [...Array(get("n_heads")).keys()].map((h) => get("head_colors")[h % get("head_colors").length]) },
    { name: "threshold", kind: "slider", label: "threshold", max: () => 0.95, step: 0.01, visible: is("head view"),
      readout: (v) => v.toFixed(2) },
    { name: "query", kind: "slider", label: "query", min: () => -1, max: () => get("n_tokens") - 1,
      visible: is("head view"), readout: (v) => (v < 0 ? "all" : `${v}:${wbTrim(get("tokens")[v] || "", 12)}`) },
    { kind: "break" },
    { name: "view", kind: "toggle", label: "view",
      options: () => [["attention", "attention"], ["rollout", "rollout"], ["grid", "grid"],
                      ["head view", "head view"]] },
    { name: "norm", kind: "select", label: "normalise", options: () => get("norms").map((n) => [n, n]),
      visible: is("attention", "grid") },
    { name: "colorscale", kind: "select", label: "colours", visible: is("attention", "rollout", "grid"),
      options: () => Object.keys(get("colorscales")).map((n) => [n, n]) },
  ], get, set);
  const png = wbEl("button", "wb-png", parts.controls.lastChild, "PNG");
  png.type = "button";
  png.title = "download the picture as a PNG image";
  png.addEventListener("click", () => {
    const a = document.createElement("a");
    a.href = parts.canvas.toDataURL("image/png");
    a.download = "attention.png";
    a.click();
  });
  let data = null;                                       // decoded payload
  let version = 0;                                       // bumped per payload: the grid's image cache key
  let hover = null;                                      // head view: {side: "q" | "k", i} under the mouse
  const luts = {};

  function decode() {
    data = { weights: wbF16(get("weights")), rollout: wbF16(get("rollout")), blocks: get("blocks") };
    version += 1;
  }

  const lutOf = (cs) => luts[cs] || (luts[cs] = wbLut(get("colorscales")[cs]));
  const labelsOf = () => get("tokens").map((t, i) => `${i}:${t}`);

  function shownKey() {
    // what the canvas shows, as Python's AttentionView.shown() names it
    const view = get("view"), L = get("layer");
    if (view === "rollout") return `rollout L${L}`;
    if (view === "grid") return `grid L${L} H${get("head")}`;
    if (view === "head view") {
      const sel = hover ? `${hover.side}${hover.i}` : get("query") >= 0 ? `q${get("query")}` : "all";
      return `head view L${L} H${get("heads").join(",")} ${sel} t${Math.round(get("threshold") * 100)}`;
    }
    return `attention L${L} ${get("mean") ? "mean" : "H" + get("head")}`;
  }

  function titleKey() {
    const view = get("view"), L = get("layer");
    if (view === "grid") return `grid L${L} H${get("head")}`;
    if (view === "head view") return `head view L${L}`;
    return shownKey();
  }

  function draw() {
    ctl.refresh();
    const T = get("n_tokens"), nh = get("n_heads"), L = get("layer"), view = get("view");
    if (!T) { parts.note.textContent = "nothing computed yet"; return; }
    const b = data.blocks.indexOf(L);
    if (b < 0 || data.weights.length < (b + 1) * nh * T * T) {
      parts.note.textContent = `loading layer ${L} from the kernel…`;
      return;
    }
    const onDemand = get("on_demand");
    parts.note.textContent = !onDemand ? ""
      : view === "grid" ? `long input (${T} tokens): the grid shows the layer the kernel sent (move the layer slider)`
        : `long input (${T} tokens): one layer at a time is sent by the kernel`;
    if (view === "head view" && !get("heads").length) parts.note.textContent = "no head selected: switch one on above";
    parts.canvas.style.cursor = view === "grid" || view === "head view" ? "pointer" : "";
    if (view === "grid") drawGrid(T, nh);
    else if (view === "head view") drawLines(T, nh, b);
    else drawMap(T, nh, b);
    const key = titleKey();
    parts.title.textContent = get("titles")[key] || key;        // titles come from Python (plots.attention)
    parts.canvas.dataset.shown = shownKey();
  }

  function drawGrid(T, nh) {
    heat.forget(); lines.forget();
    const norm = get("norm"), causal = get("causal"), cs = get("colorscale"), size = T * T;
    const rows = data.blocks.slice();
    const cell = Math.max(24, Math.min(140, Math.floor((get("size") * 1.5) / Math.max(nh, rows.length))));
    grid.draw({
      key: `${version}|${norm}|${cs}|${cell}`, rows, nh, T, cell, lut: lutOf(cs),
      map: (b, h) => wbNormalise(data.weights.subarray((b * nh + h) * size, (b * nh + h + 1) * size), T, norm, causal),
      zrange: norm === "log" ? null : [0, 1], cbtitle: norm === "log" ? "log10 w" : "weight",
      selected: [get("layer"), get("head")],
    });
  }

  function drawLines(T, nh, b) {
    heat.forget(); grid.forget();
    const w = data.weights, base = b * nh;
    lines.draw({
      T, labels: get("tokens"), heads: get("heads").filter((h) => h < nh), colors: get("head_colors"),
      weight: (h, q, k) => w[((base + h) * T + q) * T + k], threshold: get("threshold"), pinned: get("query"),
      hover, size: get("size"),
    });
  }

  function drawMap(T, nh, b) {
    grid.forget(); lines.forget();
    const H = get("head"), mean = get("mean"), view = get("view"), norm = get("norm");
    const size = T * T;
    let m;
    if (view === "rollout") {
      m = data.rollout.subarray(b * size, (b + 1) * size);
    } else if (mean) {
      m = new Float32Array(size);
      for (let h = 0; h < nh; h++) {
        const src = data.weights.subarray((b * nh + h) * size, (b * nh + h + 1) * size);
        for (let i = 0; i < size; i++) m[i] += src[i];
      }
      for (let i = 0; i < size; i++) m[i] /= nh;
    } else {
      m = data.weights.subarray((b * nh + H) * size, (b * nh + H + 1) * size);
    }
    const z = wbNormalise(m, T, view === "rollout" ? "none" : norm, get("causal"));
    let zmin = 0, zmax = 1;
    if (view !== "rollout" && norm === "log") {
      zmin = Infinity; zmax = -Infinity;
      for (let i = 0; i < size; i++) if (z[i] === z[i]) { zmin = Math.min(zmin, z[i]); zmax = Math.max(zmax, z[i]); }
      if (!(zmax > zmin)) { zmin = -6; zmax = 0; }
    }
    const labels = labelsOf();
    const np = get("n_prompt");
    heat.draw({
      z, rows: T, cols: T, xlabels: labels, ylabels: labels, xtitle: "key", ytitle: "query",
      lut: lutOf(get("colorscale")), zmin, zmax,
      cbtitle: view !== "rollout" && norm === "log" ? "log10 w" : "weight", size: get("size"),
      lines: np < T ? [np] : [],
      hover: (r, c) => (z[r * T + c] === z[r * T + c]
        ? `query ${labels[r]}\nkey   ${labels[c]}\nvalue ${z[r * T + c].toFixed(3)}` : null),
    });
  }

  // the grid and the head view answer the mouse here (the heat map's own hover is in wbHeatmap)
  const at = (ev) => {
    const r = parts.canvas.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top, r];
  };
  parts.canvas.addEventListener("mousemove", (ev) => {
    const view = get("view");
    if (!data || (view !== "grid" && view !== "head view")) return;
    const [x, y, r] = at(ev);
    if (view === "head view") {
      const h = lines.hit(x, y);
      if (JSON.stringify(h) !== JSON.stringify(hover)) { hover = h; draw(); }
      return;
    }
    const c = grid.hit(x, y), tip = parts.tip;
    if (!c) { tip.style.display = "none"; return; }
    const T = get("n_tokens"), nh = get("n_heads"), b = data.blocks.indexOf(c.layer), labels = labelsOf();
    const v = data.weights[((b * nh + c.head) * T + c.q) * T + c.k];
    tip.textContent = `layer ${c.layer} head ${c.head}\nquery ${labels[c.q]}\nkey   ${labels[c.k]}\n`
      + (v === v && !(get("causal") && c.k > c.q) ? `weight ${v.toFixed(3)}` : "(masked)");
    tip.style.display = "block";
    tip.style.left = Math.min(x + 14, r.width - 180) + "px";
    tip.style.top = (y + 14) + "px";
  });
  parts.canvas.addEventListener("mouseleave", () => {
    parts.tip.style.display = "none";
    if (hover) { hover = null; if (data) draw(); }
  });
  parts.canvas.addEventListener("click", (ev) => {
    const view = get("view");
    if (!data) return;
    const [x, y] = at(ev);
    if (view === "grid") {
      const c = grid.hit(x, y);
      if (c) { model.set("layer", c.layer); model.set("head", c.head); model.save_changes(); }
    } else if (view === "head view") {
      const h = lines.hit(x, y);
      if (h && h.side === "q") set("query", get("query") === h.i ? -1 : h.i);
    }
  });

  let pending = false;
  const dataChanged = () => {                            // several traits arrive together: decode once
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; hover = null; decode(); draw(); });
  };
  const offs = [
    wbListen(model, ["weights", "rollout", "blocks", "tokens", "n_tokens"], dataChanged),
    wbListen(model, ["layer", "head", "mean", "view", "norm", "colorscale", "n_layers", "n_heads", "titles",
                     "on_demand", "size", "heads", "threshold", "query", "head_colors"], () => data && draw()),
  ];
  decode();
  draw();
  return () => offs.forEach((off) => off());
}

export default { render };
