"""LoRA against full fine-tuning, over seeds: held-out accuracy with a 95% t-interval, parameters trained, adapter size.

For each model and labelled task: the zero-shot accuracy (no training), then LoRA at each rank and full
fine-tuning (`workbench.compress.adapt`, its default learning rates: LoRA 2e-3, full 2e-4), each trained once per
seed for `--steps` AdamW steps of `--batch-size` examples from the task's training split (the seed sets the
batches and LoRA's random A matrices), then scored on the held-out evaluation split with plain log-likelihood
(`acc`, the same 120 examples as the `acc:` columns of `workbench.compress.measure`). The interval is Student's t
over seeds, mean ± t(0.975, n-1) · sd / sqrt(n) (scipy): it covers the variation between training seeds, not the
sampling of the held-out examples, which every run shares. Seeds pair the runs (the same batches for every
method), so each method's difference to full fine-tuning gets a paired t-interval too.

    python bench/bench_lora.py                 # dense-4m and encdec-4m on topic/1 and feeling/1, 5 seeds, 20 steps
    python bench/bench_lora.py --table         # also writes data/compress/lora.csv, the lab's LoRA rows
    python bench/bench_lora.py --report DIR/lora.json --table   # the outputs again from stored runs
Writes lora.md and lora.json into --out (default bench/results). One CPU thread by default (--threads).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student's t interval of the mean of `values` (the mean twice when they do not vary)."""
    import numpy as np
    from scipy import stats
    v = np.asarray(values, dtype=float)
    mean, sd = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    if len(v) < 2 or sd == 0:
        return mean, (mean if sd == 0 else float("nan")), (mean if sd == 0 else float("nan"))
    lo, hi = stats.t.interval(level, len(v) - 1, loc=mean, scale=sd / math.sqrt(len(v)))
    return mean, float(lo), float(hi)


def accuracy(model, tok, task) -> float:
    import numpy as np

    from workbench.scoring import label_logprobs, predictions
    rec = label_logprobs(model.eval(), tok, task, channel=False)
    return float((predictions(rec, ["acc"])["acc"] == np.asarray(task.golds)).mean())


def run(models, tasks, ranks, seeds, steps, batch_size, train_n, eval_n) -> list[dict]:
    """One record per training run (and one zero-shot record per model and task)."""
    from workbench.compress import adapt, merge
    from workbench.models import load_model
    from workbench.scoring import load_task
    from workbench.scoring.builtin import builtin_task
    runs = []
    for name in models:
        base, tok = load_model(name)
        for spec in tasks:
            task_name, level = spec.split("/")
            train = builtin_task(task_name, int(level), n=train_n, split="train")
            held = load_task(spec, n=eval_n, seed=0)
            runs.append({"model": name, "task": spec, "method": "zero-shot", "rank": None, "seed": None,
                         "accuracy": accuracy(base, tok, held), "trainable": 0, "total": None, "adapter_bytes": 0,
                         "seconds": 0.0, "first_loss": None, "final_loss": None, "majority": held.majority,
                         "ceiling": held.ceiling})
            for method, rank in [("lora", r) for r in ranks] + [("full", None)]:
                for seed in seeds:
                    tuned, rec = adapt(base, tok, train, method, rank=rank or 8, steps=steps, batch_size=batch_size,
                                       seed=seed)
                    acc = accuracy(merge(tuned), tok, held)
                    runs.append({"model": name, "task": spec, "method": method, "rank": rank, "seed": seed,
                                 "accuracy": acc, "trainable": rec.trainable, "total": rec.total,
                                 "adapter_bytes": rec.adapter_bytes, "seconds": rec.seconds,
                                 "first_loss": rec.first_loss, "final_loss": rec.final_loss})
                    print(f"{name} {spec} {method} {rank or ''} seed {seed}: acc {acc:.3f}, {rec.seconds:.1f} s, "
                          f"loss {rec.first_loss:.3f} -> {rec.final_loss:.3f}", flush=True)
    return runs


def summarize(runs: list[dict]):
    """One row per model, task and method: mean accuracy with its t-interval, the paired difference to full
    fine-tuning with its t-interval, trainable parameters, adapter kB, mean training seconds."""
    import pandas as pd
    df = pd.DataFrame(runs)
    rows = []
    for (model, task), g in df.groupby(["model", "task"], sort=False):
        full = g[g.method == "full"].set_index("seed")["accuracy"]
        for (method, rank), h in g.groupby(["method", g["rank"].fillna(0)], sort=False):
            mean, lo, hi = t_interval(h["accuracy"])
            row = {"model": model, "task": task, "method": method, "rank": int(rank) if rank else None,
                   "seeds": int(h["seed"].notna().sum()), "accuracy": mean, "ci_low": lo, "ci_high": hi,
                   "sd": float(h["accuracy"].std(ddof=1)) if len(h) > 1 else float("nan"),
                   "trainable": int(h["trainable"].iloc[0]), "adapter_kb": float(h["adapter_bytes"].iloc[0]) / 1e3,
                   "train_seconds": float(h["seconds"].mean())}
            if method == "lora" and len(full):
                diff = h.set_index("seed")["accuracy"] - full
                row["vs_full"], row["vs_full_low"], row["vs_full_high"] = t_interval(diff.dropna())
            rows.append(row)
    return pd.DataFrame(rows)


def lab_rows(summary):
    """The rows the compression lab draws (data/compress/lora.csv): the measure columns model, method, setting,
    trainable, adapter_kb and `acc:<task>` (the mean over seeds), with the interval beside it and, for LoRA, the
    paired difference to full fine-tuning with its interval (vs_full, vs_full_low, vs_full_high)."""
    import pandas as pd
    names = {"zero-shot": "zero-shot", "lora": "LoRA", "full": "full fine-tuning"}
    out = []
    for r in summary.to_dict("records"):
        out.append({"model": r["model"], "method": names[r["method"]],
                    "setting": f"rank {int(r['rank'])}" if r["method"] == "lora" else "", "task": r["task"],
                    "trainable": r["trainable"], "adapter_kb": r["adapter_kb"], f"acc:{r['task']}": r["accuracy"],
                    "ci_low": r["ci_low"], "ci_high": r["ci_high"], "seeds": r["seeds"],
                    **{k: r.get(k, float("nan")) for k in ("vs_full", "vs_full_low", "vs_full_high")}})
    return pd.DataFrame(out)


def report(summary, runs, args, seconds: float) -> list[str]:
    import torch
    lines = ["# LoRA against full fine-tuning, over seeds", "",
             f"`python bench/bench_lora.py --models {' '.join(args.models)} --tasks {' '.join(args.tasks)} --ranks "
             f"{' '.join(map(str, args.ranks))} --seeds {args.seeds} --steps {args.steps} --batch-size "
             f"{args.batch_size}` (CPU, {args.threads} thread(s), torch {torch.__version__}; {seconds / 60:.1f} min "
             "in all).", "",
             f"Each run: {args.steps} AdamW steps of {args.batch_size} examples from the task's training split "
             f"({args.train_n} examples; loss on the label tokens only; LoRA lr 2e-3 on every attention and MLP "
             "matrix, full fine-tuning lr 2e-4 on every weight), one run per seed "
             f"({args.seeds} seeds: they set the batches and LoRA's initial A), then plain `acc` on {args.eval_n} "
             "held-out examples (evaluation split, the same for every run and the same as the compression "
             "table's `acc:` columns). Accuracy: mean over seeds [95% Student t-interval over seeds]; it does not "
             "include the sampling of the held-out examples, which all runs share. vs full: the paired difference "
             "to full fine-tuning on the same seeds (same batches), with its t-interval. Adapter: the saved LoRA "
             "adapter (peft safetensors), for full fine-tuning the whole model in float16.", "",
             "| model | task | method | trained parameters | adapter (kB) | accuracy [95% CI] | vs full [95% CI] "
             "| train s |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in summary.to_dict("records"):
        name = {"zero-shot": "zero-shot", "full": "full fine-tuning"}.get(r["method"]) or f"LoRA rank {int(r['rank'])}"
        acc = f"{r['accuracy']:.3f}" + (f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if r["seeds"] else "")
        vs = (f"{r['vs_full']:+.3f} [{r['vs_full_low']:+.3f}, {r['vs_full_high']:+.3f}]"
              if isinstance(r.get("vs_full"), float) and not math.isnan(r["vs_full"]) else "")
        lines.append(f"| {r['model']} | {r['task']} | {name} | {r['trainable']:,} | {r['adapter_kb']:.1f} | {acc} "
                     f"| {vs} | {r['train_seconds']:.1f} |")
    tasks = {r["task"]: (r["majority"], r["ceiling"]) for r in runs if r["method"] == "zero-shot"}
    lines += ["", "Task baselines (held-out): " + "; ".join(f"{t}: majority {m:.2f}, ceiling {c:.2f}"
                                                           for t, (m, c) in tasks.items()) + " (the ceiling is the "
              "task's estimate of what its labels allow; a run can land above it by chance).", "",
              "What the intervals say (read from the table, computed):"]
    full = summary[summary.method == "full"].groupby("model")["trainable"].first()
    for r in summary[summary.method == "lora"].to_dict("records"):
        lo, hi = r["vs_full_low"], r["vs_full_high"]
        verdict = ("full fine-tuning is better" if hi < 0 else "LoRA is better" if lo > 0 else
                   "not told apart from full fine-tuning")
        lines.append(f"- {r['model']} {r['task']}, LoRA rank {int(r['rank'])} ({r['trainable'] / full[r['model']]:.1%} "
                     f"of the parameters trained): {verdict} (paired difference {r['vs_full']:+.3f} "
                     f"[{lo:+.3f}, {hi:+.3f}]).")
    return lines


def _no_nan(x):
    """JSON without NaN: None where a value is missing (no interval for zero-shot, no sd of one value)."""
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_no_nan(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["dense-4m", "encdec-4m"])
    p.add_argument("--tasks", nargs="+", default=["topic/1", "feeling/1"])
    p.add_argument("--ranks", nargs="+", type=int, default=[2, 8])
    p.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1 per method (at least 3)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--train-n", type=int, default=1000, help="training examples drawn from the training split")
    p.add_argument("--eval-n", type=int, default=120, help="held-out examples (120: as the compression table)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results")
    p.add_argument("--table", action="store_true", help="also write data/compress/lora.csv (the lab's LoRA rows)")
    p.add_argument("--report", help="train nothing: summarize the runs of this lora.json (its settings replace "
                                    "the arguments above) and write the outputs")
    args = p.parse_args()
    if args.seeds < 3:
        p.error("--seeds: at least 3, for an interval over seeds")
    import torch

    from workbench.compress.variants import LORA_RESULTS
    if args.report:
        stored = json.loads(Path(args.report).read_text())
        vars(args).update(stored["settings"])
        runs, seconds = stored["runs"], stored["seconds"]
    else:
        torch.set_num_threads(args.threads)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs = run(args.models, args.tasks, args.ranks, list(range(args.seeds)), args.steps, args.batch_size,
                       args.train_n, args.eval_n)
        seconds = time.perf_counter() - t0
    summary = summarize(runs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "table", "report")}
    data = {"torch": torch.__version__, "settings": settings, "seconds": seconds,
            "summary": summary.to_dict("records"), "runs": runs}
    (out / "lora.json").write_text(json.dumps(_no_nan(data), indent=1) + "\n")
    (out / "lora.md").write_text("\n".join(report(summary, runs, args, seconds)) + "\n")
    if args.table:
        LORA_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        lab_rows(summary).to_csv(LORA_RESULTS, index=False, float_format="%.6g")
    print(summary.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
