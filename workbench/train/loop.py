"""The training loop behind `workbench.train()` and `workbench train`.

One step: for each of `grad_accum` micro-batches, forward (bf16 autocast on CUDA), loss, backward;
then clip the gradient norm, set the scheduled lr and take an AdamW step. For an MoE the loss is
    loss = lm + router_aux_loss_coef * aux + router_z_loss_coef * z
computed by `losses` from the router logits (transformers only adds aux when asked, and never z).
Per-step values stay on the device and are flushed to the history every `log_every` steps, so the
loop issues no per-step host syncs on CUDA; on one GPU not even at those steps: a window is published while
the next one runs (`records`), so the callbacks see it one window late.
Under torchrun the same loop runs one rank of a data-parallel run (DDP, or FSDP2 with `fsdp`; see
`distributed` and `fsdp`).
Not here: setting a run up (`setup`), the losses (`losses`), checkpoint files (`checkpoint`, `runfolder`),
starting processes (`launch`).
"""
from __future__ import annotations

import contextlib
import gc
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
from ..tokenizer import with_eos
from . import checkpoint as ckpt
from . import distributed, fsdp, graphs
from . import fast as fast_path
from .kernels import gpu_forward, liger_available
from . import runfolder
from .checkpoint import save_final
from .config import TRAIN_FIELDS, TrainConfig, split_overrides
from .data import as_texts, prepare
from .generate import generate
from .losses import _ROUTER_TAKES_CONVENTION, compute_loss, prefix_lm_loss
from .pairs import PairData, evaluate_pairs, finalize_eom, is_translation_model, mt_routing, pair_loss
from .pairs import MT_PRESETS, pair_setup, pair_tokenizer, prepare_pairs, sample_pairs
from .records import NonFiniteLoss, flush as _flush, publish as _publish, stage as _stage
from .schedule import lr_at
from .setup import (_check_same_model, _check_vocab, _is_moe, _load_weights, _model, _restore, _seq_len,
                    check_model_settings, choose_experts, choose_threads, load_teacher, make_optimizer,
                    run_tokenizer)


LAGGED_LOG = True   # on one GPU, log one window behind instead of waiting for the GPU at each log step


@dataclass(frozen=True)
class TrainResult:
    """What a run produced. `history`: one row per step; `evals`: one row per validation pass."""
    model: PreTrainedModel
    tokenizer: object
    out_dir: Path | None
    history: pd.DataFrame        # step, loss, lm_loss, lr, tokens_per_s, grad_norm[, kd_loss][, aux_loss, z_loss, expert_load, router_entropy]
    evals: pd.DataFrame          # step, val_loss, val_ppl
    samples: dict                # step -> list of generated texts
    checkpoints: list            # checkpoint directories kept, oldest first
    stopped_early: bool = False
    stop_reason: str = ""
    timing: dict = field(default_factory=dict)   # seconds: total, compute (fwd/bwd/opt), data, eval, sample, save
    tokens_per_step: int = 0     # batch_size * grad_accum * sequence length

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
    teacher: PreTrainedModel | None = None   # knowledge distillation (TrainConfig.teacher), frozen, on the device
    history: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    samples: dict = field(default_factory=dict)
    checkpoints: list = field(default_factory=list)
    stop_reason: str = ""
    start_time: float = 0.0
    pair_data: object = None     # translation runs: the PairData (sample translations come from its pairs)
    rank: int = 0                # this process in a distributed run (rank 0 evaluates, samples, writes)
    world_size: int = 1          # processes training together (see workbench.train.distributed)

    def request_stop(self, reason: str = "stop requested") -> None:
        self.stop_reason = self.stop_reason or reason


def train(model_or_preset=None, corpus=None, tokenizer=None, out_dir=None, config: TrainConfig | None = None,
          callbacks=(), resume=False, overwrite: bool = False, trust_remote_code: bool = False,
          devices: int | None = None, **overrides) -> TrainResult:
    """Train a preset name or a transformers causal LM on `corpus`; see TrainConfig for the settings.

    `model_or_preset`: a preset name, ModelConfig or transformers model; None: "dense-tiny", or when resuming
    the saved model. `overrides` may name TrainConfig fields (steps=200) or ModelConfig fields (hidden_size=64).
    `out_dir` (optional) receives checkpoints/, the final model and the records. It is locked for the run
    (a second run into it fails) and must be empty unless `resume` or `overwrite` is given.
    `resume`: True continues from the newest usable checkpoint in out_dir, or give a checkpoint directory;
    the requested model must match the saved one. `overwrite`: delete the old run in out_dir first.
    `trust_remote_code`: let a tokenizer directory or checkpoint that ships its own code run it (else
    RemoteCodeRefused); the tokenizer saved with the run is plain files either way.
    `devices`: N > 1 trains data-parallel in N processes (one per GPU on CUDA, gloo on CPU) that torchrun starts
    in a subprocess on this machine (`launch.train_processes`); this call waits for them and returns rank 0's
    result, its model loaded from what rank 0 saved. Every argument must pickle; callbacks run in rank 0's
    process (their state does not come back). For several machines, or output as it happens in a terminal,
    start the workers yourself: `torchrun --nproc-per-node N -m workbench.train ARGS` (the `workbench train`
    arguments). Under torchrun (WORLD_SIZE > 1) train() itself runs one rank (see workbench.train.distributed):
    batch_size stays the global batch, rank 0 alone evaluates, samples and writes, and every rank's history
    holds the rank-averaged losses.
    Raises ValueError for more processes than GPUs on CUDA, or a batch_size the processes cannot split evenly.
    """
    if isinstance(model_or_preset, str) and model_or_preset in MT_PRESETS:   # model settings: the config's names
        train_kw = {k: v for k, v in overrides.items() if k in TRAIN_FIELDS}
        model_kw = {k: v for k, v in overrides.items() if k not in TRAIN_FIELDS}
    else:
        train_kw, model_kw = split_overrides(overrides)
    cfg = (config or TrainConfig()).override(**train_kw)
    check_model_settings(model_or_preset, model_kw, resume, cfg.seq_len)   # before the folder or the corpus
    if cfg.warmup and cfg.warmup >= cfg.steps:
        peak = "never reaches its peak" if cfg.warmup > cfg.steps else "reaches its peak only at the last step"
        warnings.warn(f"warmup {cfg.warmup} >= steps {cfg.steps}: the learning rate {peak} and never decays; "
                      f"use a smaller --warmup (e.g. --warmup {max(1, cfg.steps // 10)})", stacklevel=2)
    if corpus is None:
        raise ValueError("give a corpus: a list of texts, a Corpus, or a corpus path")
    if overwrite and out_dir is None:
        raise ValueError("overwrite=True needs out_dir (the run folder to replace)")
    if devices is not None and devices != 1:
        from .launch import train_processes
        return train_processes(devices, model_or_preset, corpus, tokenizer, out_dir, cfg, callbacks, resume,
                               overwrite, trust_remote_code, model_kw)
    with distributed.session(cfg.device, cfg.batch_size) as ranks, contextlib.ExitStack() as held:
        args = (model_or_preset, corpus, tokenizer, cfg, model_kw, callbacks, resume, trust_remote_code, ranks)
        if out_dir is None:
            return _train(None, *args)
        out_dir = Path(out_dir)

        def claim():                 # rank 0 holds the folder for the run; a refusal stops every rank
            held.enter_context(runfolder.lock(out_dir))
            runfolder.prepare(out_dir, resume, overwrite, reads=(corpus, tokenizer))
        distributed.first(claim, ranks)
        return _train(out_dir if ranks.main else None, *args)


def _train(out_dir, model_or_preset, corpus, tokenizer, cfg, model_kw, callbacks, resume, trust_remote_code, ranks):
    resume_from = distributed.first(lambda: ckpt.find_resume(out_dir, resume), ranks)
    pairs, pair_texts = pair_setup(corpus, model_or_preset, tokenizer, cfg)   # (None, None) unless parallel
    texts = as_texts(corpus) if pairs is None else pair_texts
    fresh_mt = pairs is not None and tokenizer is None and resume_from is None
    tok = distributed.first(lambda: pair_tokenizer(pairs, cfg) if fresh_mt else
                            run_tokenizer(tokenizer, resume_from, texts, cfg, trust_remote_code), ranks)
    model = _model(model_or_preset, tok, cfg, model_kw, resume_from)
    if pairs is not None and not getattr(model.config, "is_encoder_decoder", False):
        raise ValueError("translation pairs train encoder-decoder models: use preset 'mt-dense', 'mt-moe' or an "
                         "encdec-* preset")
    if getattr(model.config, "is_encoder_decoder", False) and pairs is None:
        tok = with_eos(tok)                  # prompts end with EOS, as the encoder inputs do in training
    if resume_from is not None:
        _check_same_model(model, resume_from)
    _check_vocab(model, tok)
    wb_moe.check_trainable(model)            # MoE routers must be softmax top-k for the aux loss and z-loss
    device = distributed.device_for(cfg.device, ranks)
    choose_threads(cfg.threads, device)      # fewer threads than cores when other processes keep cores busy
    seq_len = _seq_len(model, cfg)
    data = (prepare(texts, tok, seq_len, cfg.batch_size, cfg.val_fraction, cfg.seed) if pairs is None
            else prepare_pairs(pairs, tok, seq_len, cfg.val_fraction, cfg.seed))
    if resume_from is not None:
        _load_weights(model, resume_from, trust_remote_code)
    model.to(device)
    choose_experts(model, cfg, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.fsdp and ranks.world > 1:
        fsdp.shard(model)                    # before the optimizer: it holds the shards
    optimizer = make_optimizer(model, cfg, device)
    per_row = seq_len if pairs is None else sum(len(a) + len(b) for a, b in data.train) / len(data.train)
    state = TrainState(cfg, model, tok, tokens_per_step=round(cfg.batch_size * cfg.grad_accum * per_row),
                       is_moe=_is_moe(model), teacher=load_teacher(cfg, model, tok, device, trust_remote_code),
                       rank=ranks.rank, world_size=ranks.world)
    state.pair_data = data if pairs is not None else None
    if resume_from is not None:
        _restore(state, optimizer, resume_from, device)
    else:
        torch.manual_seed(cfg.seed)
    return _run(state, optimizer, data, device, out_dir, list(callbacks))


# ----------------------------------------------------------------------------- the loop

def _run(state: TrainState, optimizer, data, device, out_dir, callbacks) -> TrainResult:
    cfg, model = state.config, state.model
    if state.step and state.step >= cfg.steps:   # a resume with nothing left to do: the run stays as it is
        return _nothing_to_train(state, out_dir)
    if is_translation_model(model):          # NLLB-MoE: capacity, EOM and gating dropout from its config
        handles = mt_routing(model, cfg)
    else:
        handles = wb_moe.prepare_for_training(model, expert_output_mask_p=cfg.expert_output_mask_p,
                                              gating_dropout_p=cfg.gating_dropout_p) if state.is_moe else []
    if state.is_moe and cfg.aux_loss_convention != "hf" and not _ROUTER_TAKES_CONVENTION:
        raise ValueError(f"aux_loss_convention={cfg.aux_loss_convention!r} is not available in this version; use 'hf'")
    ranks = distributed.Ranks(state.rank, state.world_size)
    callbacks = callbacks if ranks.main else []      # rank 0 reports; the others follow its stop decisions
    sharded, twin = fsdp.is_sharded(model), None     # FSDP: rank 0's plain copy for evaluation and saving
    lean = None if sharded else _lean(model, cfg, device)
    step_fn = distributed.train_forward(model, lean, cfg.compile, state.is_moe, ranks)
    params = [p for p in model.parameters() if p.requires_grad]
    graph = graphs.step_graph(state, optimizer, params, device, lean, ranks.world, isinstance(data, PairData),
                              gpu_kernels(cfg) if lean is not None and device.type == "cuda" else "torch")
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _null()
    timing = dict.fromkeys(("compute", "data", "eval", "sample", "save", "log"), 0.0)
    pending: list = []
    # On one GPU the log runs a window behind: a window's records are copied to the host while the next window's
    # steps run, and published after them, so the GPU never waits for the host's logging (a full flush before
    # every evaluation, sample, checkpoint and the last step keeps those in step with the history)
    lag, staged = LAGGED_LOG and device.type == "cuda" and ranks.world == 1, None
    state.start_time = t_start = time.perf_counter()
    t_window = t_start
    for cb in callbacks:
        cb.on_start(state)
    state.stop_reason = distributed.agree(state.stop_reason, ranks)
    model.train()
    gc.freeze()      # objects from before the run (imports, notebook state) leave the collector's full passes
    try:
        while state.step < cfg.steps and not state.stop_reason:
            step = state.step
            lr = lr_at(step, cfg.lr, cfg.warmup, cfg.steps, cfg.min_lr_ratio)
            for g in optimizer.param_groups:
                g["lr"] = lr
            rec = graph.step(data, step, timing) if graph is not None else None     # None: an eager step
            if rec is None:
                rec = _train_step(step_fn, model, optimizer, params, data, step, cfg, device, amp, state.is_moe,
                                  timing, state.teacher, ranks)
            rec["lr"] = lr
            pending.append(rec)
            state.step = step + 1
            last = state.step == cfg.steps
            due_eval = cfg.eval_every and state.step % cfg.eval_every == 0
            due_sample = cfg.sample_every and state.step % cfg.sample_every == 0
            due_ckpt = ((cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0)
                        or state.step in cfg.checkpoint_steps) and not last
            if not (state.step % cfg.log_every == 0 or last or due_eval or due_sample or due_ckpt):
                continue
            t0 = time.perf_counter()
            if lag and not (last or due_eval or due_sample or due_ckpt):
                previous, staged = staged, _stage(state, pending)
                t_window = _publish(state, previous, t_window, callbacks, lagged=True)
            else:
                t_window = _publish(state, staged, t_window, callbacks, lagged=True)
                staged = None
                t_window = _flush(state, pending, t_window, callbacks)
            timing["log"] += time.perf_counter() - t0
            whole, optim_state = None, None
            if sharded and ((due_eval or due_sample) and not last or due_ckpt):   # collective: every rank
                whole = twin = fsdp.full_model(model, twin)
                optim_state = fsdp.full_optimizer_state(model, optimizer) if due_ckpt else None
            if due_eval and not last and ranks.main:
                _evaluate(state, data, device, amp, callbacks, timing, whole)
            if due_sample and not last and ranks.main:
                _sample(state, device, callbacks, timing, whole)
            if due_ckpt:
                ckpt.save_step(state, optimizer, out_dir, callbacks, timing, model=whole, optimizer_state=optim_state)
            if ranks.world > 1:
                state.stop_reason = distributed.agree(state.stop_reason, ranks)
    except NonFiniteLoss as err:
        pending.clear()
        staged = None
        state.stop_reason = f"{err}: training stopped; weights and checkpoints are from before that step"
        warnings.warn(state.stop_reason, RuntimeWarning, stacklevel=2)
        return _finish(state, optimizer, data, device, out_dir, callbacks, timing, t_start, handles, amp, good=False)
    except KeyboardInterrupt:
        if ranks.world > 1:      # each rank stops at its own point: no common final save; resume instead
            raise
        state.stop_reason = f"interrupted after step {state.step}"
        pending[:] = [r for r in pending if r["step"] < state.step]
    finally:
        gc.unfreeze()
        if graph is not None:
            graph.release()
    t0 = time.perf_counter()
    _flush(state, pending, _publish(state, staged, t_window, callbacks, lagged=True), callbacks)
    timing["log"] += time.perf_counter() - t0
    return _finish(state, optimizer, data, device, out_dir, callbacks, timing, t_start, handles, amp, good=True)


def _nothing_to_train(state: TrainState, out_dir) -> TrainResult:
    """The resumed run unchanged (nothing saved, no callbacks), its stop_reason saying why."""
    model = state.model
    if state.is_moe and getattr(model.config, "eom_inference_scale", None) is None:
        wb_moe.finalize_for_inference(model, state.config.expert_output_mask_p)
    model.eval()
    reason = (f"nothing to train: the run is already at step {state.step} of --steps {state.config.steps}; "
              "raise --steps to train further")
    return TrainResult(model=model, tokenizer=state.tokenizer, out_dir=out_dir, history=pd.DataFrame(state.history),
                       evals=pd.DataFrame(state.evals, columns=["step", "val_loss", "val_ppl"]),
                       samples=dict(state.samples), checkpoints=list(state.checkpoints), stop_reason=reason,
                       timing={"total": 0.0}, tokens_per_step=state.tokens_per_step)


def _lean(model, cfg, device):
    """The lean forward, not yet compiled: on CUDA the fused-kernel one (workbench.train.kernels), on CPU the fast
    path's (workbench.train.fast; none under cfg.compile); None for the model's own forward."""
    if device.type == "cuda":        # compiled later, by distributed.train_forward (after a DDP wrap)
        name = gpu_kernels(cfg)
        return None if name == "none" else gpu_forward(model, name, fuse_qkv=not cfg.compile)
    if not cfg.fast_path or device.type != "cpu":
        return None
    fast_path.tune_allocator()
    return None if cfg.compile else fast_path.lean_forward(model)


def gpu_kernels(cfg) -> str:
    """The CUDA forward a config asks for: cfg.kernels, or when None "torch" under torch.compile (which fuses the
    plain ops itself), else "liger" when Liger-Kernel imports, else "torch"."""
    if cfg.kernels is not None:
        if cfg.kernels == "liger" and not liger_available():
            raise ValueError("kernels='liger' needs Liger-Kernel and a CUDA device: pip install liger-kernel "
                             "(or pass kernels='torch')")
        return cfg.kernels
    return "torch" if cfg.compile or not liger_available() else "liger"


def _train_step(step_fn, model, optimizer, params, data, step, cfg, device, amp, is_moe, timing, teacher=None,
                ranks=distributed.Ranks()) -> dict:
    """One optimizer step; returns detached device tensors (no host sync). `step_fn`: the model (or its
    compiled form) or a lean forward from workbench.train.fast, DDP-wrapped in a distributed run, where each
    rank trains on its shard of every micro-batch."""
    totals = {}
    for micro in range(cfg.grad_accum):
        t0 = time.perf_counter()
        x, y = data.batch(step, micro, cfg.batch_size, cfg.grad_accum, cfg.seed, (ranks.rank, ranks.world))
        if device.type == "cuda":       # from pinned memory the copy is asynchronous: no wait for the GPU's queue
            x, y = x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        else:
            x, y = x.to(device), y.to(device)
        t1 = time.perf_counter()
        with distributed.accumulating(step_fn, defer=micro < cfg.grad_accum - 1):
            with amp:
                losses = (pair_loss(step_fn, model, x, y, is_moe) if isinstance(data, PairData) else
                          compute_loss(step_fn, model, x, y, is_moe, cfg, teacher))
            if device.type == "cpu" and ranks.world == 1 and not torch.isfinite(losses["loss"]):   # free on CPU
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
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None], foreach=True)
    if hasattr(grad_norm, "full_tensor"):      # FSDP: a replicated DTensor
        grad_norm = grad_norm.full_tensor()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    timing["compute"] += time.perf_counter() - t1
    totals["grad_norm"] = grad_norm.detach()
    totals["step"] = step
    totals["t"] = time.perf_counter()
    return totals


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@torch.no_grad()
def evaluate(model, data, cfg: TrainConfig, device, amp=None) -> float:
    """Mean token cross-entropy on the held-out validation windows (encoder-decoders: of the second half of
    each window given the first)."""
    if isinstance(data, PairData):
        return evaluate_pairs(model, data, cfg.batch_size, cfg.eval_batches, device, amp)
    was_training = model.training
    model.eval()
    lean = _lean(model, cfg, torch.device(device)) if torch.device(device).type == "cpu" else None
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


def _evaluate(state, data, device, amp, callbacks, timing, model=None):
    t0 = time.perf_counter()
    loss = evaluate(model or state.model, data, state.config, device, amp)
    row = {"step": state.step, "val_loss": loss, "val_ppl": math.exp(min(loss, 50))}
    state.evals.append(row)
    timing["eval"] += time.perf_counter() - t0
    for cb in callbacks:
        cb.on_eval(state, row)


def _sample(state, device, callbacks, timing, model=None):
    t0 = time.perf_counter()
    cfg, texts, model = state.config, [], model or state.model
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):      # sampling must not shift the training RNG
        torch.manual_seed(cfg.seed + state.step)
        if state.pair_data is not None:
            texts = sample_pairs(model, state.tokenizer, state.pair_data, cfg.sample_n)
        for prompt in cfg.sample_prompts if state.pair_data is None else ():
            texts += generate(model, state.tokenizer, prompt, n=cfg.sample_n,
                              temperature=cfg.sample_temperature, max_new_tokens=cfg.sample_max_new_tokens)
    if model is state.model:
        model.train()
    state.samples[state.step] = texts
    timing["sample"] += time.perf_counter() - t0
    for cb in callbacks:
        cb.on_sample(state, state.step, texts)


def _finish(state, optimizer, data, device, out_dir, callbacks, timing, t_start, handles, amp, good: bool):
    cfg, model = state.config, state.model
    for h in handles:
        h.remove()
    optim_state = None
    if fsdp.is_sharded(model):       # collective: rank 0 evaluates, samples, saves and returns a plain model
        whole = fsdp.full_model(model)
        optim_state = fsdp.full_optimizer_state(model, optimizer) if good and not cfg.checkpoint_light else None
        if state.rank != 0:
            return _result(state, out_dir, timing, None)
        state.model = model = whole
    if good and state.step > 0:
        try:
            if state.rank == 0 and (not state.evals or state.evals[-1]["step"] != state.step):
                _evaluate(state, data, device, amp, callbacks, timing)
            if state.rank == 0 and state.step not in state.samples:
                _sample(state, device, callbacks, timing)
        except KeyboardInterrupt:
            state.stop_reason = state.stop_reason or f"interrupted after step {state.step}"
        if is_translation_model(model):
            finalize_eom(model)
        elif state.is_moe:
            wb_moe.finalize_for_inference(model, cfg.expert_output_mask_p)
        if out_dir is not None:
            t0 = time.perf_counter()
            if not cfg.checkpoint_light:
                ckpt.save_step(state, optimizer, out_dir, callbacks, timing, final=True, optimizer_state=optim_state)
            save_final(model, state.tokenizer, out_dir,
                       {**ckpt.run_records(state), "train_config.json": json.dumps(cfg.to_dict(), indent=1)})
            timing["save"] += time.perf_counter() - t0
    model.eval()
    timing["total"] = time.perf_counter() - t_start
    for cb in callbacks:
        cb.on_end(state)
    return _result(state, out_dir, timing, model)


def _result(state, out_dir, timing, model) -> TrainResult:
    hist = pd.DataFrame(state.history)
    return TrainResult(model=model, tokenizer=state.tokenizer, out_dir=out_dir, history=hist,
                       evals=pd.DataFrame(state.evals, columns=["step", "val_loss", "val_ppl"]),
                       samples=dict(state.samples), checkpoints=list(state.checkpoints),
                       stopped_early=bool(state.stop_reason), stop_reason=state.stop_reason, timing=timing,
                       tokens_per_step=state.tokens_per_step)
