// Prompt-style grid view (workbench/widgets/prompting_view.py PromptView; after common.js). The model's `data`
// trait holds, for every aspect value and metric, each (model, style) cell's mean, bootstrap interval and row mean;
// the controls here (aspect, value, metric, ticked models and styles, the ringed style) only pick what to show: a
// change is a redraw in this page, with no kernel round trip. Their values are traits too (a reload restores them).
// Pictures: the per-value line graph (score across styles, one line per model, "-it" models dotted, whiskers), the
// model x style heat map, and the best-style table (best of the ticked styles, runner-up and margin per model).

function wbStyleLines(parts) {
  // draw({styles, series: [{name, color, dotted, mean, low, high}], ring, ytitle, width, height})
  let g = null;
  wbHover(parts, (x, y) => (g ? wbNearest(g.pts, x, y, 10) : null));
  function draw(o) {
    const width = o.width || 760, n = o.styles.length;
    const ctx = wbCanvas(parts.canvas, width, 10);
    ctx.font = "11px sans-serif";
    const below = o.styles.reduce((m, s) => Math.max(m, ctx.measureText(s).width), 0) * 0.5 + 40;
    let lx = 0, rows = 1;                                // legend rows under the x axis
    for (const s of o.series) {
      const w = ctx.measureText(s.name).width + 40;
      if (lx + w > width - 60) { rows += 1; lx = 0; }
      lx += w;
    }
    const height = 12 + 300 + below + rows * 18 + 8;
    const c = wbCanvas(parts.canvas, width, height);
    const box = { x: 56, y: 12, w: width - 56 - 20, h: 300 };
    const Y = wbYAxis(c, box, -0.03, 1.03, o.ytitle);
    const slot = box.w / Math.max(1, n), X = (i) => box.x + slot * (i + 0.5);
    c.fillStyle = "#333";
    c.textAlign = "right";
    c.textBaseline = "middle";
    o.styles.forEach((s, i) => {
      c.save();
      c.translate(X(i), box.y + box.h + 8);
      c.rotate(-Math.PI / 6);
      c.fillText(s, 0, 0);
      c.restore();
    });
    c.textAlign = "center";
    c.fillText("prompt style", box.x + box.w / 2, box.y + box.h + below - 8);
    const pts = [];
    for (const s of o.series) {
      c.strokeStyle = s.color;
      c.fillStyle = s.color;
      c.lineWidth = 2;
      c.setLineDash(s.dotted ? [2, 3] : []);
      c.beginPath();
      let on = false;
      s.mean.forEach((v, i) => {
        if (v === null) { on = false; return; }
        if (on) c.lineTo(X(i), Y(v)); else c.moveTo(X(i), Y(v));
        on = true;
      });
      c.stroke();
      c.setLineDash([]);
      c.lineWidth = 1;
      s.mean.forEach((v, i) => {
        if (v === null) return;
        const x = X(i), y = Y(v);
        c.beginPath();                                   // the interval's whisker
        c.moveTo(x, Y(s.low[i])); c.lineTo(x, Y(s.high[i]));
        c.moveTo(x - 3, Y(s.low[i])); c.lineTo(x + 3, Y(s.low[i]));
        c.moveTo(x - 3, Y(s.high[i])); c.lineTo(x + 3, Y(s.high[i]));
        c.stroke();
        c.beginPath();
        if (s.dotted) { c.moveTo(x, y - 5); c.lineTo(x + 5, y); c.lineTo(x, y + 5); c.lineTo(x - 5, y); c.closePath(); }
        else c.arc(x, y, 4, 0, 2 * Math.PI);
        c.fill();
        pts.push({ x, y, text: `${s.name}\n${o.styles[i]}: ${v.toFixed(3)} (95% CI ${s.low[i].toFixed(3)}-` +
                               `${s.high[i].toFixed(3)})` });
        if (o.styles[i] === o.ring) {                   // the preview's style, ringed
          c.strokeStyle = "#000";
          c.lineWidth = 2;
          c.beginPath(); c.arc(x, y, 9, 0, 2 * Math.PI); c.stroke();
          c.lineWidth = 1;
          c.strokeStyle = s.color;
        }
      });
    }
    let ly = box.y + box.h + below + 10;                 // legend
    lx = box.x;
    c.textAlign = "left";
    for (const s of o.series) {
      const w = c.measureText(s.name).width + 40;
      if (lx + w > width - 20) { lx = box.x; ly += 18; }
      c.strokeStyle = s.color;
      c.lineWidth = 2;
      c.setLineDash(s.dotted ? [2, 3] : []);
      c.beginPath(); c.moveTo(lx, ly); c.lineTo(lx + 22, ly); c.stroke();
      c.setLineDash([]);
      c.lineWidth = 1;
      c.fillStyle = "#333";
      c.fillText(s.name, lx + 26, ly);
      lx += w;
    }
    g = { pts };
    parts.canvas.dataset.frame = String(Number(parts.canvas.dataset.frame) + 1);
  }
  return { draw };
}

function render({ model, el }) {
  const root = wbEl("div", "wb-view wb-prompt-view", el);
  root.addEventListener("keydown", (e) => {
    const cell = (e.key === "Enter" && (e.shiftKey || e.ctrlKey)) || e.key === "Escape";
    if (!cell && !e.altKey && !e.metaKey && e.target.closest(".wb-controls")) e.stopPropagation();
  });
  const D = () => model.get("data") || {};
  const names = { models: () => D().models || [], styles: () => D().styles || [] };
  const get = (n) => (n in names ? (model.get(n) || []).map((x) => names[n]().indexOf(x)).filter((i) => i >= 0)
    .sort((a, b) => a - b) : model.get(n));
  const set = (n, v) => {
    if (n in names) model.set(n, v.map((i) => names[n]()[i]));
    else if (n === "aspect") { model.set("aspect", v); model.set("entity", D().values[v][0]); }
    else model.set(n, v);
    model.save_changes();
  };
  const ctl = wbControls(wbEl("div", "wb-controls", root), [
    { name: "aspect", kind: "select", label: "aspect", options: () => D().aspects || [] },
    { name: "entity", kind: "select", label: "value",
      options: () => ((D().values || {})[model.get("aspect")] || []).map((v) => [v, v]) },
    { name: "metric", kind: "select", label: "metric", options: () => (D().metrics || []).map((m) => [m, m]) },
    { kind: "break" },
    { name: "models", kind: "multi", label: "models", options: () => names.models().map((m, i) => [m, i]),
      colors: () => names.models().map((m) => D().colors[m]) },
    { kind: "break" },
    { name: "styles", kind: "multi", label: "styles", options: () => names.styles().map((s, i) => [s, i]) },
  ], get, set);
  const note = wbEl("div", "wb-note", root);
  const pLines = wbPanel(root, "lines"), pHeat = wbPanel(root, "heatmap");
  const table = wbEl("div", "wb-best-table", root);
  const lines = wbStyleLines(pLines), heat = wbHeatmap(pHeat);
  let viridis = null;

  function draw() {
    ctl.refresh();
    const d = D();
    if (!d.cells) { note.textContent = "no results to show"; return; }
    viridis = viridis || wbLut(d.stops);
    const aspect = model.get("aspect"), value = model.get("entity"), metric = model.get("metric");
    const ms = d.models.filter((m) => model.get("models").includes(m));
    const ss = d.styles.filter((s) => model.get("styles").includes(s));
    const cell = ((d.cells[aspect] || {})[value] || {})[metric];
    const hidden = !cell || !ms.length || !ss.length;
    note.textContent = !cell ? `no results for ${aspect} = ${value}, ${metric}`
      : hidden ? "tick at least one model and one style" : "";
    for (const p of [pLines, pHeat]) p.wrap.style.display = hidden ? "none" : "";
    table.style.display = hidden ? "none" : "";
    if (hidden) return;
    const mi = ms.map((m) => d.models.indexOf(m)), si = ss.map((s) => d.styles.indexOf(s));
    const at = (arr, r, c) => arr[r][c];
    const name = `${d.aspect_names[aspect]} = ${value}`;
    pLines.title.textContent = `${name}: ${metric} across prompt styles`;
    lines.draw({
      styles: ss, ring: model.get("selected"), ytitle: d.metric_names[metric] || metric, width: 760,
      series: ms.map((m, k) => ({ name: m, color: d.colors[m], dotted: m.endsWith("-it"),
                                  mean: si.map((c) => at(cell.mean, mi[k], c)),
                                  low: si.map((c) => at(cell.low, mi[k], c)),
                                  high: si.map((c) => at(cell.high, mi[k], c)) })),
    });
    const ring = model.get("selected");
    if (ring && !ss.includes(ring)) note.textContent = `the preview's style ${ring} is not ticked: nothing is ringed`;
    pLines.canvas.dataset.shown = `${aspect}|${value}|${metric}`;
    pLines.canvas.dataset.ring = model.get("selected");
    pHeat.title.textContent = `${name}: model x style`;
    const z = new Float32Array(ms.length * ss.length);
    mi.forEach((r, a) => si.forEach((c, b) => { const v = at(cell.mean, r, c); z[a * ss.length + b] = v === null ? NaN : v; }));
    heat.draw({
      z, rows: ms.length, cols: ss.length, xlabels: ss, ylabels: ms, xtitle: "prompt style", ytitle: "model",
      lut: viridis, zmin: 0, zmax: 1, cbtitle: metric, size: 620, maxcell: 64,
      cellText: (r, c) => { const v = z[r * ss.length + c]; return v === v ? v.toFixed(2) : ""; },
      hover: (r, c) => { const v = z[r * ss.length + c]; return v === v ? `${ms[r]} / ${ss[c]}: ${v.toFixed(3)}` : null; },
    });
    drawBest(d, cell, mi, si, ss, ms);
  }

  function drawBest(d, cell, mi, si, ss, ms) {
    // per model: the ticked styles by row mean, ties to the style listed first in the results table
    table.textContent = "";
    wbEl("b", "", table, "Best style per model");
    table.append(" (runner-up and the margin between them)");
    const t = wbEl("table", "", table), head = wbEl("tr", "", t);
    for (const h of ["model", "best style", "score", "runner-up", "runner-up score", "margin"]) wbEl("th", "", head, h);
    const order = si.map((c, k) => k).sort((a, b) => d.tie_rank[ss[a]] - d.tie_rank[ss[b]]);
    mi.forEach((r, k) => {
      const cand = order.filter((j) => cell.rowmean[r][si[j]] !== null)
        .map((j) => ({ s: ss[j], v: cell.rowmean[r][si[j]] }));
      if (!cand.length) return;
      cand.sort((a, b) => b.v - a.v);                    // stable: ties keep the table's order
      const first = cand[0], second = cand.length > 1 ? cand[1] : cand[0];
      const row = wbEl("tr", "", t);
      for (const x of [ms[k], first.v > 0 ? first.s : "(none: all 0)", first.v.toFixed(3), second.s,
                       second.v.toFixed(3), (first.v - second.v).toFixed(3)]) wbEl("td", "", row, x);
    });
  }

  const offs = [wbListen(model, ["data", "aspect", "entity", "metric", "models", "styles", "selected"], draw)];
  draw();
  return () => offs.forEach((off) => off());
}

export default { render };
