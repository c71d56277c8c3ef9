"""Training throughput benchmark: workbench.train vs a plain PyTorch loop vs Hugging Face Trainer.

    python bench/bench_train.py            # CPU: 2-3 presets side by side, writes bench/results/train.{md,json}
    python bench/bench_train.py --gpu      # CUDA: bf16 tokens/s and model FLOPs utilisation of the largest presets

All three contenders train the same transformers model from the same initial weights on the same batches
(the workbench's seeded window order), with the same AdamW settings and schedule. Reported: tokens/s,
time to a target validation loss, peak RSS, and the workbench's time outside forward/backward/optimizer.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench.models import build_model, count_params  # noqa: E402
from workbench.train import TrainConfig, train  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token (PaLM appendix B): 6 * N_active + 12 * layers * width * seq_len (attention)."""
    _, active = count_params(model)
    c = model.config
    return 6 * active + 12 * c.num_hidden_layers * c.hidden_size * seq_len


def peak_flops(name: str) -> float:
    """Dense bf16 peak of the GPU (no sparsity), FLOP/s."""
    table = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "4090": 165e12}
    return next((v for k, v in table.items() if k in name), math.nan)


def gpu_bench(presets, steps: int, batch: int, seq_len: int, compile_: bool, texts) -> list[dict]:
    from workbench.tokenizer import train_tokenizer
    tok = train_tokenizer(texts[:5000], vocab_size=4096)
    name = torch.cuda.get_device_name()
    rows = []
    for preset in presets:
        for comp in ([False, True] if compile_ else [False]):
            t0 = time.perf_counter()
            r = train(preset, texts, tokenizer=tok, steps=steps, batch_size=batch, seq_len=seq_len, eval_every=0,
                      sample_every=0, log_every=10, device="cuda", compile=comp, eval_batches=1,
                      sample_max_new_tokens=4)
            wall = time.perf_counter() - t0
            h = r.history
            tps = float(h[h["step"] > steps // 3]["tokens_per_s"].median())
            fpt = flops_per_token(r.model, seq_len)
            total, active = count_params(r.model)
            rows.append({"preset": preset, "compile": comp, "device": name, "params_total": total,
                         "params_active": active, "batch": batch, "seq_len": seq_len, "tokens_per_s": tps,
                         "tflops": tps * fpt / 1e12, "mfu": tps * fpt / peak_flops(name), "wall_s": wall,
                         "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30})
            print(json.dumps(rows[-1]), flush=True)
            torch.cuda.reset_peak_memory_stats()
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--presets", nargs="+")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from workbench.corpora import generate_corpus
    texts = generate_corpus("stories", 6000, seed=1).texts
    if args.gpu:
        rows = gpu_bench(args.presets or ["dense-base", "moe-base"], args.steps, 64, 512, True, texts)
        (out / "train_gpu.json").write_text(json.dumps(rows, indent=1))
        write_gpu_md(rows, out / "train_gpu.md")
        return 0
    from bench_train_cpu import cpu_bench   # noqa: E402  (CPU contenders live beside this file)
    return cpu_bench(args, texts, out)


def write_gpu_md(rows, path: Path) -> None:
    lines = ["# Training on GPU (bf16 autocast, fused AdamW, TF32)", "",
             f"Device: {rows[0]['device'] if rows else '-'}. MFU = tokens/s x (6 N_active + 12 L d T) / dense bf16 peak.",
             "", "| preset | compile | params (total / active) | batch x seq | tokens/s | TFLOP/s | MFU | peak GPU mem |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['compile']} | {r['params_total'] / 1e6:.1f}M / {r['params_active'] / 1e6:.1f}M "
                     f"| {r['batch']} x {r['seq_len']} | {r['tokens_per_s']:,.0f} | {r['tflops']:.1f} | "
                     f"{100 * r['mfu']:.1f}% | {r['peak_mem_gb']:.1f} GiB |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
