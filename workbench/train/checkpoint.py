"""Checkpoints: a directory per step that plain `AutoModelForCausalLM.from_pretrained` can load.

    out_dir/checkpoints/step-000200/
        config.json, model.safetensors, generation_config.json   <- model.save_pretrained
        tokenizer.json, tokenizer_config.json, ...               <- tokenizer.save_pretrained
        trainer_state.pt   optimizer + step + RNG states (torch.save; read back with weights_only=True)
        train_config.json  the TrainConfig of the run
        history.jsonl, evals.csv, samples.json   the run's records up to this step (read back by resume)

Writes are atomic: everything, records included, goes to a hidden temporary directory that is renamed
into place only when complete, so a crash mid-save leaves the previous checkpoints untouched; a full disk
raises DiskFull naming the folder and the checkpoint kept. "Light" checkpoints keep only bfloat16 weights
(half the size, no optimizer, no records): for studying training dynamics, not for resuming. `find_resume`
picks the newest checkpoint that validates, skipping (with a warning) any that is incomplete.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import torch

from ..errors import disk_full_guard
from ..models import replace_dir

STATE_FILE = "trainer_state.pt"
RECORDS = ("history.jsonl", "evals.csv", "samples.json")
EVAL_COLUMNS = ["step", "val_loss", "val_ppl"]
_STEP_DIR = re.compile(r"^step-(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint is missing, partial or corrupted; the message names the file and the fix."""


def step_dir(out_dir: Path, step: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"step-{step:06d}"


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Complete-looking checkpoint directories under out_dir/checkpoints, oldest first (temp dirs ignored)."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def _to_bfloat16(path: Path) -> None:
    """Rewrite a safetensors file with its floating-point tensors in bfloat16 (a light checkpoint: half the
    bytes; config.json keeps the model's dtype, so `from_pretrained` upcasts on load)."""
    from safetensors.torch import load_file, save_file
    sd = load_file(path)
    save_file({k: (v.to(torch.bfloat16) if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
              path, metadata={"format": "pt"})


def save_checkpoint(path: Path, model, tokenizer, state: dict | None, train_config: dict,
                    light: bool = False, records: dict[str, str] | None = None) -> Path:
    """Write one checkpoint atomically to `path`; `state` (optimizer, step, RNG) is omitted when light.

    `records` ({file name: text}, e.g. history.jsonl) are written with the weights, before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(".tmp-*"):          # left by an earlier crash mid-save
        shutil.rmtree(stale, ignore_errors=True)
    earlier = [p.name for p in list_checkpoints(path.parent.parent) if p != path]
    kept = (f"the previous checkpoint {earlier[-1]} is kept, and after freeing space --resume (resume=True) "
            "continues from the newest usable checkpoint" if earlier else "no earlier checkpoint exists")
    tmp = None
    try:
        with disk_full_guard(path.parent, f"checkpoint {path.name}", kept):
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
            model.save_pretrained(tmp, safe_serialization=True)      # stores tied weights once
            if light:
                _to_bfloat16(tmp / "model.safetensors")
            tokenizer.save_pretrained(tmp)
            (tmp / "train_config.json").write_text(json.dumps(train_config, indent=1))
            if state is not None and not light:
                torch.save(state, tmp / STATE_FILE)
            for name, text in (records or {}).items():
                (tmp / name).write_text(text)
            replace_dir(tmp, path)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def save_final(model, tokenizer, out_dir: Path, files: dict[str, str] | None = None) -> None:
    """The final model at the top of out_dir (beside checkpoints/), with `files` ({name: text}, e.g. the
    records): written to a temp dir, then each file renamed into place, so a crash never leaves a
    half-written file; a full disk raises DiskFull."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with disk_full_guard(out_dir, "the final model", "the checkpoints under checkpoints/ are kept"):
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-final-", dir=out_dir))
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            for name, text in (files or {}).items():
                (tmp / name).write_text(text)
            for f in tmp.iterdir():
                os.replace(f, out_dir / f.name)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def prune(out_dir: Path, keep: int | None, protect: Path | None = None) -> None:
    """Delete the oldest checkpoints beyond `keep` (None keeps all); `protect` is never deleted."""
    if keep is None:
        return
    ckpts = [p for p in list_checkpoints(out_dir) if p != protect]
    extra = len(ckpts) - keep
    for p in ckpts[:max(0, extra)]:
        shutil.rmtree(p, ignore_errors=True)


def checkpoint_problems(path: str | Path, need_state: bool = True) -> list[str]:
    """Every missing or unreadable part of the checkpoint at `path` (empty when it is usable).

    With `need_state` (resuming), the trainer state and the records (history, evals, samples) must be there
    and the history must hold exactly steps 1..step.
    """
    path = Path(path)
    if not path.is_dir():
        return ["the directory does not exist"]
    found = []
    try:
        json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        found.append("config.json is missing")
    except ValueError as err:
        found.append(f"config.json is corrupted ({err})")
    weights = path / "model.safetensors"
    if not weights.exists():
        found.append("model.safetensors is missing")
    else:
        try:
            from safetensors import safe_open
            with safe_open(weights, "pt") as f:
                keys = list(f.keys())
                f.get_tensor(keys[-1])      # reading the last tensor catches truncation
        except Exception as err:           # noqa: BLE001 - any failure means an unreadable file
            found.append(f"model.safetensors is corrupted ({type(err).__name__}: {err})")
    if not (path / "tokenizer.json").exists() and not (path / "tokenizer_config.json").exists():
        found.append("the tokenizer (tokenizer.json) is missing")
    if need_state:
        step = None
        try:
            state = torch.load(path / STATE_FILE, weights_only=True)
            missing = {"step", "optimizer", "rng"} - set(state)
            if missing:
                found.append(f"{STATE_FILE} lacks {sorted(missing)}")
            step = int(state["step"]) if "step" in state else None
        except FileNotFoundError:
            found.append(f"{STATE_FILE} (optimizer/step/RNG state) is missing: a light checkpoint cannot resume")
        except Exception as err:           # noqa: BLE001
            found.append(f"{STATE_FILE} is corrupted ({type(err).__name__})")
        try:
            read_records(path, step)
        except CheckpointError as err:
            found.append(str(err))
    return found


def validate_checkpoint(path: str | Path, need_state: bool = True) -> None:
    """Raise CheckpointError naming every missing or unreadable part of the checkpoint at `path`."""
    found = checkpoint_problems(path, need_state)
    if found:
        raise CheckpointError(f"checkpoint {path} is unusable: " + "; ".join(found)
                              + ". Delete it to resume from an earlier one, or start without resume.")


def read_records(path: str | Path, step: int | None = None) -> tuple[list[dict], list[dict], dict]:
    """(history rows, eval rows, {step: samples}) saved in a checkpoint; CheckpointError names the file and
    line of anything missing or corrupted. With `step`, the history must hold exactly steps 1..step."""
    path = Path(path)
    texts = {}
    for name in RECORDS:
        try:
            texts[name] = (path / name).read_text()
        except FileNotFoundError:
            raise CheckpointError(f"{name} (the run's records) is missing from {path}") from None
    history = []
    for i, line in enumerate(texts["history.jsonl"].splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise CheckpointError(f"{path / 'history.jsonl'} line {i} is corrupted ({err})") from None
        if not isinstance(row, dict) or "step" not in row:
            raise CheckpointError(f"{path / 'history.jsonl'} line {i} is not a history row (no 'step')")
        history.append(row)
    steps = [r["step"] for r in history]
    if step is not None and steps != list(range(1, step + 1)):
        span = f"steps {steps[0]}..{steps[-1]} in {len(steps)} rows" if steps else "no rows"
        raise CheckpointError(f"{path / 'history.jsonl'} has {span}, expected steps 1..{step}")
    lines = texts["evals.csv"].splitlines()
    if not lines or lines[0].strip().split(",") != EVAL_COLUMNS:
        raise CheckpointError(f"{path / 'evals.csv'} line 1 is not the header {','.join(EVAL_COLUMNS)}")
    evals = []
    for i, line in enumerate(lines[1:], 2):
        cells = line.strip().split(",")
        try:
            if len(cells) != len(EVAL_COLUMNS):
                raise ValueError(f"{len(cells)} fields, expected {len(EVAL_COLUMNS)}")
            evals.append({"step": int(float(cells[0])), "val_loss": float(cells[1]), "val_ppl": float(cells[2])})
        except ValueError as err:
            raise CheckpointError(f"{path / 'evals.csv'} line {i} is corrupted ({err})") from None
    try:
        samples = {int(k): v for k, v in json.loads(texts["samples.json"]).items()}
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path / 'samples.json'} line {err.lineno} is corrupted ({err.msg})") from None
    except (ValueError, AttributeError) as err:
        raise CheckpointError(f"{path / 'samples.json'} is not a step -> samples mapping ({err})") from None
    return history, evals, samples


def load_state(path: str | Path) -> dict:
    """The trainer state (step, optimizer, rng, ...) of a validated checkpoint."""
    validate_checkpoint(path)
    return torch.load(Path(path) / STATE_FILE, weights_only=True)


def find_resume(out_dir: Path | None, resume) -> Path | None:
    """The checkpoint to resume from: `resume` a path, or True for the newest usable one under out_dir.

    With True, light checkpoints are passed over, and an incomplete checkpoint (missing or corrupted weights,
    state or records) is skipped with a warning naming it; CheckpointError when none can resume.
    """
    if not resume:
        return None
    if resume is not True:
        validate_checkpoint(resume)
        return Path(resume)
    if out_dir is None:
        raise ValueError("resume=True needs out_dir (where the run's checkpoints are)")
    every = list_checkpoints(out_dir)
    resumable = [p for p in every if (p / STATE_FILE).exists() or not (p / "config.json").exists()]
    if not resumable:
        light = f" (only light checkpoints {', '.join(p.name for p in every)}, which cannot resume)" if every else ""
        raise CheckpointError(
            f"nothing to resume in {out_dir}: no checkpoint with a trainer state ({STATE_FILE}) under "
            f"{Path(out_dir) / 'checkpoints'}{light}. To start a new run there, drop --resume (resume=True), "
            "adding --overwrite (overwrite=True) if the folder holds an old run to replace.")
    skipped = []
    for path in reversed(resumable):
        found = checkpoint_problems(path)
        if not found:
            for bad, why in skipped:
                warnings.warn(f"skipping checkpoint {bad}: {why}; resuming from the earlier {path.name}",
                              RuntimeWarning, stacklevel=3)
            return path
        skipped.append((path, "; ".join(found)))
    raise CheckpointError(
        f"no checkpoint in {out_dir} can resume: " + " | ".join(f"{p.name}: {why}" for p, why in skipped)
        + ". Start a new run instead: drop --resume (resume=True) and add --overwrite (overwrite=True).")


class _Absent:
    def __repr__(self):
        return "absent"


IGNORED_CONFIG_FIELDS = {"architectures", "dtype", "torch_dtype", "transformers_version", "eom_inference_scale",
                         "output_router_logits", "use_cache"}


def saved_config(path: str | Path):
    """The transformers config saved in a checkpoint's config.json (read as data: no code is run)."""
    from transformers import AutoConfig
    d = json.loads((Path(path) / "config.json").read_text())
    model_type = d.pop("model_type", None)
    if not model_type:
        raise CheckpointError(f"{Path(path) / 'config.json'} has no model_type")
    d.pop("auto_map", None)
    return AutoConfig.for_model(model_type, **d)


def config_differences(path: str | Path, config) -> list[tuple[str, object, object]]:
    """(field, saved value, requested value) where `config` (a transformers config) differs from the model
    config saved at `path`; model_type and the workbench's model settings first. Bookkeeping fields are ignored."""
    from ..config import ModelConfig
    absent = _Absent()
    raw = json.loads((Path(path) / "config.json").read_text())
    if raw.get("model_type") == getattr(config, "model_type", None):
        saved = type(config).from_dict(raw).to_dict()       # the requested class reads it (no registry needed)
    else:
        try:
            saved = saved_config(path).to_dict()
        except (ValueError, KeyError):                      # a model type transformers does not ship
            saved = raw
    saved, wanted = (json.loads(json.dumps(d, default=str)) for d in (saved, config.to_dict()))
    keys = sorted(k for k in set(saved) | set(wanted) if not k.startswith("_") and k not in IGNORED_CONFIG_FIELDS)
    diffs = [(k, saved.get(k, absent), wanted.get(k, absent)) for k in keys
             if saved.get(k, absent) != wanted.get(k, absent)]
    main = {"model_type", "num_experts", "moe_intermediate_size", *ModelConfig.__dataclass_fields__}
    return sorted(diffs, key=lambda d: (d[0] != "model_type", d[0] not in main))


def load_checkpoint(path: str | Path, device: str | None = None):
    """(model, tokenizer) from a checkpoint directory (or any saved model directory), in eval mode."""
    from ..models import load_model
    validate_checkpoint(path, need_state=False)
    return load_model(path, device=device, local_only=True)


# ----------------------------------------------------------------------------- a training run's checkpoints

def rng_state(device) -> dict:
    """The RNG states a resumed run restores: torch's CPU generator and, on CUDA, the device's."""
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None}


def save_step(state, optimizer, out_dir, callbacks, timing, final: bool = False, model=None, optimizer_state=None):
    """Write a training run's checkpoint of `state.step` under out_dir/checkpoints (rank 0 alone: out_dir is
    None on the others), prune old ones and tell the callbacks. Under FSDP `model` is rank 0's plain
    copy and `optimizer_state` the gathered full state (fsdp.full_model / full_optimizer_state)."""
    if out_dir is None:
        return
    t0 = time.perf_counter()
    model = model or state.model
    light = state.config.checkpoint_light and not final
    path = step_dir(out_dir, state.step)
    trainer_state = {"step": state.step, "rng": rng_state(next(model.parameters()).device),
                     "optimizer": optimizer.state_dict() if optimizer_state is None else optimizer_state}
    records = None if light else run_records(state)    # light checkpoints rely on the run's final history instead
    save_checkpoint(path, model, state.tokenizer, trainer_state, state.config.to_dict(), light=light,
                    records=records)
    prune(out_dir, state.config.keep_checkpoints, protect=path if final else None)
    state.checkpoints = list_checkpoints(out_dir)
    timing["save"] += time.perf_counter() - t0
    for cb in callbacks:
        cb.on_checkpoint(state, path)


def run_records(state) -> dict[str, str]:
    """{history.jsonl, evals.csv, samples.json: text}, saved with the weights (read back by resume and plots)."""
    return {"history.jsonl": pd.DataFrame(state.history).to_json(orient="records", lines=True),
            "evals.csv": pd.DataFrame(state.evals, columns=EVAL_COLUMNS).to_csv(index=False),
            "samples.json": json.dumps({str(k): v for k, v in state.samples.items()}, indent=1)}
