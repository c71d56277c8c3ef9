"""Pruning and quantization of the family's members, measured one way (workbench.compress.measure):
size, parameters, CPU latency per generated token with 1 and 2 threads, validation loss, well-formed stories
and held-out zero-shot accuracy; the int8 / int4 latency ratios against float32 in the same run. Dense members
get magnitude, MLP-channel and head pruning, MoE members expert pruning by routing share; the strongest
structured cut is also measured after a short recovery fine-tuning (200 steps of 16 x 128 training tokens).

    python bench/bench_compress.py --models dense-4m dense-12m        # CPU, about 15 minutes on 2 cores
    python bench/bench_compress.py --models moe-4m --merge            # keeps the other models' rows
Writes compress.md and compress.json into --out (default bench/results).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["dense-4m", "dense-12m", "moe-4m"])
    p.add_argument("--out", default="bench/results")
    p.add_argument("--merge", action="store_true", help="keep the rows of other models from the existing compress.json")
    p.add_argument("--table", action="store_true", help="also write the table the notebook opens on "
                                                        "(data/compress/pareto.csv)")
    args = p.parse_args()
    import pandas as pd
    import torch

    from workbench.compress.measure import measure
    from workbench.compress.variants import DENSE_VARIANTS, MOE_VARIANTS, RESULTS, make_variant, variant_label
    from workbench.corpora import generate_corpus
    from workbench.models import load_model
    calib = generate_corpus("mixed", 64, seed=7).texts            # training split: calibration, not evaluation
    train_texts = generate_corpus("mixed", 2000, seed=11).texts   # training split: recovery fine-tuning
    out = Path(args.out)
    rows = []
    if args.merge and (out / "compress.json").exists():
        rows = [r for r in json.loads((out / "compress.json").read_text())["rows"] if r["model"] not in args.models]
    for name in args.models:
        model, tok = load_model(name)
        for method, setting in (MOE_VARIANTS if hasattr(model.config, "num_local_experts") else DENSE_VARIANTS):
            t0 = time.perf_counter()
            v, rec = make_variant(model, tok, method, setting, calib, train_texts)
            label = variant_label(setting, rec)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row = measure(v, tok, name, method, label)
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            print({k: (round(x, 3) if isinstance(x, float) else x) for k, x in row.items()}, flush=True)
    df = pd.DataFrame(rows).drop(columns=[c for c in ("latency_ratio_1t", "latency_ratio_2t")
                                          if any(c in r for r in rows)], errors="ignore")
    for t in (1, 2):
        base = df[df.method == "original"].set_index("model")[f"ms_per_token_{t}t"]
        df[f"latency_ratio_{t}t"] = df[f"ms_per_token_{t}t"] / df["model"].map(base)
    (out / "compress.json").write_text(json.dumps({"torch": torch.__version__, "threads_available":
                                                   torch.get_num_threads(), "rows": df.to_dict("records")},
                                                  indent=1) + "\n")
    cols = ["model", "method", "setting", "disk_mb", "weights_mb", "nonzero", "ms_per_token_1t", "latency_ratio_1t",
            "ms_per_token_2t", "latency_ratio_2t", "val_loss", "well_formed"] + [c for c in df if c.startswith("acc:")]
    lines = ["# Pruning and quantization, measured one way", "",
             f"`python bench/bench_compress.py --models {' '.join(df['model'].unique())}` (CPU, torch {torch.__version__}). "
             "Latency: greedy generation of 32 tokens after a 12-token prompt, batch 1, median of 5 runs; ratios "
             "against the original in the same run. Validation loss on 60 held-out documents; well_formed over 20 "
             "sampled stories; accuracy on 120 held-out examples per task with plain log-likelihood scoring. "
             "`+recover`: the pruned model after 200 steps of recovery fine-tuning (16 x 128 training tokens, lr 3e-4); "
             "the other pruned rows have none. Quantization of MoE members touches the attention and router "
             "linears only (the fused expert tensors are not `nn.Linear`).", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df[cols].itertuples(index=False):
        lines.append("| " + " | ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in r) + " |")
    (out / "compress.md").write_text("\n".join(lines) + "\n")
    if args.table:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        df.drop(columns=["seconds"]).to_csv(RESULTS, index=False, float_format="%.6g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
