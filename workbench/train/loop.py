"""The training loop behind `workbench.train()` and `workbench train`.

One step: for each of `grad_accum` micro-batches, forward (bf16 autocast on CUDA), loss, backward;
then clip the gradient norm, set the scheduled lr and take an AdamW step. For an MoE the loss is
    loss = lm + router_aux_loss_coef * aux + router_z_loss_coef * z
computed here from the router logits (transformers only adds aux when asked, and never z).
Per-step values stay on the device and are flushed to the history every `log_every` steps, so the
loop issues no per-step host syncs on CUDA.
"""
from __future__ import annotations

import gc
import inspect
import os
import shutil
import tempfile
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from .. import moe as wb_moe
from ..errors import disk_full_guard
from ..models import build_model
from ..tokenizer import load_tokenizer, plain_tokenizer, train_tokenizer, with_eos
from . import checkpoint as ckpt
from . import fast as fast_path
from . import runfolder
from .config import TrainConfig, split_overrides
from .data import as_texts, prepare
from .generate import generate
from .schedule import lr_at

_ROUTER_TAKES_CONVENTION = "convention" in inspect.signature(wb_moe.router_losses).parameters


@dataclass(frozen=True)
class TrainResult:
    """What a run produced. `history`: one row per step; `evals`: one row per validation pass."""
    model: PreTrainedModel
    tokenizer: object
    out_dir: Path | None
    history: pd.DataFrame        # step, loss, lm_loss, lr, tokens_per_s, grad_norm[, aux_loss, z_loss, expert_load, router_entropy]
    evals: pd.DataFrame          # step, val_loss, val_ppl
    samples: dict                # step -> list of generated texts
    checkpoints: list            # checkpoint directories kept, oldest first
    stopped_early: bool = False
    stop_reason: str = ""
    timing: dict = field(default_factory=dict)   # seconds: total, compute (fwd/bwd/opt), data, eval, sample, save

    @property
    def final_val_loss(self) -> float:
        return float(self.evals["val_loss"].iloc[-1]) if len(self.evals) else math.nan


@dataclass
class TrainState:
    """The live run, as callbacks see it."""
    config: TrainConfig
    model: PreTrainedModel
    tokenizer: object
    step: int = 0
    tokens_per_step: int = 0
    is_moe: bool = False
    history: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    samples: dict = field(default_factory=dict)
    checkpoints: list = field(default_factory=list)
    stop_reason: str = ""
    start_time: float = 0.0

    def request_stop(self, reason: str = "stop requested") -> None:
        self.stop_reason = self.stop_reason or reason


class NonFiniteLoss(RuntimeError):
    """The loss of optimizer step `step` (1-based, as in the history) is NaN or infinite."""

    def __init__(self, step: int):
        super().__init__(f"non-finite loss at step {step}")
        self.step = step


def train(model_or_preset=None, corpus=None, tokenizer=None, out_dir=None, config: TrainConfig | None = None,
          callbacks=(), resume=False, overwrite: bool = False, trust_remote_code: bool = False,
          **overrides) -> TrainResult:
    """Train a preset name or a transformers causal LM on `corpus`; see TrainConfig for the settings.

    `model_or_preset`: a preset name, ModelConfig or transformers model; None: "dense-tiny", or when resuming
    the saved model. `overrides` may name TrainConfig fields (steps=200) or ModelConfig fields (hidden_size=64).
    `out_dir` (optional) receives checkpoints/, the final model and the records. It is locked for the run
    (a second run into it fails) and must be empty unless `resume` or `overwrite` is given.
    `resume`: True continues from the newest usable checkpoint in out_dir, or give a checkpoint directory;
    the requested model must match the saved one. `overwrite`: delete the old run in out_dir first.
    `trust_remote_code`: let a tokenizer directory or checkpoint that ships its own code run it (else
    RemoteCodeRefused); the tokenizer saved with the run is plain files either way.
    """
    train_kw, model_kw = split_overrides(overrides)
    cfg = (config or TrainConfig()).override(**train_kw)
    check_model_settings(model_or_preset, model_kw, resume, cfg.seq_len)   # before the folder or the corpus
    if corpus is None:
        raise ValueError("give a corpus: a list of texts, a Corpus, or a corpus path")
    args = (model_or_preset, corpus, tokenizer, cfg, model_kw, callbacks, resume, trust_remote_code)
    if out_dir is None:
        if overwrite:
            raise ValueError("overwrite=True needs out_dir (the run folder to replace)")
        return _train(None, *args)
    out_dir = Path(out_dir)
    with runfolder.lock(out_dir):
        runfolder.prepare(out_dir, resume, overwrite, reads=(corpus, tokenizer))
        return _train(out_dir, *args)


def _train(out_dir, model_or_preset, corpus, tokenizer, cfg, model_kw, callbacks, resume, trust_remote_code):
    resume_from = ckpt.find_resume(out_dir, resume)
    texts = as_texts(corpus)
    tok = _tokenizer(tokenizer, resume_from, texts, cfg, trust_remote_code)
    model = _model(model_or_preset, tok, cfg, model_kw, resume_from)
    if getattr(model.config, "is_encoder_decoder", False):
        tok = with_eos(tok)                  # prompts end with EOS, as the encoder inputs do in training
    if resume_from is not None:
        _check_same_model(model, resume_from)
    _check_vocab(model, tok)
    wb_moe.check_trainable(model)            # MoE routers must be softmax top-k for the aux loss and z-loss
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seq_len = _seq_len(model, cfg)
    data = prepare(texts, tok, seq_len, cfg.batch_size, cfg.val_fraction, cfg.seed)
    if resume_from is not None:
        _load_weights(model, resume_from, trust_remote_code)
    model.to(device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    optimizer = make_optimizer(model, cfg, device)
    state = TrainState(cfg, model, tok, tokens_per_step=cfg.batch_size * cfg.grad_accum * seq_len,
                       is_moe=_is_moe(model))
    if resume_from is not None:
        _restore(state, optimizer, resume_from, device)
    else:
        torch.manual_seed(cfg.seed)
    return _run(state, optimizer, data, device, out_dir, list(callbacks))


# ----------------------------------------------------------------------------- setup helpers

def _tokenizer(tokenizer, resume_from, texts, cfg, trust_remote_code=False):
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
    model = auto_class(config).from_config(config, **kw)
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


def make_optimizer(model, cfg: TrainConfig, device) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not norms, biases or embeddings); fused kernels where available."""
    decay, no_decay = [], []
    emb = {id(model.get_input_embeddings().weight)}
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 and id(p) not in emb else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)


def _restore(state, optimizer, path, device):
    saved = ckpt.load_state(path)
    optimizer.load_state_dict(saved["optimizer"])
    state.step = int(saved["step"])
    torch.set_rng_state(saved["rng"]["torch"])
    if device.type == "cuda" and saved["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(saved["rng"]["cuda"])
    state.history, state.evals, state.samples = ckpt.read_records(path, state.step)
    state.checkpoints = ckpt.list_checkpoints(path.parent.parent)


# ----------------------------------------------------------------------------- the loop

def _run(state: TrainState, optimizer, data, device, out_dir, callbacks) -> TrainResult:
    cfg, model = state.config, state.model
    handles = wb_moe.prepare_for_training(model, expert_output_mask_p=cfg.expert_output_mask_p,
                                          gating_dropout_p=cfg.gating_dropout_p) if state.is_moe else []
    if state.is_moe and cfg.aux_loss_convention != "hf" and not _ROUTER_TAKES_CONVENTION:
        raise ValueError(f"aux_loss_convention={cfg.aux_loss_convention!r} is not available in this version; use 'hf'")
    step_fn = torch.compile(model) if cfg.compile else model
    lean = _lean(model, cfg, device)
    params = [p for p in model.parameters() if p.requires_grad]
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _null()
    timing = dict.fromkeys(("compute", "data", "eval", "sample", "save", "log"), 0.0)
    pending: list = []
    state.start_time = t_start = time.perf_counter()
    t_window = t_start
    for cb in callbacks:
        cb.on_start(state)
    model.train()
    gc.freeze()      # objects from before the run (imports, notebook state) leave the collector's full passes
    try:
        while state.step < cfg.steps and not state.stop_reason:
            step = state.step
            lr = lr_at(step, cfg.lr, cfg.warmup, cfg.steps, cfg.min_lr_ratio)
            for g in optimizer.param_groups:
                g["lr"] = lr
            rec = _train_step(lean or step_fn, model, optimizer, params, data, step, cfg, device, amp, state.is_moe,
                              timing)
            rec["lr"] = lr
            pending.append(rec)
            state.step = step + 1
            last = state.step == cfg.steps
            due_eval = cfg.eval_every and state.step % cfg.eval_every == 0
            due_sample = cfg.sample_every and state.step % cfg.sample_every == 0
            due_ckpt = cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and not last
            if state.step % cfg.log_every == 0 or last or due_eval or due_sample or due_ckpt:
                t0 = time.perf_counter()
                t_window = _flush(state, pending, t_window, callbacks)
                timing["log"] += time.perf_counter() - t0
            if due_eval and not last:
                _evaluate(state, data, device, amp, callbacks, timing)
            if due_sample and not last:
                _sample(state, device, callbacks, timing)
            if due_ckpt:
                _checkpoint(state, optimizer, out_dir, callbacks, timing)
    except NonFiniteLoss as err:
        pending.clear()
        state.stop_reason = f"{err}: training stopped; weights and checkpoints are from before that step"
        warnings.warn(state.stop_reason, RuntimeWarning, stacklevel=2)
        return _finish(state, optimizer, data, device, out_dir, callbacks, timing, t_start, handles, amp, good=False)
    except KeyboardInterrupt:
        state.stop_reason = f"interrupted after step {state.step}"
        pending[:] = [r for r in pending if r["step"] < state.step]
    finally:
        gc.unfreeze()
    t0 = time.perf_counter()
    _flush(state, pending, t_window, callbacks)
    timing["log"] += time.perf_counter() - t0
    return _finish(state, optimizer, data, device, out_dir, callbacks, timing, t_start, handles, amp, good=True)


def _lean(model, cfg, device):
    """The CPU fast path's forward (see workbench.train.fast), or None for the model's own forward."""
    if not cfg.fast_path or device.type != "cpu":
        return None
    fast_path.tune_allocator()
    return None if cfg.compile else fast_path.lean_forward(model)


def _train_step(step_fn, model, optimizer, params, data, step, cfg, device, amp, is_moe, timing) -> dict:
    """One optimizer step; returns detached device tensors (no host sync). `step_fn`: the model (or its
    compiled form) or a lean forward from workbench.train.fast."""
    totals = {}
    for micro in range(cfg.grad_accum):
        t0 = time.perf_counter()
        x, y = data.batch(step, micro, cfg.batch_size, cfg.grad_accum, cfg.seed)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        t1 = time.perf_counter()
        with amp:
            losses = compute_loss(step_fn, model, x, y, is_moe, cfg)
        if device.type == "cpu" and not torch.isfinite(losses["loss"]):   # free on CPU: keep weights good
            raise NonFiniteLoss(step + 1)
        (losses["loss"] / cfg.grad_accum).backward()
        for k, v in losses.items():
            totals[k] = totals.get(k, 0) + v.detach() / cfg.grad_accum
        timing["data"] += t1 - t0
        timing["compute"] += time.perf_counter() - t1
    t1 = time.perf_counter()
    if cfg.grad_clip:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
    else:
        grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    timing["compute"] += time.perf_counter() - t1
    totals["grad_norm"] = grad_norm.detach()
    totals["step"] = step
    totals["t"] = time.perf_counter()
    return totals


def compute_loss(step_fn, model, x, y, is_moe: bool, cfg: TrainConfig | None = None) -> dict:
    """{"loss": optimised loss, "lm_loss", and for MoE "aux_loss", "z_loss", "expert_load", "router_entropy"}.

    lm = mean token cross-entropy; MoE: loss = lm + aux_coef * aux + z_coef * z (softmax top-k routers only:
    train() refuses others, see moe.check_trainable).
    `step_fn`: a model called as model(input_ids=...), or a lean forward f(x, output_router_logits, targets).
    """
    if getattr(model.config, "is_encoder_decoder", False):
        return {"loss": (lm := prefix_lm_loss(step_fn, x, y)), "lm_loss": lm}
    if isinstance(step_fn, torch.nn.Module):
        out = step_fn(input_ids=x, output_router_logits=True) if is_moe else step_fn(input_ids=x)
        logits, router_logits = out.logits, getattr(out, "router_logits", None)
        lm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
    else:
        lm, router_logits = step_fn(x, is_moe, targets=y)
    if not is_moe:
        return {"loss": lm, "lm_loss": lm}
    c = model.config
    kw = {"convention": cfg.aux_loss_convention} if cfg is not None and _ROUTER_TAKES_CONVENTION else {}
    r = wb_moe.router_losses(router_logits, c, **kw)
    aux_coef, z_coef = float(getattr(c, "router_aux_loss_coef", 0.0)), float(getattr(c, "router_z_loss_coef", 0.0))
    loss = lm + aux_coef * r["aux"] + z_coef * r["z"]
    load, entropy = routing_stats(router_logits, c.num_experts_per_tok)
    return {"loss": loss, "lm_loss": lm, "aux_loss": r["aux"], "z_loss": r["z"],
            "expert_load": load, "router_entropy": entropy}


def prefix_lm_loss(model, x, y, split: int | None = None, eos_id: int | None = None) -> torch.Tensor:
    """Encoder-decoder prefix language modelling (T5's LM adaptation, Raffel et al. 2020; Lester et al. 2021):
    the window w = x + the last target (B, T+1) is cut at `split` (drawn uniformly from [T/4, 3T/4] when None);
    the encoder reads w[:, :split] followed by EOS (T5's end of input, which the training tokenizer's
    `with_eos` adds to every prompt as well), the decoder predicts w[:, split:] from the start token.
    Returns the mean token cross-entropy (nats) over the predicted part."""
    w = torch.cat([x, y[:, -1:]], dim=1)
    t = w.shape[1]
    if split is None:
        split = int(torch.randint(t // 4, 3 * t // 4 + 1, ()).item())
    labels = w[:, split:].contiguous()
    eos = getattr(getattr(model, "config", None), "eos_token_id", None) if eos_id is None else eos_id
    enc = w[:, :split] if eos is None else torch.cat([w[:, :split], w.new_full((w.shape[0], 1), eos)], dim=1)
    logits = model(input_ids=enc, labels=labels).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1))


@torch.no_grad()
def routing_stats(router_logits, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per layer: load (layers, experts) = share of top-k assignments per expert; router entropy (layers,)
    = mean over tokens of -sum_e p_e log p_e with p = softmax(router logits)."""
    logits = torch.stack([r.float() for r in router_logits])            # (layers, tokens, experts)
    n_exp = logits.shape[-1]
    idx = logits.topk(top_k, dim=-1).indices                             # (layers, tokens, k)
    counts = F.one_hot(idx, n_exp).sum(dim=(1, 2)).float()               # (layers, experts)
    load = counts / counts.sum(-1, keepdim=True)
    logp = logits.log_softmax(-1)
    entropy = -(logp.exp() * logp).sum(-1).mean(-1)                      # (layers,)
    return load, entropy


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _flush(state, pending, t_window, callbacks) -> float:
    """Move pending per-step tensors to the history (one host sync); raise on a non-finite loss."""
    if not pending:
        return t_window
    keys = [k for k in pending[0] if k not in ("step", "t")]
    stacked = {k: torch.stack([torch.as_tensor(r[k]) for r in pending]).float().cpu() for k in keys}
    bad = (~torch.isfinite(stacked["loss"])).nonzero()
    if len(bad):
        raise NonFiniteLoss(pending[int(bad[0])]["step"] + 1)
    dt = max(pending[-1]["t"] - t_window, 1e-9)
    tps = len(pending) * state.tokens_per_step / dt
    rows = []
    for i, r in enumerate(pending):
        row = {"step": r["step"] + 1}
        for k in keys:
            v = stacked[k][i]
            row[k] = v.tolist() if v.dim() else float(v)
        row["tokens_per_s"] = tps
        rows.append(row)
    state.history.extend(rows)
    pending.clear()
    for cb in callbacks:
        cb.on_log(state, rows)
    return time.perf_counter()


@torch.no_grad()
def evaluate(model, data, cfg: TrainConfig, device, amp=None) -> float:
    """Mean token cross-entropy on the held-out validation windows (encoder-decoders: of the second half of
    each window given the first)."""
    was_training = model.training
    model.eval()
    lean = _lean(model, cfg, torch.device(device))
    total, n = 0.0, 0
    for x, y in data.val_batches(cfg.batch_size, cfg.eval_batches):
        x, y = x.to(device), y.to(device)
        if getattr(model.config, "is_encoder_decoder", False):      # the second half given the first
            with amp or _null():
                loss = prefix_lm_loss(model, x, y, split=(x.shape[1] + 1) // 2)
            m = x.shape[0] * (x.shape[1] + 1 - (x.shape[1] + 1) // 2)
            total, n = total + loss.item() * m, n + m
            continue
        with amp or _null():
            logits = lean(x)[0] if lean else model(input_ids=x).logits
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1), reduction="sum").item()
        n += y.numel()
    model.train(was_training)
    return total / max(n, 1)


def _evaluate(state, data, device, amp, callbacks, timing):
    t0 = time.perf_counter()
    loss = evaluate(state.model, data, state.config, device, amp)
    row = {"step": state.step, "val_loss": loss, "val_ppl": math.exp(min(loss, 50))}
    state.evals.append(row)
    timing["eval"] += time.perf_counter() - t0
    for cb in callbacks:
        cb.on_eval(state, row)


def _sample(state, device, callbacks, timing):
    t0 = time.perf_counter()
    cfg, texts = state.config, []
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):      # sampling must not shift the training RNG
        torch.manual_seed(cfg.seed + state.step)
        for prompt in cfg.sample_prompts:
            texts += generate(state.model, state.tokenizer, prompt, n=cfg.sample_n,
                              temperature=cfg.sample_temperature, max_new_tokens=cfg.sample_max_new_tokens)
    state.model.train()
    state.samples[state.step] = texts
    timing["sample"] += time.perf_counter() - t0
    for cb in callbacks:
        cb.on_sample(state, state.step, texts)


def _rng_state(device) -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None}


def _checkpoint(state, optimizer, out_dir, callbacks, timing, final: bool = False):
    if out_dir is None:
        return
    t0 = time.perf_counter()
    light = state.config.checkpoint_light and not final
    path = ckpt.step_dir(out_dir, state.step)
    trainer_state = {"step": state.step, "optimizer": optimizer.state_dict(), "rng": _rng_state(
        next(state.model.parameters()).device)}
    records = None if light else _records(state)    # light checkpoints rely on the run's final history instead
    ckpt.save_checkpoint(path, state.model, state.tokenizer, trainer_state, state.config.to_dict(), light=light,
                         records=records)
    ckpt.prune(out_dir, state.config.keep_checkpoints, protect=path if final else None)
    state.checkpoints = ckpt.list_checkpoints(out_dir)
    timing["save"] += time.perf_counter() - t0
    for cb in callbacks:
        cb.on_checkpoint(state, path)


def save_final(model, tokenizer, out_dir: Path, files: dict[str, str] | None = None) -> None:
    """The final model at the top of out_dir (beside checkpoints/), with `files` ({name: text}, e.g. the
    records): written to a temp dir, then each file renamed into place, so a crash never leaves a
    half-written file; a full disk raises DiskFull."""
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


def _records(state) -> dict[str, str]:
    """{history.jsonl, evals.csv, samples.json: text}, saved with the weights (read back by resume and plots)."""
    return {"history.jsonl": pd.DataFrame(state.history).to_json(orient="records", lines=True),
            "evals.csv": pd.DataFrame(state.evals, columns=ckpt.EVAL_COLUMNS).to_csv(index=False),
            "samples.json": json.dumps({str(k): v for k, v in state.samples.items()}, indent=1)}


def _finish(state, optimizer, data, device, out_dir, callbacks, timing, t_start, handles, amp, good: bool):
    cfg, model = state.config, state.model
    for h in handles:
        h.remove()
    if good and state.step > 0:
        try:
            if not state.evals or state.evals[-1]["step"] != state.step:
                _evaluate(state, data, device, amp, callbacks, timing)
            if state.step not in state.samples:
                _sample(state, device, callbacks, timing)
        except KeyboardInterrupt:
            state.stop_reason = state.stop_reason or f"interrupted after step {state.step}"
        if state.is_moe:
            wb_moe.finalize_for_inference(model, cfg.expert_output_mask_p)
        if out_dir is not None:
            t0 = time.perf_counter()
            if not cfg.checkpoint_light:
                _checkpoint(state, optimizer, out_dir, callbacks, timing, final=True)
            save_final(model, state.tokenizer, out_dir,
                       {**_records(state), "train_config.json": json.dumps(cfg.to_dict(), indent=1)})
            timing["save"] += time.perf_counter() - t0
    model.eval()
    timing["total"] = time.perf_counter() - t_start
    for cb in callbacks:
        cb.on_end(state)
    hist = pd.DataFrame(state.history)
    return TrainResult(model=model, tokenizer=state.tokenizer, out_dir=out_dir, history=hist,
                       evals=pd.DataFrame(state.evals, columns=["step", "val_loss", "val_ppl"]),
                       samples=dict(state.samples), checkpoints=list(state.checkpoints),
                       stopped_early=bool(state.stop_reason), stop_reason=state.stop_reason, timing=timing)
