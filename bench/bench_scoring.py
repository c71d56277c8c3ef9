"""Benchmark: workbench label scoring vs lm-evaluation-harness on the same model, task and CPU, in one run.

Both score a multiple-choice task with acc / acc_norm / acc_mutual_info from an already-loaded model
(model loading excluded; dataset reading, tokenisation, forward passes and metrics included), float32,
on the same number of torch threads. lm-eval runs with batch size 1 (its oracle setting) and 32.
Also checks parity (max per-choice |LL difference| and per-example metric agreement).
Writes bench/results/scoring.md and scoring.json.

    python bench/bench_scoring.py [--n 200] [--threads 1] [--model DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

CHOICES = ["happy", "sad", "scared", "angry"]
OUT = Path(__file__).resolve().parent / "results"


def make_data(d: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    names, things = ["Lily", "Tom", "Mia", "Ben"], ["ball", "kite", "boat", "cake", "dog", "hat"]
    rows = []
    for i in range(n):
        who, what = rng.choice(names), rng.choice(things)
        sents = [f"{who} had a {what}.", f"One day the {what} was lost in the park.",
                 f"{who} looked under the tree and near the lake.", "The sun was warm and the birds sang.",
                 f"At last {who} found the {what} by the old gate."][: 3 + i % 3]
        rows.append({"text": " ".join(sents), "label": int(rng.integers(len(CHOICES)))})
    (d / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "bench_feel.yaml").write_text(
        "task: bench_feel\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {d / 'data.jsonl'}\ntest_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "Story: {{text}}\\nAt the end, the hero feels"\ndoc_to_target: label\n'
        f"doc_to_choice: {json.dumps(CHOICES)}\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n"
        "  - metric: acc_mutual_info\nmetadata:\n  version: 1.0\n")
    (d / "wb.yaml").write_text(
        f"name: bench_feel\ndata: data.jsonl\ntemplate: \"Story: {{text}}\\nAt the end, the hero feels\"\n"
        f"choices: {json.dumps(CHOICES)}\n")


def run_lm_eval(d: Path, model_dir: Path, batch_size: int):
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    lm = HFLM(pretrained=str(model_dir), dtype="float32", device="cpu", batch_size=batch_size)
    tm = TaskManager(include_path=str(d), include_defaults=False)
    t = time.perf_counter()
    res = lm_eval.simple_evaluate(model=lm, tasks=["bench_feel"], task_manager=tm, log_samples=True)
    return time.perf_counter() - t, res


def run_workbench(d: Path, model_dir: Path, channel: bool):
    from workbench.models import load_model
    from workbench.scoring import label_logprobs, load_task_file, predictions
    model, tok = load_model(model_dir)
    t = time.perf_counter()
    rec = label_logprobs(model, tok, load_task_file(d / "wb.yaml"), channel=channel)
    preds = predictions(rec, ["acc", "acc_norm", "acc_mutual_info"] if not channel else None)
    return time.perf_counter() - t, rec, preds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="examples in the task")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both tools")
    ap.add_argument("--model", default=None, help="model directory (default: the dense-tiny preset, random init)")
    ap.add_argument("--repeats", type=int, default=2, help="best of N timings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_data(d, args.n)
        model_dir = Path(args.model) if args.model else d / "model"
        if not args.model:
            from workbench.models import build_model, save_model
            from workbench.testing import tiny_tokenizer
            tok = tiny_tokenizer()
            save_model(build_model("dense-tiny", tokenizer=tok, seed=0), tok, model_dir)
        times = {}
        for bs in (1, 32):
            times[f"lm-eval (batch {bs})"], res = min((run_lm_eval(d, model_dir, bs) for _ in range(args.repeats)),
                                                      key=lambda x: x[0])
        times["workbench (acc, acc_norm, acc_mutual_info)"], rec, preds = min(
            (run_workbench(d, model_dir, False) for _ in range(args.repeats)), key=lambda x: x[0])
        times["workbench (all 10 functions, channel included)"] = min(
            run_workbench(d, model_dir, True)[0] for _ in range(args.repeats))
    samples = sorted(res["samples"]["bench_feel"], key=lambda s: s["doc_id"])
    K = len(CHOICES)
    ref = np.array([[float(r[0][0]) for r in s["resps"]] for s in samples])
    max_diff = float(max(np.abs(rec.cond - ref[:, :K]).max(), np.abs(rec.uncond[None] - ref[:, K:]).max()))
    agree = {m: float(np.mean((preds[m] == rec.golds).astype(float) == np.array([s[m] for s in samples])))
             for m in ("acc", "acc_norm", "acc_mutual_info")}
    wb = times["workbench (acc, acc_norm, acc_mutual_info)"]
    ratios = {k: v / wb for k, v in times.items() if k.startswith("lm-eval")}
    report = {"n_examples": args.n, "n_choices": K, "threads": args.threads, "model": "dense-tiny preset"
              if not args.model else Path(args.model).name, "seconds": times, "speedup_vs": ratios,
              "max_abs_ll_diff": max_diff, "metric_agreement": agree, "torch": torch.__version__,
              "cpu": platform.processor() or platform.machine()}
    OUT.mkdir(exist_ok=True)
    (OUT / "scoring.json").write_text(json.dumps(report, indent=2))
    lines = ["# Label scoring: workbench vs lm-evaluation-harness", "",
             f"{args.n} examples x {K} choices, acc + acc_norm + acc_mutual_info, float32 CPU, "
             f"{args.threads} torch thread(s), model loaded beforehand (best of {args.repeats}).", "",
             "| tool | seconds | time / workbench (3 functions) |", "|---|---:|---:|"]
    for k, v in times.items():
        lines.append(f"| {k} | {v:.2f} | {v / wb:.1f}x |")
    lines += ["", f"Parity: max per-choice |LL difference| = {max_diff:.2e} nats; per-example agreement "
              + ", ".join(f"{m} {a:.0%}" for m, a in agree.items()) + "."]
    (OUT / "scoring.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
