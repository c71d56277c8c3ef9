"""Compression figures: pure builders (measurement rows -> plotly Figure). Deterministic, never .show().

Here: `pareto_front()` (the rows no other row beats on both axes) and `pareto_chart()` (cost vs quality, one
marker per method and setting, the frontier drawn through the rows on it).
"""
from __future__ import annotations

import plotly.graph_objects as go

from .scoring import COLORS, _layout

LOWER_IS_BETTER = {"disk_mb", "weights_mb", "params", "nonzero", "active", "ms_per_token_1t", "ms_per_token_2t",
                   "val_loss", "val_ppl"}
LABELS = {"disk_mb": "size on disk (MB)", "weights_mb": "weights in memory (MB)", "ms_per_token_1t":
          "CPU latency, 1 thread (ms per token)", "ms_per_token_2t": "CPU latency, 2 threads (ms per token)",
          "val_loss": "validation loss (nats per token)", "val_ppl": "validation perplexity",
          "well_formed": "well-formed stories (share)", "nonzero": "non-zero parameters"}


def pareto_front(df, x: str, y: str):
    """Rows of `df` not dominated on (x, y): no other row is at least as good on both and better on one.
    "Good" is lower for costs and losses (LOWER_IS_BETTER), higher otherwise. Sorted by x."""
    sx = 1 if x in LOWER_IS_BETTER else -1
    sy = 1 if y in LOWER_IS_BETTER else -1
    a = df[[x, y]].to_numpy(dtype=float) * [sx, sy]
    keep = [i for i in range(len(a))
            if not any((a[j] <= a[i]).all() and (a[j] < a[i]).any() for j in range(len(a)) if j != i)]
    return df.iloc[keep].sort_values(x)


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
