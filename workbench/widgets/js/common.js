// Shared helpers of the workbench canvas views (anywidget ESM, no imports, no network).
// workbench/widgets/canvas.py puts this file before each view's own code, so the names below are in scope there.
// Here: payload decoding (wbBytes, wbF16), colour tables (wbLut), the heat map on a <canvas> with labels, colour bar
// and hover (wbHeatmap), controls bound to model traits (wbControls), the view's frame (wbRoot, wbText), the colour
// bar (wbColorbar).

let WB_F16_TABLE = null;

function wbBytes(v) {
  // a bytes trait as it arrives (DataView, ArrayBuffer, typed array or nothing) -> Uint8Array
  if (!v) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return new Uint8Array(0);
}

function wbF16(v) {
  // little-endian float16 bytes -> Float32Array (a 64K lookup table, built on first use)
  if (!WB_F16_TABLE) {
    WB_F16_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
      WB_F16_TABLE[h] = e === 0 ? s * f * 5.960464477539063e-8
        : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * Math.pow(2, e - 15);
    }
  }
  const b = wbBytes(v), n = b.byteLength >> 1, out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = WB_F16_TABLE[b[2 * i] | (b[2 * i + 1] << 8)];
  return out;
}

function wbLut(stops) {
  // [[pos, r, g, b], ...] (pos 0..1) -> 256 RGB triples, linear between stops like plotly's colour scales
  const lut = new Uint8ClampedArray(768);
  for (let i = 0; i < 256; i++) {
    const x = i / 255;
    let j = 1;
    while (j < stops.length - 1 && stops[j][0] < x) j++;
    const a = stops[j - 1], b = stops[j];
    const t = b[0] > a[0] ? Math.min(1, Math.max(0, (x - a[0]) / (b[0] - a[0]))) : 0;
    for (let c = 0; c < 3; c++) lut[3 * i + c] = a[c + 1] + t * (b[c + 1] - a[c + 1]);
  }
  return lut;
}

function wbText(rgb) {
  // black or white text on a background colour [r, g, b]
  return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 150 ? "#111" : "#fff";
}

function wbHex(hex) {
  const n = parseInt(hex.replace("#", ""), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function wbEl(tag, cls, parent, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function wbRoot(el, cls) {
  // the view's frame: controls, title, a relative box for the canvas and its tooltip, a note line
  const root = wbEl("div", "wb-view " + cls, el);
  const controls = wbEl("div", "wb-controls", root);
  const title = wbEl("div", "wb-title", root);
  const box = wbEl("div", "wb-canvas-box", root);
  const canvas = wbEl("canvas", "wb-canvas", box);
  canvas.dataset.frame = "0";
  const tip = wbEl("div", "wb-tip", box);
  const note = wbEl("div", "wb-note", root);
  // keys on our controls are theirs: JupyterLab's notebook would otherwise take the arrow keys (and cancel them)
  controls.addEventListener("keydown", (e) => {
    const cell = (e.key === "Enter" && (e.shiftKey || e.ctrlKey)) || e.key === "Escape";
    if (!cell && !e.altKey && !e.metaKey) e.stopPropagation();
  });
  return { root, controls, title, box, canvas, tip, note };
}

function wbCanvas(canvas, w, h) {
  // size the canvas for the screen's pixel ratio (only when the size changes) and return its 2D context
  const dpr = window.devicePixelRatio || 1;
  const W = Math.ceil(w * dpr), H = Math.ceil(h * dpr);
  if (canvas.width !== W || canvas.height !== H) {
    canvas.width = W;
    canvas.height = H;
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return ctx;
}

const WB_OFF = { canvas: null };

function wbPaint(ctx, z, rows, cols, lut, zmin, zmax, x, y, w, h) {
  // z (rows*cols, row-major, NaN = no cell) -> pixels of a rows x cols image, scaled to w x h without smoothing
  const off = WB_OFF.canvas || (WB_OFF.canvas = document.createElement("canvas"));
  off.width = cols;
  off.height = rows;
  const octx = off.getContext("2d");
  const img = octx.createImageData(cols, rows), d = img.data;
  const span = zmax > zmin ? 255 / (zmax - zmin) : 0;
  for (let i = 0; i < rows * cols; i++) {
    const v = z[i];
    if (v !== v) continue;                               // NaN: transparent
    let k = Math.round((v - zmin) * span);
    k = k < 0 ? 0 : k > 255 ? 255 : k;
    d[4 * i] = lut[3 * k];
    d[4 * i + 1] = lut[3 * k + 1];
    d[4 * i + 2] = lut[3 * k + 2];
    d[4 * i + 3] = 255;
  }
  octx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, x, y, w, h);
}

function wbTrim(s, n) {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

function wbHeatmap(parts) {
  // A heat map on parts.canvas: draw({z, rows, cols, xlabels, ylabels, xtitle, ytitle, lut, zmin, zmax, cbtitle,
  // size, maxcell, lines, hover(r, c) -> text, cellText(r, c) -> the text written in a cell (counts), integer (the
  // colour bar's values without decimals), outline: [row, col] (a framed cell)}). Labels are thinned to stay
  // readable; hover names the cell.
  const { canvas, tip } = parts;
  let g = null;                                          // geometry and hover of the last drawing
  canvas.addEventListener("mousemove", (ev) => {
    if (!g) return;
    const r = canvas.getBoundingClientRect();
    const x = ev.clientX - r.left, y = ev.clientY - r.top;
    const c = Math.floor((x - g.x0) / g.cw), row = Math.floor((y - g.y0) / g.ch);
    const text = c >= 0 && c < g.cols && row >= 0 && row < g.rows ? g.hover(row, c) : null;
    if (!text) { tip.style.display = "none"; return; }
    tip.textContent = text;
    tip.style.display = "block";
    tip.style.left = Math.min(x + 14, r.width - 180) + "px";
    tip.style.top = (y + 14) + "px";
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });

  function draw(o) {
    const font = "11px sans-serif";
    const probe = canvas.getContext("2d");
    probe.font = font;
    const ylab = o.ylabels.map((s) => wbTrim(s, 20)), xlab = o.xlabels.map((s) => wbTrim(s, 20));
    const wmax = (labs) => labs.reduce((m, s) => Math.max(m, probe.measureText(s).width), 0);
    const side = Math.max(o.rows, o.cols);
    const cell = Math.min(o.maxcell || 28, o.size / side);
    const cw = cell, ch = cell;
    const ystep = Math.max(1, Math.ceil(12 / ch)), xstep = Math.max(1, Math.ceil(12 / cw));
    const x0 = 22 + Math.min(130, wmax(ylab)) + 6, y0 = 6;
    const W = o.cols * cw, H = o.rows * ch;
    const below = Math.min(130, wmax(xlab)) * 0.87 + 30;  // labels at -60 degrees, then the axis title
    const barh = Math.max(100, Math.min(H, 300));          // the colour bar, readable even over one row
    const width = x0 + W + 90, height = Math.max(y0 + H + below, y0 + barh + 24);
    const ctx = wbCanvas(canvas, width, height);
    wbPaint(ctx, o.z, o.rows, o.cols, o.lut, o.zmin, o.zmax, x0, y0, W, H);
    ctx.strokeStyle = "#ffffff";
    ctx.setLineDash([4, 3]);
    for (const b of o.lines || []) {                     // dashed boundaries, e.g. prompt | generated tokens
      ctx.beginPath();
      ctx.moveTo(x0, y0 + b * ch); ctx.lineTo(x0 + W, y0 + b * ch);
      ctx.moveTo(x0 + b * cw, y0); ctx.lineTo(x0 + b * cw, y0 + H);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.font = font;
    ctx.textBaseline = "middle";
    if (o.cellText && cw >= 16 && ch >= 14) {            // the value written in each cell, e.g. counts
      ctx.textAlign = "center";
      const span = o.zmax > o.zmin ? 255 / (o.zmax - o.zmin) : 0;
      for (let r = 0; r < o.rows; r++) {
        for (let c = 0; c < o.cols; c++) {
          const v = o.z[r * o.cols + c];
          if (v !== v) continue;
          const k = Math.max(0, Math.min(255, Math.round((v - o.zmin) * span)));
          ctx.fillStyle = wbText([o.lut[3 * k], o.lut[3 * k + 1], o.lut[3 * k + 2]]);
          ctx.fillText(o.cellText(r, c), x0 + (c + 0.5) * cw, y0 + (r + 0.5) * ch);
        }
      }
    }
    ctx.fillStyle = "#333";
    ctx.textAlign = "right";
    for (let r = 0; r < o.rows; r += ystep) ctx.fillText(ylab[r], x0 - 4, y0 + (r + 0.5) * ch);
    for (let c = 0; c < o.cols; c += xstep) {
      ctx.save();
      ctx.translate(x0 + (c + 0.5) * cw, y0 + H + 4);
      ctx.rotate(-Math.PI / 3);
      ctx.fillText(xlab[c], 0, 0);
      ctx.restore();
    }
    ctx.textAlign = "center";
    ctx.fillText(o.xtitle || "", x0 + W / 2, height - 8);
    ctx.save();
    ctx.translate(9, y0 + H / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(o.ytitle || "", 0, 0);
    ctx.restore();
    if (o.outline) {                                     // one cell framed, e.g. the pair a table lists
      ctx.strokeStyle = "#d62728";
      ctx.lineWidth = 2;
      ctx.strokeRect(x0 + o.outline[1] * cw + 1, y0 + o.outline[0] * ch + 1, cw - 2, ch - 2);
      ctx.lineWidth = 1;
    }
    wbColorbar(ctx, o.lut, o.zmin, o.zmax, o.cbtitle, x0 + W + 14, y0, barh, o.integer);
    g = { x0, y0, cw, ch, rows: o.rows, cols: o.cols, hover: o.hover };
    canvas.dataset.frame = String(Number(canvas.dataset.frame) + 1);
  }
  // forget(): another picture now owns the canvas (its hover is not this heat map's)
  return { draw, forget: () => { g = null; } };
}

function wbColorbar(ctx, lut, zmin, zmax, title, bx, y0, bh, integer) {
  // a vertical colour bar at (bx, y0), bh pixels tall, with its top, middle and bottom values and a title below
  // (integer: counts, written without decimals)
  for (let i = 0; i < bh; i++) {
    const k = Math.round(255 * (1 - i / (bh - 1)));
    ctx.fillStyle = `rgb(${lut[3 * k]},${lut[3 * k + 1]},${lut[3 * k + 2]})`;
    ctx.fillRect(bx, y0 + i, 12, 1);
  }
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  ctx.fillStyle = "#333";
  ctx.textAlign = "left";
  const fmt = (v) => (Math.abs(v) >= 100 || (integer && Number.isInteger(v)) ? v.toFixed(0)
    : integer ? v.toFixed(1) : v.toFixed(2));
  ctx.fillText(fmt(zmax), bx + 16, y0 + 5);
  ctx.fillText(fmt((zmin + zmax) / 2), bx + 16, y0 + bh / 2);
  ctx.fillText(fmt(zmin), bx + 16, y0 + bh - 5);
  ctx.fillText(title || "", bx, y0 + bh + 14);
}

function wbControls(parent, specs, get, set) {
  // Controls in the browser, bound to model values: get(name), set(name, value) (set also saves to the kernel).
  // spec: {name, kind: "slider" | "toggle" | "select" | "check" | "multi", label, min(), max(), step (sliders,
  //        default 1), options() -> [[label, v]], colors() -> CSS colours of the options (multi), readout(v) -> text,
  //        visible()}. "multi" is a row of toggles whose value is the sorted list of the options switched on
  //        (double-click: only that one). Returns {refresh()} to show the model's values (after any change).
  const items = [];
  let row = wbEl("div", "wb-row", parent);
  for (const s of specs) {
    if (s.kind === "break") { row = wbEl("div", "wb-row", parent); continue; }
    const wrap = wbEl(s.kind === "toggle" || s.kind === "multi" ? "div" : "label", "wb-ctl wb-ctl-" + s.kind, row);
    if (s.kind !== "check") wbEl("span", "wb-label", wrap, s.label);
    let input = null, readout = null, buttons = [];
    if (s.kind === "slider") {
      input = wbEl("input", "", wrap);
      input.type = "range";
      input.step = String(s.step || 1);
      readout = wbEl("span", "wb-readout", wrap);
      input.addEventListener("input", () => set(s.name, Number(input.value)));
    } else if (s.kind === "select") {
      input = wbEl("select", "", wrap);
      input.addEventListener("change", () => set(s.name, s.options()[input.selectedIndex][1]));
    } else if (s.kind === "check") {
      input = wbEl("input", "", wrap);
      input.type = "checkbox";
      wbEl("span", "wb-label", wrap, s.label);
      input.addEventListener("change", () => set(s.name, input.checked));
    }
    if (input) input.dataset.control = s.name;
    items.push({ s, wrap, input, readout, buttons, key: "" });
  }
  function refresh() {
    for (const it of items) {
      const s = it.s, v = get(s.name);
      it.wrap.style.display = s.visible && !s.visible() ? "none" : "";
      if (s.kind === "slider") {
        it.input.min = String(s.min ? s.min() : 0);
        it.input.max = String(s.max());
        if (Number(it.input.value) !== v) it.input.value = String(v);
        it.readout.textContent = s.readout ? s.readout(v) : String(v);
      } else if (s.kind === "check") {
        it.input.checked = !!v;
      } else {
        const opts = s.options(), key = JSON.stringify(opts);
        if (key !== it.key) {                            // rebuild the options only when they change
          it.key = key;
          if (s.kind === "select") {
            it.input.textContent = "";
            for (const [label] of opts) wbEl("option", "", it.input, label);
          } else {
            for (const b of it.buttons) b.remove();
            it.buttons = opts.map(([label, value], i) => {
              const b = wbEl("button", "wb-toggle", it.wrap, label);
              b.type = "button";
              b.dataset.control = s.name;
              b.dataset.value = JSON.stringify(value);
              if (s.kind === "multi") {
                const color = s.colors ? s.colors()[i] : null;
                if (color) b.style.boxShadow = `inset 0 -4px 0 ${color}`;
                b.addEventListener("click", (e) => {
                  e.preventDefault();
                  const cur = get(s.name) || [], val = s.options()[i][1];
                  set(s.name, cur.includes(val) ? cur.filter((x) => x !== val) : [...cur, val].sort((a, c) => a - c));
                });
                b.addEventListener("dblclick", (e) => { e.preventDefault(); set(s.name, [s.options()[i][1]]); });
              } else {
                b.addEventListener("click", (e) => { e.preventDefault(); set(s.name, s.options()[i][1]); });
              }
              return b;
            });
          }
        }
        const i = opts.findIndex((o) => JSON.stringify(o[1]) === JSON.stringify(v));
        if (s.kind === "select") it.input.selectedIndex = i;
        else if (s.kind === "multi") {
          it.buttons.forEach((b, j) => b.classList.toggle("wb-active", (v || []).includes(opts[j][1])));
        }
        else it.buttons.forEach((b, j) => b.classList.toggle("wb-active", j === i));
      }
    }
  }
  return { refresh };
}

function wbListen(model, names, fn) {
  // model.on for several trait names; returns the function that removes the listeners (the view's cleanup)
  const evs = names.map((n) => "change:" + n);
  for (const e of evs) model.on(e, fn);
  return () => { for (const e of evs) model.off(e, fn); };
}
