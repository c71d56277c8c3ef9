"""Plot builders for attention, rollout/flow, head summaries, attributions and the scoring-function lesson.

Pure functions record -> plotly `go.Figure`: no `.show()`, no ipywidgets, no random ids, no CDN.
Here: `attention_heatmap` (+ `heatmap_z`, the array it shows), `model_grid`, `head_view`, `head_summary_chart`,
`rollout_heatmap`, `attribution_text`, `attribution_bars`, `attention_vs_attribution`, `scorer_loss_curves`,
`scorer_maps`. Static export: `workbench.plots.export`.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

NORMALIZATIONS = {
    "none": "raw weights (rows sum to 1)",
    "row max": "each row divided by its maximum (pattern of every query visible)",
    "drop first": "first token (the sink) removed and rows renormalised",
    "log": "log10 of the weights (small weights visible)",
}
HEAD_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")


def labels(tokens) -> list[str]:
    """Unique axis labels 'i:token' (plotly merges equal category labels, and tokens repeat)."""
    return [f"{i}:{t}" for i, t in enumerate(tokens)]


def normalize_map(m: np.ndarray, mode: str = "none", causal: bool = True) -> np.ndarray:
    """A (query, key) map transformed for display (see NORMALIZATIONS); when `causal`, the masked (future)
    keys become NaN; bidirectional maps keep every cell."""
    if mode not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {mode!r}; choose one of {', '.join(NORMALIZATIONS)}")
    m = np.array(m, dtype=np.float64)
    if mode == "row max":
        m = m / np.maximum(m.max(-1, keepdims=True), 1e-12)
    elif mode == "drop first":
        m[:, 0] = 0.0
        m = m / np.maximum(m.sum(-1, keepdims=True), 1e-12)
    elif mode == "log":
        m = np.log10(np.clip(m, 1e-6, None))
    if causal:
        m[np.triu_indices(m.shape[0], 1)] = np.nan      # causal mask: nothing to show above the diagonal
    return m


def causal_mask_shape(n: int, color: str = "white") -> dict:
    """A staircase polygon covering the cells above the diagonal of an n x n heat map (future keys); only for
    causal records (`rec.causal`).

    For FigureWidgets: NaN cannot cross the widget's JSON channel, so the widget sends zeros and masks them.
    """
    pts = [(0.5, -0.5)]
    for q in range(n - 1):
        pts += [(q + 0.5, q + 0.5), (q + 1.5, q + 0.5)]
    pts.append((n - 0.5, -0.5))
    path = "M " + " L ".join(f"{x},{y}" for x, y in pts) + " Z"
    return dict(type="path", path=path, xref="x", yref="y", fillcolor=color, line=dict(width=0), layer="above")


def heatmap_z(rec, layer: int, head: int | None = None, norm: str = "none") -> np.ndarray:
    """The array `attention_heatmap` shows: one head, or the mean over heads when head is None."""
    m = rec.layer_mean(layer) if head is None else rec.head(layer, head)
    return normalize_map(m, norm, getattr(rec, "causal", True))


def heatmap_title(rec, layer: int, head: int | None) -> str:
    return f"layer {layer} " + ("mean of heads" if head is None else f"head {head}")


def _zrange(norm: str):
    return (None, None) if norm == "log" else (0.0, 1.0)


def attention_heatmap(rec, layer: int = 0, head: int | None = 0, norm: str = "none", colorscale: str = "Viridis",
                      title: str | None = None, size: int = 520) -> go.Figure:
    """Token x token heat map of one head (query rows, key columns) with token labels and hover values."""
    z = heatmap_z(rec, layer, head, norm)
    lab = labels(rec.tokens)
    zmin, zmax = _zrange(norm)
    fig = go.Figure(go.Heatmap(z=z, x=lab, y=lab, zmin=zmin, zmax=zmax, colorscale=colorscale,
                               hovertemplate="query %{y}<br>key %{x}<br>value %{z:.3f}<extra></extra>",
                               colorbar=dict(title=dict(text="log10 w" if norm == "log" else "weight"))))
    if rec.n_generated > 0:    # dashed lines: rows/columns after them are generated tokens
        b = rec.n_prompt - 0.5
        fig.add_hline(y=b, line=dict(color="white", dash="dash", width=1))
        fig.add_vline(x=b, line=dict(color="white", dash="dash", width=1))
    fig.update_layout(title=dict(text=title or heatmap_title(rec, layer, head)), width=size + 120, height=size,
                      margin=dict(l=10, r=10, t=40, b=10), xaxis=dict(title="key", tickangle=-60),
                      yaxis=dict(title="query", autorange="reversed"))
    return fig


def attention_slider(rec, norm: str = "none", colorscale: str = "Viridis", size: int = 520,
                     title_suffix: str = "") -> go.Figure:
    """`attention_heatmap` with a plotly slider over every (layer, head) and each layer's mean of heads, all the
    data inside the figure: moving the slider needs no kernel, so the figure works in a standalone HTML file
    (`save_html`). Steps: "L0 H0", "L0 H1", ..., "L0 mean", "L1 H0", ...; the first step is shown."""
    fig = attention_heatmap(rec, 0, 0, norm, colorscale, title=heatmap_title(rec, 0, 0) + title_suffix, size=size)
    steps = []
    for layer in range(rec.n_layers):
        for head in [*range(rec.n_heads), None]:
            z = heatmap_z(rec, layer, head, norm).round(4)        # NaN above the diagonal: drawn as gaps
            steps.append(dict(method="update", label=f"L{layer} {'mean' if head is None else f'H{head}'}",
                              args=[{"z": [z]}, {"title.text": heatmap_title(rec, layer, head) + title_suffix}]))
    fig.update_layout(sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="showing "), pad=dict(t=70))],
                      height=size + 110, margin=dict(l=10, r=10, t=40, b=100))
    return fig


def model_grid(rec, norm: str = "none", colorscale: str = "Viridis", cell: int = 130) -> go.Figure:
    """All layers x heads as small multiples (rows = layers, columns = heads) on one colour scale."""
    n_l, n_h = rec.n_layers, rec.n_heads
    fig = make_subplots(rows=n_l, cols=n_h, horizontal_spacing=0.01, vertical_spacing=0.02,
                        row_titles=[f"L{i}" for i in range(n_l)], column_titles=[f"H{j}" for j in range(n_h)])
    zmin, zmax = _zrange(norm)
    for layer in range(n_l):
        for head in range(n_h):
            fig.add_trace(go.Heatmap(z=heatmap_z(rec, layer, head, norm), coloraxis="coloraxis",
                                     hovertemplate=f"L{layer} H{head}<br>q %{{y}} k %{{x}}<br>%{{z:.3f}}<extra></extra>"),
                          row=layer + 1, col=head + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(coloraxis=dict(colorscale=colorscale, cmin=zmin, cmax=zmax), width=cell * n_h + 120,
                      height=cell * n_l + 60, margin=dict(l=10, r=10, t=40, b=10),
                      title=dict(text=f"all heads ({rec.model_name})"))
    return fig


def head_view(rec, layer: int = 0, heads=None, threshold: float = 0.05, query: int | None = None) -> go.Figure:
    """bertviz-style picture of one layer: lines from each query (left) to the keys it attends to (right).

    One colour per head; line opacity follows the weight; weights below `threshold` are not drawn.
    `query` restricts the lines to one query token.
    """
    rec.check_index(layer)
    heads = list(range(rec.n_heads)) if heads is None else list(heads)
    for h in heads:
        rec.check_index(layer, h)
    t, fig = rec.n_tokens, go.Figure()
    queries = range(t) if query is None else [query]
    for h in heads:
        w = rec.weights[layer, h]
        for lo, hi in ((threshold, 0.25), (0.25, 0.5), (0.5, 1.01)):   # 3 opacity bands per head
            xs, ys = [], []
            for q in queries:
                for k in np.nonzero((w[q] >= lo) & (w[q] < hi))[0]:
                    xs += [0, 1, None]
                    ys += [q, int(k), None]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=HEAD_COLORS[h % 16], width=2),
                                     opacity=min(1.0, 0.25 + hi * 0.7), hoverinfo="skip", showlegend=lo == threshold,
                                     name=f"head {h}", legendgroup=f"h{h}"))
    for x, anchor in ((0, "right"), (1, "left")):
        fig.add_trace(go.Scatter(x=[x] * t, y=list(range(t)), mode="text", text=list(rec.tokens),
                                 textposition=f"middle {anchor}", showlegend=False, hoverinfo="skip"))
    fig.update_layout(title=dict(text=f"head view, layer {layer}: query (left) -> key (right)"),
                      xaxis=dict(visible=False, range=[-0.6, 1.6]), width=520, height=max(300, 18 * t + 80),
                      yaxis=dict(visible=False, autorange="reversed"), plot_bgcolor="white",
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def head_summary_chart(summary, scores=("sink", "prev_token", "induction", "entropy", "mean_distance")) -> go.Figure:
    """One small layer x head heat map per score, values printed in the cells: rank heads at a glance."""
    fig = make_subplots(rows=1, cols=len(scores), subplot_titles=list(scores), horizontal_spacing=0.04)
    n_l, n_h = summary.shape
    for i, name in enumerate(scores):
        z = summary.score(name)
        fig.add_trace(go.Heatmap(z=z, x=[f"H{h}" for h in range(n_h)], y=[f"L{l}" for l in range(n_l)],
                                 text=np.round(z, 2), texttemplate="%{text}", showscale=False, colorscale="Blues",
                                 hovertemplate=f"{name} %{{y}} %{{x}}: %{{z:.3f}}<extra></extra>"), row=1, col=i + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=dict(text="head summaries (mean over query positions)"), height=120 + 40 * n_l,
                      width=max(600, 200 * len(scores)), margin=dict(l=10, r=10, t=60, b=10))
    return fig


def rollout_heatmap(rr, kind: str = "rollout", layer: int = -1, colorscale: str = "Viridis") -> go.Figure:
    """Rollout after `layer` (default: all layers) or the attention flow, as a token x token heat map."""
    if kind == "flow":
        if rr.flow is None:
            raise ValueError("no flow in this record: build it with rollout_record(rec, flow=True)")
        z, what = rr.flow, "attention flow"
    elif kind == "rollout":
        z, what = rr.rollout[layer], f"rollout through layer {range(rr.rollout.shape[0])[layer]}"
    else:
        raise ValueError(f"kind must be 'rollout' or 'flow', got {kind!r}")
    z = np.array(z, dtype=float)
    if getattr(rr, "causal", True):
        z[np.triu_indices(z.shape[0], 1)] = np.nan
    lab = labels(rr.tokens)
    fig = go.Figure(go.Heatmap(z=z, x=lab, y=lab, zmin=0, colorscale=colorscale,
                               hovertemplate="output %{y}<br>input %{x}<br>%{z:.3f}<extra></extra>"))
    fig.update_layout(title=dict(text=f"{what} ({rr.head_agg} over heads)"), width=640, height=520,
                      xaxis=dict(title="input token", tickangle=-60),
                      yaxis=dict(title="output position", autorange="reversed"), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def _attr_row(attr, row: int | None) -> tuple[np.ndarray, str]:
    if row is None:
        return attr.seq_attr, "".join(attr.target_tokens)
    return attr.token_attr[row], attr.target_tokens[row]


def attribution_text(attr, row: int | None = None, per_line: int = 12) -> go.Figure:
    """Input tokens as coloured text (red = raises log p(target), blue = lowers it), wrapped `per_line`."""
    v, target = _attr_row(attr, row)
    n = len(v)
    lines = -(-n // per_line)
    z = np.full((lines, per_line), np.nan)
    text = np.full((lines, per_line), "", dtype=object)
    z.flat[:n], text.flat[:n] = v, list(attr.input_tokens)
    lim = float(np.nanmax(np.abs(v))) or 1.0
    fig = go.Figure(go.Heatmap(z=z, text=text, texttemplate="%{text}", colorscale="RdBu", reversescale=True,
                               zmin=-lim, zmax=lim, xgap=2, ygap=2, hovertemplate="%{text}: %{z:.3f}<extra></extra>",
                               colorbar=dict(title=dict(text="attr"))))
    fig.update_layout(title=dict(text=f"{attr.method} for target {target!r}"), height=90 + 34 * lines, width=900,
                      xaxis=dict(visible=False), yaxis=dict(visible=False, autorange="reversed"),
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def attribution_bars(attr, row: int | None = None) -> go.Figure:
    """Attribution of each input token as bars (positive up)."""
    v, target = _attr_row(attr, row)
    fig = go.Figure(go.Bar(x=labels(attr.input_tokens), y=v, marker_color=np.where(v >= 0, "#d62728", "#1f77b4"),
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.update_layout(title=dict(text=f"{attr.method}: contribution to log p({target!r})"), height=360, width=900,
                      xaxis=dict(tickangle=-60), yaxis=dict(title="attribution"), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def attention_vs_attribution(attention_row: np.ndarray, attr, title: str = "last-token attention") -> go.Figure:
    """Side by side for the same target: what the predicting position attends to vs what the attribution says.

    Both are shown as shares summing to 1 (attribution as |attr| / sum |attr|).
    """
    a = np.asarray(attention_row, dtype=float)[:len(attr.input_tokens)]
    b = np.abs(attr.seq_attr)
    b = b / b.sum() if b.sum() > 0 else b
    lab = labels(attr.input_tokens)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=[title, f"|{attr.method}| share"])
    fig.add_trace(go.Bar(y=lab, x=a / max(a.sum(), 1e-12), orientation="h", marker_color="#2ca02c",
                         name="attention"), row=1, col=1)
    fig.add_trace(go.Bar(y=lab, x=b, orientation="h", marker_color="#9467bd", name="attribution"), row=1, col=2)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=dict(text=f"target {''.join(attr.target_tokens)!r}: attention vs attribution"),
                      height=120 + 18 * len(lab), width=820, showlegend=False, margin=dict(l=10, r=10, t=60, b=10))
    return fig


def scorer_loss_curves(runs: dict) -> go.Figure:
    """Training loss per step for each attention score (same data, same init), log scale."""
    fig = go.Figure()
    for name, r in runs.items():
        fig.add_trace(go.Scatter(y=r.losses, mode="lines", name=f"{name} (acc {r.accuracy:.2f})"))
    fig.update_layout(title=dict(text="copy task: training loss by scoring function"), xaxis=dict(title="step"),
                      yaxis=dict(title="cross-entropy (nats)", type="log"), height=380, width=760,
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def scorer_maps(runs: dict) -> go.Figure:
    """Mean attention map of each trained scorer, side by side (the copy source is the off-diagonal band)."""
    names = list(runs)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.02)
    for i, name in enumerate(names):
        r = runs[name]
        z = np.array(r.attention, dtype=float)
        z[np.triu_indices(z.shape[0], 1)] = np.nan
        fig.add_trace(go.Heatmap(z=z, x=list(r.tokens), y=list(r.tokens), coloraxis="coloraxis",
                                 hovertemplate=f"{name}: q %{{y}} k %{{x}} %{{z:.2f}}<extra></extra>"), row=1, col=i + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(coloraxis=dict(colorscale="Viridis", cmin=0, cmax=1), height=260, width=220 * len(names) + 80,
                      title=dict(text="mean attention after training"), margin=dict(l=10, r=10, t=60, b=10))
    return fig
