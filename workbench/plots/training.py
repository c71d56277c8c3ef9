"""Training figures from a run's history (one row per step) and evals (one row per validation pass).

Here: loss curves (train, validation), learning rate, tokens/s, and MoE routing health over training:
per-layer expert-load heat maps, router entropy, aux and z losses, dead-expert flags.
Every builder takes a TrainResult or the history/evals DataFrames and returns a plotly Figure.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..train.history import DEAD_SHARE, dead_experts, load_array  # noqa: F401  (computed from the history)



def _frames(result_or_history, evals=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    if hasattr(result_or_history, "history"):
        return result_or_history.history, result_or_history.evals
    return result_or_history, evals if evals is not None else pd.DataFrame(columns=["step", "val_loss"])


def smooth(values, window: int = 20) -> np.ndarray:
    """Trailing moving average (window clipped at the start), for noisy per-step losses."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0 or window <= 1:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def loss_figure(result_or_history, evals=None, title: str = "Loss", smooth_window: int = 20) -> go.Figure:
    """Language-model loss per step (raw, faint; smoothed) and validation loss at each eval."""
    h, e = _frames(result_or_history, evals)
    fig = go.Figure()
    if len(h):
        y = h["lm_loss"] if "lm_loss" in h else h["loss"]
        fig.add_scatter(x=h["step"], y=y, mode="lines", name="train (per step)", line=dict(width=1),
                        opacity=0.3, marker_color="#1f77b4")
        fig.add_scatter(x=h["step"], y=smooth(y, smooth_window), mode="lines", name="train (smoothed)",
                        marker_color="#1f77b4")
    if len(e):
        fig.add_scatter(x=e["step"], y=e["val_loss"], mode="lines+markers", name="validation", marker_color="#d62728")
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="cross-entropy (nats/token)", height=360,
                      margin=dict(l=50, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def compare_losses(runs: dict, metric: str = "val_loss") -> go.Figure:
    """Validation (or smoothed train) loss of several runs on one axis: {name: TrainResult}."""
    fig = go.Figure()
    for name, r in runs.items():
        if metric == "val_loss":
            fig.add_scatter(x=r.evals["step"], y=r.evals["val_loss"], mode="lines+markers", name=name)
        else:
            fig.add_scatter(x=r.history["step"], y=smooth(r.history[metric]), mode="lines", name=name)
    fig.update_layout(title=f"{metric} by run", xaxis_title="step", yaxis_title=metric, height=340)
    return fig


def overview_figure(result_or_history, evals=None) -> go.Figure:
    """Three panels: loss (train, validation), learning rate, tokens/s."""
    h, e = _frames(result_or_history, evals)
    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", "learning rate", "tokens / s"))
    fig.add_scatter(x=h["step"], y=smooth(h["lm_loss"] if "lm_loss" in h else h["loss"]), name="train", row=1, col=1)
    if len(e):
        fig.add_scatter(x=e["step"], y=e["val_loss"], mode="lines+markers", name="validation", row=1, col=1)
    fig.add_scatter(x=h["step"], y=h["lr"], name="lr", row=1, col=2, showlegend=False)
    fig.add_scatter(x=h["step"], y=h["tokens_per_s"], name="tokens/s", row=1, col=3, showlegend=False)
    fig.update_layout(height=320, margin=dict(l=40, r=20, t=50, b=40))
    return fig


# ----------------------------------------------------------------------------- MoE routing health

def expert_load_figure(result_or_history, max_columns: int = 200) -> go.Figure:
    """Per-layer heat map of expert load over training (x: step, y: expert); uniform load = 1/E."""
    h, _ = _frames(result_or_history)
    load = load_array(h)                                           # (steps, layers, experts)
    steps = h["step"].to_numpy()
    pick = np.unique(np.linspace(0, len(steps) - 1, min(max_columns, len(steps))).astype(int))
    n_layers, n_exp = load.shape[1], load.shape[2]
    fig = make_subplots(rows=n_layers, cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        subplot_titles=[f"layer {l}" for l in range(n_layers)])
    for l in range(n_layers):
        fig.add_heatmap(x=steps[pick], y=list(range(n_exp)), z=load[pick, l, :].T, coloraxis="coloraxis",
                        row=l + 1, col=1, hovertemplate="step %{x}<br>expert %{y}<br>load %{z:.3f}<extra></extra>")
    fig.update_layout(title=f"Expert load over training (uniform = {1 / n_exp:.3f})", height=120 + 110 * n_layers,
                      coloraxis=dict(colorscale="Viridis", cmin=0, cmax=min(1.0, 3.0 / n_exp)),
                      margin=dict(l=50, r=20, t=60, b=40))
    fig.update_xaxes(title_text="step", row=n_layers, col=1)
    return fig


def router_figure(result_or_history, smooth_window: int = 20) -> go.Figure:
    """Router health: per-layer routing entropy (max = ln E) and the aux and z losses, smoothed."""
    h, _ = _frames(result_or_history)
    ent = np.asarray(h["router_entropy"].tolist(), dtype=float)    # (steps, layers)
    n_exp = load_array(h).shape[2]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("router entropy (per layer)", "aux (load-balancing) loss",
                                                        "router z-loss"))
    for l in range(ent.shape[1]):
        fig.add_scatter(x=h["step"], y=smooth(ent[:, l], smooth_window), name=f"layer {l}", row=1, col=1)
    fig.add_hline(y=float(np.log(n_exp)), line_dash="dot", row=1, col=1, annotation_text="uniform")
    fig.add_scatter(x=h["step"], y=smooth(h["aux_loss"], smooth_window), name="aux", row=1, col=2, showlegend=False)
    fig.add_scatter(x=h["step"], y=smooth(h["z_loss"], smooth_window), name="z", row=1, col=3, showlegend=False)
    fig.update_layout(height=330, margin=dict(l=40, r=20, t=50, b=40))
    return fig


def dead_expert_figure(result_or_history, window: int = 50) -> go.Figure:
    """Recent mean load per (layer, expert); dead experts (load < 10% of uniform) marked with an x."""
    h, _ = _frames(result_or_history)
    d = dead_experts(h, window)
    n_layers, n_exp = int(d["layer"].max()) + 1, int(d["expert"].max()) + 1
    z = d["mean_load"].to_numpy().reshape(n_layers, n_exp)
    fig = go.Figure(go.Heatmap(z=z, x=list(range(n_exp)), y=list(range(n_layers)), colorscale="Viridis",
                               zmin=0, hovertemplate="layer %{y} expert %{x}<br>load %{z:.3f}<extra></extra>"))
    dead = d[d["dead"]]
    if len(dead):
        fig.add_scatter(x=dead["expert"], y=dead["layer"], mode="markers", marker=dict(symbol="x", size=14,
                        color="red"), name="dead")
    fig.update_layout(title=f"Expert load, last {window} steps ({len(dead)} dead)", xaxis_title="expert",
                      yaxis_title="layer", height=120 + 40 * n_layers)
    return fig
