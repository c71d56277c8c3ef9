// Token -> expert view (workbench/widgets/routing_view.py): tokens in rows of `width`, each cell coloured by the
// expert the router chose (top-1), or k stacked cells per token (top-k). The chosen experts (`topk`, uint8/uint16),
// gate weights (`gates`, float16) and router scores (`scores`, float16, for the hover) of every checkpoint and
// layer are in the model once; `blocks` lists which (ckpt * n_layers + layer) they hold. Controls redraw here.

function render({ model, el }) {
  const parts = wbRoot(el, "wb-tokens-view");
  const legend = wbEl("div", "wb-legend", parts.root);
  parts.root.insertBefore(legend, parts.note);
  const get = (n) => model.get(n);
  const set = (n, v) => { model.set(n, v); model.save_changes(); };
  const replay = () => get("mode") === "replay";
  const ctl = wbControls(parts.controls, [
    { name: "ckpt", kind: "slider", label: "step", max: () => get("steps").length - 1,
      readout: (v) => get("steps")[v] || "", visible: replay },
    { name: "layer", kind: "slider", label: "layer", max: () => get("n_layers") - 1 },
    { name: "top", kind: "toggle", label: "show", options: () => [["top-1", "1"], ["top-k", "k"]],
      visible: () => !replay() },
  ], get, set);
  let data = null;

  function decode() {
    const b = wbBytes(get("topk"));
    data = {
      topk: get("expert_bytes") === 2 ? new Uint16Array(b.slice().buffer) : b,
      gates: wbF16(get("gates")), scores: wbF16(get("scores")), blocks: get("blocks"),
    };
    const pal = get("palette"), E = get("n_experts");
    legend.textContent = "";
    for (let e = 0; e < E; e++) {
      const item = wbEl("span", "", legend);
      wbEl("span", "wb-swatch", item).style.background = pal[e % pal.length];
      item.appendChild(document.createTextNode("E" + e));
    }
  }

  function draw() {
    ctl.refresh();
    const T = get("n_tokens"), k = get("top_k"), E = get("n_experts"), nl = get("n_layers");
    const L = get("layer"), c = replay() ? get("ckpt") : 0, kk = replay() || get("top") === "1" ? 1 : k;
    if (!T) { parts.note.textContent = "no tokens"; return; }
    const b = data.blocks.indexOf(c * nl + L);
    if (b < 0 || data.topk.length < (b + 1) * T * k) { parts.note.textContent = "loading from the kernel…"; return; }
    parts.note.textContent = get("on_demand") ? "large record: one layer at a time is sent by the kernel" : "";
    const width = get("width"), rows = Math.ceil(T / width), pal = get("palette").map(wbHex);
    const cw = 46, ch = kk === 1 ? 26 : 18, gap = 2, rowgap = kk === 1 ? 0 : 6;
    const ctx = wbCanvas(parts.canvas, width * (cw + gap) + 4, rows * (kk * ch + gap + rowgap) + 4);
    ctx.font = "10px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const tokens = get("tokens"), cells = [];
    for (let t = 0; t < T; t++) {
      const r = Math.floor(t / width), col = t % width;
      for (let j = 0; j < kk; j++) {
        const e = data.topk[(b * T + t) * k + j], rgb = pal[e % pal.length];
        const x = 2 + col * (cw + gap), y = 2 + r * (kk * ch + gap + rowgap) + j * ch;
        ctx.fillStyle = `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
        ctx.fillRect(x, y, cw, kk === 1 ? ch : ch - 1);
        ctx.fillStyle = wbText(rgb);
        let s = j === 0 ? tokens[t] : "E" + e;
        while (s.length > 1 && ctx.measureText(s).width > cw - 4) s = s.slice(0, -1);
        ctx.fillText(s, x + cw / 2, y + ch / 2);
        cells.push([x, y, cw, ch, t, j, e]);
      }
    }
    const sn = get("score_name");
    parts.canvas.onmousemove = (ev) => {
      const rect = parts.canvas.getBoundingClientRect(), x = ev.clientX - rect.left, y = ev.clientY - rect.top;
      const hit = cells.find(([cx, cy, w, h]) => x >= cx && x < cx + w && y >= cy && y < cy + h);
      if (!hit) { parts.tip.style.display = "none"; return; }
      const [, , , , t, j, e] = hit;
      let text = `rank ${j + 1}: E${e} (w=${data.gates[(b * T + t) * k + j].toFixed(2)})\n#${t} '${tokens[t]}'`;
      if (sn && data.scores.length >= (b + 1) * T * E) {
        text += `\nrouter ${sn}:`;
        for (let i = 0; i < E; i++) text += `\nE${i}: ${data.scores[(b * T + t) * E + i].toFixed(2)}`;
      }
      parts.tip.textContent = text;
      parts.tip.style.display = "block";
      parts.tip.style.left = Math.min(x + 14, rect.width - 160) + "px";
      parts.tip.style.top = (y + 14) + "px";
    };
    parts.canvas.onmouseleave = () => { parts.tip.style.display = "none"; };
    const key = replay() ? `C${c} L${L}` : `L${L} top-${kk === 1 ? "1" : "k"}`;
    parts.title.textContent = get("titles")[key] || key;        // titles come from Python
    parts.canvas.dataset.shown = key;
    parts.canvas.dataset.frame = String(Number(parts.canvas.dataset.frame) + 1);
  }

  let pending = false;
  const dataChanged = () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; decode(); draw(); });
  };
  const offs = [
    wbListen(model, ["topk", "gates", "scores", "blocks", "tokens", "n_experts", "palette"], dataChanged),
    wbListen(model, ["layer", "top", "ckpt", "width", "steps", "titles", "on_demand"], () => data && draw()),
  ];
  decode();
  draw();
  return () => offs.forEach((off) => off());
}

export default { render };
