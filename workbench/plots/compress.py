"""Compression figures: pure builders (measurement rows -> plotly Figure). Deterministic, never .show().

Here: `pareto_chart()` (cost vs quality, one marker per method and setting, the frontier of
`workbench.compress.measure.pareto_front` drawn through the rows on it, chosen variants ringed).
"""
from __future__ import annotations

import plotly.graph_objects as go

from ..compress.measure import pareto_front
from .scoring import COLORS, _layout

LABELS = {"disk_mb": "size on disk (MB)", "weights_mb": "weights in memory (MB)", "ms_per_token_1t":
          "CPU latency, 1 thread (ms per token)", "ms_per_token_2t": "CPU latency, 2 threads (ms per token)",
          "val_loss": "validation loss (nats per token)", "val_ppl": "validation perplexity",
          "well_formed": "well-formed stories (share)", "nonzero": "non-zero parameters",
          "peak_mb": "peak memory while generating (MB)", "trainable": "trained parameters",
          "adapter_kb": "what fine-tuning adds on disk (kB)"}


def pareto_chart(df, x: str = "disk_mb", y: str = "val_loss", title: str | None = None,
                 highlight=()) -> go.Figure:
    """Scatter of measurement rows (workbench.compress.measure): `x` a cost, `y` a quality; one colour per
    method, the setting in the label, the Pareto frontier as a dashed line. `highlight`: (method, setting)
    pairs ringed in black (a "selected" trace that is always present, empty when nothing matches, so a
    widget can swap figures trace by trace). Raises KeyError naming a missing column."""
    for col in (x, y):
        if col not in df:
            raise KeyError(f"pareto_chart: no column {col!r}; the rows have {', '.join(map(str, df.columns))}")
    df = df.dropna(subset=[x, y])                   # rows that lack a measure (LoRA has no val_loss) are not drawn
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
    sel = df[[(m, str(st)) in set(highlight) for m, st in zip(df["method"], df["setting"].astype(str))]]
    fig.add_scatter(x=sel[x], y=sel[y], mode="markers", name="selected", hoverinfo="skip", showlegend=False,
                    marker=dict(size=22, color="rgba(0,0,0,0)", line=dict(width=3, color="black")))
    fig.update_xaxes(title=LABELS.get(x, x))
    fig.update_yaxes(title=LABELS.get(y, y))
    return _layout(fig, title or f"{LABELS.get(y, y)} vs {LABELS.get(x, x)}", 460)
