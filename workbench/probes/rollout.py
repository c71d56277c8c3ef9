"""Attention rollout and attention flow (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

Here: `residual_attention()` (heads aggregated, residual added, rows renormalised), `attention_rollout()`,
`attention_flow()` (max-flow over the layered graph) and `RolloutRecord` / `rollout_record()`.
On causal models every matrix stays lower-triangular, because a token never receives from a later one;
bidirectional (encoder) attention gives full matrices (`causal=False` for flow). Inputs are
`(layer, head, query, key)` arrays, e.g. `AttentionRecord.weights`; for GQA models these are already per
query head.
Not here: raw attention (`probes.attention`), plots (`workbench.plots.attention`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEAD_AGGREGATIONS = {"mean": "mean over heads (standard)",
                     "max": "max over heads (non-standard variant)",
                     "min": "min over heads (non-standard variant)"}
FLOW_SCALE = 10**6   # max-flow runs on integer capacities: round(A * FLOW_SCALE); error <= n_layers * T / 1e6


def residual_attention(weights: np.ndarray, head_agg: str = "mean", residual: float = 0.5) -> np.ndarray:
    """Per layer: Ā = agg_h A^{l,h}; Ã = (1 - r) Ā + r I (r = 0.5 accounts for the residual); rows renormalised.

    (layer, head, q, k) -> (layer, q, k), each row summing to 1.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"expected weights (layer, head, query, key), got shape {w.shape}")
    if head_agg not in HEAD_AGGREGATIONS:
        raise ValueError(f"head_agg must be one of {list(HEAD_AGGREGATIONS)}, got {head_agg!r}")
    a = getattr(w, head_agg)(axis=1)                                  # (layer, q, k)
    a = (1 - residual) * a + residual * np.eye(w.shape[-1])
    return a / a.sum(-1, keepdims=True)


def attention_rollout(weights: np.ndarray, head_agg: str = "mean", residual: float = 0.5) -> np.ndarray:
    """Rollout after every layer: R^1 = Ã^1, R^l = Ã^l R^{l-1}; returns (layer, q, k).

    Row t of R^L is how much output position t draws on each input token; rows sum to 1.
    """
    a = residual_attention(weights, head_agg, residual)
    out = np.empty_like(a)
    r = np.eye(a.shape[-1])
    for layer in range(a.shape[0]):
        r = a[layer] @ r
        out[layer] = r
    return out


def _flow_graph(a: np.ndarray, n: int):
    """Sparse capacity matrix of the layered graph over positions 0..n-1: node (l, t) has index l*n + t.

    Edge (l-1, k) -> (l, q) carries capacity Ã^l[q, k] (k <= q for a causal model).
    """
    from scipy.sparse import coo_matrix
    n_l = a.shape[0]
    rows, cols, caps = [], [], []
    for layer in range(n_l):
        q, k = np.nonzero(a[layer, :n, :n] > 0)
        rows.append(layer * n + k)
        cols.append((layer + 1) * n + q)
        caps.append(np.rint(a[layer, q, k] * FLOW_SCALE).astype(np.int32))
    size = (n_l + 1) * n
    return coo_matrix((np.concatenate(caps), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(size, size)).tocsr()


def flow_to(a: np.ndarray, query: int, normalize: bool = True, causal: bool = True) -> np.ndarray:
    """Max-flow from every input token (layer 0) to output position `query` (after the last layer): (T,).

    Causal: only positions <= query can carry flow, so the graph stops there; otherwise all positions."""
    from scipy.sparse.csgraph import maximum_flow
    n_l, t = a.shape[0], a.shape[-1]
    if not 0 <= query < t:
        raise IndexError(f"query {query} is out of range: the sequence has positions 0..{t - 1}")
    n = query + 1 if causal else t
    graph = _flow_graph(a, n)
    sink = n_l * n + query
    out = np.zeros(t)
    for k in range(n):
        out[k] = maximum_flow(graph, k, sink).flow_value / FLOW_SCALE
    if normalize and out.sum() > 0:
        out /= out.sum()
    return out


def attention_flow(weights: np.ndarray, head_agg: str = "mean", residual: float = 0.5, query: int | None = None,
                   normalize: bool = True, causal: bool = True) -> np.ndarray:
    """Attention flow: F[q, k] = max-flow from input k to output q over the layers, edge capacities Ã.

    `query` given: only that row, shape (T,). Otherwise (T, T), lower-triangular when `causal`. `normalize`
    scales each row to sum 1 (as in the paper's code). Cost grows as T^2 max-flow problems: use `query` for
    long inputs.
    """
    a = residual_attention(weights, head_agg, residual)
    if query is not None:
        return flow_to(a, query, normalize, causal)
    return np.stack([flow_to(a, q, normalize, causal) for q in range(a.shape[-1])])


@dataclass(frozen=True, eq=False)
class RolloutRecord:
    """Rollout after each layer (and optionally flow) for one sequence."""
    tokens: tuple[str, ...]
    rollout: np.ndarray          # (layer, q, k): rollout up to and including each layer
    flow: np.ndarray | None      # (q, k) attention flow through all layers, or None when not computed
    head_agg: str = "mean"
    model_name: str = "model"
    causal: bool = True          # False for bidirectional (encoder) attention: nothing is masked in plots


def rollout_record(rec, head_agg: str = "mean", flow: bool | None = None, max_flow_tokens: int = 48) -> RolloutRecord:
    """Rollout of an AttentionRecord; flow too when `flow` is True (default: only up to `max_flow_tokens`)."""
    if flow is None:
        flow = rec.n_tokens <= max_flow_tokens
    causal = getattr(rec, "causal", True)
    return RolloutRecord(tokens=rec.tokens, rollout=attention_rollout(rec.weights, head_agg),
                         flow=attention_flow(rec.weights, head_agg, causal=causal) if flow else None,
                         head_agg=head_agg, model_name=rec.model_name, causal=causal)
