"""Checkpoints: a directory per step that plain `AutoModelForCausalLM.from_pretrained` can load.

    out_dir/checkpoints/step-000200/
        config.json, model.safetensors, generation_config.json   <- model.save_pretrained
        tokenizer.json, tokenizer_config.json, ...               <- tokenizer.save_pretrained
        trainer_state.pt   optimizer + step + RNG states (torch.save; read back with weights_only=True)
        train_config.json  the TrainConfig of the run

Writes are atomic: everything goes to a hidden temporary directory that is renamed into place only
when complete, so a crash mid-save leaves the previous checkpoints untouched. "Light" checkpoints keep
only bfloat16 weights (half the size, no optimizer): for studying training dynamics, not for resuming.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import torch

from ..models import replace_dir

STATE_FILE = "trainer_state.pt"
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


def save_checkpoint(path: Path, model, tokenizer, state: dict | None, train_config: dict,
                    light: bool = False) -> Path:
    """Write one checkpoint atomically to `path`; `state` (optimizer, step, RNG) is omitted when light."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(".tmp-*"):          # left by an earlier crash mid-save
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
    try:
        if light:
            sd = {k: v.detach().to(torch.bfloat16) for k, v in model.state_dict().items()}
            model.save_pretrained(tmp, state_dict=sd, safe_serialization=True)
        else:
            model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "train_config.json").write_text(json.dumps(train_config, indent=1))
        if state is not None and not light:
            torch.save(state, tmp / STATE_FILE)
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def prune(out_dir: Path, keep: int | None, protect: Path | None = None) -> None:
    """Delete the oldest checkpoints beyond `keep` (None keeps all); `protect` is never deleted."""
    if keep is None:
        return
    ckpts = [p for p in list_checkpoints(out_dir) if p != protect]
    extra = len(ckpts) - keep
    for p in ckpts[:max(0, extra)]:
        shutil.rmtree(p, ignore_errors=True)


def validate_checkpoint(path: str | Path, need_state: bool = True) -> None:
    """Raise CheckpointError naming every missing or unreadable part of the checkpoint at `path`."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint at {path}: the directory does not exist")
    problems = []
    try:
        json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        problems.append("config.json is missing")
    except ValueError as err:
        problems.append(f"config.json is corrupted ({err})")
    weights = path / "model.safetensors"
    if not weights.exists():
        problems.append("model.safetensors is missing")
    else:
        try:
            from safetensors import safe_open
            with safe_open(weights, "pt") as f:
                keys = list(f.keys())
                f.get_tensor(keys[-1])      # reading the last tensor catches truncation
        except Exception as err:           # noqa: BLE001 - any failure means an unreadable file
            problems.append(f"model.safetensors is corrupted ({type(err).__name__}: {err})")
    if not (path / "tokenizer.json").exists() and not (path / "tokenizer_config.json").exists():
        problems.append("the tokenizer (tokenizer.json) is missing")
    if need_state:
        try:
            state = torch.load(path / STATE_FILE, weights_only=True)
            missing = {"step", "optimizer", "rng"} - set(state)
            if missing:
                problems.append(f"{STATE_FILE} lacks {sorted(missing)}")
        except FileNotFoundError:
            problems.append(f"{STATE_FILE} (optimizer/step/RNG state) is missing: a light checkpoint cannot resume")
        except Exception as err:           # noqa: BLE001
            problems.append(f"{STATE_FILE} is corrupted ({type(err).__name__})")
    if problems:
        raise CheckpointError(f"checkpoint {path} is unusable: " + "; ".join(problems)
                              + ". Delete it to resume from an earlier one, or start without resume.")


def load_state(path: str | Path) -> dict:
    """The trainer state (step, optimizer, rng, ...) of a validated checkpoint."""
    validate_checkpoint(path)
    return torch.load(Path(path) / STATE_FILE, weights_only=True)


def find_resume(out_dir: Path | None, resume) -> Path | None:
    """The checkpoint to resume from: `resume` a path, or True for the newest under out_dir (None if none)."""
    if not resume:
        return None
    if resume is not True:
        validate_checkpoint(resume)
        return Path(resume)
    if out_dir is None:
        raise ValueError("resume=True needs out_dir (where the run's checkpoints are)")
    resumable = [p for p in list_checkpoints(out_dir) if (p / STATE_FILE).exists() or not (p / "config.json").exists()]
    if not resumable:
        return None
    validate_checkpoint(resumable[-1])
    return resumable[-1]


def load_checkpoint(path: str | Path, device: str | None = None):
    """(model, tokenizer) from a checkpoint directory (or any saved model directory), in eval mode."""
    from ..models import load_model
    validate_checkpoint(path, need_state=False)
    return load_model(path, device=device, local_only=True)
