"""`python -m workbench.family`: train the model family (or some members), check them, write their cards.

Each member's cells of the scoring grid are computed on its shipped weights; --grid merges them into one
table. See workbench/family/recipe.py for the recipe and build.py for what happens to each member.

    python -m workbench.family --out data/models --grid data/grid                  # everything (GPU)
    python -m workbench.family --out runs/f --members dense-1m moe-1m --scale 0.01 # smoke test (CPU, minutes)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from .build import merge_grid, run_family
    from .recipe import CORPUS_DOCS, FAMILY, QA_DOCS
    p = argparse.ArgumentParser(prog="python -m workbench.family", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder of the members (one sub-folder each) and family.json")
    p.add_argument("--members", nargs="+", default=list(FAMILY), help=f"subset of: {' '.join(FAMILY)}")
    p.add_argument("--scale", type=float, default=1.0, help="multiply steps and corpus sizes (0.01: smoke test)")
    p.add_argument("--skip-trained", action="store_true", help="keep members whose folder holds a card already")
    p.add_argument("--reuse-trained", action="store_true", help="members whose folder holds a finished training "
                   "run but no card: check and card them without training again")
    p.add_argument("--grid", help="also compute the scoring grid of all trained members into this folder")
    p.add_argument("--grid-n", type=int, default=600, help="examples per grid task")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--jobs", type=int, help="members built at once, each in its own process (default: 8 with "
                   "a GPU, 1 without; the -it members start when their base is done)")
    args = p.parse_args(argv)
    unknown = sorted(set(args.members) - set(FAMILY))
    if unknown:
        p.error(f"unknown member(s) {unknown}; valid: {' '.join(FAMILY)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.jobs is None:
        import torch
        args.jobs = 8 if (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda") else 1
    t0 = time.perf_counter()
    run_family(out, args.members, args.scale, args.skip_trained, args.device, max(200, round(CORPUS_DOCS * args.scale)),
               max(100, round(QA_DOCS * args.scale)), argv or sys.argv[1:], jobs=max(1, args.jobs),
               grid_n=args.grid_n if args.scale >= 1 else 12, reuse=args.reuse_trained)
    print(f"family: {time.perf_counter() - t0:.0f} s", flush=True)
    if args.grid:
        print(f"grid: {merge_grid(out, Path(args.grid))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
