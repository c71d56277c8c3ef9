"""Prompt-style figures: pure builders (summary tables -> plotly Figure). Deterministic, never .show().

Here: `style_lines()` (the seed study's per-entity line graph: score across prompt styles, one line per model,
bootstrap whiskers), `style_heatmap()` (model x style for one aspect value), `difference_chart()` (pre-trained
vs "-it": paired differences with intervals, one row per aspect value).
Inputs come from `workbench.evaluation.summary` (`aspect_scores`, `it_vs_base`).
"""
from __future__ import annotations

import plotly.graph_objects as go

from .scoring import COLORS, _layout

METRIC_NAMES = {"judge": "semantic judge (share right)", "exact_match": "exact match (share)",
                "rouge_l": "ROUGE-L F", "chrf": "chrF"}


def _check(df, cols) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"no column(s) {missing}; the table has {', '.join(map(str, df.columns))}")


def _base_colours(models) -> dict:
    """One colour per base model; a "-it" model takes its base's colour (drawn dotted)."""
    bases = list(dict.fromkeys(m[:-3] if m.endswith("-it") else m for m in models))
    return {m: COLORS[bases.index(m[:-3] if m.endswith("-it") else m) % len(COLORS)] for m in models}


def style_lines(scores, styles, models, metric: str = "judge", title: str | None = None,
                selected: str | None = None) -> go.Figure:
    """Score across `styles` (x, in this order), one line per model in `models` (always one trace each, empty
    when the model has no rows, so widgets can update traces in place), whiskers = the bootstrap interval.

    `scores`: rows of `aspect_scores(..., by=("model", "style"))` for one aspect value (columns model, style,
    mean, low, high). `selected`: a style whose points are ringed (a last "selected" trace, always present).
    Raises KeyError naming a missing column.
    """
    _check(scores, ("model", "style", "mean", "low", "high"))
    fig = go.Figure()
    colour = _base_colours(models)
    for model in models:
        g = scores[scores["model"] == model].set_index("style").reindex(list(styles))
        tuned = model.endswith("-it")
        fig.add_scatter(x=list(styles), y=g["mean"].tolist(), mode="lines+markers", name=model,
                        line=dict(color=colour[model], dash="dot" if tuned else "solid"),
                        marker=dict(symbol="diamond" if tuned else "circle"),
                        error_y=dict(type="data", symmetric=False, array=(g["high"] - g["mean"]).tolist(),
                                     arrayminus=(g["mean"] - g["low"]).tolist(), thickness=1),
                        hovertemplate=f"{model}<br>%{{x}}: %{{y:.3f}}<extra></extra>")
    sel = scores[(scores["style"] == selected) & scores["model"].isin(list(models))]
    fig.add_scatter(x=sel["style"].tolist(), y=sel["mean"].tolist(), mode="markers", name="selected",
                    showlegend=False, hoverinfo="skip",
                    marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(width=2, color="black")))
    fig.update_yaxes(title=METRIC_NAMES.get(metric, metric), range=[-0.03, 1.03])
    fig.update_xaxes(title="prompt style", tickangle=-30, categoryorder="array", categoryarray=list(styles))
    fig.update_layout(legend=dict(orientation="h", y=-0.45))
    return _layout(fig, title or "Score across prompt styles", 470)


def style_heatmap(scores, styles, models, metric: str = "judge", title: str | None = None) -> go.Figure:
    """Model (rows) x style (columns) heat map of `mean` for one aspect value, the value written in each cell."""
    _check(scores, ("model", "style", "mean"))
    wide = scores.pivot_table(index="model", columns="style", values="mean", aggfunc="mean")
    wide = wide.reindex(index=list(models), columns=list(styles))
    z = wide.to_numpy()
    fig = go.Figure(go.Heatmap(z=z, x=list(styles), y=list(models), zmin=0, zmax=1, colorscale="Viridis",
                               text=[[("" if v != v else f"{v:.2f}") for v in row] for row in z],
                               texttemplate="%{text}", colorbar=dict(title=metric, len=0.8),
                               hovertemplate="%{y} / %{x}: %{z:.3f}<extra></extra>"))
    fig.update_xaxes(tickangle=-30, title="prompt style")
    fig.update_yaxes(autorange="reversed", title="model")
    return _layout(fig, title or f"{METRIC_NAMES.get(metric, metric)}: model x style", 60 + 34 * len(models) + 120)


def difference_chart(diffs, aspect: str, metric: str = "judge", title: str | None = None) -> go.Figure:
    """Pre-trained vs "-it": one marker per (pair, aspect value) at the paired difference, whiskers = interval.

    `diffs`: rows of `summary.it_vs_base` (columns tuned, <aspect>, diff, low, high). A vertical line at 0.
    """
    _check(diffs, ("tuned", aspect, "diff", "low", "high"))
    fig = go.Figure()
    symbols = ("circle", "diamond", "square", "triangle-up")
    for k, (tuned, g) in enumerate(diffs.groupby("tuned", sort=False)):
        fig.add_scatter(x=g["diff"], y=g[aspect], mode="markers", name=f"{tuned} minus {tuned[:-3]}",
                        orientation="h", offsetgroup=str(k),           # pairs side by side, not on top
                        marker=dict(size=10, color=COLORS[k % len(COLORS)], symbol=symbols[k % len(symbols)]),
                        error_x=dict(type="data", symmetric=False, array=(g["high"] - g["diff"]).tolist(),
                                     arrayminus=(g["diff"] - g["low"]).tolist()),
                        hovertemplate="%{y}: %{x:+.3f}<extra>" + tuned + "</extra>")
    fig.add_vline(x=0, line=dict(color="gray", dash="dash"))
    fig.update_xaxes(title=f"difference in {METRIC_NAMES.get(metric, metric)} (-it minus base)")
    fig.update_layout(legend=dict(orientation="h", y=-0.25), scattermode="group", scattergap=0.4)
    n = diffs[aspect].nunique() if len(diffs) else 1
    return _layout(fig, title or "Instruction tuning: paired differences, 95 % intervals", 200 + 55 * n)
