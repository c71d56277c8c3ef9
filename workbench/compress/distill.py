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
Here: `DistillRecord`, `distill()`, `compare_with_baseline()`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DistillRecord:
    """What one distillation run did. Losses in nats per token; `val_loss` is the student's plain
    cross-entropy on the run's held-out windows; `kd_loss` the last logged T^2 KL term."""
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
