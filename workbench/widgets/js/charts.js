// Small charts on a <canvas> (after common.js): vertical bars with interval whiskers (wbBars), lines with markers
// (wbLineChart), horizontal stacked segments (wbStrip); wbPanel makes a chart's title, canvas and tooltip. Each
// chart takes {canvas, tip} (a canvas and its tooltip <div> in a relative box) and returns {draw(o)}; draw paints
// the whole chart, bumps canvas.dataset.frame and keeps what the hover needs. Axes, ticks and labels follow the
// static plotly figures of workbench/plots (plotly_white).

const WB_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac"];

function wbPanel(parent, name) {
  // a chart's title, canvas and tooltip; the canvas's data-frame counts its drawings (tests, benchmarks)
  const wrap = wbEl("div", "wb-panel", parent);
  const title = wbEl("div", "wb-title", wrap);
  title.dataset.chart = name;
  const box = wbEl("div", "wb-canvas-box", wrap);
  const canvas = wbEl("canvas", "wb-canvas", box);
  canvas.dataset.frame = "0";
  canvas.dataset.chart = name;
  const tip = wbEl("div", "wb-tip", box);
  return { wrap, title, box, canvas, tip };
}

function wbTicks(lo, hi, n) {
  // about n round tick values between lo and hi
  const span = hi - lo || 1, raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-6; v += step) out.push(Math.abs(v) < 1e-12 ? 0 : v);
  return { ticks: out, step };
}

function wbFmt(v, step) {
  // v with as many decimals as the tick step has (0.25 -> 2, 0.2 -> 1, 5 -> 0)
  let d = 0;
  while (d < 4 && Math.abs(step * 10 ** d - Math.round(step * 10 ** d)) > 1e-6) d++;
  return v.toFixed(d);
}

function wbTipAt(parts, text, x, y) {
  const { canvas, tip } = parts;
  if (!text) { tip.style.display = "none"; return; }
  const r = canvas.getBoundingClientRect();
  tip.textContent = text;
  tip.style.display = "block";
  tip.style.left = Math.min(x + 14, r.width - 200) + "px";
  tip.style.top = (y + 14) + "px";
}

function wbHover(parts, find) {
  // mousemove on the canvas -> find(x, y) -> tooltip text (or null)
  const { canvas, tip } = parts;
  canvas.addEventListener("mousemove", (ev) => {
    const r = canvas.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    wbTipAt(parts, find(x, y), x, y);
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
}

function wbYAxis(ctx, box, ylo, yhi, title) {
  // horizontal grid lines with their values left of the box, and the y title
  const { ticks, step } = wbTicks(ylo, yhi, 5), Y = (v) => box.y + box.h * (1 - (v - ylo) / (yhi - ylo));
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  for (const v of ticks) {
    ctx.strokeStyle = v === ylo ? "#444" : "#e5e5e5";
    ctx.beginPath(); ctx.moveTo(box.x, Y(v)); ctx.lineTo(box.x + box.w, Y(v)); ctx.stroke();
    ctx.fillStyle = "#444";
    ctx.fillText(wbFmt(v, step), box.x - 5, Y(v));
  }
  ctx.save();
  ctx.translate(12, box.y + box.h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText(title || "", 0, 0);
  ctx.restore();
  return Y;
}

function wbXAxis(ctx, box, xlo, xhi, title, height) {
  // vertical grid lines with their values under the box, and the x title at the bottom
  const { ticks, step } = wbTicks(xlo, xhi, 6), X = (v) => box.x + box.w * (v - xlo) / (xhi - xlo);
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "top";
  ctx.textAlign = "center";
  for (const v of ticks) {
    ctx.strokeStyle = "#e5e5e5";
    ctx.beginPath(); ctx.moveTo(X(v), box.y); ctx.lineTo(X(v), box.y + box.h); ctx.stroke();
    ctx.fillStyle = "#444";
    ctx.fillText(wbFmt(v, step), X(v), box.y + box.h + 4);
  }
  ctx.fillText(title || "", box.x + box.w / 2, height - 16);
  return X;
}

function wbDashed(ctx, x0, y0, x1, y1, color) {
  ctx.strokeStyle = color;
  ctx.setLineDash([5, 4]);
  ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
  ctx.setLineDash([]);
}

function wbBars(parts) {
  // draw({labels, values, lo, hi, colors, ymax, ytitle, hline, hlineText, width, height, hover(i) -> text})
  let g = null;
  wbHover(parts, (x, y) => {
    if (!g || y < g.box.y || y > g.box.y + g.box.h) return null;
    const i = Math.floor((x - g.box.x) / g.slot);
    return i >= 0 && i < g.n ? g.hover(i) : null;
  });
  function draw(o) {
    const width = o.width || 520, height = o.height || 320;
    const ctx = wbCanvas(parts.canvas, width, height);
    ctx.font = "11px sans-serif";
    const lab = o.labels.map((s) => wbTrim(s, 16));
    const below = lab.reduce((m, s) => Math.max(m, ctx.measureText(s).width), 0) * 0.87 + 12;
    const right = o.hline !== undefined && o.hline !== null ? 86 : 12;   // room for the line's label
    const box = { x: 52, y: 10, w: width - 52 - right, h: height - 10 - below - 10 };
    const Y = wbYAxis(ctx, box, 0, o.ymax || 1, o.ytitle);
    const n = o.values.length, slot = box.w / Math.max(1, n), bw = slot * 0.7;
    for (let i = 0; i < n; i++) {
      const cx = box.x + slot * (i + 0.5), v = o.values[i];
      ctx.fillStyle = o.colors[i];
      ctx.fillRect(cx - bw / 2, Y(v), bw, Y(0) - Y(v));
      if (o.lo && o.hi) {                                // the interval's whisker
        ctx.strokeStyle = "#444";
        ctx.beginPath();
        ctx.moveTo(cx, Y(o.lo[i])); ctx.lineTo(cx, Y(o.hi[i]));
        ctx.moveTo(cx - 5, Y(o.lo[i])); ctx.lineTo(cx + 5, Y(o.lo[i]));
        ctx.moveTo(cx - 5, Y(o.hi[i])); ctx.lineTo(cx + 5, Y(o.hi[i]));
        ctx.stroke();
      }
      ctx.save();
      ctx.fillStyle = "#333";
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.translate(cx, box.y + box.h + 6);
      ctx.rotate(-Math.PI / 3);
      ctx.fillText(lab[i], 0, 0);
      ctx.restore();
    }
    if (o.hline !== undefined && o.hline !== null) {
      wbDashed(ctx, box.x, Y(o.hline), box.x + box.w + 4, Y(o.hline), "#888");
      ctx.fillStyle = "#444";                            // the label right of the plot, clear of the bars
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      ctx.fillText(o.hlineText || "", box.x + box.w + 6, Y(o.hline));
    }
    g = { box, slot, n, hover: o.hover || (() => null) };
    parts.canvas.dataset.frame = String(Number(parts.canvas.dataset.frame) + 1);
  }
  return { draw };
}

function wbNearest(pts, x, y, radius) {
  // the point of pts ({x, y, text}) nearest to (x, y) within `radius` pixels: its text, or null
  let best = null, bd = radius * radius;
  pts.forEach((p) => { const d = (p.x - x) ** 2 + (p.y - y) ** 2; if (d < bd) { bd = d; best = p; } });
  return best ? best.text : null;
}

function wbLineChart(parts) {
  // draw({x, series: [{name, y, color}], ylo, yhi, xtitle, ytitle, hline, hlineText, vline, width, height})
  // (a legend of the series is drawn at the top right; hover names the nearest point)
  let g = null;
  wbHover(parts, (x, y) => (g ? wbNearest(g.pts, x, y, 12) : null));
  function draw(o) {
    const width = o.width || 700, height = o.height || 300;
    const ctx = wbCanvas(parts.canvas, width, height);
    const box = { x: 52, y: 26, w: width - 52 - 16, h: height - 26 - 44 };
    const Y = wbYAxis(ctx, box, o.ylo || 0, o.yhi === undefined ? 1 : o.yhi, o.ytitle);
    const X = wbXAxis(ctx, box, o.x[0], o.x[o.x.length - 1], o.xtitle, height);
    const pts = [];
    if (o.hline !== undefined && o.hline !== null) {
      wbDashed(ctx, box.x, Y(o.hline), box.x + box.w, Y(o.hline), "#888");
      ctx.fillStyle = "#666";
      ctx.textAlign = "right";
      ctx.textBaseline = "bottom";
      ctx.fillText(o.hlineText || "", box.x + box.w, Y(o.hline) - 2);
    }
    if (o.vline !== undefined && o.vline !== null) {
      ctx.strokeStyle = "#111";
      ctx.beginPath(); ctx.moveTo(X(o.vline), box.y); ctx.lineTo(X(o.vline), box.y + box.h); ctx.stroke();
    }
    let lx = box.x + box.w;
    ctx.textBaseline = "middle";
    ctx.textAlign = "left";
    for (const s of [...o.series].reverse()) {            // legend, right-aligned in one row above the plot
      lx -= ctx.measureText(s.name).width + 30;
      ctx.fillStyle = s.color;
      ctx.fillRect(lx, 9, 16, 3);
      ctx.fillStyle = "#333";
      ctx.fillText(s.name, lx + 20, 10);
    }
    for (const s of o.series) {
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      s.y.forEach((v, i) => (i ? ctx.lineTo(X(o.x[i]), Y(v)) : ctx.moveTo(X(o.x[i]), Y(v))));
      ctx.stroke();
      ctx.lineWidth = 1;
      s.y.forEach((v, i) => {
        ctx.beginPath(); ctx.arc(X(o.x[i]), Y(v), 3, 0, 2 * Math.PI); ctx.fill();
        pts.push({ x: X(o.x[i]), y: Y(v), text: `${s.name}\nλ ${o.x[i].toFixed(2)}: accuracy ${v.toFixed(3)}` });
      });
    }
    g = { pts };
    parts.canvas.dataset.frame = String(Number(parts.canvas.dataset.frame) + 1);
  }
  return { draw };
}

function wbStrip(parts) {
  // draw({rows: [{label, color, segs: [{w, text, hover}]}], xtitle, width}): one bar per row, its segments stacked
  // left to right (width w), each segment's text inside when it fits; hover names the segment
  let g = null;
  wbHover(parts, (x, y) => {
    if (!g) return null;
    const hit = g.rects.find((r) => x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h);
    return hit ? hit.hover : null;
  });
  function draw(o) {
    const width = o.width || 900, rowh = 34, height = 10 + o.rows.length * rowh + 44;
    const ctx = wbCanvas(parts.canvas, width, height);
    ctx.font = "11px sans-serif";
    const left = Math.min(160, o.rows.reduce((m, r) => Math.max(m, ctx.measureText(r.label).width), 0)) + 14;
    const box = { x: left, y: 10, w: width - left - 16, h: o.rows.length * rowh };
    const total = Math.max(1e-6, ...o.rows.map((r) => r.segs.reduce((s, x) => s + x.w, 0)));
    const X = wbXAxis(ctx, box, 0, total * 1.05, o.xtitle, height);
    const rects = [];
    o.rows.forEach((row, i) => {
      const y = box.y + i * rowh + 4, h = rowh - 8;
      ctx.fillStyle = "#333";
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.fillText(wbTrim(row.label, 24), box.x - 6, y + h / 2);
      let acc = 0;
      for (const s of row.segs) {
        const x0 = X(acc), x1 = X(acc + s.w);
        ctx.fillStyle = row.color;
        ctx.fillRect(x0, y, Math.max(0.5, x1 - x0), h);
        ctx.strokeStyle = "#fff";
        ctx.strokeRect(x0, y, x1 - x0, h);
        if (ctx.measureText(s.text).width + 4 < x1 - x0) {
          ctx.fillStyle = wbText(wbHex(row.color));
          ctx.textAlign = "center";
          ctx.fillText(s.text, (x0 + x1) / 2, y + h / 2);
        }
        rects.push({ x: x0, y, w: x1 - x0, h, hover: s.hover });
        acc += s.w;
      }
    });
    g = { rects };
    parts.canvas.dataset.frame = String(Number(parts.canvas.dataset.frame) + 1);
  }
  return { draw };
}
