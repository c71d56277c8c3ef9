"""Figures about corpora: label balance, document lengths, language and domain mix.

Pure builders: a `Corpus` (or its `stats()` dict) in, a plotly `go.Figure` out; nothing is shown here.
"""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def _stats(corpus_or_stats) -> dict:
    return corpus_or_stats if isinstance(corpus_or_stats, dict) else corpus_or_stats.stats()


def label_balance(corpus_or_stats, title: str = "Label balance") -> go.Figure:
    """One bar panel per label: share of records in each class; a dashed line marks the uniform share 1/k."""
    balance = _stats(corpus_or_stats).get("label_balance", {})
    if not balance:
        raise ValueError("the corpus has no labelled records (feeling/topic/ending): generate stories first")
    fig = make_subplots(rows=1, cols=len(balance), subplot_titles=list(balance), shared_yaxes=True)
    for i, (label, shares) in enumerate(balance.items(), start=1):
        classes = list(shares)
        fig.add_trace(go.Bar(x=classes, y=[shares[c] for c in classes], name=label, showlegend=False,
                             hovertemplate="%{x}: %{y:.1%}<extra>" + label + "</extra>"), row=1, col=i)
        fig.add_hline(y=1 / len(classes), line_dash="dash", line_color="gray", row=1, col=i)
    fig.update_yaxes(tickformat=".0%", title_text="share of records", row=1, col=1)
    fig.update_layout(title=title, height=320, margin=dict(t=70, b=40, l=60, r=20))
    return fig


def length_histogram(corpus, title: str = "Document length") -> go.Figure:
    """Histogram of whitespace words per document, one trace per language."""
    by_lang: dict[str, list[int]] = {}
    for r in corpus.records:
        by_lang.setdefault(r.get("lang", "?"), []).append(len(r["text"].split()))
    fig = go.Figure([go.Histogram(x=v, name=k, opacity=0.6, nbinsx=40) for k, v in sorted(by_lang.items())])
    fig.update_layout(barmode="overlay", title=title, xaxis_title="words per document", yaxis_title="documents",
                      height=320, margin=dict(t=50, b=40, l=60, r=20))
    return fig


def mix(corpus_or_stats, title: str = "Languages and domains") -> go.Figure:
    """Record counts per language and per domain, side by side."""
    s = _stats(corpus_or_stats)
    fig = make_subplots(rows=1, cols=2, subplot_titles=["language", "domain"])
    for col, key in ((1, "langs"), (2, "domains")):
        fig.add_trace(go.Bar(x=list(s[key]), y=list(s[key].values()), showlegend=False), row=1, col=col)
    fig.update_layout(title=title, height=300, margin=dict(t=70, b=40, l=60, r=20))
    return fig
