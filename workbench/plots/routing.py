"""MoE routing figures: pure builders (record or arrays -> plotly Figure). Deterministic, offline, never .show().

Here: `token_experts` (tokens coloured by chosen expert; hover = router distribution), `token_layer_map`,
`expert_load_bars`, `group_expert_heatmap`, `group_similarity_heatmap`, `coactivation_heatmap`,
`specialization_chart`, `saturation_lines`, `consecutive_bars`, `ablation_heatmap`, `loss_bars`.
Export: every figure has the modebar camera (PNG); `fig.write_image(path)` writes PNG/SVG where kaleido is installed.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#17becf"]


def _tok(t: str) -> str:
    """Byte-level BPE token -> readable text (Ġ = space, Ċ = newline)."""
    return t.replace("Ġ", "␣").replace("Ċ", "↵").replace("ĉ", "⇥")


def expert_colorscale(n_experts: int) -> list:
    """Discrete plotly colorscale: expert e gets PALETTE[e] on [e, e+1)/E (use with zmin=-0.5, zmax=E-0.5)."""
    cs = []
    for e in range(n_experts):
        c = PALETTE[e % len(PALETTE)]
        cs += [[e / n_experts, c], [(e + 1) / n_experts, c]]
    return cs


def _layout(fig: go.Figure, title: str, height: int | None = None) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.01), template="plotly_white", margin=dict(l=60, r=20, t=50, b=40),
                      **({"height": height} if height else {}))
    return fig


def _dist_text(p: np.ndarray) -> str:
    return "<br>".join(f"E{e}: {v:.2f}" for e, v in enumerate(p))


def _layer_scores(rec, li: int, T: int):
    """((T, E) the router's own scores of layer li, or None where unknown; their hover name)."""
    if rec.score_fn not in ("softmax", "sigmoid"):
        return None, ""
    return rec.scores_of(rec.logits[li, :T]), "p" if rec.score_fn == "softmax" else "sigmoid"


def token_experts(rec, layer: int = 0, top: str = "1", width: int = 16, max_tokens: int = 512) -> go.Figure:
    """Tokens laid out in rows of `width`, each cell coloured by its first-choice expert (top="1") or, with
    top="k", k stacked cells per token (rank 1 on top); hover shows the router's scores of the token
    (softmax probabilities, or sigmoid scores for a sigmoid router; `RoutingRecord.probs`)."""
    li = rec.layer_pos(layer)
    if top not in ("1", "k"):
        raise ValueError(f"top must be '1' or 'k', got {top!r}")
    T = min(rec.n_tokens, max_tokens)
    kk = 1 if top == "1" else rec.top_k
    n_rows = -(-T // width)
    z = np.full((n_rows * kk, width), np.nan)
    text = np.full(z.shape, "", dtype=object)
    hover = np.full(z.shape, "", dtype=object)
    p, name = _layer_scores(rec, li, T)
    for t in range(T):
        r, c = divmod(t, width)
        info = f"#{t} {_tok(rec.tokens[t])!r}" + ("" if p is None else f"<br>router {name}:<br>" + _dist_text(p[t]))
        for j in range(kk):
            e = int(rec.topk[li, t, j])
            z[r * kk + j, c] = e
            text[r * kk + j, c] = _tok(rec.tokens[t]) if j == 0 else f"E{e}"
            hover[r * kk + j, c] = f"rank {j + 1}: E{e} (w={rec.weights[li, t, j]:.2f})<br>{info}"
    z = [[None if np.isnan(v) else int(v) for v in row] for row in z]   # None, not NaN: widget JSON rejects NaN
    fig = go.Figure(go.Heatmap(z=z, text=text, hovertext=hover, texttemplate="%{text}", textfont=dict(size=10),
                               hovertemplate="%{hovertext}<extra></extra>", colorscale=expert_colorscale(rec.n_experts),
                               zmin=-0.5, zmax=rec.n_experts - 0.5, xgap=2, ygap=2 if kk == 1 else 0,
                               colorbar=dict(title="expert", tickvals=list(range(rec.n_experts)),
                                             ticktext=[f"E{e}" for e in range(rec.n_experts)])))
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    more = f" (first {T} of {rec.n_tokens} tokens)" if T < rec.n_tokens else ""
    choice = "first-choice expert" if kk == 1 else f"top-{kk} experts (rank 1 on top)"
    return _layout(fig, f"layer {li}: {choice}{more}", height=120 + 28 * n_rows * kk)


def token_layer_map(rec, max_tokens: int = 128) -> go.Figure:
    """Token x layer map of the first-choice expert (hover: its router score, `RoutingRecord.probs`; its gate
    weight where the router's scores are unknown)."""
    T = min(rec.n_tokens, max_tokens)
    z = rec.topk[:, :T, 0].astype(float)                                         # (L, T)
    scores = [_layer_scores(rec, li, T) for li in range(rec.n_layers)]
    name = scores[0][1] or "w"
    if scores[0][0] is None:
        top_p = rec.weights[:, :T, 0]
    else:
        top_p = np.take_along_axis(np.stack([p for p, _ in scores]), rec.topk[:, :T, :1], -1)[..., 0]
    x = [f"{i}:{_tok(t)}" for i, t in enumerate(rec.tokens[:T])]               # index: tokens repeat
    fig = go.Figure(go.Heatmap(z=z, x=x, y=[f"L{layer}" for layer in range(rec.n_layers)], customdata=top_p,
                               colorscale=expert_colorscale(rec.n_experts), zmin=-0.5, zmax=rec.n_experts - 0.5,
                               hovertemplate="%{x} %{y}: E%{z} (" + name + "=%{customdata:.2f})<extra></extra>",
                               xgap=1, ygap=1,
                               colorbar=dict(title="expert", tickvals=list(range(rec.n_experts)),
                                             ticktext=[f"E{e}" for e in range(rec.n_experts)])))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "first-choice expert per token and layer", height=160 + 30 * rec.n_layers)


def expert_load_bars(load: np.ndarray, dead: list | None = None,
                     title: str = "expert load (share of top-k slots)") -> go.Figure:
    """Grouped bars of expert load per layer ((L, E) from routing.expert_load); dashed line = ideal 1/E;
    dead experts (load 0) marked with a red x."""
    L, E = load.shape
    fig = go.Figure()
    for layer in range(L):
        fig.add_bar(x=[f"E{e}" for e in range(E)], y=load[layer], name=f"layer {layer}",
                    marker_color=PALETTE[layer % len(PALETTE)])
    dead = dead if dead is not None else [np.flatnonzero(row == 0).tolist() for row in load]
    xs = [f"E{e}" for layer_dead in dead for e in layer_dead]
    if xs:
        fig.add_scatter(x=xs, y=[0] * len(xs), mode="markers", marker=dict(symbol="x", size=12, color="red"),
                        name="dead expert")
    fig.add_hline(y=1 / E, line_dash="dash", annotation_text="ideal 1/E")
    fig.update_layout(barmode="group", yaxis_title="share", xaxis_title="expert")
    return _layout(fig, title)


def _ordered(names, mat, order, square: bool):
    order = np.arange(len(names)) if order is None else np.asarray(order)
    names = [names[i] for i in order]
    mat = mat[order][:, order] if square else mat[order]
    return names, mat


def group_expert_heatmap(names, dist: np.ndarray, layer: int, order=None, hard: bool = False,
                         score_fn: str = "softmax") -> go.Figure:
    """Group x expert routing distribution for one layer (rows in `order`, e.g. routing.cluster_order);
    `score_fn` (the record's) names what soft distributions average."""
    names, dist = _ordered(list(names), np.asarray(dist), order, square=False)
    fig = go.Figure(go.Heatmap(z=dist, x=[f"E{e}" for e in range(dist.shape[1])], y=names, colorscale="Viridis",
                               zmin=0, hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>",
                               colorbar=dict(title="share")))
    fig.update_yaxes(autorange="reversed")
    kind = "top-k counts" if hard else ("mean router probability" if score_fn == "softmax"
                                        else f"mean {score_fn} router score share")
    return _layout(fig, f"layer {layer}: group × expert ({kind})", height=160 + 22 * len(names))


def group_similarity_heatmap(names, sim: np.ndarray, layer: int, metric: str = "cosine", order=None) -> go.Figure:
    """Group x group similarity of routing distributions for one layer (NLLB-style), rows clustered."""
    names, sim = _ordered(list(names), np.asarray(sim), order, square=True)
    label = "cosine" if metric == "cosine" else "1 - Jensen-Shannon"
    fig = go.Figure(go.Heatmap(z=sim, x=names, y=names, colorscale="RdBu_r", zmin=float(min(sim.min(), 0.5)), zmax=1,
                               hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>", colorbar=dict(title=label)))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, f"layer {layer}: routing similarity between groups ({label})", height=200 + 22 * len(names))


def coactivation_heatmap(mat: np.ndarray, layer: int, pairs: str = "all") -> go.Figure:
    """Expert co-activation P(j | i) in % (row i = the conditioning expert)."""
    E = mat.shape[0]
    fig = go.Figure(go.Heatmap(z=mat, x=[f"E{e}" for e in range(E)], y=[f"E{e}" for e in range(E)], colorscale="Reds",
                               zmin=0, hovertemplate="P(%{x} | %{y}) = %{z:.1f}%<extra></extra>",
                               colorbar=dict(title="%")))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, f"layer {layer}: co-activation P(j | i), {pairs} pairs", height=160 + 24 * E)


def specialization_chart(names, shares: np.ndarray, baseline: float, layer: int) -> go.Figure:
    """OLMoE domain specialization: per expert, share of each group's tokens routed to it; dashed k/E baseline."""
    fig = go.Figure()
    for i, g in enumerate(names):
        fig.add_bar(x=[f"E{e}" for e in range(shares.shape[1])], y=shares[i], name=str(g),
                    marker_color=PALETTE[i % len(PALETTE)])
    fig.add_hline(y=baseline, line_dash="dash", annotation_text=f"k/E = {baseline:.2f}")
    fig.update_layout(barmode="group", yaxis_title="share of group tokens with e in top-k", xaxis_title="expert")
    return _layout(fig, f"layer {layer}: specialization vs the uniform k/E baseline")


def saturation_lines(df) -> go.Figure:
    """Router saturation vs training step, one line per layer (df from routing.saturation_over_checkpoints)."""
    fig = go.Figure()
    for layer, part in df.groupby("layer"):
        fig.add_scatter(x=part["step"], y=100 * part["saturation"], mode="lines+markers", name=f"layer {layer}",
                        line=dict(color=PALETTE[int(layer) % len(PALETTE)]))
    fig.update_layout(xaxis_title="training step", yaxis_title="router saturation (%)", yaxis_range=[0, 102])
    return _layout(fig, "router saturation: top-k overlap with the final checkpoint")


def consecutive_bars(df) -> go.Figure:
    """Mixtral-style same-expert rate for consecutive tokens per layer, with random baselines as dashed markers."""
    x = [f"L{layer}" for layer in df["layer"]]
    fig = go.Figure()
    fig.add_bar(x=x, y=df["same_first"], name="same first choice", marker_color=PALETTE[0])
    fig.add_bar(x=x, y=df["overlap_topk"], name="top-k sets overlap", marker_color=PALETTE[1])
    fig.add_scatter(x=x, y=df["random_first"], mode="markers", name="random: 1/E",
                    marker=dict(symbol="line-ew-open", size=30, color=PALETTE[0]))
    fig.add_scatter(x=x, y=df["random_overlap_topk"], mode="markers", name="random overlap",
                    marker=dict(symbol="line-ew-open", size=30, color=PALETTE[1]))
    fig.update_layout(barmode="group", yaxis_title="share of consecutive token pairs", yaxis_range=[0, 1])
    return _layout(fig, "do consecutive tokens go to the same expert?")


def ablation_heatmap(ab: dict) -> go.Figure:
    """Token x expert change in log p(next token) when the expert is masked (from routing.expert_ablation)."""
    d = ab["delta"]
    y = [f"{i}:{_tok(c)}→{_tok(t)}" for i, (c, t) in enumerate(zip(ab["context"], ab["targets"]))]
    lim = float(max(np.abs(d).max(), 1e-6))
    fig = go.Figure(go.Heatmap(z=d, x=[f"E{e}" for e in range(d.shape[1])], y=y, colorscale="RdBu", zmid=0,
                               zmin=-lim, zmax=lim,
                               hovertemplate="%{y} without %{x}: Δlog p = %{z:.3f}<extra></extra>",
                               colorbar=dict(title="Δ log p")))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, f"layer {ab['layer']}: Δ log p(next token) when an expert is masked ({ab['mode']})",
                   height=160 + 16 * len(y))


def loss_bars(table) -> go.Figure:
    """Load-balancing losses divided by their uniform-routing value (1 = balanced), per convention and layer."""
    fig = go.Figure()
    for i, (conv, part) in enumerate(table.groupby("convention", sort=False)):
        fig.add_bar(x=[str(v) for v in part["layer"]], y=part["value"] / part["uniform"], name=conv,
                    customdata=np.stack([part["value"], part["uniform"]], -1), marker_color=PALETTE[i % len(PALETTE)],
                    hovertemplate=conv + " %{x}: %{customdata[0]:.4f} (uniform %{customdata[1]:.3f})<extra></extra>")
    fig.add_hline(y=1, line_dash="dash", annotation_text="uniform routing")
    fig.update_layout(barmode="group", xaxis_title="layer", yaxis_title="value / value under uniform routing")
    return _layout(fig, "router losses relative to uniform routing")
