// Attention view (workbench/widgets/attention_view.py): every layer and head of one input is in the model's
// `weights` (float16, (blocks, heads, T, T)) and `rollout` ((blocks, T, T)) traits; the controls below only pick
// what to show, so a slider move is a redraw in this page, with no kernel round trip. `blocks` lists the layers
// present (all of them, or, past the size limit, the current one: Python sends another when `layer` changes).

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
  const heat = wbHeatmap(parts);
  const get = (n) => model.get(n);
  const set = (n, v) => { model.set(n, v); model.save_changes(); };
  const ctl = wbControls(parts.controls, [
    { name: "layer", kind: "slider", label: "layer", max: () => get("n_layers") - 1 },
    { name: "head", kind: "slider", label: "head", max: () => get("n_heads") - 1 },
    { name: "mean", kind: "check", label: "mean of heads" },
    { kind: "break" },
    { name: "view", kind: "toggle", label: "view",
      options: () => [["attention", "attention"], ["rollout", "rollout"]] },
    { name: "norm", kind: "select", label: "normalise", options: () => get("norms").map((n) => [n, n]) },
    { name: "colorscale", kind: "select", label: "colours",
      options: () => Object.keys(get("colorscales")).map((n) => [n, n]) },
  ], get, set);
  const png = wbEl("button", "wb-png", parts.controls.lastChild, "PNG");
  png.type = "button";
  png.title = "download the heat map as a PNG image";
  png.addEventListener("click", () => {
    const a = document.createElement("a");
    a.href = parts.canvas.toDataURL("image/png");
    a.download = "attention.png";
    a.click();
  });
  let data = null;                                       // decoded payload
  const luts = {};

  function decode() {
    data = { weights: wbF16(get("weights")), rollout: wbF16(get("rollout")), blocks: get("blocks") };
  }

  function draw() {
    ctl.refresh();
    const T = get("n_tokens"), nh = get("n_heads"), L = get("layer"), H = get("head");
    const mean = get("mean"), view = get("view"), norm = get("norm"), causal = get("causal");
    if (!T) { parts.note.textContent = "nothing computed yet"; return; }
    const b = data.blocks.indexOf(L);
    if (b < 0 || data.weights.length < (b + 1) * nh * T * T) {
      parts.note.textContent = `loading layer ${L} from the kernel…`;
      return;
    }
    parts.note.textContent = get("on_demand")
      ? `long input (${T} tokens): one layer at a time is sent by the kernel` : "";
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
    const z = wbNormalise(m, T, view === "rollout" ? "none" : norm, causal);
    let zmin = 0, zmax = 1;
    if (view !== "rollout" && norm === "log") {
      zmin = Infinity; zmax = -Infinity;
      for (let i = 0; i < size; i++) if (z[i] === z[i]) { zmin = Math.min(zmin, z[i]); zmax = Math.max(zmax, z[i]); }
      if (!(zmax > zmin)) { zmin = -6; zmax = 0; }
    }
    const cs = get("colorscale");
    const lut = luts[cs] || (luts[cs] = wbLut(get("colorscales")[cs]));
    const labels = get("tokens").map((t, i) => `${i}:${t}`);
    const np = get("n_prompt");
    heat.draw({
      z, rows: T, cols: T, xlabels: labels, ylabels: labels, xtitle: "key", ytitle: "query", lut, zmin, zmax,
      cbtitle: view !== "rollout" && norm === "log" ? "log10 w" : "weight", size: get("size"),
      lines: np < T ? [np] : [],
      hover: (r, c) => (z[r * T + c] === z[r * T + c]
        ? `query ${labels[r]}\nkey   ${labels[c]}\nvalue ${z[r * T + c].toFixed(3)}` : null),
    });
    const key = view === "rollout" ? `rollout L${L}` : `attention L${L} ${mean ? "mean" : "H" + H}`;
    parts.title.textContent = get("titles")[key] || key;        // titles come from Python (plots.attention)
    parts.canvas.dataset.shown = key;
  }

  let pending = false;
  const dataChanged = () => {                            // several traits arrive together: decode once
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; decode(); draw(); });
  };
  const offs = [
    wbListen(model, ["weights", "rollout", "blocks", "tokens", "n_tokens"], dataChanged),
    wbListen(model, ["layer", "head", "mean", "view", "norm", "colorscale", "n_layers", "n_heads", "titles",
                     "on_demand", "size"], () => data && draw()),
  ];
  decode();
  draw();
  return () => offs.forEach((off) => off());
}

export default { render };
