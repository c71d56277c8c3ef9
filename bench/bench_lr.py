"""Learning-rate sweep behind the training benchmark's shared lr: the workbench and nanoGPT at nanoGPT's size.

    python bench/bench_lr.py     # writes bench/results/train_lr.{md,json}

Each (contender, peak lr) trains the `dense-tiny@nanoGPT` setup of bench_train.py alone (no turn-taking: only
validation losses are compared here, not speed) and reports its validation loss every 50 steps.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_train as bt  # noqa: E402

LRS = (1e-3, 3e-3, 6e-3, 1e-2)


def main() -> int:
    os.environ["TQDM_DISABLE"] = "1"
    from workbench.corpora import generate_corpus
    texts = generate_corpus("stories", 6000, seed=1).texts
    rows = []
    for lr in LRS:
        for contender in ("workbench", "nanoGPT"):
            bt.LR = lr
            r = bt.run_one(contender, "dense-tiny@nanoGPT", 0, texts, bt.Pacer(None, 10))
            rows.append({"contender": contender, "lr": lr, "curve": r["curve"]})
            print(json.dumps(rows[-1]), flush=True)
    out = bt.RESULTS
    (out / "train_lr.json").write_text(json.dumps(rows, indent=1))
    steps = [s for s, _ in rows[0]["curve"]]
    lines = ["# Learning-rate sweep at nanoGPT's size (4 layers, 4 heads, width 128; batch 12 x 64)", "",
             "Validation loss by step; warm-up 20 steps, cosine to 0.1 x lr, AdamW (0.9, 0.95), weight decay 0.1, "
             "clipping 1.0, the same batches for all.", "",
             "| contender | peak lr | " + " | ".join(map(str, steps)) + " |", "|---|---|" + "---|" * len(steps)]
    for r in rows:
        lines.append(f"| {r['contender']} | {r['lr']:g} | " + " | ".join(f"{v:.2f}" for _, v in r["curve"]) + " |")
    (out / "train_lr.md").write_text("\n".join(lines) + "\n")
    print((out / "train_lr.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
