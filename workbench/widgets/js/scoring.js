// Scoring-function lab view (workbench/widgets/scoring_view.py ScoringView; after common.js and charts.js). The
// model's `data` trait holds one (model, task, verbalizer aggregation) whole: every function's accuracy, interval
// and predictions, the gold labels, each example's label-token surprisals and the accuracy-vs-λ curves. The
// controls here (scoring function, flip A / B, example, λ, premise) only pick what to show: a change is a redraw in
// this page, with no kernel round trip. Their values are traits too (Python reads them; a reload restores them).

function render({ model, el }) {
  const root = wbEl("div", "wb-view wb-scoring-view", el);
  root.addEventListener("keydown", (e) => {               // arrow keys are the sliders', not the notebook's
    const cell = (e.key === "Enter" && (e.shiftKey || e.ctrlKey)) || e.key === "Escape";
    if (!cell && !e.altKey && !e.metaKey && e.target.closest(".wb-controls")) e.stopPropagation();
  });
  const D = () => model.get("data") || {};
  const fns = () => (D().functions || []).map((f) => [f, f]);
  const lams = () => D().lambdas || [0];
  const lamIndex = () => {
    const L = lams(), v = model.get("lam");
    let best = 0;
    L.forEach((x, i) => { if (Math.abs(x - v) < Math.abs(L[best] - v)) best = i; });
    return best;
  };
  const get = (n) => (n === "lam" ? lamIndex() : model.get(n));
  const set = (n, v) => { model.set(n, n === "lam" ? lams()[v] : v); model.save_changes(); };
  const heading = (t) => wbEl("h4", "wb-heading", root, t);
  const controls = (specs) => wbControls(wbEl("div", "wb-controls", root), specs, get, set);
  const sel = (name, label) => ({ name, kind: "select", label, options: fns });

  heading("Scoring function");
  const cFn = controls([sel("fn", "scoring")]);
  const row = wbEl("div", "wb-panels", root);
  const pAcc = wbPanel(row, "accuracy"), pConf = wbPanel(row, "confusion");
  heading("Which examples flip");
  const cFlip = controls([sel("a", "flip A"), sel("b", "flip B")]);
  const pFlip = wbPanel(root, "flips");
  const table = wbEl("div", "wb-flip-table", root);
  heading("Why: token surprisal under each label");
  const cEx = controls([{ name: "example", kind: "slider", label: "example",
                          max: () => Math.max(0, (D().golds || [0]).length - 1) }]);
  const pStrip = wbPanel(root, "surprisal");
  heading("Premise strength");
  const cLam = controls([
    { name: "lam", kind: "slider", label: "λ", max: () => lams().length - 1, readout: (i) => lams()[i].toFixed(2) },
    { name: "premise", kind: "select", label: "premise",
      options: () => Object.keys(D().curves || {}).map((p) => [p, p]) }]);
  const lamText = wbEl("div", "wb-lam-text", root);
  const pLam = wbPanel(root, "lambda");
  const note = wbEl("div", "wb-note", root);
  const bars = wbBars(pAcc), conf = wbHeatmap(pConf), flips = wbHeatmap(pFlip);
  const strip = wbStrip(pStrip), curve = wbLineChart(pLam);
  let blues = null;

  function preds(fn) { return (D().preds || {})[fn] || []; }

  function drawFunction() {
    cFn.refresh();
    const d = D(), fn = model.get("fn"), i = d.functions.indexOf(fn);
    pAcc.title.textContent = `${d.title}: accuracy per scoring function (${fn} in red)`;
    bars.draw({
      labels: d.functions, values: d.acc, lo: d.acc_lo, hi: d.acc_hi, ymax: 1, ytitle: "accuracy",
      colors: d.functions.map((f) => (f === fn ? WB_COLORS[2] : WB_COLORS[0])), width: 500, height: 330,
      hline: d.majority, hlineText: `majority ${d.majority.toFixed(2)}`,
      hover: (j) => `${d.functions[j]}\nacc ${d.acc[j].toFixed(3)} (95% CI ${d.acc_lo[j].toFixed(3)}-` +
        `${d.acc_hi[j].toFixed(3)})\nmacro-F1 ${d.macro_f1[j].toFixed(3)}`,
    });
    pAcc.canvas.dataset.highlight = fn;
    const K = d.classes.length, z = new Float32Array(K * K), p = preds(fn);
    d.golds.forEach((g, j) => { z[g * K + p[j]] += 1; });
    pConf.title.textContent = `Confusion matrix · ${fn}`;
    conf.draw({
      z, rows: K, cols: K, xlabels: d.classes, ylabels: d.classes, xtitle: "predicted", ytitle: "gold",
      lut: blues, zmin: 0, zmax: Math.max(1, ...z), cbtitle: "examples", size: 300, maxcell: 60, integer: true,
      cellText: (r, c) => String(z[r * K + c]), hover: (r, c) => `gold ${d.classes[r]} → pred ${d.classes[c]}: ` +
        `${z[r * K + c]}`,
    });
    pConf.canvas.dataset.shown = fn;
    note.textContent = i < 0 ? `no scoring function ${fn} in this record` : "";
  }

  function drawFlips() {
    cFlip.refresh();
    const d = D(), F = d.functions, K = F.length, n = d.golds.length, z = new Float32Array(K * K);
    const P = F.map(preds);
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < K; j++) {
        let c = 0;
        for (let e = 0; e < n; e++) c += P[i][e] !== P[j][e];
        z[i * K + j] = c;
      }
    }
    pFlip.title.textContent = `Which examples flip (of ${n})`;
    flips.draw({
      z, rows: K, cols: K, xlabels: F, ylabels: F, xtitle: "", ytitle: "", lut: blues, zmin: 0, zmax: Math.max(1, n),
      cbtitle: "flips", size: 380, maxcell: 34, cellText: (r, c) => String(z[r * K + c]), integer: true,
      outline: [F.indexOf(model.get("a")), F.indexOf(model.get("b"))].every((i) => i >= 0)
        ? [F.indexOf(model.get("a")), F.indexOf(model.get("b"))] : null,
      hover: (r, c) => `${F[r]} vs ${F[c]}: ${z[r * K + c]} flips`,
    });
    drawTable();
  }

  function drawTable() {
    const d = D(), a = model.get("a"), b = model.get("b"), pa = preds(a), pb = preds(b);
    const idx = [];
    pa.forEach((v, e) => { if (v !== pb[e]) idx.push(e); });
    const m = (d.mcnemar || {})[`${a}|${b}`] || [0, 0, "1"];
    table.textContent = "";
    const head = wbEl("div", "wb-flip-head", table);
    const bold = (t) => wbEl("b", "", head, t);
    bold(String(idx.length));
    head.append(` of ${pa.length} examples flip between `);
    bold(a);
    head.append(" and ");
    bold(b);
    head.append(` (${m[0]} only ${a} right, ${m[1]} only ${b} right; McNemar p = ${m[2]})`);
    const t = wbEl("table", "", table);
    t.style.fontSize = "12px";
    const tr = wbEl("tr", "", t);
    for (const h of ["#", "gold", a, b, "text"]) wbEl("th", "", tr, h);
    for (const e of idx.slice(0, 20)) {
      const r = wbEl("tr", "", t), g = d.golds[e];
      wbEl("td", "", r, String(e));
      wbEl("td", "", r, d.classes[g]);
      for (const p of [pa[e], pb[e]]) wbEl("td", "", r, d.classes[p]).style.color = p === g ? "#2a7" : "#c33";
      wbEl("td", "", r, d.texts[e] + "…");
    }
    table.dataset.shown = `${a}|${b}`;
  }

  function drawExample() {
    cEx.refresh();
    const d = D(), i = Math.min(model.get("example"), d.golds.length - 1), ex = d.examples[i];
    pStrip.title.textContent = `Example ${i} (gold: ${d.classes[d.golds[i]]})  ·  context ends: ${ex.ctx}`;
    strip.draw({
      width: 860, xtitle: "surprisal of the continuation, nats (sum = -LL)",
      rows: d.verbalizers.map((v, k) => ({
        label: v, color: WB_COLORS[k % WB_COLORS.length],
        segs: ex.toks[k].map((t, j) => ({ w: ex.s[k][j], text: t,
                                          hover: `${v}\ntoken ${j}: '${t}'\nsurprisal ${ex.s[k][j].toFixed(2)} nats` })),
      })),
    });
    pStrip.canvas.dataset.shown = String(i);
  }

  function drawLambda() {
    cLam.refresh();
    const d = D(), i = lamIndex(), premise = model.get("premise"), curves = d.curves;
    pLam.title.textContent = "Premise strength: accuracy vs λ";
    curve.draw({
      x: d.lambdas, width: 700, height: 300, ylo: 0, yhi: 1, xtitle: "λ (0 = raw log-prob, 1 = PMI / DCPMI)",
      ytitle: "accuracy", hline: d.majority, hlineText: "majority", vline: d.lambdas[i],
      series: Object.keys(curves).map((p, k) => ({ name: p, y: curves[p], color: WB_COLORS[k % WB_COLORS.length] })),
    });
    lamText.textContent = `λ = ${d.lambdas[i].toFixed(2)}, premise = ${premise}: accuracy `;
    wbEl("b", "", lamText, (curves[premise] || [NaN])[i].toFixed(3));
    pLam.canvas.dataset.shown = `${d.lambdas[i].toFixed(2)}|${premise}`;
  }

  function guarded(fn) {
    return () => {
      if (!D().functions) { note.textContent = "no record to show"; return; }
      try { fn(); } catch (err) { note.textContent = `scoring lab: ${err}`; note.classList.add("wb-error"); }
    };
  }
  function all() {
    blues = wbLut(D().stops || [[0, 247, 251, 255], [1, 8, 48, 107]]);
    drawFunction(); drawFlips(); drawExample(); drawLambda();
  }
  const offs = [
    wbListen(model, ["data"], guarded(all)),
    wbListen(model, ["fn"], guarded(drawFunction)),
    wbListen(model, ["a", "b"], guarded(drawFlips)),                // the table and the framed pair
    wbListen(model, ["example"], guarded(drawExample)),
    wbListen(model, ["lam", "premise"], guarded(drawLambda)),
  ];
  guarded(all)();
  return () => offs.forEach((off) => off());
}

export default { render };
