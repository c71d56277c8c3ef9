"""Side by side with nanoGPT's own `train.py`: the workbench's trainer against the one users would pick instead.

    python bench/bench_nanogpt.py --nanogpt DIR                 # CPU, nanoGPT's "baby" size, 3 rounds
    python bench/bench_nanogpt.py --nanogpt DIR --gpu           # CUDA, 8 layers x width 512 x context 512, bf16

DIR is a checkout of https://github.com/karpathy/nanoGPT (outside this repository; nothing of it is copied in).
Both trainers read the same tokens: the corpus is tokenized once by the workbench's tokenizer and written as
nanoGPT's `train.bin`/`val.bin`/`meta.pkl`; the workbench trains on the same documents with the same tokenizer.
Each contender runs in a fresh process of its own, one after the other, and they take turns over the rounds, so
a slow spell of the machine hits both alike. nanoGPT runs unmodified, with the flags its README gives for the
setting (`--device=cpu --compile=False` on CPU), evaluation pushed past the run, one micro-step per step
(`--gradient_accumulation_steps=1`, same global batch as the workbench). Speed is the median step time after
warm-up, measured the same way for both from outside: both print a line every 10 steps right after a host
sync (nanoGPT's `iter N: loss ...` after `loss.item()`, the workbench's `on_log` after its history flush), and
this script timestamps each line as it arrives; step time = time between consecutive lines / 10. It covers all
of a training step (batch fetch, forward, backward, clipping, optimizer). Results:
bench/results/nanogpt_{cpu,gpu}.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

# nanoGPT README's CPU "baby GPT" (4 layers, 4 heads, width 128, context 64, batch 12), and the GPU setup of the
# issue's table (8 layers, 8 heads, width 512, context 512, batch 64). The workbench's Llama MLP is SwiGLU
# (3 matrices), so its intermediate size is 8/3 of GPT-2's 4x to match the parameter count.
SETUPS = {
    "cpu": dict(layers=4, heads=4, width=128, ctx=64, batch=12, vocab=512, steps=300, warm=50, docs=6000,
                device="cpu"),
    "gpu": dict(layers=8, heads=8, width=512, ctx=512, batch=64, vocab=2048, steps=120, warm=40, docs=30000,
                device="cuda"),
}


def prepare(work: Path, s: dict) -> dict:
    """Tokenize the corpus once and write nanoGPT's dataset folder; returns paths for the contenders."""
    sys.path.insert(0, str(ROOT))
    from workbench.corpora import generate_corpus
    from workbench.tokenizer import train_tokenizer
    from workbench.train.data import encode, split_documents
    texts = generate_corpus("stories", s["docs"], seed=1).texts
    tok = train_tokenizer(texts, vocab_size=s["vocab"])
    train_texts, val_texts = split_documents(texts, 0.05, 0)
    data = work / "nanogpt" / "data" / "wb"
    data.mkdir(parents=True)
    encode(train_texts, tok).astype(np.uint16).tofile(data / "train.bin")
    encode(val_texts, tok).astype(np.uint16).tofile(data / "val.bin")
    with open(data / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(tok)}, f)
    tok.save_pretrained(work / "tokenizer")
    (work / "texts.json").write_text(json.dumps(texts))
    return {"vocab": len(tok), "train_tokens": int((data / "train.bin").stat().st_size // 2)}


def nanogpt_cmd(src: Path, work: Path, s: dict, compile_: bool) -> tuple[list[str], Path]:
    run = work / "nanogpt"
    for f in ("train.py", "model.py", "configurator.py"):
        shutil.copy(src / f, run / f)
    args = [f"--dataset=wb", f"--device={s['device']}", f"--compile={compile_}", "--eval_interval=100000",
            "--eval_iters=1", "--log_interval=10", f"--block_size={s['ctx']}", f"--batch_size={s['batch']}",
            f"--n_layer={s['layers']}", f"--n_head={s['heads']}", f"--n_embd={s['width']}",
            f"--max_iters={s['steps']}", f"--lr_decay_iters={s['steps']}", "--dropout=0.0",
            "--gradient_accumulation_steps=1", "--always_save_checkpoint=False", "--eval_only=False",
            f"--out_dir={work / 'nanogpt_out'}", "--wandb_log=False", "--learning_rate=3e-3", "--warmup_iters=10"]
    if s["device"] == "cuda":
        args.append("--dtype=bfloat16")
    return [sys.executable, "train.py", *args], run


WORKBENCH = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    from transformers import AutoTokenizer
    from workbench.train import train
    from workbench.train.callbacks import Callback
    class Lines(Callback):
        def on_log(self, state, rows):
            print("LOG", rows[-1]["step"], flush=True)
    texts = json.load(open({texts!r}))
    tok = AutoTokenizer.from_pretrained({tok!r}, trust_remote_code=False)
    r = train({preset!r}, texts, tokenizer=tok, steps={steps}, batch_size={batch}, seq_len={ctx},
              num_hidden_layers={layers}, num_attention_heads={heads}, num_key_value_heads={heads},
              hidden_size={width}, intermediate_size={inter}, max_position_embeddings={ctx}, device={device!r},
              compile={compile},
              lr=3e-3, warmup=10, eval_every=0, sample_every=0, log_every=10, eval_batches=1,
              sample_max_new_tokens=4, val_fraction=0.05, callbacks=[Lines()]{extra})
    c = r.model.config
    experts = getattr(c, "num_local_experts", 0)
    inactive = 0 if not experts else sum(p.numel() for n, p in r.model.named_parameters()
                                          if ".experts." in n) * (experts - c.num_experts_per_tok) // experts
    print("PARAMS", sum(p.numel() for p in r.model.parameters()) - inactive, flush=True)
""")


def workbench_cmd(work: Path, s: dict, compile_: bool, extra: str = "", moe: bool = False) -> list[str]:
    """The workbench's dense preset at the setup's dims; `moe`: its MoE (8 experts, top-2) with each expert half
    the dense MLP's width, so the active parameters per token equal the dense model's (plus the router)."""
    inter = int(round(8 * s["width"] / 3 / 8)) * 8
    if moe:
        inter = int(round(inter / 2 / 8)) * 8   # grouped GEMMs need rows of a multiple of 16 bytes
        extra += ", num_local_experts=8, num_experts_per_tok=2"
    code = WORKBENCH.format(root=str(ROOT), texts=str(work / "texts.json"), tok=str(work / "tokenizer"),
                            inter=inter, compile=compile_, extra=extra, preset="moe-tiny" if moe else "dense-tiny",
                            **s)
    return [sys.executable, "-c", code]


LINE = re.compile(r"^(?:iter (\d+): loss|LOG (\d+))")


MOE = "workbench MoE (8 experts, top-2)"
NO_GRAPH_TAG = ", no CUDA graph (every kernel launched)"
NO_GRAPH = "workbench" + NO_GRAPH_TAG
MALLOC_TUNED = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824"


def run(cmd, cwd=None, tuned=False) -> tuple[list[tuple[int, float]], str]:
    """Run a contender unbuffered; returns (step, arrival time) of each progress line and the output. `tuned`:
    glibc keeps freed memory (the setting workbench.train.fast.tune_allocator makes from inside the process)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if tuned:
        env["GLIBC_TUNABLES"] = MALLOC_TUNED
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    marks, out = [], []
    for line in p.stdout:
        t = time.perf_counter()
        out.append(line)
        m = LINE.match(line)
        if m:
            marks.append((int(m.group(1) or m.group(2)), t))
    if p.wait():
        raise RuntimeError(f"{cmd[:2]} failed:\n{''.join(out)[-4000:]}")
    return marks, "".join(out)


def step_time(marks: list[tuple[int, float]], warm: int) -> float:
    """Median seconds per step between consecutive progress lines after step `warm`."""
    per = [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in zip(marks, marks[1:]) if s0 >= warm and s1 > s0]
    if not per:
        raise RuntimeError(f"no progress lines after step {warm}: {marks[:5]}")
    return statistics.median(per)


def _cpu_name() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nanogpt", type=Path, required=True, help="a checkout of karpathy/nanoGPT")
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also compare with torch.compile on both sides")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--kernels", nargs="+", default=[],
                    help="GPU: also run the workbench eager with these TrainConfig.kernels (liger, torch, none)")
    ap.add_argument("--moe", action="store_true",
                    help="GPU: also the workbench's MoE at the same dims, active parameters = the dense model's")
    ap.add_argument("--eager-launches", action="store_true",
                    help="GPU: also the workbench (and its MoE) with cuda_graph=False: every kernel launched each step")
    ap.add_argument("--compiled-only", action="store_true", help="with --compile: only the compiled rows")
    ap.add_argument("--docs", type=int)
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    kind = "gpu" if a.gpu else "cpu"
    s = dict(SETUPS[kind])
    if a.docs:
        s["docs"] = a.docs
    if a.steps:
        s["steps"], s["warm"] = a.steps, min(s["warm"], a.steps // 3)
    work = Path(tempfile.mkdtemp(prefix="wb-nanogpt-"))
    info = prepare(work, s)
    import torch
    contenders = [("nanoGPT train.py", False), ("workbench", False)]
    if not a.gpu:      # nanoGPT with glibc's allocator kept from returning memory to the OS, as the workbench does
        contenders.insert(1, ("nanoGPT train.py, malloc tuned", False))
    contenders += [(f"workbench kernels={k}", False) for k in a.kernels]
    if a.eager_launches:
        contenders.append((NO_GRAPH, False))
    if a.moe:
        contenders.append((MOE, False))
        if a.eager_launches:
            contenders.append((MOE + NO_GRAPH_TAG, False))
    if a.compile:
        compiled = [("nanoGPT train.py", True), ("workbench", True)] + ([(MOE, True)] if a.moe else [])
        contenders = compiled if a.compiled_only else contenders + compiled
    times: dict[tuple, list[float]] = {}
    active: dict[str, int] = {}
    for rnd in range(a.rounds):
        for name, comp in (contenders if rnd % 2 == 0 else contenders[::-1]):
            if name.startswith("nanoGPT"):
                cmd, cwd = nanogpt_cmd(a.nanogpt, work, s, comp)
                marks, _ = run(cmd, cwd=cwd, tuned="malloc" in name)
            else:
                k = name.partition("kernels=")[2]
                extra = ((f", kernels={k!r}" if k else "")
                         + (", cuda_graph=False" if name.endswith(NO_GRAPH_TAG) else ""))
                marks, out = run(workbench_cmd(work, s, comp, extra, moe=name.startswith(MOE)))
                active[name] = int(re.search(r"PARAMS (\d+)", out).group(1))
            t = step_time(marks, s["warm"])
            times.setdefault((name, comp), []).append(t)
            print(f"round {rnd} {name} compile={comp}: {t * 1e3:.2f} ms/step, "
                  f"{s['batch'] * s['ctx'] / t:,.0f} tokens/s", flush=True)
    # PaLM's training FLOPs per token (as nanoGPT's estimate_mfu): 6 N + 12 layers x width x context; H100/H200
    # dense bf16 peak 989 TFLOP/s
    rows = []
    for (name, comp), ts in times.items():
        fpt = 6 * active.get(name, active.get("workbench", 0)) + 12 * s["layers"] * s["width"] * s["ctx"]
        base = times[("nanoGPT train.py", comp)]
        ratios = [b / t for b, t in zip(base, ts)]
        med = statistics.median(ts)
        rows.append({"contender": name, "compile": comp, "ms_per_step": med * 1e3,
                     "tokens_per_s": s["batch"] * s["ctx"] / med, "vs_nanogpt": statistics.median(ratios),
                     "vs_nanogpt_range": [min(ratios), max(ratios)], "rounds_ms": [t * 1e3 for t in ts],
                     "mfu": s["batch"] * s["ctx"] / med * fpt / 989e12 if a.gpu else None})
        dense = times.get(("workbench" + NO_GRAPH_TAG if name.endswith(NO_GRAPH_TAG) else "workbench", comp))
        if name.startswith("workbench MoE") and dense:        # tokens/s against the dense model, within a round
            rows[-1]["vs_workbench_dense"] = statistics.median(d / t for d, t in zip(dense, ts))
    meta = {"setup": s, **info, "workbench_params": active.get("workbench"), "moe_active_params": active.get(MOE),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "device": torch.cuda.get_device_name() if a.gpu else f"CPU {_cpu_name()} "
                                                                    f"({torch.backends.cpu.get_cpu_capability()})"}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"nanogpt_{kind}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    flags = (" --gpu" if a.gpu else "") + (" --compile" if a.compile else "") + (" --moe" if a.moe else "") \
        + (" --eager-launches" if a.eager_launches else "") + (" --compiled-only" if a.compiled_only else "")
    mfu_note = (" MFU from active parameters (PaLM's 6N + 12 L d T FLOPs per token; 989 TFLOP/s bf16 peak)."
                if a.gpu else "")
    moe_note = (f" The MoE's experts are each half the dense MLP's width, so its active parameters "
                f"({meta['moe_active_params'] or 0:,}) match the dense model's ({meta['workbench_params'] or 0:,})."
                if a.moe else "")
    lines = [f"# Side by side with nanoGPT's own train.py ({kind.upper()})", "",
             f"`python bench/bench_nanogpt.py --nanogpt DIR{flags} --rounds {a.rounds}`. {meta['device']}, torch "
             f"{meta['torch']}, {meta['cores']} cores, {meta['threads']} torch threads. {s['layers']} layers, "
             f"{s['heads']} heads, width {s['width']}, context {s['ctx']}, batch {s['batch']}, vocabulary "
             f"{info['vocab']}, the same tokens; {s['steps']} steps, median step time after step {s['warm']}, "
             f"{a.rounds} rounds taking turns. Ratio: nanoGPT's step time / the contender's, within a round "
             f"(median, range).{mfu_note}{moe_note}", "",
             "| contender | compile | ms/step | tokens/s | MFU | vs nanoGPT train.py |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lo, hi = r["vs_nanogpt_range"]
        mfu = f"{r['mfu']:.1%}" if r["mfu"] else "-"
        lines.append(f"| {r['contender']} | {r['compile']} | {r['ms_per_step']:.2f} | {r['tokens_per_s']:,.0f} | {mfu} | "
                     f"{r['vs_nanogpt']:.2f}x ({lo:.2f}-{hi:.2f}) |")
    lines += [f"\n{r['contender']} (compile={r['compile']}): {r['vs_workbench_dense']:.2f}x the dense workbench's "
              "tokens/s (median of the rounds' ratios)" for r in rows if "vs_workbench_dense" in r]
    (a.out / f"nanogpt_{kind}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
