"""Scoring-function figures: pure builders (records / DataFrames -> plotly Figure). Deterministic, never .show().

Here: `accuracy_bars` (accuracy per scoring function with bootstrap CIs and the majority baseline),
`flip_heatmap` (K x K: examples whose prediction differs between two functions), `surprisal_strip`
(per-token surprisal of each label, delimiter / leading-space / BOS tokens shown), `lambda_curve`
(accuracy vs premise strength), `reliability_diagram`, `confusion_heatmap`, `study_heatmap`.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
          "#9c755f", "#bab0ac"]


def _layout(fig: go.Figure, title: str, height: int | None = None) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.01), template="plotly_white", margin=dict(l=60, r=20, t=50, b=40),
                      **({"height": height} if height else {}))
    return fig


def show_token(t: str) -> str:
    """Byte-level BPE token -> readable text: Ġ (leading space) -> ␣, Ċ (newline) -> ↵; special tokens kept."""
    return t.replace("Ġ", "␣").replace("Ċ", "↵").replace("ĉ", "⇥").replace("▁", "␣")


def accuracy_bars(summary, highlight: str | None = None, title: str = "Accuracy per scoring function") -> go.Figure:
    """Bars of `acc` per scoring function (summary from `scoring.summarize`), 95% CI whiskers, majority line."""
    colors = [COLORS[2] if s == highlight else COLORS[0] for s in summary["scoring"]]
    fig = go.Figure(go.Bar(
        x=list(summary["scoring"]), y=list(summary["acc"]), marker_color=colors,
        error_y=dict(type="data", symmetric=False, array=list(summary["acc_hi"] - summary["acc"]),
                     arrayminus=list(summary["acc"] - summary["acc_lo"])),
        customdata=np.stack([summary["macro_f1"]], axis=1),
        hovertemplate="%{x}<br>acc %{y:.3f}<br>macro-F1 %{customdata[0]:.3f}<extra></extra>"))
    maj = summary.attrs.get("majority_acc")
    if maj is not None:
        fig.add_hline(y=maj, line_dash="dash", line_color="gray", annotation_text=f"majority {maj:.2f}")
    fig.update_yaxes(range=[0, 1], title="accuracy")
    return _layout(fig, title, 360)


def flip_heatmap(names: list[str], counts: np.ndarray, n: int, title: str | None = None) -> go.Figure:
    """Heat map of `stats.flip_matrix`: cell (i, j) = examples predicted differently by functions i and j."""
    fig = go.Figure(go.Heatmap(z=counts, x=names, y=names, colorscale="Blues", zmin=0, zmax=max(1, n),
                               text=counts, texttemplate="%{text}",
                               hovertemplate="%{y} vs %{x}: %{z} flips<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title or f"Which examples flip (of {n})", 420)


def surprisal_strip(rec, i: int, context_tokens: int = 6, title: str | None = None) -> go.Figure:
    """Per-token surprisal -log p (nats) of every label of example i, one row per label.

    The last `context_tokens` prompt tokens are shown in grey (BOS if present is kept), and the continuation
    tokens with their delimiter / leading-space marker ␣: that is what the model scores.
    """
    V = len(rec.verbalizers)
    ctx = [show_token(t) for t in rec.ctx_tokens[i]]
    shown_ctx = ctx[:1] + ["…"] + ctx[-context_tokens:] if len(ctx) > context_tokens + 1 else ctx
    fig = go.Figure()
    for v in range(V):
        toks = [show_token(t) for t in rec.cont_tokens[i][v]]
        s = -np.asarray(rec.cont_logprobs[i][v], dtype=float)
        xs = [f"{j}" for j in range(len(toks))]
        fig.add_trace(go.Bar(
            y=[rec.verbalizers[v]] * len(toks), x=s, orientation="h", text=toks, textposition="inside",
            insidetextanchor="middle", name=rec.verbalizers[v], marker_color=COLORS[v % len(COLORS)],
            marker_line=dict(color="white", width=1), customdata=xs,
            hovertemplate="token %{customdata}: '%{text}'<br>surprisal %{x:.2f} nats<extra></extra>",
            showlegend=False))
    gold = rec.task.classes[rec.task.golds[i]]
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title="surprisal of the continuation, nats (sum = -LL)")
    t = title or f"Example {i} (gold: {gold})  ·  context ends: {' '.join(shown_ctx)}"
    return _layout(fig, t, 120 + 40 * V)


def lambda_curve(lams: np.ndarray, accs: dict[str, np.ndarray], majority: float | None = None,
                 current: float | None = None) -> go.Figure:
    """Accuracy of s = LL(y|x) - lambda * LL(y|premise) vs lambda, one line per premise."""
    fig = go.Figure()
    for j, (name, a) in enumerate(accs.items()):
        fig.add_trace(go.Scatter(x=list(lams), y=list(a), mode="lines+markers", name=name,
                                 line=dict(color=COLORS[j % len(COLORS)])))
    if majority is not None:
        fig.add_hline(y=majority, line_dash="dash", line_color="gray", annotation_text="majority")
    if current is not None:
        fig.add_vline(x=current, line_color="black", line_width=1)
    fig.update_xaxes(title="λ (0 = raw log-prob, 1 = PMI / DCPMI)")
    fig.update_yaxes(title="accuracy", range=[0, 1])
    return _layout(fig, "Premise strength: accuracy vs λ", 340)


def reliability_diagram(rel, title: str = "Reliability") -> go.Figure:
    """Bars: accuracy per confidence bin (from `stats.reliability`); diagonal = perfect calibration."""
    centers = (rel.edges[:-1] + rel.edges[1:]) / 2
    acc = np.nan_to_num(rel.accuracy)
    fig = go.Figure([
        go.Bar(x=list(centers), y=list(acc), width=float(rel.edges[1] - rel.edges[0]) * 0.9, name="accuracy",
               customdata=rel.counts, hovertemplate="conf %{x:.2f}: acc %{y:.2f} (n=%{customdata})<extra></extra>",
               marker_color=COLORS[0]),
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="gray"), name="ideal")])
    fig.update_xaxes(title="confidence", range=[0, 1])
    fig.update_yaxes(title="accuracy", range=[0, 1])
    return _layout(fig, f"{title}  ·  ECE {rel.ece:.3f}  ·  Brier {rel.brier:.3f}", 340)


def confusion_heatmap(matrix: np.ndarray, classes: list[str], title: str = "Confusion matrix") -> go.Figure:
    fig = go.Figure(go.Heatmap(z=matrix, x=list(classes), y=list(classes), colorscale="Blues", text=matrix,
                               texttemplate="%{text}", hovertemplate="gold %{y} → pred %{x}: %{z}<extra></extra>"))
    fig.update_xaxes(title="predicted")
    fig.update_yaxes(title="gold", autorange="reversed")
    return _layout(fig, title, 360)


def study_heatmap(df, value: str = "acc", title: str | None = None) -> go.Figure:
    """Models (rows) x scoring functions (columns), mean `value` over tasks (from `study.grid_frame`)."""
    pivot = df.pivot_table(index="model", columns="scoring", values=value, aggfunc="mean")
    z = pivot.to_numpy()
    fig = go.Figure(go.Heatmap(z=z, x=list(pivot.columns), y=list(pivot.index), colorscale="Viridis",
                               zmin=0, zmax=1, text=np.round(z, 2), texttemplate="%{text}",
                               hovertemplate="%{y} · %{x}: %{z:.3f}<extra></extra>"))
    return _layout(fig, title or f"Mean {value} over tasks", 120 + 30 * len(pivot))


def accuracy_vs_size(df, title: str = "Accuracy vs model size, per scoring function") -> go.Figure:
    """Mean accuracy over tasks (y) against parameters (x, log scale), one line per scoring function and
    architecture (from `study.grid_frame`); the mean majority baseline as a dotted line."""
    fig = go.Figure()
    means = df.groupby(["scoring", "arch", "params"], as_index=False)["acc"].mean()
    dash = {"dense": "solid", "moe": "dash", "encdec": "dot"}
    for (fn, arch), g in means.groupby(["scoring", "arch"]):
        g = g.sort_values("params")
        fig.add_scatter(x=g["params"], y=g["acc"], mode="lines+markers", name=f"{fn} · {arch}",
                        line={"dash": dash.get(arch, "solid")}, legendgroup=fn,
                        hovertemplate=f"{fn} · {arch}<br>%{{x:.3s}} parameters: %{{y:.3f}}<extra></extra>")
    fig.add_hline(y=float(df.groupby("task")["majority"].first().mean()), line_dash="dot", line_color="gray",
                  annotation_text="majority (mean over tasks)")
    fig.update_xaxes(type="log", title="parameters (active per token)")
    fig.update_yaxes(title="mean accuracy over tasks")
    return _layout(fig, title, 460)
