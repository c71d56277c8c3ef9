// The model grid and the head view of the attention view (js/attention.js wires them to its controls); both draw
// from the payload the view already holds, nothing more is sent for them.
// Here: wbGrid (every layer x head as a small heat map on one canvas; the cells are built once per input,
// normalisation and colour scale into an offscreen image, so moving the selected cell only redraws the outline),
// wbLines (bertviz-style head view: tokens in two columns, query left and key right, one line per weight at or
// above the threshold, one colour per head, opacity following the weight), wbPool (max-pooling a map to a cell).

function wbPool(z, T, n) {
  // (T, T) map -> (n, n), each pixel the largest value of its block, so thin patterns (the previous-token
  // diagonal) survive shrinking; a block with no value (all NaN: masked) stays NaN. n >= T: z itself.
  if (n >= T) return z;
  const out = new Float32Array(n * n);
  for (let r = 0; r < n; r++) {
    const r0 = Math.floor((r * T) / n), r1 = Math.max(r0 + 1, Math.floor(((r + 1) * T) / n));
    for (let c = 0; c < n; c++) {
      const c0 = Math.floor((c * T) / n), c1 = Math.max(c0 + 1, Math.floor(((c + 1) * T) / n));
      let m = NaN;
      for (let i = r0; i < r1; i++) {
        for (let j = c0; j < c1; j++) {
          const v = z[i * T + j];
          if (v === v && !(v <= m)) m = v;
        }
      }
      out[r * n + c] = m;
    }
  }
  return out;
}

function wbGrid(parts) {
  // draw({key, rows: [layer ids], nh, T, cell, map(b, h) -> normalised (T*T) map of block b, head h, lut,
  //       zrange: [zmin, zmax] or null (the finite range of every cell), cbtitle, selected: [layer, head]})
  // draws rows (layers) x nh (heads) small multiples; hit(x, y) -> {layer, head, q, k} or null (CSS pixels).
  // The geometry (CSS pixels) is in canvas.dataset.geometry: {x0, y0, cell, gap, rows, nh, T}.
  const { canvas } = parts;
  let cache = null, g = null;

  function build(o) {
    const n = Math.min(o.T, o.cell), nr = o.rows.length;
    const off = document.createElement("canvas");
    off.width = o.nh * n;
    off.height = nr * n;
    const octx = off.getContext("2d"), img = octx.createImageData(off.width, off.height), d = img.data;
    const maps = [];
    let zmin = Infinity, zmax = -Infinity;
    for (let b = 0; b < nr; b++) {
      for (let h = 0; h < o.nh; h++) {
        const z = wbPool(o.map(b, h), o.T, n);
        if (!o.zrange) {
          for (let i = 0; i < z.length; i++) {
            if (z[i] === z[i]) { zmin = Math.min(zmin, z[i]); zmax = Math.max(zmax, z[i]); }
          }
        }
        maps.push(z);
      }
    }
    if (o.zrange) [zmin, zmax] = o.zrange;
    else if (!(zmax > zmin)) { zmin = -6; zmax = 0; }
    const span = 255 / (zmax - zmin), lut = o.lut;
    for (let b = 0; b < nr; b++) {
      for (let h = 0; h < o.nh; h++) {
        const z = maps[b * o.nh + h];
        for (let r = 0; r < n; r++) {
          let p = 4 * ((b * n + r) * off.width + h * n);
          for (let c = 0; c < n; c++, p += 4) {
            const v = z[r * n + c];
            if (v !== v) continue;                       // masked (future) key: transparent
            let k = Math.round((v - zmin) * span);
            k = k < 0 ? 0 : k > 255 ? 255 : k;
            d[p] = lut[3 * k]; d[p + 1] = lut[3 * k + 1]; d[p + 2] = lut[3 * k + 2]; d[p + 3] = 255;
          }
        }
      }
    }
    octx.putImageData(img, 0, 0);
    return { key: o.key, off, n, zmin, zmax };
  }

  function draw(o) {
    if (!cache || cache.key !== o.key) cache = build(o);
    const nr = o.rows.length, gap = 3, cell = o.cell, x0 = 30, y0 = 18;
    const W = o.nh * (cell + gap) - gap, H = nr * (cell + gap) - gap;
    const ctx = wbCanvas(canvas, x0 + W + 80, y0 + H + 30);
    ctx.imageSmoothingEnabled = false;                   // pooled cells: one image pixel per screen pixel or more
    for (let b = 0; b < nr; b++) {
      for (let h = 0; h < o.nh; h++) {
        const x = x0 + h * (cell + gap), y = y0 + b * (cell + gap);
        ctx.fillStyle = "#f4f4f4";                     // the masked triangle of a causal map
        ctx.fillRect(x, y, cell, cell);
        ctx.drawImage(cache.off, h * cache.n, b * cache.n, cache.n, cache.n, x, y, cell, cell);
      }
    }
    ctx.font = "11px sans-serif";
    ctx.fillStyle = "#333";
    ctx.textBaseline = "middle";
    ctx.textAlign = "center";
    for (let h = 0; h < o.nh; h++) ctx.fillText("H" + h, x0 + h * (cell + gap) + cell / 2, y0 / 2);
    ctx.textAlign = "right";
    o.rows.forEach((l, b) => ctx.fillText("L" + l, x0 - 5, y0 + b * (cell + gap) + cell / 2));
    const b = o.rows.indexOf(o.selected[0]), h = o.selected[1];
    if (b >= 0 && h >= 0 && h < o.nh) {                  // the layer/head the sliders point at
      ctx.strokeStyle = "#d62728";
      ctx.lineWidth = 2.5;
      ctx.strokeRect(x0 + h * (cell + gap) - 1.5, y0 + b * (cell + gap) - 1.5, cell + 3, cell + 3);
    }
    wbColorbar(ctx, o.lut, cache.zmin, cache.zmax, o.cbtitle, x0 + W + 14, y0, Math.max(60, Math.min(H, 300)));
    g = { x0, y0, cell, gap, rows: o.rows, nh: o.nh, T: o.T };
    canvas.dataset.geometry = JSON.stringify(g);         // CSS pixels: tests click and hover cells with it
    canvas.dataset.frame = String(Number(canvas.dataset.frame) + 1);
  }

  function hit(x, y) {
    if (!g) return null;
    const step = g.cell + g.gap, h = Math.floor((x - g.x0) / step), b = Math.floor((y - g.y0) / step);
    const cx = x - g.x0 - h * step, cy = y - g.y0 - b * step;
    if (h < 0 || h >= g.nh || b < 0 || b >= g.rows.length || cx >= g.cell || cy >= g.cell) return null;
    return { layer: g.rows[b], head: h, q: Math.floor((cy / g.cell) * g.T), k: Math.floor((cx / g.cell) * g.T) };
  }
  return { draw, hit, forget: () => { if (g) delete canvas.dataset.geometry; g = null; } };
}

function wbLines(parts) {
  // draw({T, labels, heads: [head ids], colors, weight(h, q, k), threshold, pinned: query or -1,
  //       hover: {side: "q" | "k", i} or null, size}): the head view. Queries drawn: the hovered left token, else
  // the pinned query, else all; a hovered right token keeps only the lines into it. hit(x, y) -> {side, i} or
  // null. The geometry (CSS pixels) is in canvas.dataset.geometry: {left, right, top, row} (tests hover with it).
  const { canvas } = parts;
  let g = null;
  const LEVELS = 8;                                      // opacity bands: one path per head and band

  function draw(o) {
    const T = o.T, rh = Math.max(5, Math.min(18, Math.floor((o.size * 1.6) / Math.max(T, 1))));
    const probe = canvas.getContext("2d");
    const font = (rh >= 12 ? 12 : 10) + "px sans-serif";
    probe.font = font;
    const labs = o.labels.map((s) => wbTrim(s, 16));
    const labw = Math.min(130, labs.reduce((m, s) => Math.max(m, probe.measureText(s).width), 0));
    const top = 6, left = 10 + labw, right = left + Math.max(180, o.size * 0.45);
    const ctx = wbCanvas(canvas, right + labw + 14, top + T * rh + 8);
    const y = (i) => top + (i + 0.5) * rh;
    const hov = o.hover;
    const qs = hov && hov.side === "q" ? [hov.i] : o.pinned >= 0 ? [o.pinned] : [...Array(T).keys()];
    const onlyKey = hov && hov.side === "k" ? hov.i : -1;
    const touched = new Set();                           // tokens at either end of a drawn line
    ctx.lineWidth = rh >= 10 ? 2 : 1;
    for (const h of o.heads) {
      const paths = Array.from({ length: LEVELS }, () => new Path2D());
      for (const q of qs) {
        const k0 = onlyKey >= 0 ? onlyKey : 0, k1 = onlyKey >= 0 ? onlyKey + 1 : T;
        for (let k = k0; k < k1; k++) {
          const w = o.weight(h, q, k);
          if (!(w >= o.threshold) || !(w > 0)) continue;
          const lvl = Math.min(LEVELS - 1, Math.floor(w * LEVELS));
          paths[lvl].moveTo(left + 6, y(q));
          paths[lvl].lineTo(right - 6, y(k));
          if (qs.length === 1 || onlyKey >= 0) { touched.add("q" + q); touched.add("k" + k); }
        }
      }
      ctx.strokeStyle = o.colors[h % o.colors.length];
      for (let lvl = 0; lvl < LEVELS; lvl++) {
        ctx.globalAlpha = 0.12 + (0.88 * (lvl + 1)) / LEVELS;
        ctx.stroke(paths[lvl]);
      }
    }
    ctx.globalAlpha = 1;
    const step = Math.max(1, Math.ceil(11 / rh));        // thin the labels of long inputs
    const mark = (side, i) => (hov && hov.side === side && hov.i === i) || (side === "q" && o.pinned === i);
    ctx.textBaseline = "middle";
    for (const [side, x, align] of [["q", left, "right"], ["k", right, "left"]]) {
      ctx.textAlign = align;
      for (let i = 0; i < T; i++) {
        const hot = mark(side, i), seen = touched.has(side + i);
        if (i % step && !hot && !seen) continue;
        ctx.font = (hot || seen ? "bold " : "") + font;
        if (hot) {
          const w = ctx.measureText(labs[i]).width;
          ctx.fillStyle = "#ffe9a8";
          ctx.fillRect(align === "right" ? x - w - 3 : x - 1, y(i) - rh / 2, w + 4, rh);
        }
        ctx.fillStyle = hot || seen || !(hov || o.pinned >= 0) ? "#222" : "#999";
        ctx.fillText(labs[i], align === "right" ? x - 1 : x + 1, y(i));
      }
    }
    g = { left, right, top, row: rh, T };
    canvas.dataset.geometry = JSON.stringify(g);
    canvas.dataset.frame = String(Number(canvas.dataset.frame) + 1);
  }

  function hit(x, y) {
    if (!g) return null;
    const i = Math.floor((y - g.top) / g.row);
    if (i < 0 || i >= g.T) return null;
    if (x <= g.left + 4) return { side: "q", i };
    if (x >= g.right - 4) return { side: "k", i };
    return null;
  }
  return { draw, hit, forget: () => { if (g) delete canvas.dataset.geometry; g = null; } };
}
