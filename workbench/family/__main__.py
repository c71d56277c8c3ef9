"""`python -m workbench.family`: train the model family (or some members), check them, write their cards.

It also computes the scoring grid (--grid). See workbench/family/recipe.py for the recipe.

    python -m workbench.family --out data/models --grid data/grid                  # everything (GPU)
    python -m workbench.family --out runs/f --members dense-1m moe-1m --scale 0.01 # smoke test (CPU, minutes)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from .recipe import CORPUS_DOCS, FAMILY, QA_DOCS
    p = argparse.ArgumentParser(prog="python -m workbench.family", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder of the members (one sub-folder each) and family.json")
    p.add_argument("--members", nargs="+", default=list(FAMILY), help=f"subset of: {' '.join(FAMILY)}")
    p.add_argument("--scale", type=float, default=1.0, help="multiply steps and corpus sizes (0.01: smoke test)")
    p.add_argument("--skip-trained", action="store_true", help="keep members whose folder holds a card already")
    p.add_argument("--grid", help="also compute the scoring grid of all trained members into this folder")
    p.add_argument("--grid-n", type=int, default=600, help="examples per grid task")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    args = p.parse_args(argv)
    unknown = sorted(set(args.members) - set(FAMILY))
    if unknown:
        p.error(f"unknown member(s) {unknown}; valid: {' '.join(FAMILY)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_family(out, [FAMILY[m] for m in args.members], args.scale, args.skip_trained, args.device,
               max(200, round(CORPUS_DOCS * args.scale)), max(100, round(QA_DOCS * args.scale)), argv or sys.argv[1:])
    if args.grid:
        run_grid(out, Path(args.grid), args.grid_n if args.scale >= 1 else 12, args.device)
    return 0


def run_family(out: Path, members, scale, skip_trained, device, n_docs, n_qa, argv) -> list[dict]:
    import torch

    from .cards import family_table, write_card
    from .checks import dead_experts, eval_texts, expert_shares, validator_scores, zero_shot
    from .recipe import BATCH, SEQ_LEN, family_corpus, family_tokenizer, train_member
    from workbench.config import MOE_ONLY
    from workbench.models import count_params, model_config
    from workbench.scoring import label_logprobs
    from workbench.scoring.grid import grid_task
    t0 = time.perf_counter()
    texts = family_corpus(n_docs)
    qa = family_corpus(n_qa, kind="qa") if any(m.base for m in members) else []
    tok = family_tokenizer(texts, out)
    print(f"corpus: {len(texts)} mixed documents, {len(qa)} qa documents, tokenizer of {len(tok)} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    hardware = torch.cuda.get_device_name() if dev == "cuda" else "CPU"
    held_out = eval_texts(300 if scale >= 1 else 20)
    index_path = out / "family.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    for m in members:
        if skip_trained and (out / m.name / "README.md").exists():
            continue
        res = train_member(m, qa if m.base else texts, tok, out, scale, dev)
        model = res.model.eval()
        total, active = count_params(model)
        h = res.history
        config = model_config(model).to_dict()
        if config["kind"] != "moe":               # MoE-only fields carry defaults that do not apply
            config = {k: v for k, v in config.items() if k not in MOE_ONLY}
        rec = {"name": m.name, "preset": m.preset, "base": m.base, "config": config,
               "params_total": total, "params_active": active, "steps": int(h["step"].iloc[-1]),
               "tokens_per_step": BATCH * SEQ_LEN if scale >= 1 else 8 * 64,      # as train_member sets them
               "hardware": hardware, "train_seconds": float(res.timing.get("total", 0.0)),
               "tokens_per_s": float(h["tokens_per_s"].iloc[len(h) // 5:].median()),
               "val_loss": float(res.final_val_loss),
               "data": (f"{len(qa):,} qa documents (questions about training stories)" if m.base else
                        f"{len(texts):,} mixed documents (corpus v2, training split)"),
               "command": "python -m workbench.family " + " ".join(argv)}
        rec["tokens_seen"] = rec["steps"] * rec["tokens_per_step"]
        rec["validator"] = validator_scores(model, tok, n=200 if scale >= 1 else 4,
                                            max_new_tokens=320 if scale >= 1 else 24)
        if rec["config"]["kind"] == "moe":
            shares = expert_shares(model, tok, held_out)
            rec["expert_shares"] = shares.round(4).tolist()
            rec["expert_min_ratio"] = float(shares.min() * shares.shape[1])
            rec["dead_experts"] = dead_experts(shares)
        cells = {spec: label_logprobs(model, tok, grid_task(spec, 300 if scale >= 1 else 10))
                 for spec in ("feeling/1", "topic/1", "ending/1", "language/2", "domain/1", "pronoun/1")}
        rec["zero_shot"] = zero_shot(cells)
        write_card(rec, out / m.name)
        index[m.name] = rec
        index_path.write_text(json.dumps(index, indent=1) + "\n")
        print(f"{m.name}: {total / 1e6:.2f}M ({active / 1e6:.2f}M active), {rec['train_seconds']:.0f} s, "
              f"{rec['tokens_per_s']:,.0f} tok/s, val {rec['val_loss']:.3f}, well_formed "
              f"{rec['validator']['well_formed']:.3f}" + (f", experts min {rec['expert_min_ratio']:.2f} x uniform"
                                                          if "expert_min_ratio" in rec else ""), flush=True)
        del model
    (out / "family.md").write_text(family_table(list(index.values())))
    return list(index.values())


def run_grid(out: Path, grid_dir: Path, n: int, device) -> None:
    import torch

    from workbench.models import load_model
    from workbench.scoring.grid import GRID_TASKS, compute_grid, save_grid
    index = json.loads((out / "family.json").read_text())
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    models = {name: load_model(out / name, device=dev) for name in index}
    t0 = time.perf_counter()
    records = compute_grid(models, GRID_TASKS, n=n, batch_tokens=65536 if dev == "cuda" else 8192,
                           progress=lambda m, t: print(f"grid: {m} x {t}", flush=True))
    save_grid(records, grid_dir, seed=0, meta={"models": {k: {f: index[k][f] for f in ("params_total",
                                                                                        "params_active", "config",
                                                                                        "base")}
                                                          for k in index},
                                               "seconds": time.perf_counter() - t0, "device": dev})
    print(f"grid: {len(records)} cells in {time.perf_counter() - t0:.0f} s -> {grid_dir}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
