"""Translation speed on this machine: training tokens/s (workbench.train vs a plain PyTorch loop over the same
model and batches) and decoding sentences/s (greedy and beam 4) of the shipped models.

The plain loop is what a user would write with transformers alone: model(input_ids, attention_mask, labels).loss,
backward, clip, AdamW step; the same model preset, batches (PairData), learning rate and thread count. For the
MoE the plain loop's loss is the library's (cross-entropy + aux), the workbench's adds the z-loss and routing
statistics. Decoding: `translate_pairs` on the first `--sentences` test pairs of the shipped study.

    python bench/bench_translation.py [--steps 60] [--threads 2] [--sentences 120] [--device cpu]
writes bench/results/translation.md and .json (training on a GPU: see data/translation/results/runs.json).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def plain_loop(model, data, steps: int, batch_size: int, lr: float, device) -> float:
    """Tokens/s of the plain loop (source + target tokens per step, as the workbench counts them)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    model.to(device).train()
    tokens, t0 = 0, None
    for step in range(steps):
        if step == 3:                       # warm-up steps excluded, as the workbench's median does
            t0, tokens = time.perf_counter(), 0
        x, y = data.batch(step, 0, batch_size, 1, 0)
        labels = y.masked_fill(y == data.pad, -100)
        kw = {"output_router_logits": True} if model.config.model_type == "nllb-moe" else {}
        loss = model(input_ids=x.to(device), attention_mask=(x != data.pad).long().to(device),
                     labels=labels.to(device), **kw).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int((x != data.pad).sum() + (y != data.pad).sum())
    return tokens / (time.perf_counter() - t0)


def main(argv=None) -> int:
    from workbench.train import train
    from workbench.translation import study
    from workbench.translation.data import parallel_pairs, prepare_pairs, train_mt_tokenizer
    from workbench.translation.decode import load_translation_model, translate_pairs
    from workbench.translation.models import build_translation_model
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sentences", type=int, default=120)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    pairs = parallel_pairs(300, seed=0, low_resource={"tuu": 0.1})
    tok = train_mt_tokenizer(pairs, 2048)
    data = prepare_pairs(pairs, tok, 128, 0.05, 0)
    rows = []
    for preset in ("mt-dense", "mt-moe"):
        wb, plain = [], []
        for r in range(a.repeats):
            res = train(preset, corpus=pairs, tokenizer=tok, steps=a.steps, batch_size=a.batch_size, warmup=5,
                        eval_every=0, seed=0, threads=a.threads, device=a.device, log_every=5)
            wb.append(float(res.history["tokens_per_s"].iloc[5:].median()))
            model = build_translation_model(preset, tok, seed=0)
            plain.append(plain_loop(model, data, a.steps, a.batch_size, 2e-3, device))
        rows.append({"what": f"train {preset}", "workbench": statistics.median(wb), "plain loop": statistics.median(plain),
                     "ratio": statistics.median(wb) / statistics.median(plain), "unit": "tokens/s"})
        print(rows[-1], flush=True)
    test = study.test_pairs_of(study.load_results()["systems"])[: a.sentences]
    for name in ("mt-dense", "mt-moe"):
        model, mtok = load_translation_model(name)
        model.to(device)
        for beams in (1, 4):
            translate_pairs(model, mtok, test[:12], num_beams=beams)           # warm-up
            t0 = time.perf_counter()
            translate_pairs(model, mtok, test, num_beams=beams)
            rows.append({"what": f"decode {name} {'greedy' if beams == 1 else 'beam 4'}",
                         "workbench": len(test) / (time.perf_counter() - t0), "unit": "sentences/s"})
            print(rows[-1], flush=True)
    meta = {"device": a.device, "threads": a.threads, "torch": torch.__version__, "machine": platform.machine(),
            "steps": a.steps, "batch_size": a.batch_size, "repeats": a.repeats, "sentences": len(test)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "translation.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["# Translation speed", "", f"`python bench/bench_translation.py` on {a.device}, {a.threads} threads, torch "
             f"{torch.__version__}; training: {a.steps} steps of {a.batch_size} pairs, median of {a.repeats} runs; "
             f"decoding: {len(test)} held-out test pairs (12 directions), batches of up to 64.", "",
             "| what | workbench | plain loop | ratio | unit |", "|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['workbench']:,.0f} | {r.get('plain loop', float('nan')):,.0f} | "
                     f"{r.get('ratio', float('nan')):.2f} | {r['unit']} |".replace("nan", "–"))
    lines += ["", "On one H200 (five runs training at once, bf16 autocast, all-experts batched matmuls for the MoE): "
              "see `data/translation/results/runs.json` (`tokens_per_s`, `greedy_sentences_per_s`)."]
    (RESULTS / "translation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
