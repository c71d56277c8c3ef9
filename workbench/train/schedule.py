"""Learning-rate schedule: linear warm-up, then cosine decay to a floor.

lr(s) = lr * (s + 1) / warmup                                      for s < warmup
lr(s) = lr * (r + (1 - r) * (1 + cos(pi * p)) / 2),  p = (s - warmup) / (steps - warmup)   afterwards
where r = min_lr_ratio. A pure function of the step, so resuming needs only the step number.
"""
from __future__ import annotations

import math


def lr_at(step: int, lr: float, warmup: int, steps: int, min_lr_ratio: float = 0.1) -> float:
    """Learning rate for 0-based `step` of a `steps`-step run."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    span = max(1, steps - warmup)
    progress = min(1.0, max(0.0, (step - warmup) / span))
    return lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
