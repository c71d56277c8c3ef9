// Frames view (workbench/widgets/routing_view.py FramesView): a heat map per combination of control values, all
// precomputed in Python and sent once (`frames`: key -> {z, x, y, title, zmin, zmax, stops, hover, ...}; the key is
// JSON of the values in the order of `controls`). Moving a control picks another frame here, with no kernel call.

function wbHoverText(tpl, x, y, z) {
  // a plotly hovertemplate with %{x}, %{y}, %{z}, %{z:.3f} and <br> -> plain text
  return tpl.replace(/<extra>.*<\/extra>/, "").replace(/<br>/g, "\n")
    .replace(/%\{x\}/g, x).replace(/%\{y\}/g, y)
    .replace(/%\{z(?::\.(\d)f)?\}/g, (_, d) => (d === undefined ? String(z) : z.toFixed(Number(d))));
}

function render({ model, el }) {
  const parts = wbRoot(el, "wb-frames-view");
  const heat = wbHeatmap(parts);
  const get = (n) => model.get("values")[n];
  const set = (n, v) => { model.set("values", { ...model.get("values"), [n]: v }); model.save_changes(); };
  let ctl = null, decoded = {};

  function build() {
    parts.controls.textContent = "";
    ctl = wbControls(parts.controls, model.get("controls").map((c) => ({
      name: c.name, kind: c.kind, label: c.label,
      min: () => c.min || 0, max: () => c.max || 0,
      options: () => c.options || [],
      readout: c.labels ? (v) => c.labels[v - (c.min || 0)] : undefined,
    })), get, set);
    decoded = {};
  }

  function draw() {
    ctl.refresh();
    const vals = model.get("values"), key = JSON.stringify(model.get("controls").map((c) => vals[c.name]));
    const f = model.get("frames")[key];
    if (!f) { parts.note.textContent = `nothing to show for ${key}`; return; }
    parts.note.textContent = "";
    let d = decoded[key];
    if (!d) {
      const rows = f.z.length, cols = rows ? f.z[0].length : 0, z = new Float32Array(rows * cols);
      let lo = Infinity, hi = -Infinity;
      f.z.forEach((row, r) => row.forEach((v, c) => {
        const x = v === null ? NaN : v;
        z[r * cols + c] = x;
        if (x === x) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
      }));
      d = decoded[key] = { z, rows, cols, lut: wbLut(f.stops),
        zmin: f.zmin === null ? lo : f.zmin, zmax: f.zmax === null ? hi : f.zmax };
    }
    heat.draw({
      z: d.z, rows: d.rows, cols: d.cols, xlabels: f.x, ylabels: f.y, xtitle: f.xtitle, ytitle: f.ytitle,
      lut: d.lut, zmin: d.zmin, zmax: d.zmax, cbtitle: f.cbtitle, size: model.get("size"), maxcell: f.maxcell || 40,
      hover: (r, c) => {
        const v = d.z[r * d.cols + c];
        return v === v ? wbHoverText(f.hover, f.x[c], f.y[r], v) : null;
      },
    });
    parts.title.textContent = f.title;
    parts.canvas.dataset.shown = key;
  }

  const offs = [
    wbListen(model, ["controls"], () => { build(); draw(); }),
    wbListen(model, ["frames"], () => { decoded = {}; draw(); }),
    wbListen(model, ["values", "size"], draw),
  ];
  build();
  draw();
  return () => offs.forEach((off) => off());
}

export default { render };
