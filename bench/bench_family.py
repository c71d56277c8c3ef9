"""Model-family pilot: train candidate family members on the v2 mixture, then check what the issue asks of them.

For each model: tokens/s while training, wall time, validation loss, the grammar validator's scores on sampled
English stories, and held-out zero-shot accuracy on every built-in task and level (each scoring function),
next to the task's majority baseline and ideal-reader ceiling. The point is to settle a recipe before any
weights are committed: are the tasks learnable at these sizes and budgets, and graded?

    python bench/bench_family.py --models dense-1m dense-4m moe-4m --docs 200000 --steps 2000 --out results/
(on a GPU; `--docs 2000 --steps 20 --eval-n 20` runs in a minute on a CPU as a smoke test.)
Writes family_pilot.json and family_pilot.md into --out.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CANDIDATES = {   # name -> (kind, width, layers, heads, MLP width per expert / dense, experts)
    "dense-1m": ("dense", 128, 4, 4, 256, 0),
    "dense-4m": ("dense", 256, 4, 4, 768, 0),
    "dense-16m": ("dense", 384, 8, 6, 1024, 0),
    "moe-1m": ("moe", 128, 4, 4, 128, 8),
    "moe-4m": ("moe", 256, 4, 4, 384, 8),
    "moe-16m": ("moe", 384, 8, 6, 512, 8),
    "moe-4m-e4": ("moe", 256, 4, 4, 384, 4),
}


def _shard(args):
    from workbench.corpora import generate_corpus
    seed, n = args
    return [r["text"] for r in generate_corpus("mixed", n, seed=seed).records]


def corpus_texts(n_docs: int, shards: int) -> list[str]:
    per = -(-n_docs // shards)
    with Pool(min(shards, os.cpu_count() or 1)) as pool:
        parts = pool.map(_shard, [(1000 + i, per) for i in range(shards)])
    return [t for part in parts for t in part][:n_docs]


def config_for(name: str):
    from workbench.config import ModelConfig
    kind, h, layers, heads, inter, experts = CANDIDATES[name]
    kw = dict(num_local_experts=experts, num_experts_per_tok=2) if kind == "moe" else {}
    return ModelConfig(kind=kind, hidden_size=h, num_hidden_layers=layers, num_attention_heads=heads,
                       intermediate_size=inter, max_position_embeddings=512, **kw)


def evaluate(model, tok, n: int) -> list[dict]:
    from workbench.scoring import label_logprobs, predictions
    from workbench.scoring.builtin import BUILTIN_TASKS, builtin_task
    from workbench.scoring.stats import bootstrap_ci
    import numpy as np
    rows = []
    for name, spec in BUILTIN_TASKS.items():
        for level in range(len(spec.levels)):
            task = builtin_task(name, level, n=n)
            rec = label_logprobs(model, tok, task, channel=False, batch_tokens=65536)
            golds = np.array(task.golds)
            for fn, pred in predictions(rec, ["acc", "acc_norm", "pmi", "dcpmi", "calibrated"]).items():
                correct = (pred == golds).astype(float)
                lo, hi = bootstrap_ci(correct)
                rows.append({"task": name, "level": level, "scoring": fn, "acc": float(correct.mean()),
                             "ci": [lo, hi], "majority": task.majority, "ceiling": task.ceiling})
    return rows


def validator_scores(model, tok, n: int = 40) -> dict:
    from workbench.corpora import validate_texts
    from workbench.train.generate import generate
    texts = generate(model, tok, "Once upon a time", n=n, temperature=0.7, max_new_tokens=320, seed=0)
    return {k: round(v, 4) for k, v in validate_texts(texts, drop_unfinished=True).items()
            if isinstance(v, float)} | {"example": texts[0]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["dense-4m", "moe-4m"], choices=sorted(CANDIDATES))
    p.add_argument("--docs", type=int, default=200_000)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--eval-n", type=int, default=300)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--shards", type=int, default=16)
    p.add_argument("--out", default="bench/results")
    args = p.parse_args()

    import torch

    from workbench.models import count_params
    from workbench.tokenizer import train_tokenizer
    from workbench.train import train
    t0 = time.perf_counter()
    texts = corpus_texts(args.docs, args.shards)
    t_corpus = time.perf_counter() - t0
    tok = train_tokenizer(texts, vocab_size=args.vocab)
    n_tokens = sum(len(x) for x in tok(texts[:2000])["input_ids"]) / 2000 * len(texts)
    print(f"corpus: {len(texts)} docs, ~{n_tokens / 1e6:.1f}M tokens, {t_corpus:.0f} s; tokenizer "
          f"{len(tok)} tokens, {time.perf_counter() - t0 - t_corpus:.0f} s", flush=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = {"corpus_docs": len(texts), "corpus_tokens": n_tokens, "device": device,
               "gpu": torch.cuda.get_device_name() if device == "cuda" else None, "torch": torch.__version__,
               "args": vars(args), "models": {}}
    for name in args.models:
        t1 = time.perf_counter()
        res = train(config_for(name), texts, tokenizer=tok, steps=args.steps, batch_size=args.batch_size,
                    seq_len=args.seq_len, lr=args.lr, warmup=min(200, args.steps // 10), eval_every=args.steps,
                    sample_prompts=(), device=device, seed=0, log_every=50)
        t_train = time.perf_counter() - t1
        model = res.model.eval()
        total, active = count_params(model)
        tps = float(res.history["tokens_per_s"].iloc[len(res.history) // 5:].median())
        t2 = time.perf_counter()
        rows = evaluate(model, tok, args.eval_n)
        t_eval = time.perf_counter() - t2
        vs = validator_scores(model, tok)
        results["models"][name] = {"params_total": total, "params_active": active, "train_seconds": t_train,
                                   "tokens_per_s": tps, "tokens_seen": args.steps * args.batch_size * args.seq_len,
                                   "val_loss": res.final_val_loss, "eval_seconds": t_eval, "validator": vs,
                                   "tasks": rows}
        best = {}
        for r in rows:
            key = (r["task"], r["level"])
            best[key] = max(best.get(key, 0), r["acc"])
        print(f"{name}: {total / 1e6:.2f}M ({active / 1e6:.2f}M active), {t_train:.0f} s, {tps:,.0f} tok/s, val "
              f"{res.final_val_loss:.3f}, well_formed {vs.get('well_formed')}, eval {t_eval:.0f} s", flush=True)
        print("   best acc: " + ", ".join(f"{t}/{lv} {a:.2f}" for (t, lv), a in best.items()), flush=True)
        out = Path(args.out)             # written after every model: a run cut short keeps what it finished
        out.mkdir(parents=True, exist_ok=True)
        (out / "family_pilot.json").write_text(json.dumps(results, indent=1))
        (out / "family_pilot.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    lines = [f"# Family pilot ({results['gpu'] or results['device']}, torch {results['torch']})", "",
             f"Corpus: {results['corpus_docs']:,} mixed v2 documents, ~{results['corpus_tokens'] / 1e6:.1f}M tokens.",
             "", "| model | params (active) | tokens | train s | tokens/s | val loss | well_formed | hero cons. |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, m in results["models"].items():
        v = m["validator"]
        lines.append(f"| {name} | {m['params_total'] / 1e6:.2f}M ({m['params_active'] / 1e6:.2f}M) | "
                     f"{m['tokens_seen'] / 1e6:.1f}M | {m['train_seconds']:.0f} | {m['tokens_per_s']:,.0f} | "
                     f"{m['val_loss']:.3f} | {v.get('well_formed', float('nan')):.3f} | "
                     f"{v.get('hero_consistency', float('nan')):.3f} |")
    lines += ["", "Held-out accuracy, best scoring function (which), with majority baseline and ceiling:", "",
              "| task/level | majority | ceiling | " + " | ".join(results["models"]) + " |",
              "|---|---:|---:|" + "---|" * len(results["models"])]
    keys = list(dict.fromkeys((r["task"], r["level"]) for m in results["models"].values() for r in m["tasks"]))
    for key in keys:
        cells, maj, ceil = [], None, None
        for m in results["models"].values():
            rows = [r for r in m["tasks"] if (r["task"], r["level"]) == key]
            b = max(rows, key=lambda r: r["acc"])
            maj, ceil = b["majority"], b["ceiling"]
            cells.append(f"{b['acc']:.3f} [{b['ci'][0]:.2f}, {b['ci'][1]:.2f}] ({b['scoring']})")
        lines.append(f"| {key[0]}/{key[1]} | {maj:.2f} | {ceil:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
