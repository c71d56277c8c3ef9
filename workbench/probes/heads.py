"""Per-head summaries of attention maps, so a user can rank heads by what they do.

Here: the score functions on a `(layer, head, query, key)` array (`entropy`, `mean_distance`, `sink_score`,
`prev_token_score`, `induction_score`), `HeadSummary` (all of them per head, with `table()` and `top()`),
`head_summary()` for an AttentionRecord and `induction_record()` (a repeated random-token sequence).
Every score is a mean over query positions q >= 1 (query 0 can only attend to itself, so it says nothing).
Not here: the attention forward pass (`probes.attention`), plots (`workbench.plots.attention`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .attention import AttentionRecord, attention_record_from_ids

SCORES = ("entropy", "mean_distance", "sink", "prev_token", "induction")


def _check(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2] or w.shape[-1] < 2:
        raise ValueError(f"expected weights (layer, head, query, key) with >= 2 tokens, got {w.shape}")
    return w


def entropy(w: np.ndarray, normalize: bool = False) -> np.ndarray:
    """Mean over queries of H_q = -sum_k p_qk log p_qk (nats), per (layer, head).

    normalize=True divides by log(q + 1), the entropy of uniform attention over the q + 1 visible keys
    (1 = uniform, 0 = one key).
    """
    w = _check(w)
    h = -(w * np.log(np.clip(w, 1e-12, None))).sum(-1)[..., 1:]      # (layer, head, query>=1)
    if normalize:
        h = h / np.log(np.arange(2, w.shape[-1] + 1))
    return h.mean(-1)


def mean_distance(w: np.ndarray) -> np.ndarray:
    """Mean over queries of sum_k p_qk (q - k): how many tokens back a head looks on average."""
    w = _check(w)
    t = w.shape[-1]
    dist = np.arange(t)[:, None] - np.arange(t)[None, :]              # (query, key) = q - k
    return (w * np.abs(dist)).sum(-1)[..., 1:].mean(-1)


def sink_score(w: np.ndarray) -> np.ndarray:
    """Mean over queries q >= 1 of p_q0: attention parked on the first token (the "attention sink")."""
    return _check(w)[..., 1:, 0].mean(-1)


def prev_token_score(w: np.ndarray) -> np.ndarray:
    """Mean over queries q >= 1 of p_{q, q-1}: 1 for a perfect previous-token head."""
    w = _check(w)
    q = np.arange(1, w.shape[-1])
    return w[..., q, q - 1].mean(-1)


def induction_score(w: np.ndarray, period: int, offset: int = 0) -> np.ndarray:
    """Induction score on a sequence whose tokens repeat with `period` after `offset` prefix tokens (e.g. BOS).

    For a query q in the repeat (q >= offset + period), the induction target is the token *after* the earlier
    copy of the current token, at key q - period + 1; score = mean over those queries of p_{q, q-period+1}.
    """
    w = _check(w)
    q = np.arange(offset + period, w.shape[-1])
    if period < 1 or q.size == 0:
        raise ValueError(f"no repeated tokens: period={period}, offset={offset} with {w.shape[-1]} tokens")
    return w[..., q, q - period + 1].mean(-1)


@dataclass(frozen=True, eq=False)
class HeadSummary:
    """One number per (layer, head) for each score in SCORES; `induction` is NaN when not measured."""
    entropy: np.ndarray         # (layer, head) mean attention entropy, nats
    mean_distance: np.ndarray   # (layer, head) mean |q - k| in tokens
    sink: np.ndarray            # (layer, head) mean attention on token 0
    prev_token: np.ndarray      # (layer, head) mean attention on token q - 1
    induction: np.ndarray       # (layer, head) mean attention on the induction target (repeated sequence)
    model_name: str = "model"

    @property
    def shape(self) -> tuple[int, int]:
        return self.entropy.shape

    def score(self, name: str) -> np.ndarray:
        if name not in SCORES:
            raise ValueError(f"unknown head score {name!r}; choose one of {', '.join(SCORES)}")
        return getattr(self, name)

    def top(self, name: str, k: int = 3) -> list[tuple[int, int, float]]:
        """The k heads with the highest `name` score as (layer, head, score), best first."""
        s = self.score(name)
        order = np.argsort(-np.nan_to_num(s, nan=-np.inf), axis=None)[:k]
        return [(int(i // s.shape[1]), int(i % s.shape[1]), float(s.flat[i])) for i in order]

    def table(self):
        """A pandas DataFrame with one row per head (columns: layer, head, and each score)."""
        import pandas as pd
        n_l, n_h = self.shape
        rows = {"layer": np.repeat(np.arange(n_l), n_h), "head": np.tile(np.arange(n_h), n_l)}
        rows |= {name: self.score(name).ravel() for name in SCORES}
        return pd.DataFrame(rows)


def summarize(weights: np.ndarray, induction_weights: np.ndarray | None = None, period: int = 0,
              offset: int = 0, model_name: str = "model") -> HeadSummary:
    """HeadSummary from raw arrays: `weights` for the general scores, `induction_weights` (a repeated sequence)."""
    ind = (induction_score(induction_weights, period, offset) if induction_weights is not None
           else np.full(np.shape(weights)[:2], np.nan))
    return HeadSummary(entropy=entropy(weights), mean_distance=mean_distance(weights), sink=sink_score(weights),
                       prev_token=prev_token_score(weights), induction=ind, model_name=model_name)


def induction_record(model, tok=None, period: int = 20, seed: int = 0, add_bos: bool = True) -> AttentionRecord:
    """Attention on [BOS] + r + r, with r = `period` random ordinary tokens (no specials), seeded.

    Heads that attend from the second copy of a token to the token after its first copy are induction heads.
    """
    vocab = int(model.config.vocab_size)
    special = set(getattr(tok, "all_special_ids", []) or []) if tok is not None else set()
    pool = np.array([i for i in range(vocab) if i not in special])
    if len(pool) < period:
        raise ValueError(f"vocabulary of {vocab} is too small for period={period}")
    window = int(getattr(model.config, "max_position_embeddings", 10**6))
    if 2 * period + 1 > window:
        raise ValueError(f"period={period} needs {2 * period + 1} tokens, above the {window}-token context window")
    r = np.random.default_rng(seed).choice(pool, size=period, replace=False)
    bos = getattr(tok, "bos_token_id", None) if tok is not None else None
    prefix = [bos] if add_bos and bos is not None else []
    ids = prefix + r.tolist() + r.tolist()
    return attention_record_from_ids(model, tok, ids, meta={"period": period, "offset": len(prefix), "seed": seed})


def head_summary(rec: AttentionRecord, induction: AttentionRecord | None = None) -> HeadSummary:
    """Summaries of every head of `rec`, plus induction scores when a repeated-sequence record is given."""
    if induction is not None:
        return summarize(rec.weights, induction.weights, induction.meta["period"], induction.meta["offset"],
                         model_name=rec.model_name)
    return summarize(rec.weights, model_name=rec.model_name)


def model_head_summary(model, tok, text: str, period: int = 20, seed: int = 0) -> HeadSummary:
    """head_summary() of `text` plus induction scores on a repeated random sequence, in one call."""
    from .attention import attention_record
    with torch.no_grad():
        return head_summary(attention_record(model, tok, text), induction_record(model, tok, period, seed))
