"""Setting a run up: its tokenizer, its model (new, given, or as saved in a checkpoint), the checks made before
any corpus work (model settings, vocabulary, context), the optimizer, and the state restored on resume.

Here: `check_model_settings()`, `make_optimizer()`, `choose_threads()`, and the helpers `train()` calls in order.
Not here: the loop itself (`loop`), the losses (`losses`), checkpoint files (`checkpoint`).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from transformers import PreTrainedModel

from .. import moe as wb_moe
from ..models import build_model
from ..tokenizer import load_tokenizer, plain_tokenizer, train_tokenizer
from . import checkpoint as ckpt
from . import fsdp
from .config import TrainConfig


class BusyMachineWarning(UserWarning):
    """Other processes keep CPU cores busy, so training uses fewer torch threads than it would."""


def _busy_cores(interval: float = 0.25) -> float:
    """Cores' worth of CPU time other processes used over `interval` seconds (psutil; this process excluded)."""
    import psutil
    me = psutil.Process()
    me.cpu_percent(None)
    total = psutil.cpu_percent(interval=interval)               # % of all cores, whole machine
    mine = me.cpu_percent(None)                                 # % of one core, this process
    return max(0.0, total / 100 * (psutil.cpu_count() or 1) - mine / 100)


def choose_threads(requested: int | None, device: torch.device) -> int:
    """Set and return torch's CPU threads for a run: `requested` when given; on CPU otherwise the threads torch
    has now, fewer when other processes keep cores busy (a BusyMachineWarning says so).

    Why: on a 2-core laptop with another job running, 2 threads trained at 0.77 s/step and 1 thread at
    0.36 s/step; oversubscribed cores make every thread wait. A core counts as busy when other processes use
    at least 0.75 of it over a quarter of a second, measured once at the start of the run.
    """
    if requested:
        torch.set_num_threads(requested)
        return requested
    now = torch.get_num_threads()
    if device.type != "cpu" or now <= 1:
        return now
    import os
    cores = os.cpu_count() or 1
    busy = int(_busy_cores() + 0.25)
    free = max(1, cores - busy)
    if free < now:
        import warnings
        warnings.warn(f"other processes keep about {busy} of this machine's {cores} cores busy: training with "
                      f"{free} torch thread(s) instead of {now} (oversubscribed cores slow every thread down); "
                      f"pass threads={now} (--threads {now}) to insist", BusyMachineWarning, stacklevel=4)
        torch.set_num_threads(free)
        return free
    return now


def run_tokenizer(tokenizer, resume_from, texts, cfg, trust_remote_code=False):
    """The run's tokenizer, without ties to shipped code (plain_tokenizer), so the run saves plain files."""
    if resume_from is not None and tokenizer is None:
        return plain_tokenizer(load_tokenizer(resume_from, trust_remote_code))
    if tokenizer is None:
        return train_tokenizer(texts, vocab_size=cfg.tokenizer_vocab_size)
    if isinstance(tokenizer, (str, Path)):
        return plain_tokenizer(load_tokenizer(tokenizer, trust_remote_code))
    return plain_tokenizer(tokenizer)


DEFAULT_PRESET = "dense-tiny"


def check_model_settings(model_or_preset, model_kw: dict, resume=False, seq_len: int | None = None) -> None:
    """Validate the requested model (preset or ModelConfig with `model_kw`, and `seq_len` against its context)
    without building it, so a bad setting fails before any folder or corpus work. ValueError names it.
    A built model is checked for MoE routers the training losses do not apply to (moe.check_trainable).
    With no preset and `resume`, the settings are checked against the saved model later."""
    from ..config import ModelConfig, get_preset
    if model_or_preset is None:
        if resume:
            return
        model_or_preset = DEFAULT_PRESET
    if isinstance(model_or_preset, PreTrainedModel):
        if model_kw:
            raise ValueError(f"model settings {sorted(model_kw)} only apply to a preset name, not to a built model")
        wb_moe.check_trainable(model_or_preset)
        return
    if isinstance(model_or_preset, str) and model_or_preset in _mt_presets():
        from ..translation.models import mt_config
        mt_config(model_or_preset, **model_kw)            # raises on an unknown setting
        return
    if isinstance(model_or_preset, str):
        mc = get_preset(model_or_preset, **model_kw)
    elif isinstance(model_or_preset, ModelConfig):
        mc = model_or_preset.override(**model_kw)
    else:
        raise ValueError(f"model_or_preset must be a preset name, a ModelConfig or a transformers model, "
                         f"got {type(model_or_preset).__name__}")
    if seq_len and seq_len > mc.max_position_embeddings:
        raise ValueError(f"seq_len={seq_len} exceeds the model's context window max_position_embeddings="
                         f"{mc.max_position_embeddings}; lower seq_len or raise max_position_embeddings")


def _mt_presets():
    from ..translation.models import MT_PRESETS
    return MT_PRESETS


def _model(model_or_preset, tok, cfg, model_kw, resume_from=None):
    if model_or_preset is None and resume_from is not None:
        return _saved_model(resume_from, model_kw)
    if model_or_preset is None:
        model_or_preset = DEFAULT_PRESET
    if isinstance(model_or_preset, PreTrainedModel):
        if model_kw:
            raise ValueError(f"model settings {sorted(model_kw)} only apply to a preset name, not to a built model")
        return model_or_preset
    from ..config import ModelConfig
    if isinstance(model_or_preset, str) and model_or_preset in _mt_presets():
        from ..translation.models import build_translation_model
        return build_translation_model(model_or_preset, tok, seed=cfg.seed, **model_kw)
    if not isinstance(model_or_preset, (str, ModelConfig)):
        raise ValueError(f"model_or_preset must be a preset name, a ModelConfig or a transformers model, "
                         f"got {type(model_or_preset).__name__}")
    return build_model(model_or_preset, tokenizer=tok, seed=cfg.seed, **model_kw)


def _saved_model(path, model_kw):
    """A model with the architecture saved in checkpoint `path` (weights are loaded later); `model_kw` must
    agree with it."""
    from ..models import EXPERTS_IMPLEMENTATION, auto_class, is_encoder_decoder, model_config
    config = ckpt.saved_config(path)
    kw = {"attn_implementation": "eager" if is_encoder_decoder(config) else "sdpa"}
    if getattr(config, "num_local_experts", None) or getattr(config, "num_experts", None):
        kw["experts_implementation"] = EXPERTS_IMPLEMENTATION
    model = auto_class(config).from_config(config, trust_remote_code=False, **kw)   # saved_config drops auto_map
    if model_kw:
        saved = model_config(model).to_dict()
        _refuse_model_change(path, [(k, saved.get(k), v) for k, v in sorted(model_kw.items())
                                    if k != "scaled_residual_init" and saved.get(k) != v])   # init only
    return model


def _check_same_model(model, path) -> None:
    """Refuse to resume when the requested model's config differs from the one saved at `path`."""
    _refuse_model_change(path, ckpt.config_differences(path, model.config))


def _refuse_model_change(path, diffs) -> None:
    if not diffs:
        return
    shown = ", ".join(f"{k} (saved {a!r}, requested {b!r})" for k, a, b in diffs[:6])
    more = f" and {len(diffs) - 6} more" if len(diffs) > 6 else ""
    raise ValueError(f"cannot resume from {path}: the requested model differs from the saved one in {shown}{more}. "
                     "To resume the run as saved, drop --preset and the model --set values (in Python: "
                     "model_or_preset=None, no model settings); to train the requested model, use a new --out "
                     "(out_dir) or --overwrite.")


def _check_vocab(model, tok):
    n_model, n_tok = model.get_input_embeddings().num_embeddings, len(tok)
    if n_tok > n_model:
        raise ValueError(f"vocabulary mismatch: the tokenizer has {n_tok} tokens but the model's embedding has "
                         f"only {n_model} rows; build the model with tokenizer=... (or vocab_size={n_tok})")


def _seq_len(model, cfg) -> int:
    c = model.config
    ctx = int(getattr(c, "max_position_embeddings", 0) or getattr(c, "n_positions", 0) or 1024)
    seq_len = cfg.seq_len or min(128, ctx)
    if seq_len > ctx:
        raise ValueError(f"seq_len={seq_len} exceeds the model's context window max_position_embeddings={ctx}; "
                         f"lower seq_len or raise max_position_embeddings")
    return seq_len


def _load_weights(model, path, trust_remote_code: bool = False) -> None:
    """Copy the checkpoint's weights into `model` (strict: every tensor must match), through from_pretrained
    so the transformers checkpoint-format conversions (e.g. Mixtral expert layout) apply."""
    from ..loading import from_pretrained
    from ..models import auto_class
    saved = from_pretrained(auto_class(model.config), path, trust_remote_code=trust_remote_code, dtype=torch.float32,
                            local_files_only=True)
    model.load_state_dict(saved.state_dict(), strict=True)


def _is_moe(model) -> bool:
    c = model.config
    return bool(getattr(c, "num_local_experts", None) or getattr(c, "num_experts", None))


def optimizer_name(model, cfg: TrainConfig) -> str:
    """The optimizer `cfg.optimizer` names; "auto" is Adafactor for T5 and AdamW for everything else.

    T5's initialisation has very different scales per matrix (embeddings of std 1, queries of std
    (d_model * d_kv)^-1/2, no 1/sqrt(d) in attention) and was designed for Adafactor, whose update is scaled
    by each matrix's RMS (Shazeer & Stern 2018; Raffel et al. 2020). With AdamW at the same token budget a
    T5 trained here learned its language model but not to continue from the encoder (first decoder token's
    loss 6.4 nats vs 1.4 later on); nanoT5 (Nawrot 2023) reports the same and scales AdamW by RMS."""
    if cfg.optimizer != "auto":
        return cfg.optimizer
    return "adafactor" if getattr(model.config, "model_type", "") in ("t5", "mt5", "umt5") else "adamw"


def make_optimizer(model, cfg: TrainConfig, device) -> torch.optim.Optimizer:
    """AdamW (weight decay on matrices only, not norms, biases or embeddings; fused kernels where available),
    or transformers' Adafactor with parameter-scaled steps at the schedule's lr (see `optimizer_name`)."""
    if optimizer_name(model, cfg) == "adafactor":
        from transformers.optimization import Adafactor
        return Adafactor([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, scale_parameter=True,
                         relative_step=False, warmup_init=False, clip_threshold=1.0, beta1=None)
    decay, no_decay = [], []
    emb = {id(model.get_input_embeddings().weight)}
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 and id(p) not in emb else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)


def _restore(state, optimizer, path, device):
    saved = ckpt.load_state(path)
    if fsdp.is_sharded(state.model):         # a full state in single-process numbering, loaded as shards
        fsdp.load_optimizer_state(state.model, optimizer, saved["optimizer"])
    else:
        optimizer.load_state_dict(saved["optimizer"])
    state.step = int(saved["step"])
    torch.set_rng_state(saved["rng"]["torch"])
    if device.type == "cuda" and saved["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(saved["rng"]["cuda"])
    state.history, state.evals, state.samples = ckpt.read_records(path, state.step)
    state.checkpoints = ckpt.list_checkpoints(path.parent.parent)


def choose_experts(model, cfg: TrainConfig, device) -> None:
    """Set the MoE experts implementation (TrainConfig.experts_implementation; automatic: transformers' grouped
    GEMM on CUDA, its per-expert loop on CPU) on models that take one (Mixtral, Qwen2-MoE, ...); same maths."""
    choice = cfg.experts_implementation or ("grouped_mm" if device.type == "cuda" else "eager")
    if getattr(model, "_can_set_experts_implementation", lambda: False)() and _is_moe(model):
        model.set_experts_implementation(choice)
    elif cfg.experts_implementation:
        warnings.warn(f"experts_implementation={cfg.experts_implementation!r} ignored: this model has no "
                      "selectable experts implementation", stacklevel=3)


def load_teacher(cfg: TrainConfig, model, tok, device, trust_remote_code: bool):
    """The frozen teacher of cfg.teacher on `device`, or None. Raises ValueError when it cannot teach this
    student: an encoder-decoder on either side, or another vocabulary than the run's tokenizer."""
    if not cfg.teacher:
        return None
    from ..models import load_model
    if getattr(model.config, "is_encoder_decoder", False):
        raise ValueError("teacher: distillation trains decoder-only students; this student is an encoder-decoder")
    teacher, t_tok = load_model(cfg.teacher, trust_remote_code=trust_remote_code)
    if getattr(teacher.config, "is_encoder_decoder", False):
        raise ValueError(f"teacher {cfg.teacher!r} is an encoder-decoder; give a decoder-only (causal LM) teacher")
    if t_tok.get_vocab() != tok.get_vocab() or teacher.config.vocab_size != model.config.vocab_size:
        raise ValueError(f"teacher {cfg.teacher!r} has another vocabulary than this run's tokenizer: train the student "
                         f"with the teacher's tokenizer (tokenizer={cfg.teacher!r}, or --tokenizer on the CLI)")
    teacher.requires_grad_(False)
    return teacher.eval().to(device)
