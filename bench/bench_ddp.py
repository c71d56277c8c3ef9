"""Data-parallel scaling: training tokens/s of 1 process against N (torchrun; DDP or FSDP2), largest dense preset.

    python bench/bench_ddp.py                 # CUDA: dense-base, bf16, 1 vs 2 GPUs; writes bench/results/ddp.{md,json}
    python bench/bench_ddp.py --compile       # the same with torch.compile
    python bench/bench_ddp.py --fsdp          # N processes shard the model (FSDP2) instead of replicating it
    python bench/bench_ddp.py --quick         # CPU, a tiny model, a few steps (gloo): checks that the script runs

Each setting is one `workbench train ... --nproc-per-node N --json` run (the command users run) in its own
processes. The batch per process is fixed (weak scaling), so N processes train a global batch N times larger;
tokens/s is the median over the log windows after `--skip` warm-up steps, counted over the global batch.
The scaling factor is tokens/s(N) / tokens/s(1); the efficiency is that factor / N.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
CORPUS = ROOT / "data" / "corpus" / "corpus.jsonl"
TOKENIZER = ROOT / "data" / "models" / "tokenizer"
TINY = ["hidden_size=32", "num_hidden_layers=2", "num_attention_heads=4", "intermediate_size=64",
        "max_position_embeddings=64"]


def _public(argv: list[str]) -> list[str]:
    """The command-line arguments without `--results DIR` (a path on the machine that ran it)."""
    out, skip = [], False
    for a in argv:
        if skip or a.startswith("--results="):
            skip = False
            continue
        if a == "--results":
            skip = True
            continue
        out.append(a)
    return out


def run(nproc: int, args, work: Path) -> dict:
    """One `workbench train` run with `nproc` processes; its settings and median tokens/s after warm-up."""
    out = work / f"run-{nproc}"
    cmd = [sys.executable, "-m", "workbench.cli", "train", "--preset", args.preset, "--corpus", str(args.corpus),
           "--tokenizer", str(args.tokenizer), "--out", str(out), "--overwrite", "--steps", str(args.steps),
           "--batch-size", str(args.batch * nproc), "--seq-len", str(args.seq_len), "--warmup", "10",
           "--eval-every", "0", "--log-every", str(args.log_every), "--device", args.device, "--json",
           "--set", "sample_max_new_tokens=4", "eval_batches=1", *args.set, "--nproc-per-node", str(nproc)]
    if args.compile:
        cmd.append("--compile")
    if args.fsdp and nproc > 1:                  # one process: the plain single-GPU run is the base
        cmd.append("--fsdp")
    if not args.device.startswith("cuda"):       # CPU: the cores shared out, never oversubscribed
        cmd += ["--threads", str(max(1, (os.cpu_count() or 1) // nproc))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"the {nproc}-process run failed (exit {proc.returncode}); its output is above")
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines() if line.strip()]
    after = [r["tokens_per_s"] for r in rows if r["step"] > args.skip] or [r["tokens_per_s"] for r in rows]
    return {"processes": nproc, "batch_per_process": args.batch, "global_batch": args.batch * nproc,
            "seq_len": args.seq_len, "steps": args.steps, "tokens_per_s": statistics.median(after),
            "final_train_loss": summary["final_train_loss"], "train_seconds": summary["train_seconds"]}


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's, for the report."""
    if device.startswith("cuda"):
        import torch
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def write(rows: list[dict], meta: dict, results: Path) -> None:
    """results/ddp.json (meta + rows) and results/ddp.md (a table with the scaling factor per row)."""
    results.mkdir(parents=True, exist_ok=True)
    base = rows[0]["tokens_per_s"]
    for r in rows:
        r["scaling"] = r["tokens_per_s"] / base
        r["efficiency"] = r["scaling"] / (r["processes"] / rows[0]["processes"])
    (results / "ddp.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["# Data-parallel training (torchrun + DDP)", "",
             f"Device: {meta['device']}; {meta['precision']}; preset {meta['preset']}"
             f"{' (tiny settings)' if meta['quick'] else ''}; compile {meta['compile']}; "
             f"{'FSDP2' if meta.get('fsdp') else 'DDP'} for several processes; torch {meta['torch']}. "
             "Batch per process fixed (weak scaling); tokens/s over the global batch, median after "
             f"{meta['skip']} warm-up steps. Command: `{meta['command']}`.", "",
             "| processes | batch per process x seq | global batch | tokens/s | scaling | efficiency |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['processes']} | {r['batch_per_process']} x {r['seq_len']} | {r['global_batch']} | "
                     f"{r['tokens_per_s']:,.0f} | {r['scaling']:.2f} | {r['efficiency']:.0%} |")
    (results / "ddp.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="CPU, tiny model, few steps: check that the script runs")
    p.add_argument("--preset", default="dense-base", help="largest dense preset by default")
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="process counts to compare (first = base)")
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--skip", type=int, default=40, help="warm-up steps left out of the median")
    p.add_argument("--batch", type=int, default=32, help="sequences per process per step")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--device", default="cuda")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--fsdp", action="store_true", help="several processes shard the model (FSDP2) instead of DDP")
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--tokenizer", type=Path, default=TOKENIZER)
    p.add_argument("--set", nargs="*", default=[], help="model settings passed to workbench train --set")
    p.add_argument("--results", type=Path, help="where ddp.md/json go (default bench/results; --quick: a temp dir)")
    args = p.parse_args()
    if args.quick:
        args.preset, args.device, args.steps, args.skip, args.batch, args.seq_len, args.log_every = \
            "dense-nano", "cpu", 8, 2, 2, 32, 2
        args.set = TINY + args.set
    import torch
    if args.device.startswith("cuda") and torch.cuda.device_count() < max(args.nproc):
        raise SystemExit(f"--nproc {max(args.nproc)} needs as many GPUs; this machine has "
                         f"{torch.cuda.device_count()} (use --quick on CPU)")
    results = args.results or (Path(tempfile.mkdtemp(prefix="bench-ddp-")) if args.quick else RESULTS)
    meta = {"device": device_name(args.device), "precision": "bf16 autocast" if args.device.startswith("cuda")
            else "fp32", "preset": args.preset, "compile": args.compile, "fsdp": args.fsdp, "quick": args.quick,
            "skip": args.skip, "torch": torch.__version__,
            "command": " ".join(["python bench/bench_ddp.py", *_public(sys.argv[1:])])}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ddp-runs-") as work:
        if not (args.tokenizer / "tokenizer.json").exists():      # no shipped tokenizer: one BPE for every run
            from workbench.corpora import read_texts
            from workbench.tokenizer import train_tokenizer
            args.tokenizer = Path(work) / "tokenizer"
            train_tokenizer(read_texts(args.corpus), vocab_size=4096).save_pretrained(args.tokenizer)
        for n in args.nproc:
            rows.append(run(n, args, Path(work)))
            print(json.dumps(rows[-1]), flush=True)
    write(rows, meta, results)
    print((results / "ddp.md").read_text())
    print(f"written: {results / 'ddp.md'}, {results / 'ddp.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
