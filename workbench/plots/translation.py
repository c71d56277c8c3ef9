"""Plot builders for the translation study: pure `data -> plotly Figure`.

Here: `direction_matrix()` (source x target grid of one metric), `separation_lines()` (language separation by layer,
encoder vs decoder), `ablation_bars()` (high- vs low-resource scores with CIs per run), `agreement_forest()`
(correlations with CIs per metric and level), `system_scatter()` (corpus metric vs mean judgement per system),
`cross_attention_heatmap()` (target token x source token).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

NAMES = {"en": "English", "vel": "Velo", "kor": "Korru", "tuu": "Tuuli"}
SIDE_COLORS = {"encoder": "#1f77b4", "decoder": "#d62728"}


def _layout(fig: go.Figure, title: str, height: int = 360, width: int | None = None) -> go.Figure:
    fig.update_layout(title=title, height=height, width=width, margin=dict(l=60, r=20, t=50, b=50),
                      template="plotly_white")
    return fig


def direction_matrix(directions: pd.DataFrame, system: str, metric: str = "BLEU") -> go.Figure:
    """Source (rows) x target (columns) heat map of `metric` for `system` (a per-direction table)."""
    d = directions[directions.system == system]
    if d.empty:
        raise ValueError(f"no rows for system {system!r}; systems: {sorted(directions.system.unique())}")
    langs = list(NAMES)
    z = np.full((4, 4), np.nan)
    for _, r in d.iterrows():
        z[langs.index(r.src_lang), langs.index(r.tgt_lang)] = r[metric]
    fmt = ".3f" if metric == "judge" else ".1f"
    fig = go.Figure(go.Heatmap(z=z, x=[NAMES[x] for x in langs], y=[NAMES[x] for x in langs], colorscale="Viridis",
                               text=[[("" if np.isnan(v) else format(v, fmt)) for v in row] for row in z],
                               texttemplate="%{text}", hovertemplate="%{y} → %{x}: %{z:" + fmt + "}<extra></extra>",
                               colorbar=dict(title=metric)))
    fig.update_yaxes(autorange="reversed", title="source")
    fig.update_xaxes(title="target")
    return _layout(fig, f"{system}: {metric} per direction", height=360, width=520)


def separation_lines(separation: pd.DataFrame) -> go.Figure:
    """Language separation (1 - mean off-diagonal cosine similarity of language x expert distributions) by MoE
    layer depth, one line per system, encoder points and decoder points marked apart."""
    fig = go.Figure()
    for system, d in separation.groupby("system", sort=False):
        d = d.sort_values("depth")
        fig.add_trace(go.Scatter(x=[f"{s[:3]} {layer}" for s, layer in zip(d.side, d.layer)], y=d.separation,
                                 mode="lines+markers", name=system,
                                 marker=dict(color=[SIDE_COLORS[s] for s in d.side], size=9),
                                 hovertemplate="%{x}: %{y:.3f}<extra>" + system + "</extra>"))
    fig.update_yaxes(title="language separation", rangemode="tozero")
    fig.update_xaxes(title="MoE layer (encoder grouped by source language, decoder by target language)")
    return _layout(fig, "Do languages separate toward the late decoder layers?")


def ablation_bars(groups: pd.DataFrame, metric: str = "BLEU") -> go.Figure:
    """One bar per run and resource group with its 95 % interval (a group table of evaluate.group_scores)."""
    d = groups[groups.metric == metric]
    if d.empty:
        raise ValueError(f"no {metric!r} rows; metrics: {sorted(groups.metric.unique())}")
    fig = go.Figure()
    for grp, g in d.groupby("group", sort=False):
        fig.add_trace(go.Bar(x=g.system, y=g.score, name=grp,
                             error_y=dict(type="data", symmetric=False, array=g.hi - g.score,
                                          arrayminus=g.score - g.lo),
                             hovertemplate="%{x}: %{y:.2f}<extra>" + grp + "</extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title=metric)
    return _layout(fig, f"{metric} by run: high- vs low-resource directions (95 % CI)")


def agreement_forest(table: pd.DataFrame) -> go.Figure:
    """Correlation with the exact judgement per metric (rows) and level x method (colours), with CIs."""
    fig = go.Figure()
    for (level, method), d in table.groupby(["level", "method"], sort=False):
        fig.add_trace(go.Scatter(x=d.value, y=d.metric, mode="markers", name=f"{level} {method}",
                                 error_x=dict(type="data", symmetric=False, array=d.hi - d.value,
                                              arrayminus=d.value - d.lo),
                                 hovertemplate="%{y}: %{x:.3f}<extra>" + f"{level} {method}" + "</extra>"))
    fig.update_xaxes(title="correlation with the exact judgement")
    return _layout(fig, "How well do BLEU, spBLEU and chrF++ agree with the exact judgement?", height=320)


def system_scatter(scores: pd.DataFrame, metric: str = "BLEU") -> go.Figure:
    """Corpus `metric` (x) vs mean judgement (y), one point per system (columns system, metric, judge)."""
    fig = go.Figure(go.Scatter(x=scores[metric], y=scores["judge"], mode="markers+text", text=scores["system"],
                               textposition="top center", textfont=dict(size=9),
                               hovertemplate="%{text}: " + metric + " %{x:.1f}, judge %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title=f"corpus {metric}")
    fig.update_yaxes(title="mean exact judgement")
    return _layout(fig, f"Systems: {metric} against the exact judgement", height=420)


def cross_attention_heatmap(ca, layer: int | None = None) -> go.Figure:
    """Target token (rows) x source token (columns) cross-attention of a `translation.attention.CrossAttention`:
    one decoder layer's mean over heads, or the mean over layers and heads when `layer` is None."""
    z = ca.weights.mean(axis=(0, 1)) if layer is None else ca.mean_heads(layer)
    src = [t.replace("Ġ", "·") for t in ca.source_tokens]
    tgt = [t.replace("Ġ", "·") for t in ca.target_tokens]
    fig = go.Figure(go.Heatmap(z=z, x=src, y=tgt, colorscale="Blues", zmin=0,
                               hovertemplate="%{y} reads %{x}: %{z:.2f}<extra></extra>",
                               colorbar=dict(title="weight")))
    fig.update_yaxes(autorange="reversed", title="target (decoder input)")
    fig.update_xaxes(title="source", tickangle=-45)
    which = "all layers" if layer is None else f"decoder layer {layer}"
    return _layout(fig, f"Cross-attention, mean over heads, {which}", height=220 + 18 * len(tgt),
                   width=min(900, 260 + 40 * len(src)))
