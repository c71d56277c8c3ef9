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
GPU_ROWS: list[dict] = []


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token (PaLM appendix B): 6 * N_active + 12 * layers * width * seq_len (attention)."""
    _, active = count_params(model)
    c = model.config
    return 6 * active + 12 * c.num_hidden_layers * c.hidden_size * seq_len


def peak_flops(name: str) -> float:
    """Dense bf16 peak of the GPU (no sparsity), FLOP/s."""
    table = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "4090": 165e12}
    return next((v for k, v in table.items() if k in name), math.nan)


def gpu_bench(presets, steps: int, batch: int, seq_len: int, compile_: bool, texts, out: Path) -> list[dict]:
    from workbench.tokenizer import train_tokenizer
    tok = train_tokenizer(texts, vocab_size=2048)
    name = torch.cuda.get_device_name()
    rows = GPU_ROWS     # accumulates over calls so one file holds every row
    for preset in presets:
        for comp in ([True] if compile_ else [False]):
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
            (out / "train_gpu.json").write_text(json.dumps(rows, indent=1))
            write_gpu_md(rows, out / "train_gpu.md")
            torch.cuda.reset_peak_memory_stats()
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--presets", nargs="+")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--one", help=argparse.SUPPRESS)       # internal: run one contender in this process
    ap.add_argument("--preset", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from workbench.corpora import generate_corpus
    texts = generate_corpus("stories", 6000, seed=1).texts
    if args.gpu:
        gpu_bench(args.presets or ["dense-base", "moe-base"], args.steps, 64, 512, False, texts, out)
        gpu_bench(["dense-base"], args.steps, 64, 512, True, texts, out)
        return 0
    if args.one:
        print(json.dumps(run_one(args.one, args.preset, args.steps, texts)))
        return 0
    return cpu_bench(args, out)


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


# ----------------------------------------------------------------------------- CPU contenders

CPU_SETUPS = {   # preset -> (batch, seq_len, steps, eval_every): nanoGPT-equivalent dims first
    "dense-tiny": (12, 64, 200, 25),
    "moe-tiny": (12, 64, 100, 20),
    "dense-small": (8, 128, 60, 20),
}
LR, WARMUP = 3e-3, 20


def _setup(preset, texts):
    from workbench.tokenizer import train_tokenizer
    from workbench.train.data import prepare
    batch, seq_len, steps, eval_every = CPU_SETUPS.get(preset, (8, 256, 10, 10))
    tok = train_tokenizer(texts, vocab_size=2048)
    data = prepare(texts, tok, seq_len, batch, 0.05, seed=0)
    return tok, data, batch, seq_len, eval_every


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(contender: str, preset: str, steps: int, texts) -> dict:
    """Train `preset` with one contender; returns tokens/s, eval curve (wall s, val loss) and peak RSS."""
    torch.manual_seed(0)
    tok, data, batch, seq_len, eval_every = _setup(preset, texts)
    steps = steps or CPU_SETUPS[preset][2]
    cfg = TrainConfig(steps=steps, batch_size=batch, seq_len=seq_len, lr=LR, warmup=WARMUP, eval_every=eval_every,
                      eval_batches=4, sample_every=0, log_every=10, device="cpu", sample_max_new_tokens=1)
    fn = {"workbench": _workbench, "workbench+live-plot": _workbench_live, "plain": _plain, "trainer": _trainer}
    res = fn[contender](preset, tok, data, texts, cfg)
    res.update(contender=contender, preset=preset, steps=steps, batch=batch, seq_len=seq_len,
               peak_rss_mb=_rss_mb(), threads=torch.get_num_threads())
    res["ms_per_step"] = 1000 * batch * seq_len / res["tokens_per_s"]
    return res


def _workbench(preset, tok, data, texts, cfg, callbacks=()):
    r = train(preset, texts, tokenizer=tok, config=cfg, callbacks=list(callbacks), seed=0)
    t = r.timing
    loop = t["total"] - t["eval"] - t["sample"] - t["save"]
    evals = [(None, float(v)) for v in r.evals["val_loss"]]
    return {"tokens_per_s": cfg.steps * cfg.batch_size * cfg.seq_len / loop, "loop_s": loop,
            "overhead_fraction": (loop - t["compute"]) / loop, "callback_fraction": t["log"] / loop,
            "curve": _curve(r, cfg), "evals": evals}


def _curve(r, cfg):
    """(training seconds excluding evals, val loss) at each eval, from the history's per-window tokens/s."""
    h = r.history
    secs = (cfg.batch_size * cfg.seq_len / h["tokens_per_s"]).cumsum()
    return [(float(secs.iloc[int(s) - 1]), float(v)) for s, v in zip(r.evals["step"], r.evals["val_loss"])]


def _workbench_live(preset, tok, data, texts, cfg):
    from workbench.widgets.training import TrainingPanel
    panel = TrainingPanel(display_now=False)
    return _workbench(preset, tok, data, texts, cfg, callbacks=[panel.callback()])


def _plain(preset, tok, data, texts, cfg):
    """What a user would write: the same model, batches, AdamW, schedule and clipping, in a bare loop."""
    from workbench.train.loop import evaluate
    from workbench.train.schedule import lr_at
    model = build_model(preset, tokenizer=tok, seed=0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    moe = bool(getattr(model.config, "num_local_experts", None))
    curve, train_s = [], 0.0
    for step in range(cfg.steps):
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.lr, cfg.warmup, cfg.steps, 0.1)
        x, y = data.batch(step, 0, cfg.batch_size, 1, cfg.seed)
        logits = model(input_ids=x, output_router_logits=moe).logits if moe else model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        train_s += time.perf_counter() - t0
        if (step + 1) % cfg.eval_every == 0:
            curve.append((train_s, evaluate(model, data, cfg, torch.device("cpu"))))
    return {"tokens_per_s": cfg.steps * cfg.batch_size * cfg.seq_len / train_s, "loop_s": train_s, "curve": curve}


def _trainer(preset, tok, data, texts, cfg):
    """Hugging Face Trainer on the same batches in the same order (sequential sampler), same optimiser settings."""
    from torch.utils.data import Dataset, SequentialSampler
    from transformers import Trainer, TrainerCallback, TrainingArguments
    from workbench.train.loop import evaluate

    class Windows(Dataset):
        def __len__(self):
            return cfg.steps * cfg.batch_size

        def __getitem__(self, i):
            x, y = data.batch(i // cfg.batch_size, 0, cfg.batch_size, 1, cfg.seed)
            w = torch.cat([x[i % cfg.batch_size], y[i % cfg.batch_size, -1:]])
            return {"input_ids": w[:-1], "labels": w[:-1].clone()}   # HF shifts labels itself

    class Seq(Trainer):
        def _get_train_sampler(self, *a, **k):
            return SequentialSampler(self.train_dataset)

    model = build_model(preset, tokenizer=tok, seed=0)
    times = {"train": 0.0, "t0": None}
    curve = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            times["t0"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times["train"] += time.perf_counter() - times["t0"]
            if state.global_step % cfg.eval_every == 0:
                curve.append((times["train"], evaluate(model, data, cfg, torch.device("cpu"))))

    import tempfile
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), max_steps=cfg.steps, per_device_train_batch_size=cfg.batch_size,
                             learning_rate=cfg.lr, warmup_steps=cfg.warmup, lr_scheduler_type="cosine_with_min_lr",
                             lr_scheduler_kwargs={"min_lr_rate": 0.1}, weight_decay=0.1, adam_beta2=0.95,
                             max_grad_norm=1.0, optim="adamw_torch_fused", logging_steps=cfg.log_every,
                             save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
                             disable_tqdm=True, seed=0)
    t0 = time.perf_counter()
    Seq(model=model, args=args, train_dataset=Windows(), callbacks=[Clock()]).train()
    wall = time.perf_counter() - t0 - sum(0 for _ in curve)
    return {"tokens_per_s": cfg.steps * cfg.batch_size * cfg.seq_len / times["train"], "loop_s": times["train"],
            "wall_s": wall, "curve": curve}


def _subprocess(contender, preset, steps=0) -> dict:
    import subprocess
    cmd = [sys.executable, __file__, "--one", contender, "--preset", preset, "--steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if out.returncode:
        return {"contender": contender, "preset": preset, "error": out.stderr[-1500:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_to(curve, target):
    return next((t for t, v in curve if v <= target), math.nan)


def cpu_bench(args, out: Path) -> int:
    rows = []
    for preset in args.presets or list(CPU_SETUPS):
        for contender in ["workbench", "plain", "trainer", "workbench+live-plot"]:
            if contender == "workbench+live-plot" and preset != "dense-tiny":
                continue
            rows.append(_subprocess(contender, preset))
            print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("curve", "evals")}), flush=True)
    rss = _subprocess("workbench", "dense-base", 10)
    summary = summarise(rows, rss)
    (out / "train.json").write_text(json.dumps({"rows": rows, "largest_preset_rss": rss, "summary": summary,
                                                "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores"}, indent=1))
    write_cpu_md(rows, rss, summary, out / "train.md")
    print((out / "train.md").read_text())
    return 0


def summarise(rows, rss) -> dict:
    s = {}
    for preset in {r["preset"] for r in rows}:
        by = {r["contender"]: r for r in rows if r["preset"] == preset and "error" not in r}
        if "workbench" not in by:
            continue
        wb = by["workbench"]
        finals = [min(v for _, v in r["curve"]) for r in by.values() if r.get("curve")]
        target = max(finals) if finals else math.nan
        s[preset] = {"target_val_loss": target,
                     "ratio_vs_plain": wb["tokens_per_s"] / by["plain"]["tokens_per_s"] if "plain" in by else None,
                     "ratio_vs_trainer": wb["tokens_per_s"] / by["trainer"]["tokens_per_s"] if "trainer" in by else None,
                     "overhead_fraction": wb.get("overhead_fraction"),
                     "time_to_target_s": {c: time_to(r.get("curve", []), target) for c, r in by.items()}}
        if "workbench+live-plot" in by:
            s[preset]["live_plot_slowdown"] = 1 - by["workbench+live-plot"]["tokens_per_s"] / wb["tokens_per_s"]
    return s


def write_cpu_md(rows, rss, summary, path: Path) -> None:
    lines = ["# Training throughput on CPU: workbench vs plain PyTorch loop vs Hugging Face Trainer", "",
             f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPU cores used, {torch.get_num_threads()} torch threads. Same model, initial "
             "weights, batches, AdamW (fused), warm-up + cosine schedule and clipping for every contender. "
             "tokens/s counts training steps only (evaluations excluded).", "",
             "| preset | contender | batch x ctx | steps | tokens/s | ms/step | time to target val loss | peak RSS |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['preset']} | {r['contender']} | failed: {r['error'].splitlines()[-1][:80]} |||||||")
            continue
        tt = summary.get(r["preset"], {}).get("time_to_target_s", {}).get(r["contender"], math.nan)
        lines.append(f"| {r['preset']} | {r['contender']} | {r['batch']} x {r['seq_len']} | {r['steps']} | "
                     f"{r['tokens_per_s']:,.0f} | {r['ms_per_step']:.1f} | {tt:.1f} s | {r['peak_rss_mb']:.0f} MB |")
    lines += ["", "| preset | target val loss | workbench / plain | workbench / Trainer | overhead outside fwd/bwd/opt "
              "| live-plot slowdown |", "|---|---|---|---|---|---|"]
    for p, s in summary.items():
        f = lambda v, fmt: format(v, fmt) if isinstance(v, (int, float)) and v == v else "-"   # noqa: E731
        lines.append(f"| {p} | {f(s['target_val_loss'], '.3f')} | {f(s['ratio_vs_plain'], '.2f')} | "
                     f"{f(s['ratio_vs_trainer'], '.2f')} | {f(100 * (s['overhead_fraction'] or 0), '.1f')}% | "
                     f"{f(100 * s['live_plot_slowdown'], '.1f') + '%' if 'live_plot_slowdown' in s else '-'} |")
    if "error" not in rss:
        lines += ["", f"Peak RSS training the largest preset (dense-base, batch {rss['batch']} x {rss['seq_len']}): "
                      f"{rss['peak_rss_mb']:.0f} MB."]
    lines += ["", "nanoGPT reference on the same kind of 2-core machine (4 layers, 4 heads, width 128, ctx 64, batch 12): "
                  "about 35 ms/step (~21k tokens/s); compare with the dense-tiny rows."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
