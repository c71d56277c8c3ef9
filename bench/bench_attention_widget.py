"""Benchmark: attention explorer slider latency for a 128-token input, and first-forward time of the default models.

Compares, side by side in one run, three ways to redraw the heat map when the layer slider moves (no browser;
the time is the Python side of a layer change):
  workbench   AttentionExplorer: forward pass cached per input, every layer already in the browser's canvas view;
              a layer change from Python only sets the view's `layer` trait (in the browser there is no Python
              at all: bench/bench_view_latency.py times slider -> repaint there)
  rebuild     cached record, but a new go.Figure per move serialised for display (Output + fig.show() style)
  recompute   no cache: forward pass with output_attentions on every move, then a new figure (interactive() style)
Also times load + first forward (cold) and a second forward for each default model (tiny-dense, tiny-moe;
a tiny random model stands in, and is labelled so, when a default is missing).
Writes bench/results/attention_widget.md and bench/results/attention_widget.json.

    python bench/bench_attention_widget.py [--moves 40] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TEXT = ("Once upon a time, there was a little girl named Lily. She liked to play with her red ball in the park. "
        "One day, her dog Max ran away with the ball. Lily ran after Max and called his name. ") * 4


def _ms(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"median_ms": 1e3 * statistics.median(s), "p95_ms": 1e3 * s[int(0.95 * (len(s) - 1))],
            "max_ms": 1e3 * s[-1]}


def first_forward(name: str, threads: int) -> dict:
    """Load time, first (cold) and second attention_record on the 128-token text, with `threads` torch threads."""
    import torch
    from workbench.probes import attention
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    model, tok, note = attention.load_or_tiny(name)
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = attention.attention_record(model, tok, TEXT, max_tokens=128)
        t2 = time.perf_counter()
        attention.attention_record(model, tok, TEXT, max_tokens=128)
        t3 = time.perf_counter()
    return {"model": name if not note else f"{name} (missing: tiny random stand-in)", "tokens": rec.n_tokens,
            "threads": threads, "layers x heads": f"{rec.n_layers} x {rec.n_heads}", "load_s": t1 - t0, "first_forward_s": t2 - t1,
            "second_forward_s": t3 - t2}


def slider_latency(name: str, moves: int) -> dict:
    from workbench.plots import attention as plots
    from workbench.probes import attention
    from workbench.widgets.attention import AttentionExplorer
    model, tok, note = attention.load_or_tiny(name)
    ex = AttentionExplorer(model, tok, TEXT, name=name, max_tokens=128, note=note)
    rec = ex.rec
    n_layers = rec.n_layers
    rows = {}
    t = []
    for i in range(moves):
        start = time.perf_counter()
        ex.layer.value = (ex.layer.value + 1) % n_layers
        t.append(time.perf_counter() - start)
    rows["workbench (cached record, canvas view: layer trait set)"] = _ms(t)
    t = []
    for i in range(moves):
        start = time.perf_counter()
        plots.attention_heatmap(rec, i % n_layers, 0).to_json()
        t.append(time.perf_counter() - start)
    rows["rebuild (cached record, new figure serialised)"] = _ms(t)
    t = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(max(5, moves // 4)):
            start = time.perf_counter()
            r = attention.attention_record(model, tok, TEXT, max_tokens=128)
            plots.attention_heatmap(r, i % n_layers, 0).to_json()
            t.append(time.perf_counter() - start)
    rows["recompute (forward pass + new figure per move)"] = _ms(t)
    return {"model": name if not note else f"{name} (missing: tiny random stand-in)", "tokens": rec.n_tokens,
            "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--moves", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)   # as notebook 02 (setup_notebook(threads=1))
    args = ap.parse_args()
    import torch
    forwards = [first_forward(n, t) for t in sorted({1, 2, args.threads}) for n in ("tiny-dense", "tiny-moe")]
    torch.set_num_threads(args.threads)
    slider = slider_latency("tiny-dense", args.moves)
    out = {"machine": f"{platform.processor() or platform.machine()}, torch threads {args.threads}",
           "first_forward": forwards, "slider": slider}
    res = ROOT / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "attention_widget.json").write_text(json.dumps(out, indent=2))
    lines = ["# Attention explorer: slider latency and first forward", "",
             f"CPU only, {out['machine']}. Input: {slider['tokens']} tokens. No browser: the time is the Python "
             "side of a layer change (the canvas view then redraws in the browser: see view_latency.md).", "",
             f"## Layer slider re-render ({slider['model']}, target < 100 ms)", "",
             "| method | median ms | p95 ms | max ms |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {v['median_ms']:.1f} | {v['p95_ms']:.1f} | {v['max_ms']:.1f} |" for k, v in slider["rows"].items()]
    lines += ["", "## Load and first forward (attention_record, eager attention, 128 tokens)", "",
              "| model | layers x heads | torch threads | load s | first forward s | second forward s |",
              "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {f['model']} | {f['layers x heads']} | {f['threads']} | {f['load_s']:.2f} | "
              f"{f['first_forward_s']:.3f} | {f['second_forward_s']:.3f} |" for f in forwards]
    lines += ["", "Note: on a busy 2-core machine, 2 torch threads can be far slower than 1 for models this small "
              "(threads wait on each other); compare the rows."]
    (res / "attention_widget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
