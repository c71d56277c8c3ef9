"""Pruning and quantization of the family's members, measured one way (workbench.compress.measure):
size, parameters, CPU latency per generated token with 1 and 2 threads, peak memory while generating, validation
loss, well-formed stories and held-out zero-shot accuracy; the int8 / int4 latency ratios against float32 in the
same run. Dense members get magnitude, MLP-channel and head pruning, MoE members expert pruning by routing share;
the strongest structured cut is also measured after a short recovery fine-tuning (200 steps of 16 x 128 training
tokens). Each model also gets rows for the family's smaller members of its architecture (method "smaller member",
`variants.STUDENTS`): the students it could be replaced by, trained alone by the family recipe.

    python bench/bench_compress.py --models dense-4m dense-12m        # CPU, about 15 minutes on 2 cores
    python bench/bench_compress.py --models moe-4m --merge            # keeps the other models' rows
    python bench/bench_compress.py --add-peak --table                 # adds peak_mb to the stored rows only
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

NOTE_PEAK_ADDED = ("`peak_mb` was added to rows measured earlier by `--add-peak`: each variant rebuilt and its peak "
                   "memory measured alone; for the `+recover` rows on the pruned model before recovery (recovery "
                   "changes weight values, not shapes or dtypes, so the memory is the same).")


def _peak_only(rows: list[dict], calib) -> None:
    """Add peak_mb to stored rows that lack it: rebuild each variant and measure its peak memory alone."""
    from workbench.compress.measure import peak_memory_bytes
    from workbench.compress.variants import make_variant
    from workbench.models import load_model
    loaded = {}
    for row in rows:
        if row.get("peak_mb") is not None:
            continue
        if row["model"] not in loaded:
            loaded[row["model"]] = load_model(row["model"])
        model, tok = loaded[row["model"]]
        v, _ = make_variant(model, tok, row["method"].removesuffix("+recover"), str(row["setting"]).split(" (")[0],
                            calib)
        row["peak_mb"] = peak_memory_bytes(v, tok) / 1e6
        print(row["model"], row["method"], row["setting"], f"peak {row['peak_mb']:.1f} MB", flush=True)


def _students(rows: list[dict], old_members: list[dict], models) -> list[dict]:
    """Rows of the smaller members (variants.STUDENTS) under each model: a member's own "original" row where the
    table has one, else its row measured earlier (old_members), else measured now."""
    from workbench.compress.measure import measure
    from workbench.compress.variants import STUDENTS
    from workbench.models import load_model
    done = {r["setting"]: r for r in old_members} | {r["model"]: r for r in rows if r["method"] == "original"}
    out = []
    for name in models:
        for member in STUDENTS.get(name, ()):
            if member not in done:
                model, tok = load_model(member)
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    done[member] = measure(model, tok, member, "original") | {"seconds": time.perf_counter() - t0}
                print({k: (round(x, 3) if isinstance(x, float) else x) for k, x in done[member].items()}, flush=True)
            out.append(done[member] | {"model": name, "method": "smaller member", "setting": member})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["dense-4m", "dense-12m", "moe-4m"])
    p.add_argument("--out", default="bench/results")
    p.add_argument("--merge", action="store_true", help="keep the rows of other models from the existing compress.json")
    p.add_argument("--add-peak", dest="add_peak", action="store_true",
                   help="measure nothing else: add peak_mb to the stored rows that lack it, and the smaller members' "
                        "rows of the stored models")
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
    stored = json.loads((out / "compress.json").read_text()) if (out / "compress.json").exists() else {}
    commands, notes = stored.get("commands", []), stored.get("notes", [])
    reading = stored.get("reading", [])              # the reading of the table, written by hand, kept across runs
    command = "python bench/bench_compress.py " + " ".join(sys.argv[1:])
    rows = []
    if args.add_peak:
        rows = [r for r in stored.get("rows", []) if r["method"] != "smaller member"]
        _peak_only(rows, calib)
        notes = notes if NOTE_PEAK_ADDED in notes else notes + [NOTE_PEAK_ADDED]
        models = list(dict.fromkeys(r["model"] for r in rows))
    else:
        if args.merge:
            rows = [r for r in stored.get("rows", [])
                    if r["model"] not in args.models and r["method"] != "smaller member"]
        else:
            commands, notes, reading = [], [], []
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
        models = list(dict.fromkeys(r["model"] for r in rows))
    keep = args.merge or args.add_peak                            # smaller members measured earlier are reused
    old_members = [r for r in stored.get("rows", []) if r["method"] == "smaller member"] if keep else []
    rows += _students(rows, old_members, models)
    commands += [] if commands[-1:] == [command] else [command]       # a repeated command is listed once
    df = pd.DataFrame(rows).drop(columns=["latency_ratio_1t", "latency_ratio_2t"], errors="ignore")
    for t in (1, 2):
        base = df[df.method == "original"].set_index("model")[f"ms_per_token_{t}t"]
        df[f"latency_ratio_{t}t"] = df[f"ms_per_token_{t}t"] / df["model"].map(base)
    (out / "compress.json").write_text(json.dumps({"torch": torch.__version__, "threads_available":
                                                   torch.get_num_threads(), "commands": commands, "notes": notes,
                                                   "reading": reading, "rows": df.to_dict("records")},
                                                  indent=1) + "\n")
    cols = ["model", "method", "setting", "disk_mb", "weights_mb", "nonzero", "ms_per_token_1t", "latency_ratio_1t",
            "ms_per_token_2t", "latency_ratio_2t", "peak_mb", "val_loss", "well_formed"] + \
        [c for c in df if c.startswith("acc:")]
    lines = ["# Pruning and quantization, measured one way", "",
             "Made by " + ", then ".join(f"`{c}`" for c in commands) + f" (CPU, torch {torch.__version__}). "
             "Latency: greedy generation of 32 tokens after a 12-token prompt, batch 1, median of 5 runs; ratios "
             "against the original in the same run. Peak memory (`peak_mb`, MB): the peak resident memory of a "
             "fresh process while it generates those 32 tokens on one thread, above the same process with torch "
             "and transformers imported (the weights plus what generation allocates; about 16 MB of it is the same "
             "for any model; `workbench.compress.measure.peak_memory_bytes`). Validation loss on 60 held-out "
             "documents; well_formed over 20 sampled stories; accuracy on 120 held-out examples per task with "
             "plain log-likelihood scoring. `+recover`: the pruned model after 200 steps of recovery fine-tuning "
             "(16 x 128 training tokens, lr 3e-4); the other pruned rows have none. `smaller member`: a smaller "
             "member of the family with the same architecture (trained alone by the family recipe), measured "
             "the same way; its latency ratio is against the larger model. Quantization of MoE members touches "
             "the attention and router linears only (the fused expert tensors are not `nn.Linear`).",
             *[line for note in notes for line in ("", note)], "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df.reindex(columns=cols).itertuples(index=False):
        lines.append("| " + " | ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in r) + " |")
    if reading:
        lines += ["", "What it shows (read from the table above):", *reading]
    (out / "compress.md").write_text("\n".join(lines) + "\n")
    if args.table:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        df.drop(columns=["seconds"]).to_csv(RESULTS, index=False, float_format="%.6g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
