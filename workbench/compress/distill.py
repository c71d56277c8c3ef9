"""Knowledge distillation: train a small student on a teacher's softened next-token distributions.

Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network": the student minimises

    loss = (1 - alpha) * CE(student, data) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))

over every token position (`workbench.train.losses.distillation_loss`). The trainer does the work
(`train(..., teacher=...)`, `workbench train --teacher`): the student gets the same live progress, checkpoints,
validation loss (plain cross-entropy, so it compares with a student trained alone) and history, plus a
`kd_loss` column. Teacher and student must share a tokenizer; MoE teachers and students work as any causal LM
(the student's router losses are added as in plain training). Encoder-decoders are refused.

`distill()` trains one student; `compare_with_baseline()` puts it beside a student of the same preset trained
alone on the same data, seed and token budget, which is the comparison that says what the teacher added.

Hidden-state distillation (`distill_hidden()`): the student also matches the teacher's hidden states,

    loss = (1 - alpha) * CE + alpha * T^2 * KL + hidden_weight * mean over pairs (s, t) of D(h_s W, h_t)

where (s, t) maps student layers to teacher layers (uniformly by default: student layer i of M to teacher layer
i * N / M, the mapping of TinyBERT, Jiao et al. 2020), W is a learned linear projection from the student's
width to the teacher's (TinyBERT's W_h, one for all pairs; none when the widths agree), and D is the mean
squared error (TinyBERT) or 1 - cosine similarity per token (DistilBERT's cosine loss, Sanh et al. 2019).
It runs its own short loop (the trainer knows only the logit term): constant learning rate, AdamW, the
trainer's data windows (`workbench.train.data.prepare`), and for a MoE student the router's load-balancing
and z-losses as in training.
Here: `DistillRecord`, `distill()`, `compare_with_baseline()`, `layer_map()`, `hidden_state_loss()`,
`distillation_terms()`, `distill_hidden()`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DistillRecord:
    """What one distillation run did. Losses in nats per token; `val_loss` is the student's plain
    cross-entropy on the run's held-out windows; `kd_loss` the last logged T^2 KL term; `hidden_weight` and
    `hidden_loss` (the hidden-state term at the end, `distill_hidden` only; NaN otherwise)."""
    teacher: str
    student: str
    alpha: float
    temperature: float
    steps: int
    tokens: int
    val_loss: float
    train_lm_loss: float
    kd_loss: float
    seconds: float
    hidden_weight: float = 0.0
    hidden_loss: float = float("nan")

    def as_dict(self) -> dict:
        return asdict(self)


def distill(teacher: str | Path, student: str, corpus, tokenizer=None, alpha: float = 0.5,
            temperature: float = 2.0, **train_kw):
    """Train `student` (a preset name, ModelConfig or model) from `teacher` (a default model name or a folder).

    `tokenizer` defaults to the teacher's (it must be the same vocabulary). `train_kw` go to `train()`
    (steps, batch_size, seq_len, lr, out_dir, seed, device, callbacks, ...). Returns (TrainResult, DistillRecord).
    Raises ValueError when the teacher's vocabulary differs from the tokenizer's or either side is an
    encoder-decoder, FileNotFoundError when the teacher is missing.
    """
    from ..models import load_model, resolve
    from ..train import train
    where = resolve(str(teacher))
    if tokenizer is None:
        tokenizer = load_model(where)[1]
    result = train(student, corpus, tokenizer=tokenizer, teacher=where, distill_alpha=alpha,
                   distill_temperature=temperature, **train_kw)
    h = result.history
    tail = h.tail(max(1, len(h) // 10))
    rec = DistillRecord(teacher=str(teacher), student=student if isinstance(student, str) else type(student).__name__,
                        alpha=float(alpha), temperature=float(temperature), steps=int(h["step"].iloc[-1]),
                        tokens=int(h["step"].iloc[-1]) * result.tokens_per_step,
                        val_loss=result.final_val_loss, train_lm_loss=float(tail["lm_loss"].mean()),
                        kd_loss=float(tail["kd_loss"].mean()), seconds=float(result.timing.get("total", np.nan)))
    return result, rec


def compare_with_baseline(distilled: dict, baseline: dict) -> pd.DataFrame:
    """One row per measure: baseline, distilled, difference (distilled - baseline) and which is better.

    `distilled`, `baseline`: {measure: value} for the two students (e.g. val_loss, well_formed,
    acc:<task>); lower is better for names containing "loss" or "ms_per_token", higher otherwise.
    Raises ValueError when they share no measure."""
    keys = [k for k in distilled if k in baseline]
    if not keys:
        raise ValueError("compare_with_baseline: the two records share no measure")
    rows = []
    for k in keys:
        lower = "loss" in k or "ms_per_token" in k
        d = float(distilled[k]) - float(baseline[k])
        rows.append({"measure": k, "baseline": float(baseline[k]), "distilled": float(distilled[k]), "difference": d,
                     "better": "tie" if d == 0 else ("distilled" if (d < 0) == lower else "baseline")})
    return pd.DataFrame(rows)


# ---- hidden-state distillation ----------------------------------------------------------------------------------

def layer_map(n_student: int, n_teacher: int) -> list[tuple[int, int]]:
    """Uniform pairs (student layer, teacher layer), counted as in `output_hidden_states` (0 = the embeddings,
    i = the output of block i; transformers returns the last one after the final norm): student block i of M
    matches teacher block round(i * N / M) (TinyBERT's g(m)).
    Example: layer_map(2, 6) -> [(1, 3), (2, 6)]."""
    return [(i, round(i * n_teacher / n_student)) for i in range(1, n_student + 1)]


def hidden_state_loss(student_hidden, teacher_hidden, pairs, projection: nn.Module | None = None,
                      kind: str = "mse") -> torch.Tensor:
    """Mean over `pairs` (s, t) of D(projection(student_hidden[s]), teacher_hidden[t]); hidden states (B, T, d).

    kind "mse": the mean squared error over every element (TinyBERT); "cosine": the mean over tokens of
    1 - cos(student, teacher) (DistilBERT). `projection` maps the student's width to the teacher's (None:
    the same width). Raises ValueError for an unknown kind, no pairs, a layer out of range or widths that differ
    after the projection."""
    if kind not in ("mse", "cosine"):
        raise ValueError(f"hidden-state loss kind {kind!r}: use 'mse' or 'cosine'")
    if not pairs:
        raise ValueError("hidden_state_loss: no (student layer, teacher layer) pairs")
    terms = []
    for s, t in pairs:
        if not (0 <= s < len(student_hidden) and 0 <= t < len(teacher_hidden)):
            raise ValueError(f"layer pair ({s}, {t}) out of range: the student has hidden states 0..."
                             f"{len(student_hidden) - 1}, the teacher 0...{len(teacher_hidden) - 1}")
        h_s = student_hidden[s].float()
        h_s = projection(h_s) if projection is not None else h_s
        h_t = teacher_hidden[t].float()
        if h_s.shape != h_t.shape:
            raise ValueError(f"student states {tuple(h_s.shape)} (after the projection) and teacher states "
                             f"{tuple(h_t.shape)} differ: give a projection to the teacher's width")
        terms.append(F.mse_loss(h_s, h_t) if kind == "mse" else (1 - F.cosine_similarity(h_s, h_t, dim=-1)).mean())
    return torch.stack(terms).mean()


def distillation_terms(student_out, teacher_out, targets, alpha: float, temperature: float, hidden_weight: float,
                       pairs, projection: nn.Module | None = None, kind: str = "mse") -> dict:
    """{"loss", "lm_loss", "kd_loss", "hidden_loss"} of one batch: loss = (1 - alpha) * CE(student, targets)
    + alpha * T^2 KL(teacher_T || student_T) + hidden_weight * hidden_state_loss. The outputs carry `.logits`
    and `.hidden_states` (models called with output_hidden_states=True)."""
    from ..train.losses import distillation_loss
    logits = student_out.logits
    lm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
    kd = distillation_loss(logits, teacher_out.logits, temperature)
    hidden = hidden_state_loss(student_out.hidden_states, teacher_out.hidden_states, pairs, projection, kind)
    return {"loss": (1 - alpha) * lm + alpha * kd + hidden_weight * hidden, "lm_loss": lm, "kd_loss": kd,
            "hidden_loss": hidden}


def distill_hidden(teacher, student, corpus, tokenizer=None, alpha: float = 0.5, temperature: float = 2.0,
                   hidden_weight: float = 1.0, hidden_layers=None, hidden_loss: str = "mse", steps: int = 100,
                   batch_size: int = 8, seq_len: int = 64, lr: float = 3e-3, val_fraction: float = 0.1,
                   seed: int = 0, **student_overrides):
    """Train `student` from `teacher` with logit and hidden-state distillation (module docstring).

    teacher: a model or a default name / folder; student: a model (trained in place) or a preset name, built
    with `student_overrides` (e.g. hidden_size=64) and the teacher's tokenizer. `hidden_layers`: the
    (student, teacher) pairs, default `layer_map` of the two depths. Returns (student, projection or None,
    history DataFrame with step, loss, lm_loss, kd_loss, hidden_loss, DistillRecord). Raises ValueError for an
    encoder-decoder on either side, vocabularies that differ (naming both models), alpha outside [0, 1] or a
    negative hidden_weight."""
    from .. import moe as wb_moe
    from ..train.data import as_texts, prepare
    if not 0 <= alpha <= 1 or hidden_weight < 0:
        raise ValueError(f"alpha must be in [0, 1] and hidden_weight >= 0, got {alpha} and {hidden_weight}")
    from ..models import build_model, load_model
    if isinstance(teacher, nn.Module):
        if tokenizer is None:
            raise ValueError("distill_hidden: give tokenizer= when the teacher is a model object")
        teacher_m, t_tok, t_name = teacher, None, type(teacher).__name__
    else:
        (teacher_m, t_tok), t_name = load_model(teacher), str(teacher)
    tok = tokenizer or t_tok
    torch.manual_seed(seed)
    if isinstance(student, nn.Module):
        student_m, s_name = student, type(student).__name__
    else:
        student_m, s_name = build_model(student, tokenizer=tok, seed=seed, **student_overrides), str(student)
    for m, name in ((teacher_m, t_name), (student_m, s_name)):
        if getattr(m.config, "is_encoder_decoder", False):
            raise ValueError(f"{name} is an encoder-decoder: hidden-state distillation here is for causal LMs")
    if teacher_m.config.vocab_size != student_m.config.vocab_size or (
            t_tok is not None and t_tok.get_vocab() != tok.get_vocab()):
        raise ValueError(f"teacher {t_name} and student {s_name} use different vocabularies "
                         f"({teacher_m.config.vocab_size} and {student_m.config.vocab_size} tokens): distillation "
                         "needs one tokenizer")
    pairs = list(hidden_layers or layer_map(student_m.config.num_hidden_layers, teacher_m.config.num_hidden_layers))
    d_s, d_t = student_m.config.hidden_size, teacher_m.config.hidden_size
    projection = nn.Linear(d_s, d_t, bias=False) if d_s != d_t else None
    teacher_m = teacher_m.float().eval().requires_grad_(False)
    student_m = student_m.float().train()
    params = list(student_m.parameters()) + (list(projection.parameters()) if projection is not None else [])
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    data = prepare(as_texts(corpus), tok, seq_len, batch_size, val_fraction, seed)
    is_moe = hasattr(student_m.config, "num_local_experts")
    history, t0 = [], time.perf_counter()
    for step in range(1, steps + 1):
        x, y = data.batch(step - 1, 0, batch_size, 1, seed)
        out = student_m(input_ids=x, output_hidden_states=True, **({"output_router_logits": True} if is_moe else {}))
        with torch.no_grad():
            t_out = teacher_m(input_ids=x, output_hidden_states=True)
        terms = distillation_terms(out, t_out, y, alpha, temperature, hidden_weight, pairs, projection, hidden_loss)
        loss = terms["loss"]
        if is_moe:                                  # the router's losses, as the trainer adds them
            c = student_m.config
            r = wb_moe.router_losses(out.router_logits, c)
            loss = loss + float(getattr(c, "router_aux_loss_coef", 0.0)) * r["aux"] \
                + float(getattr(c, "router_z_loss_coef", 0.0)) * r["z"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        history.append({"step": step, "loss": float(loss.item())} | {k: float(v.item()) for k, v in terms.items()
                                                                       if k != "loss"})
    seconds = time.perf_counter() - t0
    student_m.eval()
    with torch.no_grad():
        val = [F.cross_entropy(student_m(input_ids=vx).logits.flatten(0, 1).float(), vy.flatten()).item()
               for vx, vy in data.val_batches(batch_size, 8)]
    h = pd.DataFrame(history)
    tail = h.tail(max(1, len(h) // 10))
    rec = DistillRecord(teacher=t_name, student=s_name, alpha=float(alpha), temperature=float(temperature),
                        steps=steps, tokens=steps * batch_size * seq_len, val_loss=float(np.mean(val)),
                        train_lm_loss=float(tail["lm_loss"].mean()), kd_loss=float(tail["kd_loss"].mean()),
                        seconds=seconds, hidden_weight=float(hidden_weight),
                        hidden_loss=float(tail["hidden_loss"].mean()))
    return student_m, projection, h, rec
