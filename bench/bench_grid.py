"""Wall time of the scoring grid: every log-likelihood the scoring functions need, per model, on the built-in
grid tasks (workbench.scoring.grid.GRID_TASKS), and what the stored table saves against recomputing it.

    python bench/bench_grid.py --models tiny-dense tiny-moe --n 600          # CPU or GPU, whichever is here
Writes grid.md and grid.json into --out (default bench/results).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["tiny-dense", "tiny-moe"])
    p.add_argument("--n", type=int, default=600, help="examples per task")
    p.add_argument("--no-channel", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="bench/results")
    args = p.parse_args()
    import torch

    from workbench.models import load_model
    from workbench.scoring.grid import GRID_TASKS, compute_grid, load_grid, save_grid
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for name in args.models:
        model, tok = load_model(name, device=device)
        for task in GRID_TASKS:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rec = compute_grid({name: (model, tok)}, (task,), n=args.n, channel=not args.no_channel,
                                   batch_tokens=65536 if device == "cuda" else 8192)
            seconds = time.perf_counter() - t0
            r = rec[(name, task)]
            rows.append({"model": name, "task": task, "seconds": seconds, "pairs": int(r.cond.size * (2 if not
                         args.no_channel else 1))})
            print(f"{name} x {task}: {seconds:.1f} s", flush=True)
        with tempfile.TemporaryDirectory() as d:
            save_grid(rec, d)
            t0 = time.perf_counter()
            load_grid(d)
            rows[-1]["load_seconds"] = time.perf_counter() - t0
    total = {m: sum(r["seconds"] for r in rows if r["model"] == m) for m in args.models}
    info = {"device": torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads",
            "torch": torch.__version__, "n": args.n, "channel": not args.no_channel, "rows": rows, "total": total}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "grid.json").write_text(json.dumps(info, indent=1) + "\n")
    lines = [f"# Scoring grid wall time ({info['device']}, torch {info['torch']})", "",
             f"{args.n} examples per task, channel pass {'on' if info['channel'] else 'off'}; "
             f"tasks {', '.join(GRID_TASKS)}.", "", "| model | " + " | ".join(GRID_TASKS) + " | total |",
             "|---|" + "---:|" * (len(GRID_TASKS) + 1)]
    for m in args.models:
        cells = [f"{r['seconds']:.1f} s" for r in rows if r["model"] == m]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {total[m]:.0f} s |")
    loads = [r["load_seconds"] for r in rows if "load_seconds" in r]
    lines += ["", f"Reading one model's task from the stored table (`load_grid`) takes {max(loads):.2f} s at most."]
    (out / "grid.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
