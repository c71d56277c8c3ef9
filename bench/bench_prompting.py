"""The prompt-style grid: every family member x built-in generative task x prompt style, greedy, on CPU.

    python bench/bench_prompting.py --table                 # the shipped table: data/prompting/results.csv.gz
    python bench/bench_prompting.py --models dense-1m --n 20 # a quick look
    python bench/bench_prompting.py --device cuda --batch-size 128 --table-out part.csv.gz   # on a GPU, float32
Reports the wall time per model (generation + scoring) and the grid's total into --out (prompting.md, .json).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FAMILY = ["dense-1m", "dense-4m", "dense-12m", "moe-1m", "moe-4m", "moe-12m", "encdec-4m", "encdec-12m",
          "dense-4m-it", "moe-4m-it", "encdec-4m-it"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=FAMILY)
    p.add_argument("--n", type=int, default=200, help="test instances per task")
    p.add_argument("--tasks", nargs="+", default=None, help="built-in tasks (default: all)")
    p.add_argument("--pool", type=int, default=40, help="few-shot pool per task")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--table", action="store_true", help="write the shipped results table")
    p.add_argument("--table-out", default=None, help="write the table here instead (implies --table)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (float32 either way; TF32 off)")
    p.add_argument("--model-dir", default=None, help="a folder holding the members (default: data/models)")
    p.add_argument("--out", default="bench/results")
    args = p.parse_args()
    import torch

    from workbench.evaluation import builtin_suite
    from workbench.evaluation.grid import RESULTS, evaluate, save_results
    from workbench.models import load_model
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False          # float32 products as on the CPU
    torch.backends.cudnn.allow_tf32 = False
    table = Path(args.table_out) if args.table_out else (RESULTS if args.table else None)
    t_all = time.perf_counter()
    suite = builtin_suite(n=args.n, pool=args.pool, names=args.tasks)
    t_suite = time.perf_counter() - t_all
    parts, timing = [], {}
    for name in args.models:
        t0 = time.perf_counter()
        where = str(Path(args.model_dir) / name) if args.model_dir else name
        model, tok = load_model(where, trust_remote_code=False, local_only=True, device=args.device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts.append(evaluate(model, tok, suite, model_name=name, batch_size=args.batch_size))
        timing[name] = time.perf_counter() - t0
        print(f"{name}: {len(parts[-1])} outputs in {timing[name]:.0f} s, judge {parts[-1].judge.mean():.3f}",
              flush=True)
        if table:            # after every model, so a long run keeps what it has
            import pandas as pd
            save_results(pd.concat(parts, ignore_index=True), table)
    total = time.perf_counter() - t_all
    import pandas as pd
    df = pd.concat(parts, ignore_index=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = {"models": args.models, "n": args.n, "pool": args.pool, "tasks": sorted(df.task.unique()),
            "styles": sorted(df["style"].unique()), "outputs": len(df), "threads": args.threads,
            "batch_size": args.batch_size, "device": args.device,
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__, "suite_s": round(t_suite, 1), "seconds": {k: round(v, 1) for k, v in
                                                                                  timing.items()},
            "total_s": round(total, 1), "table": str(table) if table else None}
    (out / "prompting.json").write_text(json.dumps(info, indent=2) + "\n")
    lines = ["# Prompt-style grid: wall time on CPU", "",
             f"{len(df):,} greedy outputs: {len(args.models)} models x {len(info['tasks'])} tasks x "
             f"{len(info['styles'])} styles x {args.n} instances on {args.device}; torch {torch.__version__}, "
             f"{args.threads} threads, batch {args.batch_size}. Building the suite took {t_suite:.1f} s.", "",
             "| model | outputs | seconds | outputs/s | mean judge |", "|---|---:|---:|---:|---:|"]
    for name, part in zip(args.models, parts):
        lines.append(f"| {name} | {len(part):,} | {timing[name]:.0f} | {len(part) / timing[name]:.0f} | "
                     f"{part.judge.mean():.3f} |")
    lines += ["", f"Total: {total / 60:.1f} min."]
    (out / "prompting.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
