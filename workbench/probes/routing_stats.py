"""Routing statistics of a RoutingRecord: expert load, dead experts, entropy, load-balancing losses in four
conventions, z-loss, group x expert distributions and group x group similarity (NLLB-style heat maps).
All numpy in, numpy/DataFrame out. Not here: OLMoE/Mixtral analyses (`routing_analyses`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..moe import CONVENTIONS, load_balance_loss, uniform_value, z_loss

__all__ = ["expert_load", "utilisation", "dead_experts", "router_entropy", "load_summary", "loss_table",
           "group_names", "group_expert", "group_similarity", "similarity_stack", "cluster_order",
           "separation_score"]


def expert_load(rec, top: int | str = "k") -> np.ndarray:
    """(L, E) share of routing assignments per expert: top="k" counts all k choices (rows sum to 1), top=1 the first.

    Ideal balanced load is 1/E.
    """
    kk = rec.top_k if top == "k" else int(top)
    if not 1 <= kk <= rec.top_k:
        raise ValueError(f"top must be 'k' or 1..{rec.top_k}, got {top!r}")
    chosen = rec.topk[:, :, :kk]                                                # (L, T, kk)
    counts = np.stack([np.bincount(c.ravel(), minlength=rec.n_experts) for c in chosen]).astype(float)
    return counts / max(chosen.shape[1] * kk, 1)


def utilisation(rec, top: int | str = "k") -> np.ndarray:
    """(L, E) load / ideal load = load * E; 1 everywhere is perfect balance, 0 a dead expert."""
    return expert_load(rec, top) * rec.n_experts


def dead_experts(rec, starved_below: float = 0.1) -> dict:
    """{"dead": [[experts never chosen] per layer], "starved": [[experts with utilisation < starved_below]]}."""
    u = utilisation(rec)
    return {"dead": [np.flatnonzero(row == 0).tolist() for row in u],
            "starved": [np.flatnonzero((row > 0) & (row < starved_below)).tolist() for row in u]}


def router_entropy(rec, normalised: bool = True) -> np.ndarray:
    """(L,) mean over tokens of H(p_t) = -sum_e p_te log p_te; divided by log E when normalised (1 = uniform).

    p_t is the router's distribution over experts (softmax); for a sigmoid router, its scores normalised to
    sum to 1 (`RoutingRecord.score_shares`), so H measures how evenly the token's score is spread.
    """
    p = rec.score_shares
    h = -(p * np.log(np.clip(p, 1e-12, None))).sum(-1).mean(-1)
    return h / np.log(rec.n_experts) if normalised and rec.n_experts > 1 else h


def load_summary(rec, starved_below: float = 0.1) -> pd.DataFrame:
    """One row per MoE layer: max/min utilisation, coefficient of variation of the load, dead/starved counts,
    normalised router entropy."""
    u = utilisation(rec)
    d = dead_experts(rec, starved_below)
    return pd.DataFrame({"layer": range(rec.n_layers), "max_util": u.max(1), "min_util": u.min(1),
                         "load_cv": u.std(1) / np.maximum(u.mean(1), 1e-12),
                         "n_dead": [len(x) for x in d["dead"]], "n_starved": [len(x) for x in d["starved"]],
                         "entropy": router_entropy(rec)})


def loss_table(rec) -> pd.DataFrame:
    """Load-balancing loss in every convention (per layer and pooled) plus z-loss, each with its uniform value.

    Columns: convention, layer (int or "pooled"), value, uniform (value under uniform routing), formula.
    These losses are defined on softmax router probabilities: ValueError for a record of any other router.
    """
    if rec.score_fn != "softmax":
        raise ValueError(f"loss_table: the load-balancing losses and z-loss are defined on softmax router "
                         f"probabilities, but this record's router scores experts with score_fn={rec.score_fn!r} "
                         "(a DeepSeek-V3-style sigmoid router balances load with a bias update, not an aux loss); "
                         "use load_summary / expert_load for its balance")
    logits = tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in rec.logits)
    rows = []
    for conv, (formula, _) in CONVENTIONS.items():
        per = load_balance_loss(logits, rec.top_k, conv, per_layer=True).numpy()
        u = uniform_value(conv, rec.top_k)
        rows += [(conv, i, float(v), u, formula) for i, v in enumerate(per)]
        rows.append((conv, "pooled", float(load_balance_loss(logits, rec.top_k, conv)), u, formula))
    z = z_loss(logits, per_layer=True).numpy()
    zf = "mean_t logsumexp(z_t)^2 (ST-MoE); uniform logits of 0 give (log E)^2"
    rows += [("z", i, float(v), float(np.log(rec.n_experts) ** 2), zf) for i, v in enumerate(z)]
    rows.append(("z", "pooled", float(z_loss(logits)), float(np.log(rec.n_experts) ** 2), zf))
    return pd.DataFrame(rows, columns=["convention", "layer", "value", "uniform", "formula"])


def group_names(rec, key: str, groups=None) -> list[str]:
    """The labels of `key` present in the record (sorted), or the requested `groups` (each must have tokens)."""
    if key not in rec.groups:
        raise ValueError(f"no token labelling {key!r} in this record; available: {sorted(rec.groups) or 'none'} "
                         "(pass groups=/token_groups= to routing_record or use corpus_routing)")
    labels = rec.groups[key]
    present = sorted({g for g in labels if g != ""})
    if groups is None:
        if not present:
            raise ValueError(f"labelling {key!r} has no labelled tokens")
        return present
    missing = [g for g in groups if g not in present]
    if missing:
        raise ValueError(f"group(s) {missing} of {key!r} have no tokens in this record; present: {present}")
    return list(groups)


def group_expert(rec, key: str, layer: int, hard: bool = False, groups=None) -> tuple[list[str], np.ndarray]:
    """(group names, (G, E) distribution) for one MoE layer; rows sum to 1.

    soft: mean router probabilities over the group's tokens, p_bar_g = (1/|g|) sum_{t in g} p_t (for a
    sigmoid router p_t are its scores normalised to sum to 1, `RoutingRecord.score_shares`).
    hard: normalised top-k counts, c_g,e = #{t in g: e in K_t} / (k |g|).
    """
    li = rec.layer_pos(layer)
    names = group_names(rec, key, groups)
    labels = rec.groups[key]
    rows = []
    shares = None if hard else rec.layer_shares(li)
    for g in names:
        m = labels == g
        if hard:
            rows.append(np.bincount(rec.topk[li, m].ravel(), minlength=rec.n_experts) / (rec.top_k * m.sum()))
        else:
            rows.append(shares[m].mean(0))
    return names, np.asarray(rows)


def group_similarity(dist: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """(G, G) similarity of group distributions (rows of `dist`): symmetric, unit diagonal.

    cosine: <a, b> / (|a| |b|).   js: 1 - JSD_2(a, b), Jensen-Shannon divergence in bits (in [0, 1]),
    JSD(a, b) = H((a+b)/2) - (H(a) + H(b))/2.
    """
    d = np.asarray(dist, float)
    if metric == "cosine":
        n = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        s = n @ n.T
    elif metric == "js":
        def h(x):
            return -(x * np.log2(np.clip(x, 1e-12, None))).sum(-1)
        m = (d[:, None, :] + d[None, :, :]) / 2
        s = 1.0 - np.clip(h(m) - (h(d)[:, None] + h(d)[None, :]) / 2, 0.0, 1.0)
    else:
        raise ValueError(f"unknown similarity {metric!r}; choose 'cosine' or 'js'")
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    return s


def similarity_stack(rec, key: str, metric: str = "cosine", hard: bool = False, groups=None):
    """(group names, (L, G, E) distributions, (L, G, G) similarities) for every layer: what the heat-map
    widget precomputes once so that its layer slider only re-plots."""
    names = group_names(rec, key, groups)
    dists = np.stack([group_expert(rec, key, layer, hard, names)[1] for layer in range(rec.n_layers)])
    sims = np.stack([group_similarity(d, metric) for d in dists])
    return names, dists, sims


def cluster_order(sim: np.ndarray) -> np.ndarray:
    """Leaf order of average-linkage hierarchical clustering on distance 1 - similarity (for heat-map rows)."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform
    n = len(sim)
    if n < 3:
        return np.arange(n)
    dist = np.clip(1.0 - (sim + sim.T) / 2, 0.0, None)
    np.fill_diagonal(dist, 0.0)
    return leaves_list(linkage(squareform(dist, checks=False), method="average"))


def separation_score(sim: np.ndarray) -> float:
    """1 - mean off-diagonal similarity: 0 when all groups route alike, larger when they separate."""
    n = len(sim)
    if n < 2:
        return 0.0
    return float(1.0 - (sim.sum() - np.trace(sim)) / (n * (n - 1)))
