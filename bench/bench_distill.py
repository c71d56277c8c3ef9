"""Knowledge distillation on the model family: does a teacher make a better small student than training alone?

Each student is a family preset trained by the family's own recipe (the same 200,000 documents, tokenizer,
seed, data order and 1,500 x 16,384 tokens) with a teacher of the family (Hinton et al. logit distillation,
alpha 0.5, T 2; `workbench.compress.distill`). Its baseline is the shipped member of the same preset, which
was trained by that recipe alone, so the teacher is the only difference. Both are measured the same way:
validation loss (plain cross-entropy on the run's held-out windows), the story validator on 200 samples, and
held-out zero-shot accuracy on the six grid tasks (600 examples each, best and plain `acc`, 95% bootstrap CIs).

    python bench/bench_distill.py --pairs dense-1m:dense-12m dense-1m:moe-12m moe-1m:moe-12m --out DIR   # GPU
    python bench/bench_distill.py --report DIR/distill-*.json   # writes bench/results/distill.md and .json

Students are not kept (data/ has no room); their measurements are.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _student(args) -> dict:
    student, teacher, texts_path, out, scale, alpha, temperature = args
    import torch

    from workbench.compress import distill
    from workbench.family.checks import validator_scores, zero_shot
    from workbench.family.recipe import BATCH, FAMILY, SEQ_LEN
    from workbench.models import load_model
    from workbench.scoring.grid import GRID_TASKS, compute_grid
    torch.set_num_threads(4)
    texts = json.loads(Path(texts_path).read_text())
    m = FAMILY[student]
    steps = max(2, round(m.steps * scale))
    tok = load_model("dense-1m")[1]                          # the family tokenizer
    result, rec = distill(teacher, m.preset, texts, tokenizer=tok, steps=steps, alpha=alpha, temperature=temperature,
                          batch_size=BATCH if scale >= 1 else 8, seq_len=SEQ_LEN if scale >= 1 else 64,
                          lr=m.lr, warmup=min(m.warmup, steps // 4), eval_every=max(1, steps // 6), sample_every=0,
                          sample_n=1, sample_max_new_tokens=16, seed=0, log_every=max(1, min(50, steps // 10)))
    model = result.model.half().float().eval()               # as a shipped member is measured: float16 weights
    torch.backends.cuda.matmul.allow_tf32 = False
    full = scale >= 1
    val = validator_scores(model, tok, n=200 if full else 4, max_new_tokens=240 if full else 24)
    cells = compute_grid({student: (model, tok)}, GRID_TASKS, n=600 if full else 20,
                         batch_tokens=65536 if torch.cuda.is_available() else 8192)
    row = {"student": student, "teacher": teacher, **rec.as_dict(), "validator": {k: v for k, v in val.items()
                                                                                   if k != "example"},
           "zero_shot": zero_shot({spec: r for (_, spec), r in cells.items()}),
           "hardware": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"}
    Path(out, f"{student}--{teacher}--a{alpha:g}-t{temperature:g}.json").write_text(json.dumps(row, indent=1))
    print(f"{student} <- {teacher}: val {rec.val_loss:.4f}, kd {rec.kd_loss:.3f}, {rec.seconds:.0f} s, "
          f"well_formed {val['well_formed']:.3f}", flush=True)
    return row


def run(pairs: list[str], out: Path, scale: float, alpha: float, temperature: float) -> None:
    from workbench.family.recipe import CORPUS_DOCS, family_corpus
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    texts = family_corpus(max(200, round(CORPUS_DOCS * scale)))
    (out / "texts.json").write_text(json.dumps(texts))
    print(f"corpus: {len(texts)} documents ({time.perf_counter() - t0:.0f} s)", flush=True)
    jobs = [(*p.split(":"), str(out / "texts.json"), str(out), scale, alpha, temperature) for p in pairs]
    with get_context("spawn").Pool(len(jobs)) as pool:
        rows = pool.map(_student, jobs)
    (out / "texts.json").unlink()
    (out / f"distill-a{alpha:g}-t{temperature:g}.json").write_text(json.dumps({"rows": rows, "seconds": time.perf_counter() - t0}, indent=1))


def _acc(rows, task, fn=None):
    sel = [r for r in rows if r["task"] == task and (fn is None or r["scoring"] == fn)]
    return max(sel, key=lambda r: r["acc"])


def report(paths: list[Path], results: Path) -> None:
    from workbench.config import MODELS_DIR
    from workbench.family.checks import zero_shot
    from workbench.scoring.grid import load_grid
    rows = [r for p in paths for r in json.loads(Path(p).read_text())["rows"]]
    data = {"rows": rows}
    family = json.loads((MODELS_DIR / "family.json").read_text())
    grid = load_grid(MODELS_DIR.parent / "grid")
    lines = ["# Knowledge distillation on the model family", "",
             "`python bench/bench_distill.py --pairs STUDENT:TEACHER ... --alpha A --temperature T` on one "
             + rows[0]["hardware"] + " (the students of one call trained at the same time, one process each).",
             "Each student: the family recipe of its preset (the same 200,000 documents, tokenizer, seed, data order and",
             "1,500 x 16,384 tokens) plus a teacher (loss = (1 - alpha) cross-entropy + alpha T^2 KL). Baseline: the",
             "shipped member of that preset, trained by the same recipe alone. Val loss: plain cross-entropy (nats/token)",
             "on the run's held-out windows. Zero-shot: 600 held-out examples per task, plain `acc` with its 95% bootstrap",
             "interval (every scoring function is in distill.json).", "",
             "| student | teacher | alpha | T | val loss | well_formed | " + " | ".join(
                 r["task"] for r in _tasks(data)) + " | train time |",
             "|---|---|---:|---:|---:|---:|" + "---:|" * len(_tasks(data)) + "---:|"]
    for student in dict.fromkeys(r["student"] for r in rows):
        base = family[student]
        base_zs = zero_shot({spec: rec for (name, spec), rec in grid.items() if name == student})
        lines.append(_row(student, "— (alone)", "–", "–", base["val_loss"], base["validator"]["well_formed"],
                          base_zs, data, base["train_seconds"]))
        for r in sorted((r for r in rows if r["student"] == student), key=lambda r: (r["temperature"], r["teacher"])):
            lines.append(_row(student, r["teacher"], f"{r['alpha']:g}", f"{r['temperature']:g}", r["val_loss"],
                              r["validator"]["well_formed"], r["zero_shot"], data, r["seconds"]))
    lines += ["", "Teachers: " + ", ".join(f"{t} (val loss {family[t]['val_loss']:.3f})"
                                            for t in dict.fromkeys(r["teacher"] for r in rows)) + ".", ""]
    (results / "distill.md").write_text("\n".join(lines))
    (results / "distill.json").write_text(json.dumps(data, indent=1))


def _tasks(data):
    seen = dict.fromkeys(r["task"] for r in data["rows"][0]["zero_shot"])
    return [{"task": t} for t in seen]


def _row(student, teacher, alpha, temp, val, wf, zs, data, seconds):
    cells = []
    for t in _tasks(data):
        a = _acc(zs, t["task"], "acc")
        cells.append(f"{a['acc']:.3f} [{a['ci_low']:.2f}, {a['ci_high']:.2f}]")
    return (f"| {student} | {teacher} | {alpha} | {temp} | {val:.4f} | {wf:.3f} | " + " | ".join(cells)
            + f" | {seconds:.0f} s |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", nargs="+", default=["dense-1m:dense-12m", "dense-1m:moe-12m", "moe-1m:moe-12m"],
                   help="student:teacher, both family members")
    p.add_argument("--out", default="runs/distill")
    p.add_argument("--scale", type=float, default=1.0, help="multiply steps and corpus (0.01: a smoke test)")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the teacher's term")
    p.add_argument("--temperature", type=float, default=2.0, help="softmax temperature of the KL term")
    p.add_argument("--report", nargs="+", help="write bench/results/distill.md from these distill-*.json files "
                                               "instead of training")
    p.add_argument("--results", default="bench/results")
    args = p.parse_args()
    if args.report:
        report([Path(p) for p in args.report], Path(args.results))
    else:
        run(args.pairs, Path(args.out), args.scale, args.alpha, args.temperature)
    return 0


if __name__ == "__main__":
    sys.exit(main())
