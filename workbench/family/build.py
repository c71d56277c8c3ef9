"""Building the family: train each member, ship its weights in half precision, check it, card it, grid it.

One member's path (`build_member`): train (workbench.train) -> weights rewritten as float16 safetensors whose
config says float32 (so plain `from_pretrained` gives a float32 model and the file is half the size) -> the
*shipped* weights reloaded -> story validator, expert shares (MoE), the scoring grid's cells for this member
-> model card. Every number on a card and in the grid is therefore measured on the files users get.

`run_family(..., jobs=N)` trains N members at once in separate processes (spawned: CUDA is never initialised
before a fork). Small models leave a GPU mostly idle (kernel launches dominate), so on one H200 eight
concurrent trainings finish the family in about the time of its slowest member; "-it" members start once
their base is built. Each member's grid cells go to <out>/.grid-parts/<name>; `merge_grid` writes the grid.
Here: `half_weights()`, `build_member()`, `run_family()`, `merge_grid()`.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

PARTS = ".grid-parts"
WORK = ".work"


def half_weights(model_dir: str | Path) -> None:
    """Rewrite model_dir/model.safetensors with float16 tensors and set config.json's dtype to float32, so
    `from_pretrained` (dtype "auto") loads float32 weights from a file of half the size. Raises
    FileNotFoundError when the folder holds no model.safetensors."""
    import torch
    from safetensors.torch import load_file, save_file
    model_dir = Path(model_dir)
    path = model_dir / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: train the member first")
    sd = load_file(path)
    half = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    tmp = path.with_suffix(".tmp")
    save_file(half, tmp, metadata={"format": "pt"})
    tmp.replace(path)
    path.chmod(0o644)                        # the training run's private temp-file mode is not for shipping
    cfg_path = model_dir / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["dtype"] = "float32"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def _threads(jobs: int) -> None:
    import torch
    if jobs > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // jobs))


def _trained(model_dir: Path):
    """(history DataFrame, final val loss) of a finished training run in `model_dir`, else None."""
    import pandas as pd
    files = [model_dir / f for f in ("model.safetensors", "history.jsonl", "evals.csv")]
    if not all(f.exists() for f in files):
        return None
    return pd.read_json(files[1], lines=True), float(pd.read_csv(files[2])["val_loss"].iloc[-1])


def _is_half(model_dir: Path) -> bool:
    from safetensors import safe_open
    with safe_open(model_dir / "model.safetensors", "pt") as f:
        return all(f.get_slice(k).get_dtype() in ("F16", "I64", "BOOL") for k in f.keys())


def build_member(name: str, out: str, work: str, scale: float, device: str, grid_n: int, argv: list[str],
                 jobs: int = 1, reuse: bool = False) -> dict:
    """Train member `name` into out/<name> and return its record (what family.json and the card hold).
    `work` holds the corpus files (texts.json, qa.json) written by `run_family`. `reuse`: a folder that
    holds a finished training run is checked and carded without training again (its time is then the sum
    of the logged step times)."""
    import torch

    from .cards import write_card
    from .checks import dead_experts, eval_texts, expert_shares, validator_scores, zero_shot
    from .recipe import BATCH, FAMILY, SEQ_LEN, train_member
    from workbench.config import MOE_ONLY
    from workbench.models import count_params, load_model, model_config
    from workbench.scoring.grid import GRID_TASKS, compute_grid, save_grid
    from workbench.tokenizer import load_tokenizer
    _threads(jobs)
    if device.startswith("cuda:"):
        torch.cuda.set_device(device)
    out, work, m = Path(out), Path(work), FAMILY[name]
    texts = json.loads((work / ("qa.json" if m.base else "texts.json")).read_text())
    tok = load_tokenizer(out / "tokenizer")
    done = _trained(out / name) if reuse else None
    if done is None:
        res = train_member(m, texts, tok, out, scale, device)
        h, val, seconds = res.history, float(res.final_val_loss), float(res.timing.get("total", 0.0))
        del res
    else:
        h, val = done
        seconds = float((BATCH * SEQ_LEN / h["tokens_per_s"]).sum()) if scale >= 1 else 0.0
    full = scale >= 1
    rec = {"name": name, "preset": m.preset, "base": m.base, "steps": int(h["step"].iloc[-1]),
           "tokens_per_step": BATCH * SEQ_LEN if full else 8 * 64,            # as train_member sets them
           "hardware": torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU",
           "concurrent_jobs": jobs,
           "train_seconds": seconds, "tokens_per_s": float(h["tokens_per_s"].iloc[len(h) // 5:].median()),
           "val_loss": val,
           "data": (f"{len(texts):,} qa documents (questions about training stories)" if m.base else
                    f"{len(texts):,} mixed documents (corpus v2, training split)"),
           "command": f"python -m workbench.family --out data/models --members {name}"}
    rec["tokens_seen"] = rec["steps"] * rec["tokens_per_step"]
    if m.base:                                   # as train_member scales the base's steps
        rec["base_tokens_seen"] = max(2, round(FAMILY[m.base].steps * scale)) * rec["tokens_per_step"]
    del texts
    for ck in (out / name / "checkpoints").glob("*/trainer_state.pt"):   # resume state: not shipped
        shutil.rmtree(ck.parent)
    if (out / name / "checkpoints").is_dir() and not any((out / name / "checkpoints").iterdir()):
        (out / name / "checkpoints").rmdir()
    if not _is_half(out / name):
        half_weights(out / name)
    torch.backends.cuda.matmul.allow_tf32 = False    # train() allows TF32; the grid must match a CPU recompute
    model, tok = load_model(out / name, device=device)                 # what ships, not what was in memory
    total, active = count_params(model)
    config = model_config(model).to_dict()
    if config["kind"] != "moe":               # MoE-only fields carry defaults that do not apply
        config = {k: v for k, v in config.items() if k not in MOE_ONLY}
    rec.update(config=config, params_total=total, params_active=active)
    rec["validator"] = validator_scores(model, tok, n=200 if full else 4, max_new_tokens=240 if full else 24)
    if config["kind"] == "moe":
        shares = expert_shares(model, tok, eval_texts(300 if full else 20))
        rec["expert_shares"] = shares.round(4).tolist()
        rec["expert_min_ratio"] = float(shares.min() * shares.shape[1])
        rec["dead_experts"] = dead_experts(shares)
    t0 = time.perf_counter()
    cells = compute_grid({name: (model, tok)}, GRID_TASKS, n=grid_n,
                         batch_tokens=65536 if device.startswith("cuda") else 8192)
    rec["grid_seconds"] = time.perf_counter() - t0
    save_grid(cells, out / PARTS / name, meta={"seconds": rec["grid_seconds"], "device": device})
    rec["zero_shot"] = zero_shot({spec: r for (_, spec), r in cells.items()})
    write_card(rec, out / name)
    print(f"{name}: {total / 1e6:.2f}M ({active / 1e6:.2f}M active), {rec['train_seconds']:.0f} s, "
          f"{rec['tokens_per_s']:,.0f} tok/s, val {rec['val_loss']:.3f}, well_formed "
          f"{rec['validator']['well_formed']:.3f}" + (f", experts min {rec['expert_min_ratio']:.2f} x uniform"
                                                      if "expert_min_ratio" in rec else ""), flush=True)
    return rec


def run_family(out: Path, names: list[str], scale: float, skip_trained: bool, device: str | None,
               n_docs: int, n_qa: int, argv: list[str], jobs: int = 1, grid_n: int = 600,
               reuse: bool = False) -> list[dict]:
    """Build the members `names` (bases first, then "-it" members), `jobs` at a time; write family.json and
    family.md. Returns every record in family.json."""
    import torch

    from .cards import family_table
    from .recipe import FAMILY, family_corpus, family_tokenizer
    t0 = time.perf_counter()
    names = [n for n in names if not (skip_trained and (out / n / "README.md").exists())]
    work = out / WORK
    if reuse and (work / "texts.json").exists() and (work / "qa.json").exists():     # an interrupted build
        n_texts = len(json.loads((work / "texts.json").read_text()))
        tok = family_tokenizer([], out)
        print(f"corpus: {n_texts} mixed documents reused from {work}", flush=True)
    else:
        texts = family_corpus(n_docs)
        qa = family_corpus(n_qa, kind="qa") if any(FAMILY[n].base for n in names) else []
        tok = family_tokenizer(texts, out)
        work.mkdir(parents=True, exist_ok=True)
        (work / "texts.json").write_text(json.dumps(texts))
        (work / "qa.json").write_text(json.dumps(qa))
        print(f"corpus: {len(texts)} mixed documents, {len(qa)} qa documents, tokenizer of {len(tok)} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        del texts, qa
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    index_path = out / "family.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    order = sorted(names, key=lambda n: (FAMILY[n].base is not None, -FAMILY[n].tokens, n))
    gpus = torch.cuda.device_count() if dev == "cuda" and jobs > 1 else 0   # spawned workers: safe to ask here
    place = {n: f"cuda:{k % gpus}" if gpus > 1 else dev for k, n in enumerate(order)}

    def done(rec: dict) -> None:
        index[rec["name"]] = rec
        index_path.write_text(json.dumps(index, indent=1) + "\n")

    failed: dict[str, str] = {}
    if jobs <= 1:
        for n in order:
            done(build_member(n, str(out), str(work), scale, dev, grid_n, argv, 1, reuse))
    else:          # several GPUs: members placed round-robin
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            for phase in ([n for n in order if not FAMILY[n].base], [n for n in order if FAMILY[n].base]):
                phase = [n for n in phase if FAMILY[n].base not in failed]
                futures = {n: pool.submit(build_member, n, str(out), str(work), scale, place[n], grid_n, argv, jobs,
                                          reuse) for n in phase}
                for n, fut in futures.items():
                    try:
                        done(fut.result())
                    except Exception as err:            # the others go on; the run fails at the end
                        failed[n] = f"{type(err).__name__}: {err}"
                        print(f"{n}: FAILED {failed[n]}", flush=True)
    (out / "family.md").write_text(family_table(list(index.values())))
    if failed:
        raise RuntimeError(f"members failed: {failed}; fix and run again with --members {' '.join(failed)} "
                           "--reuse-trained (finished trainings are kept)")
    return list(index.values())


def merge_grid(out: Path, grid_dir: Path) -> Path:
    """One grid (workbench.scoring.grid) from the per-member parts in out/.grid-parts (a member without a
    part keeps its cells from the grid already in grid_dir), with each member's parameters, architecture
    and base in its meta (what the analysis needs) and the wall time per member."""
    from workbench.scoring.grid import load_grid, save_grid
    index = json.loads((out / "family.json").read_text())
    records, seconds, devices = {}, {}, set()
    old = json.loads((grid_dir / "grid.json").read_text())["meta"] if (grid_dir / "grid.json").exists() else None
    prev: dict = {}
    for name in index:
        part = out / PARTS / name
        if not (part / "grid.json").exists() and old and name in old.get("models", {}):   # merged earlier
            prev = prev or load_grid(grid_dir)
            records.update({k: v for k, v in prev.items() if k[0] == name})
            seconds[name], devices = old["seconds"].get(name), devices | set(old.get("device", []))
            continue
        if not (part / "grid.json").exists():
            raise FileNotFoundError(f"{part} is missing: build member {name} again (python -m workbench.family "
                                    f"--members {name})")
        records.update(load_grid(part))
        meta = json.loads((part / "grid.json").read_text())["meta"]
        seconds[name], devices = meta.get("seconds"), devices | {meta.get("device")}
    models = {k: {f: index[k][f] for f in ("params_total", "params_active", "config", "base")} for k in index}
    return save_grid(records, grid_dir, meta={"models": models, "seconds": seconds, "device": sorted(devices)})
