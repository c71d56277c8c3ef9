"""Benchmark: slider -> repaint latency of the attention and routing views and the scoring lab in a real browser.

JupyterLab (the e2e harness, tests/e2e/harness.py) + Playwright + Debian Chromium. A throwaway notebook shows the
attention explorer (tiny 4-layer x 4-head model), the routing token -> expert explorer (tiny 4-layer, 8-expert
MoE), the group heat map and the checkpoint replay on a 128-token input (control set "views"), and the attention
view's model grid and head view on the same 128 tokens ("modes"; "modes-plotly" is the same controls wired the
ipywidgets way, a Python callback redisplaying plots.model_grid / plots.head_view in an Output). For each control
the script presses ArrowRight/ArrowLeft on it `--moves` times (a select: picks the other option; hover: moves the
mouse to the next token); one move is timed in the page from the keydown (input, mousemove) event
(`event.timeStamp`; the old ipywidgets slider has no `input` event, the canvas view's range input fires its `input`
in the same task) to the repaint after the view changed: a MutationObserver waits until the view's title names the
new layer/head AND its picture changed (a new plotly plot or its `.hm image` href, or the canvas's `data-frame`
counter), then one requestAnimationFrame and a zero timeout (the frame has been painted). A move whose picture does
not change within 3 s counts at that time (3 s) and is flagged. The same script measures the old ipywidgets +
plotly views and the client-side canvas views: the selectors cover both.

Writes bench/results/view_latency.json (results under the --label, other labels kept) and view_latency.md.

    python bench/bench_view_latency.py --label before   # on the old code (a copy of it, --out here)
    python bench/bench_view_latency.py --label after
    python bench/bench_view_latency.py --controls modes-plotly --label "before: grid and head view"
    python bench/bench_view_latency.py --controls modes --label "after: grid and head view"
    python bench/bench_view_latency.py --controls labs --label "before: scoring lab"   # old code, as above
    python bench/bench_view_latency.py --controls labs --label "after: scoring lab"
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
NOTEBOOK = "view_latency.ipynb"
N_TOKENS = 128
N_EXAMPLES = 200                              # the scoring lab's record: 200 examples x 3 labels (5 verbalizers)
SETUP = f"""\
import torch
torch.set_num_threads(1)
from workbench.testing import tiny_model, tiny_tokenizer
from workbench.probes.attention import sharpen
from workbench.probes.routing import routing_record
tok = tiny_tokenizer()
dense = sharpen(tiny_model("dense", tokenizer=tok, num_hidden_layers=4, max_position_embeddings=256))
moe = sharpen(tiny_model("moe", tokenizer=tok, num_hidden_layers=4, num_local_experts=8,
                         max_position_embeddings=256))
story = ("Once upon a time, there was a little girl named Lily. She liked to play with her red ball in the "
         "park. One day, her dog Max ran away with the ball. Lily ran after Max and called his name. ") * 4
ids = tok(story, add_special_tokens=False)["input_ids"][:{N_TOKENS - 1}]   # + BOS = {N_TOKENS} tokens
text = tok.decode(ids)
routing_text = tok.decode(tok(story, add_special_tokens=False)["input_ids"][:{N_TOKENS}])   # no BOS here
"""
ATTENTION = f"""\
from workbench.widgets.attention import attention_explorer
attention_explorer(dense, tok, text, name="tiny-4x4", max_tokens={N_TOKENS})
"""
ROUTING = """\
from workbench.widgets import routing as W
rec = routing_record(moe, tok, routing_text)
print("routing tokens", rec.n_tokens)
tokens_box = W.routing_explorer(rec)
tokens_box
"""
GROUPS = """\
parts = [routing_text[i::4] for i in range(4)]                  # four "groups" of text
grec = routing_record(moe, tok, parts, groups={"part": ["a", "b", "c", "d"]})
groups_box = W.group_explorer(grec, "part")
groups_box
"""
REPLAY = """\
from workbench.probes.routing import checkpoint_records
early = [sharpen(tiny_model("moe", seed=s, tokenizer=tok, num_hidden_layers=4, num_local_experts=8,
                            max_position_embeddings=256), seed=s) for s in (1, 2)]
replay_box = W.checkpoint_replay(checkpoint_records([(0, early[0]), (50, early[1]), (100, moe)], tok, [routing_text]))
replay_box
"""
MODES = f"""\
from workbench.probes.attention import attention_record
from workbench.widgets.attention_view import attention_view
arec = attention_record(dense, tok, text, max_tokens={N_TOKENS})
grid_view = attention_view(arec, view="grid")
grid_view.add_class("wb-bench-grid")
lines_view = attention_view(arec, view="head view")
lines_view.add_class("wb-bench-lines")
display(grid_view, lines_view)
"""
MODES_PLOTLY = f"""\
import ipywidgets as widgets
from IPython.display import display
from workbench.probes.attention import attention_record
from workbench.plots import attention as plots
arec = attention_record(dense, tok, text, max_tokens={N_TOKENS})

def grid_fig(norm):
    display(plots.model_grid(arec, norm).update_layout(title_text=f"all heads, {{norm}}"))

def lines_fig(layer, threshold):
    fig = plots.head_view(arec, layer, threshold=threshold)
    display(fig.update_layout(title_text=f"head view, layer {{layer}}, threshold {{threshold:.2f}}"))

norm = widgets.Dropdown(options=["none", "row max"], description="normalise")
grid_box = widgets.VBox([norm, widgets.interactive_output(grid_fig, {{"norm": norm}})])
grid_box.add_class("wb-bench-grid")
layer = widgets.IntSlider(0, 0, arec.n_layers - 1, description="layer")
threshold = widgets.FloatSlider(value=0.05, min=0, max=0.95, step=0.01, description="threshold")
lines_box = widgets.VBox([layer, threshold, widgets.interactive_output(lines_fig, {{"layer": layer,
                                                                                  "threshold": threshold}})])
lines_box.add_class("wb-bench-lines")
display(grid_box, lines_box)
"""
LABS = f"""\
from workbench.scoring import Task, label_logprobs
from workbench.widgets.scoring import scoring_lab
names = ("Lily", "Tom", "Mia", "Ben")
texts = tuple(f"{{names[i % 4]}} {{('lost', 'found', 'broke', 'shared')[i % 4]}} the ball in the park {{i}}."
              for i in range({N_EXAMPLES}))
task = Task("mood", texts, tuple(i % 3 for i in range({N_EXAMPLES})), ("happy", "sad", "angry"),
            verbalizers=(("happy", "glad"), ("sad",), ("angry", "cross")), template="Story: {{text}}\\nShe feels",
            domain_premise="She feels", generic_premise="Answer:")
lrec = label_logprobs(dense, tok, task, model_name="tiny-4x4")
from workbench.evaluation.grid import load_results
from workbench.widgets.prompting import prompt_lab
display(scoring_lab({{("tiny-4x4", "mood"): lrec}}))
display(prompt_lab(load_results(), models=["dense-1m", "dense-4m", "dense-12m", "dense-4m-it", "moe-4m-it"]))
"""
CELLS = {"views": (ATTENTION, ROUTING, GROUPS, REPLAY), "modes": (MODES,), "modes-plotly": (MODES_PLOTLY,),
         "labs": (LABS,)}
# one timed move, installed before the key press (or input, mousemove); the result lands in window.__wbMove
MEASURE_JS = """
(a) => {
  const root = document.querySelectorAll(a.root)[0];
  window.__wbIds = window.__wbIds || 0;
  const sig = () => {                                      // every canvas's drawings, or every plot's identity
    const cs = [...root.querySelectorAll('canvas[data-frame]')];
    if (cs.length) return cs.map((c) => c.dataset.frame).join(',');
    return [...root.querySelectorAll('.js-plotly-plot')].map((p) => {
      if (!p.__wbId) p.__wbId = ++window.__wbIds;          // an Output redisplaying makes a new plot
      const i = p.querySelector('.hm image');
      return p.__wbId + '|' + (i ? i.getAttribute('href') : '');
    }).join(',');
  };
  const sig0 = sig();
  let t0 = null, tTitle = null, tSig = null, finished = false;
  window.__wbMove = null;
  const event = a.event || 'keydown';
  const onKey = (e) => { if (t0 === null) t0 = e.timeStamp; };
  document.addEventListener(event, onKey, true);
  const finish = (flag) => {
    if (finished) return;
    finished = true;
    obs.disconnect();
    document.removeEventListener(event, onKey, true);
    requestAnimationFrame(() => setTimeout(() => {
      window.__wbMove = {ms: performance.now() - t0, title_ms: tTitle - t0, flag};
    }, 0));
  };
  const check = () => {
    if (t0 === null || finished) return;
    const now = performance.now();
    const title = [...root.querySelectorAll(a.title)].find((t) => t.textContent.includes(a.expect));
    if (tTitle === null && title) {
      tTitle = now;
      setTimeout(() => { if (tSig === null) finish('picture unchanged'); }, 3000);
    }
    const s = sig();
    if (tSig === null && s !== sig0 && s !== '') tSig = now;
    if (tTitle !== null && tSig !== null) finish('');
  };
  const obs = new MutationObserver(check);
  obs.observe(root, {subtree: true, childList: true, attributes: true, characterData: true});
  return sig0.length;
}
"""
TITLE = ".wb-title, .gtitle"


def _slider(page, root: str, control: str, nth: int):
    """The slider to press keys on: the canvas view's <input type=range data-control=...>, else the nth
    ipywidgets slider handle (old views)."""
    new = page.locator(f"{root} input[data-control='{control}']")
    if new.count():
        return new.first, "canvas view"
    return page.locator(f"{root} .widget-slider").nth(nth).locator(".noUi-handle"), "ipywidgets + plotly"


def _stats(ms: list[float]) -> dict:
    s = sorted(ms)
    p95 = s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]
    return {"median_ms": round(statistics.median(s), 1), "p95_ms": round(p95, 1),
            "min_ms": round(s[0], 1), "max_ms": round(s[-1], 1), "n": len(s)}


def time_slider(page, root: str, control: str, nth: int, n_max: int, expect, moves: int, pause: float,
                start: int = 0, title: str = "") -> dict:
    """Press ArrowRight/ArrowLeft `moves` times (bouncing between 0 and n_max, from `start`) and time each repaint."""
    handle, kind = _slider(page, root, control, nth)
    handle.scroll_into_view_if_needed()
    handle.focus()
    value, step, ms, flags = start, 1 if start < n_max else -1, [], []
    for _ in range(moves):
        if not 0 <= value + step <= n_max:
            step = -step
        value += step
        r = _timed(page, root, expect(value), lambda: page.keyboard.press("ArrowRight" if step > 0 else "ArrowLeft"),
                   "keydown", title)
        ms.append(r["ms"])
        flags += [r["flag"]] if r["flag"] else []
        time.sleep(pause)                     # let the kernel and the page settle between moves
    for _ in range(abs(value - start)):       # back to the start for the next control
        page.keyboard.press("ArrowLeft" if value > start else "ArrowRight")
    time.sleep(1.0)
    return {"kind": kind, **_stats(ms), "flags": len(flags), "samples_ms": [round(x, 1) for x in ms]}


def _timed(page, root: str, expect: str, act, event: str, title: str = "") -> dict:
    """One timed change: install the measurement, run act() (a key press, a select, a mouse move), wait for it
    (`title`: the selector of the elements one of which must show `expect`, default TITLE)."""
    page.evaluate(MEASURE_JS, {"root": root, "title": title or TITLE, "expect": expect, "event": event})
    act()
    page.wait_for_function("window.__wbMove !== null", timeout=30_000)
    return page.evaluate("window.__wbMove")


def time_select(page, root: str, values: list, expect, moves: int, pause: float, control: str = "norm",
                label: str = "") -> dict:
    """Pick the options of the view's select in turn (`values`, first one current) and time each repaint (the
    canvas view's <select data-control=control>, else the ipywidgets dropdown labelled `label`, or the first)."""
    sel = page.locator(f"{root} select[data-control='{control}']")
    kind = "canvas view"
    if not sel.count():
        sel, kind = page.locator(f"{root} .widget-dropdown select"), "ipywidgets + plotly"
        if label:
            sel = page.locator(f"{root} .widget-dropdown").filter(
                has=page.locator("label.widget-label", has_text=label)).locator("select")
    sel = sel.first
    sel.scroll_into_view_if_needed()
    ms, flags = [], []
    for i in range(moves):
        v = values[(i + 1) % len(values)]
        r = _timed(page, root, expect(v), lambda: sel.select_option(v), "input", TITLE)
        ms.append(r["ms"])
        flags += [r["flag"]] if r["flag"] else []
        time.sleep(pause)
    if moves % len(values):
        sel.select_option(values[0])
    time.sleep(1.0)
    return {"kind": kind, **_stats(ms), "flags": len(flags), "samples_ms": [round(x, 1) for x in ms]}


def time_hover(page, root: str, moves: int, pause: float, first: int = 40) -> dict:
    """Move the mouse over the head view's query tokens (`first`, `first` + 1, ...) and time each repaint."""
    canvas = page.locator(f"{root} canvas.wb-canvas").first
    canvas.scroll_into_view_if_needed()
    g = json.loads(canvas.get_attribute("data-geometry"))
    box = canvas.bounding_box()
    at = lambda i: (box["x"] + g["left"] - 8, box["y"] + g["top"] + (i + 0.5) * g["row"])   # noqa: E731
    page.mouse.move(*at(first))
    time.sleep(0.5)
    ms, flags = [], []
    for i in range(1, moves + 1):
        x, y = at(first + i)
        r = _timed(page, root, "", lambda: page.mouse.move(x, y), "mousemove")
        ms.append(r["ms"])
        flags += [r["flag"]] if r["flag"] else []
        time.sleep(pause)
    page.mouse.move(0, 0)
    time.sleep(1.0)
    return {"kind": "canvas view", **_stats(ms), "flags": len(flags), "samples_ms": [round(x, 1) for x in ms]}


def payloads() -> dict:
    """Bytes the canvas views hold in the browser for this benchmark's inputs (empty on the old code)."""
    try:
        from workbench.widgets.attention_view import AttentionView
    except ImportError:
        return {}
    ns: dict = {}
    for cell in (SETUP, ROUTING, GROUPS, REPLAY):
        exec(cell, ns)
    from workbench.probes.attention import attention_record
    arec = attention_record(ns["dense"], ns["tok"], ns["text"], max_tokens=N_TOKENS)
    rec, grec = ns["rec"], ns["grec"]
    view = AttentionView.from_record(arec)
    return {"attention": {"shape": f"{arec.n_layers} layers x {arec.n_heads} heads x {arec.n_tokens}^2 "
                                   "(weights + rollout, float16)", "bytes": view.payload_bytes()},
            "attention grid and head view": {"shape": "the attention view's payload, nothing more (the grid also "
                                                      f"keeps an image of its cells in the page: {arec.n_layers} x "
                                                      f"{arec.n_heads} x {arec.n_tokens}^2 RGBA)",
                                             "bytes": view.payload_bytes()},
            "routing token→expert": {"shape": f"{rec.n_layers} layers x {rec.n_tokens} tokens x {rec.n_experts} "
                                              f"experts (top-{rec.top_k})",
                                     "bytes": ns["tokens_box"].view.payload_bytes()},
            "routing group heat map": {"shape": f"{grec.n_layers} layers x 2 views x soft/hard x 2 metrics, "
                                                f"{len(set(grec.groups['part']))} groups (JSON frames)",
                                       "bytes": ns["groups_box"].view.payload_bytes()},
            "routing replay": {"shape": f"3 checkpoints x {rec.n_layers} layers x {rec.n_tokens} tokens",
                               "bytes": ns["replay_box"].view.payload_bytes()}}


def lab_payloads() -> dict:
    """Bytes the scoring lab's and the prompt lab's views hold in the browser for this benchmark's inputs."""
    from workbench.widgets.scoring_view import ScoringView
    ns: dict = {}
    exec(SETUP, ns)
    exec(LABS.rsplit("\n", 5)[0], ns)                        # everything but the labs themselves
    from workbench.scoring import summarize
    view = ScoringView()
    view.set_record(ns["lrec"], summarize(ns["lrec"], n_boot=50))
    from workbench.evaluation.grid import load_results
    from workbench.widgets.prompting_view import PromptView
    grid = PromptView()
    table = load_results()
    grid.set_table(table)
    n_values = sum(len(v) for v in grid.data["values"].values())
    return {"scoring lab": {"shape": f"{N_EXAMPLES} examples x 3 classes (5 verbalizers), 10 functions' predictions, "
                                     "intervals, McNemar pairs, per-token surprisals, 3 x 31 λ accuracies (JSON)",
                            "bytes": view.payload_bytes()},
            "prompt lab": {"shape": f"{n_values} aspect values x {len(grid.data['metrics'])} metrics x "
                                    f"{len(grid.data['models'])} models x {len(grid.data['styles'])} styles, mean, "
                                    "interval and row mean per cell (JSON)", "bytes": grid.payload_bytes()}}


def _views(page, moves: int, pause: float) -> dict:
    """The attention explorer's and the routing views' sliders (control set "views")."""
    att, out = ".wb-attention-explorer", {}
    out["attention layer slider"] = time_slider(page, att, "layer", 0, 3, lambda v: f"layer {v} head 0", moves, pause)
    out["attention head slider"] = time_slider(page, att, "head", 1, 3, lambda v: f"layer 0 head {v}", moves, pause)
    out["routing token→expert layer slider"] = time_slider(page, ".wb-routing-explorer", "layer", 0, 3,
                                                           lambda v: f"layer {v}:", moves, pause)
    out["routing group heat map layer slider"] = time_slider(page, ".wb-routing-groups", "layer", 0, 3,
                                                             lambda v: f"layer {v}:", moves, pause, start=3)
    out["routing replay step slider"] = time_slider(page, ".wb-routing-replay", "ckpt", 0, 2,
                                                    lambda v: f"step {(0, 50, 100)[v]}, layer 0", moves, pause,
                                                    start=2)
    return out


def _modes(page, moves: int, pause: float, canvas: bool) -> dict:
    """The model grid's and the head view's controls (sets "modes" and, wired through Python, "modes-plotly")."""
    grid, lines, out = ".wb-bench-grid", ".wb-bench-lines", {}
    if canvas:                                # the outline of the selected cell: only the canvas view has one
        out["grid layer slider (outlined cell)"] = time_slider(page, grid, "layer", 0, 3,
                                                               lambda v: f"layer {v} head 0 outlined", moves, pause)
    out["grid normalise select (every cell)"] = time_select(page, grid, ["none", "row max"],
                                                            lambda v: "" if canvas else f"all heads, {v}", moves,
                                                            pause)
    out["head view layer slider"] = time_slider(page, lines, "layer", 0, 3, lambda v: f"head view, layer {v}",
                                                moves, pause)
    out["head view threshold slider"] = time_slider(page, lines, "threshold", 1, 10,
                                                    lambda v: "" if canvas else f"threshold {0.05 + 0.01 * v:.2f}",
                                                    moves, pause)
    if canvas:                                # plots.head_view has no hover highlight
        out["head view hover a token"] = time_hover(page, lines, moves, pause)
    return out


def _labs(page, moves: int, pause: float) -> dict:
    """The scoring lab's display controls (control set "labs"; the same cell on old and new code)."""
    lab, out = ".wb-scoring-lab", {}
    out["scoring lab function select (bars + confusion)"] = time_select(
        page, lab, ["acc", "dcpmi"], lambda v: f"Confusion matrix · {v}", moves, pause, control="fn", label="scoring")
    out["scoring lab example slider (surprisal strip)"] = time_slider(page, lab, "example", 0, 8,
                                                                      lambda v: f"Example {v} (", moves, pause)
    out["scoring lab λ slider (accuracy vs λ)"] = time_slider(
        page, lab, "lam", 1, 30, lambda v: f"λ = {0.05 * v:.2f}, premise", moves, pause, start=20,
        title=".wb-lam-text, .widget-html")
    prompts = ".wb-prompt-lab"
    out["prompt lab metric select (lines, heat map, best table)"] = time_select(
        page, prompts, ["judge", "rouge_l"], lambda v: f": {v} across", moves, pause, control="metric", label="metric")
    out["prompt lab value select (lines, heat map, best table)"] = time_select(
        page, prompts, ["question answering", "arithmetic"], lambda v: f"task type = {v}: judge", moves, pause,
        control="entity", label="value")
    return out


def run(moves: int, pause: float, controls: list[str]) -> dict:
    import nbformat

    from tests.e2e.harness import browser_page, open_notebook, run_all, start_lab, wait_idle
    src = Path(tempfile.mkdtemp(prefix="wb-bench-")) / NOTEBOOK
    cells = [SETUP] + [c for name in controls for c in CELLS[name]]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nbformat.write(nb, src)
    lab = start_lab([src], env={"WB_FAST": "1"})
    out = {}
    try:
        with browser_page(width=1440, height=1400) as page:
            open_notebook(page, lab, NOTEBOOK)
            run_all(page)
            wait_idle(page, timeout_s=300)
            time.sleep(2.0)
            if "views" in controls:
                out.update(_views(page, moves, pause))
            if "modes" in controls:
                out.update(_modes(page, moves, pause, canvas=True))
            if "modes-plotly" in controls:
                out.update(_modes(page, moves, pause, canvas=False))
            if "labs" in controls:
                out.update(_labs(page, moves, pause))
            assert not page.errors, page.errors
    finally:
        lab.stop()
    return out


def write(all_results: dict, out: Path) -> None:
    lines = ["# Views: slider → repaint latency in a real browser", "",
             f"JupyterLab + Playwright + headless Debian Chromium (software rendering), {N_TOKENS}-token input, "
             "tiny random models: attention 4 layers x 4 heads, routing 4 MoE layers x 8 experts (top-2); the group "
             "heat map has 4 groups (similarity view), the replay 3 checkpoints; the model grid (16 cells) and "
             "the head view show the attention model's 128 tokens; the scoring lab shows the attention model's "
             f"label log-likelihoods on {N_EXAMPLES} short stories x 3 classes (the function select: the confusion "
             "matrix's title; the λ slider: the accuracy line under it), the prompt lab the shipped grid of "
             "generations (5 models ticked). "
             "One move = a keyboard ArrowRight/ArrowLeft on the focused slider (a select: the other option; "
             "hover: the mouse onto the next token); time from the keydown (input, mousemove) event "
             "to the first animation frame after the view shows the new layer/head (title and picture changed). "
             "Target: median ≤ 50 ms, p95 ≤ 100 ms.", ""]
    for label, res in all_results.items():
        meta = res["meta"]
        lines += [f"## {label}: {meta['views']}", ""] + ([meta["note"], ""] if meta.get("note") else []) + [
                  f"{meta['cpu']}, {meta['cores']} cores, 1-minute load average {meta['load']} at the end "
                  f"(a shared machine: other work runs beside it), {meta['moves']} moves per control, "
                  f"{meta['date']}.", "",
                  "| control | views | median ms | p95 ms | min ms | max ms | moves | picture unchanged |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for name, r in res["controls"].items():
            lines.append(f"| {name} | {r['kind']} | {r['median_ms']} | {r['p95_ms']} | {r['min_ms']} | "
                         f"{r['max_ms']} | {r['n']} | {r['flags']} |")
        if res.get("payload"):
            lines += ["", "Data held by the browser (sent once per input):", ""]
            for view, p in res["payload"].items():
                lines.append(f"- {view}: {p['shape']}: {p['bytes'] / 1024:.0f} KiB")
        lines.append("")
    (out / "view_latency.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="after", help="name of this run in the results (before / after)")
    ap.add_argument("--moves", type=int, default=30)
    ap.add_argument("--pause", type=float, default=0.4, help="seconds between moves")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for view_latency.json/.md")
    ap.add_argument("--note", default="", help="a line saying which code was measured")
    ap.add_argument("--controls", default="views,modes",
                    help="comma-separated control sets: views (attention explorer, routing), modes (the attention "
                         "view's grid and head view), modes-plotly (the same controls redrawing plotly figures "
                         "from Python), labs (the scoring lab: old or new code, whichever runs)")
    a = ap.parse_args()
    sets = [c.strip() for c in a.controls.split(",") if c.strip()]
    unknown = [c for c in sets if c not in CELLS]
    if unknown:
        ap.error(f"unknown control set(s) {unknown}: choose from {', '.join(CELLS)}")
    controls = run(a.moves, a.pause, sets)
    kinds = sorted({r["kind"] for r in controls.values()})
    meta = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "moves": a.moves,
            "load": round(os.getloadavg()[0], 2), "date": time.strftime("%Y-%m-%d"), "views": ", ".join(kinds),
            "note": a.note}
    path = a.out / "view_latency.json"
    a.out.mkdir(parents=True, exist_ok=True)
    all_results = json.loads(path.read_text()) if path.exists() else {}
    canvas = any(c in ("views", "modes") for c in sets)           # plotly figures hold no payload of their own
    payload = payloads() if canvas else {}
    if "labs" in sets and "canvas view" in kinds:
        payload.update(lab_payloads())
    all_results[a.label] = {"meta": meta, "controls": controls, "payload": payload}
    path.write_text(json.dumps(all_results, indent=1))
    write(all_results, a.out)


if __name__ == "__main__":
    main()
