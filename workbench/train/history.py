"""Routing health computed from a training history (one row per step); plots and widgets only draw it."""
from __future__ import annotations

import numpy as np
import pandas as pd

DEAD_SHARE = 0.1   # an expert is "dead" when its load stays below DEAD_SHARE x the uniform share 1/E


def load_array(history: pd.DataFrame) -> np.ndarray:
    """Expert load as an array (steps, layers, experts): share of top-k assignments per expert."""
    if "expert_load" not in history:
        raise ValueError("this history has no expert_load column: routing health needs an MoE run")
    return np.asarray(history["expert_load"].tolist(), dtype=float)


def dead_experts(history: pd.DataFrame, window: int = 50, share: float = DEAD_SHARE) -> pd.DataFrame:
    """(layer, expert, mean_load, dead) over the last `window` steps; dead = load < share / n_experts."""
    load = load_array(history)[-window:].mean(axis=0)             # (layers, experts)
    n_exp = load.shape[1]
    rows = [{"layer": l, "expert": x, "mean_load": float(load[l, x]), "dead": bool(load[l, x] < share / n_exp)}
            for l in range(load.shape[0]) for x in range(n_exp)]
    return pd.DataFrame(rows)
