"""Benchmark: routing statistics for ~100k corpus tokens on CPU, and slider re-render latency.

Compares, side by side and each in a fresh process (for a clean peak-memory reading):
  workbench  corpus_routing (batched, padded, one record) + the statistics of probes.routing
  per-text   what an analysis script typically does (OLMoE's run_moe_analysis.py style): one forward per text
             with output_router_logits=True, argsort per layer, python Counters for load / co-activation /
             vocabulary statistics
Then times a control change made from Python (`box.refresh`: the view's traits) for a 128-token text; in the
browser the controls need no Python at all (bench/bench_view_latency.py times slider -> repaint there).
Writes bench/results/routing.md and bench/results/routing.json.

    python bench/bench_routing.py [--tokens 100000] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def corpus_records(n_docs: int, seed: int = 0) -> tuple[list[dict], str]:
    """The mixed corpus when available, else stories in English and the constructed languages."""
    try:
        from workbench.corpora import generate_corpus
        return list(generate_corpus(kind="mixed", n=n_docs, seed=seed).records), "generate_corpus(kind='mixed')"
    except ImportError:
        from workbench.corpora.languages import translate
        from workbench.corpora.stories import generate_stories
        langs = ["en", "vel", "kor", "tuu"]
        recs = []
        for i, s in enumerate(generate_stories(n_docs, seed)):
            lang = langs[i % 4]
            recs.append({"text": s.text if lang == "en" else translate(s.text, lang), "lang": lang,
                         "domain": "story", "feeling": s.feeling, "topic": s.topic, "ending": s.ending})
        return recs, "generate_stories + translate (4 languages)"


def model_and_tokenizer():
    """The default trained tiny MoE if present, else an untrained moe-tiny preset (same compute per token)."""
    from workbench.config import DEFAULT_MODELS
    if (DEFAULT_MODELS["tiny-moe"] / "config.json").exists():
        from workbench.models import load_model
        model, tok = load_model("tiny-moe")
        return model, tok, "tiny-moe (default trained model)"
    from workbench.models import build_model
    from workbench.testing import tiny_tokenizer
    tok = tiny_tokenizer()
    return build_model("moe-tiny", tokenizer=tok, seed=0).eval(), tok, "moe-tiny preset, untrained"


def run_workbench(records, model, tok, n_tokens):
    from workbench.probes import routing as R
    t0 = time.perf_counter()
    rec = R.corpus_routing(model, tok, records, limit_tokens=n_tokens)
    t1 = time.perf_counter()
    R.load_summary(rec)
    R.loss_table(rec)
    key = "lang" if "lang" in rec.groups else next(iter(rec.groups))
    for metric in ("cosine", "js"):
        R.similarity_stack(rec, key, metric, hard=False)
        R.similarity_stack(rec, key, metric, hard=True)
    for layer in range(rec.n_layers):
        R.coactivation(rec, layer)
        R.vocab_specialization(rec, layer, "input")
        R.vocab_specialization(rec, layer, "predicted")
    R.consecutive_same_expert(rec)
    t2 = time.perf_counter()
    return {"tokens": rec.n_tokens, "route_s": t1 - t0, "stats_s": t2 - t1}


def run_per_text(records, model, tok, n_tokens):
    import numpy as np
    import torch
    t0 = time.perf_counter()
    results, total = [], 0
    with torch.no_grad():
        for r in records:
            ids = tok(r["text"], add_special_tokens=False, return_tensors="pt")["input_ids"][:, :256]
            out = model(input_ids=ids, output_router_logits=True)
            exp = np.stack([np.argsort(-x.numpy(), -1)[:, :model.config.num_experts_per_tok]
                            for x in out.router_logits], -1)              # (T, k, L) as in OLMoE's script
            results.append((ids[0].tolist(), out.logits[0].argmax(-1).tolist(), exp, r.get("lang")))
            total += ids.shape[1]
            if total >= n_tokens:
                break
    t1 = time.perf_counter()
    L = results[0][2].shape[-1]
    for layer in range(L):
        load, pairs, by_tok, by_group = Counter(), Counter(), {}, {}
        for ids, pred, exp, lang in results:
            for t, row in enumerate(exp[:, :, layer].tolist()):
                for e in row:
                    load[e] += 1
                    by_group.setdefault(lang, Counter())[e] += 1
                for a in row:
                    for b in row:
                        if a != b:
                            pairs[(a, b)] += 1
                by_tok.setdefault(ids[t], Counter())[row[0]] += 1
        [max(c.values()) / sum(c.values()) for c in by_tok.values()]
    t2 = time.perf_counter()
    return {"tokens": total, "route_s": t1 - t0, "stats_s": t2 - t1}


def slider_latency(model, tok, repeats: int = 15):
    """Median ms of each widget's control change from Python (`box.refresh`: trait set) on 128 tokens."""
    import numpy as np
    from workbench.probes import routing as R
    from workbench.widgets import routing as W
    records, _ = corpus_records(8)
    rec = R.corpus_routing(model, tok, records, limit_tokens=128)
    rec = rec.select(np.arange(rec.n_tokens) < 128)
    out = {}
    box = W.routing_explorer(rec)
    key = "lang" if "lang" in rec.groups and len(set(rec.groups["lang"])) > 1 else "topic"
    boxes = {"token view (layer slider)": (box, [{"layer": i % rec.n_layers, "top": "1"} for i in range(repeats)]),
             "token view (top-k toggle)": (box, [{"layer": 0, "top": "k" if i % 2 else "1"} for i in range(repeats)]),
             f"group heat map ({key}, layer slider)": (W.group_explorer(rec, key),
                                                       [{"layer": i % rec.n_layers} for i in range(repeats)]),
             "checkpoint replay (step slider)": (W.checkpoint_replay([(0, rec), (1, rec)]),
                                                 [{"ckpt": i % 2} for i in range(repeats)])}
    for name, (b, calls) in boxes.items():
        ts = []
        for kw in calls:
            t = time.perf_counter()
            b.refresh(**kw)
            ts.append(1000 * (time.perf_counter() - t))
        out[name] = {"median_ms": statistics.median(ts), "max_ms": max(ts)}
    return rec.n_tokens, out


def child(method: str, n_tokens: int, threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    records, source = corpus_records(max(50, n_tokens // 60))
    model, tok, model_name = model_and_tokenizer()
    if method == "slider":
        n, slider = slider_latency(model, tok)
        return print("RESULT " + json.dumps({"slider_tokens": n, "slider": slider, "slider_model": model_name}))
    res = (run_workbench if method == "workbench" else run_per_text)(records, model, tok, n_tokens)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res.update(model=model_name, corpus=source)
    if method == "workbench":
        res["slider_tokens"], res["slider"] = slider_latency(model, tok)
        res["slider_model"] = model_name
    print("RESULT " + json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slider-only", action="store_true", help="re-measure the sliders, keep the routing rows")
    ap.add_argument("--child", choices=["workbench", "per-text", "slider"])
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.tokens, a.threads)
    if a.slider_only:
        results = json.loads((ROOT / "bench" / "results" / "routing.json").read_text())["results"]
        results["workbench"].update(_child("slider", a))
        return write(results, a)
    results = {method: _child(method, a) for method in ("workbench", "per-text")}
    write(results, a)


def _child(method: str, a) -> dict:
    p = subprocess.run([sys.executable, __file__, "--child", method, "--tokens", str(a.tokens),
                        "--threads", str(a.threads)], capture_output=True, text=True, cwd=ROOT)
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        raise SystemExit(f"{method} failed:\n{p.stderr[-3000:]}")
    return json.loads(line[0][7:])


def write(results: dict, a) -> None:
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    wb = results["workbench"]
    meta = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": a.threads,
            "python": platform.python_version(), "load_avg_1min_at_end": os.getloadavg()[0]}
    (out / "routing.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    lines = [f"# Routing statistics on CPU ({wb['tokens']:,} tokens)", "",
             f"Model: {wb['model']}. Corpus: {wb['corpus']}. {a.threads} torch threads, {meta['cores']} cores.",
             "Each method runs in its own process; peak memory is the process's maximum resident set size.",
             f"Machine load (1-minute load average) when the run ended: {meta['load_avg_1min_at_end']:.1f}; "
             "timings on a shared machine vary by 2-3x with it.", "",
             "| method | tokens | routing (forward) s | statistics s | total s | peak RSS MB |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['tokens']:,} | {r['route_s']:.1f} | {r['stats_s']:.1f} | "
                     f"{r['route_s'] + r['stats_s']:.1f} | {r['peak_rss_mb']:.0f} |")
    lines += ["", "workbench statistics: load summary, losses in 4 conventions + z (per layer and pooled), "
              "group x expert and group similarity for every layer (soft/hard x cosine/JS), co-activation, "
              "vocabulary specialization (input and predicted), consecutive-token rates.",
              "per-text statistics: load, group counts, all-pairs co-activation and input-token specialization "
              "with python Counters (fewer statistics than the workbench row).", "",
              f"## Slider re-render ({wb['slider_tokens']} tokens, {wb.get('slider_model', wb['model'])})", "",
              "Time of a control change made from Python (`box.refresh`) without a browser: every layer is in "
              "the browser's canvas view already, so this only sets the view's traits. Slider -> repaint in "
              "Chromium: view_latency.md.", "",
              "| control | median ms | max ms |", "|---|---:|---:|"]
    for name, r in wb["slider"].items():
        lines.append(f"| {name} | {r['median_ms']:.1f} | {r['max_ms']:.1f} |")
    (out / "routing.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
