"""Compression figures: pure builders (measurement rows -> plotly Figure). Deterministic, never .show().

Here: `pareto_chart()` (cost vs quality, one marker per method and setting, the frontier of
`workbench.compress.measure.pareto_front` drawn through the rows on it).
"""
from __future__ import annotations

import plotly.graph_objects as go

from ..compress.measure import pareto_front
from .scoring import COLORS, _layout

LABELS = {"disk_mb": "size on disk (MB)", "weights_mb": "weights in memory (MB)", "ms_per_token_1t":
          "CPU latency, 1 thread (ms per token)", "ms_per_token_2t": "CPU latency, 2 threads (ms per token)",
          "val_loss": "validation loss (nats per token)", "val_ppl": "validation perplexity",
          "well_formed": "well-formed stories (share)", "nonzero": "non-zero parameters"}


def pareto_chart(df, x: str = "disk_mb", y: str = "val_loss", title: str | None = None) -> go.Figure:
    """Scatter of measurement rows (workbench.compress.measure): `x` a cost, `y` a quality; one colour per
    method, the setting in the label, the Pareto frontier as a dashed line."""
    fig = go.Figure()
    for k, (method, g) in enumerate(df.groupby("method", sort=False)):
        fig.add_scatter(x=g[x], y=g[y], mode="markers+text", name=method, text=g["setting"].astype(str),
                        textposition="top center", marker=dict(size=11, color=COLORS[k % len(COLORS)]),
                        customdata=g[["model", "setting"]].to_numpy(),
                        hovertemplate=f"{method} %{{customdata[1]}} (%{{customdata[0]}})<br>{x} %{{x:.3g}}"
                                      f"<br>{y} %{{y:.3g}}<extra></extra>")
    front = pareto_front(df, x, y)
    fig.add_scatter(x=front[x], y=front[y], mode="lines", name="Pareto frontier",
                    line=dict(dash="dash", color="gray"), hoverinfo="skip")
    fig.update_xaxes(title=LABELS.get(x, x))
    fig.update_yaxes(title=LABELS.get(y, y))
    return _layout(fig, title or f"{LABELS.get(y, y)} vs {LABELS.get(x, x)}", 460)
