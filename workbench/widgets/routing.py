"""MoE routing widgets: sliders wired to `workbench.plots.routing` on records computed up front.

Here: `routing_explorer` (tokens coloured by expert; layer slider, top-1/top-k toggle), `group_explorer`
(group x expert and group-similarity heat maps; layer slider, soft/hard, cosine/JS), `checkpoint_replay`
(routing through training). No model call happens inside a slider callback; errors show inline.
Each returned box has `.refresh(**controls)`, the slider callback itself (used by the benchmark).
"""
from __future__ import annotations

import functools
import html

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from ..errors import describe_error
from ..plots import routing as rplots
from ..probes import routing as rprobes


def _error_box(err: Exception) -> widgets.HTML:
    return widgets.HTML(f"<div style='color:#b00020;white-space:pre-wrap'><b>routing explorer:</b> "
                        f"{html.escape(describe_error(err))}</div>")


def _same(a, b) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
    except Exception:
        return a == b


def _changes(new: dict, old: dict) -> dict:
    """Top-level keys of a trace/layout JSON dict whose values differ (only those are sent to the browser)."""
    return {k: v for k, v in new.items() if k not in old or not _same(v, old[k])}


def _swap(fw: go.FigureWidget, fig: go.Figure, last: go.Figure | None = None) -> None:
    """Copy a freshly built figure into the live FigureWidget in one batched message; with `last` (the figure
    shown now) only the properties that changed are sent."""
    with fw.batch_update():
        if len(fw.data) == len(fig.data) and all(a.type == b.type for a, b in zip(fw.data, fig.data)):
            for i, (old, new) in enumerate(zip(fw.data, fig.data)):
                new_json = new.to_plotly_json()
                old.update(_changes(new_json, last.data[i].to_plotly_json()) if last is not None else new_json,
                           overwrite=True)
        else:
            fw.data = []
            fw.add_traces(list(fig.data))
        layout = fig.layout.to_plotly_json()     # re-validating an unchanged template costs ~60 ms: diff first
        fw.layout.update(_changes(layout, last.layout.to_plotly_json()) if last is not None else layout,
                         overwrite=True)


def _wire(controls: dict, build, css: str, prebuild=(), extra=()) -> widgets.VBox:
    """VBox(controls, error line, figure); on any control change show `build(**values)`.

    Figures are cached by control values and those in `prebuild` (dicts of values) are built up front, so a
    slider callback usually only sends the changed properties to the browser.
    """
    cached = functools.lru_cache(maxsize=256)(lambda items: build(**dict(items)))

    def figure(vals: dict) -> go.Figure:
        return cached(tuple(sorted(vals.items())))
    for vals in prebuild:
        figure({k: c.value for k, c in controls.items()} | vals)
    err = widgets.HTML()
    state = {"shown": figure({k: c.value for k, c in controls.items()})}
    fw = go.FigureWidget(state["shown"])

    def refresh(**values):
        vals = {k: c.value for k, c in controls.items()} | values
        try:
            fig = figure(vals)
            _swap(fw, fig, state["shown"])
            state["shown"] = fig
            err.value = ""
        except Exception as e:                       # shown inline: the kernel keeps working
            err.value = _error_box(e).value
    for c in controls.values():
        c.observe(lambda change: refresh(), names="value")
    box = widgets.VBox([widgets.HBox(list(controls.values())), err, fw, *extra])
    box.add_class(css)                               # stable hook for browser tests and styling
    box.refresh, box.figure = refresh, fw
    return box


def _record(rec_or_model, tokenizer, text):
    if isinstance(rec_or_model, rprobes.RoutingRecord):
        return rec_or_model
    if tokenizer is None or text is None:
        raise ValueError("pass a RoutingRecord, or a model together with tokenizer= and text=")
    return rprobes.routing_record(rec_or_model, tokenizer, text)


def routing_explorer(rec_or_model, tokenizer=None, text: str | None = None, width: int = 16) -> widgets.Widget:
    """Tokens coloured by their expert, one layer at a time (slider), first choice or all top-k (toggle)."""
    try:
        rec = _record(rec_or_model, tokenizer, text)
        layer = widgets.IntSlider(value=0, min=0, max=rec.n_layers - 1, description="layer", continuous_update=False)
        top = widgets.ToggleButtons(options=[("top-1", "1"), ("top-k", "k")], value="1", description="show")
        return _wire({"layer": layer, "top": top},
                     lambda layer, top: rplots.token_experts(rec, layer, top, width=width), "wb-routing-explorer",
                     prebuild=[{"layer": i, "top": t} for i in range(rec.n_layers) for t in ("1", "k")])
    except Exception as e:
        return _error_box(e)


def group_explorer(rec, key: str = "lang", groups=None) -> widgets.Widget:
    """NLLB-style heat maps for a token labelling: group x expert or group x group similarity, per layer.

    Distributions and similarities for every layer, soft/hard and cosine/JS are computed once here.
    """
    try:
        cache = {}
        for hard in (False, True):
            for metric in ("cosine", "js"):
                names, dists, sims = rprobes.similarity_stack(rec, key, metric, hard, groups)
                orders = [rprobes.cluster_order(s) for s in sims]
                cache[hard, metric] = (names, dists, sims, orders)
        layer = widgets.IntSlider(value=rec.n_layers - 1, min=0, max=rec.n_layers - 1, description="layer",
                                  continuous_update=False)
        view = widgets.ToggleButtons(options=["similarity", "group × expert"], value="similarity", description="view")
        counts = widgets.ToggleButtons(options=[("soft probs", False), ("top-k counts", True)], value=False,
                                       description="from")
        metric = widgets.ToggleButtons(options=[("cosine", "cosine"), ("1 - JS", "js")], value="cosine",
                                       description="metric")

        def build(layer, view, counts, metric):
            rec.layer_pos(layer)
            names, dists, sims, orders = cache[counts, metric]
            if view == "similarity":
                return rplots.group_similarity_heatmap(names, sims[layer], layer, metric, orders[layer])
            return rplots.group_expert_heatmap(names, dists[layer], layer, orders[layer], hard=counts,
                                               score_fn=rec.score_fn)
        return _wire({"layer": layer, "view": view, "counts": counts, "metric": metric}, build, "wb-routing-groups",
                     prebuild=[{"layer": i} for i in range(rec.n_layers)])
    except Exception as e:
        return _error_box(e)


def checkpoint_replay(records, width: int = 16) -> widgets.Widget:
    """Routing of the same text through training: a checkpoint slider and a layer slider over
    [(step, RoutingRecord)] (from routing.checkpoint_records); the title shows saturation vs the last one."""
    try:
        if not records:
            raise ValueError("no checkpoint records: pass [(step, RoutingRecord), ...]")
        final = records[-1][1]
        sat = [rprobes.router_saturation(rec, final) for _, rec in records]    # also checks compatibility
        n_layers = final.n_layers
        ckpt = widgets.SelectionSlider(options=[(str(s), i) for i, (s, _) in enumerate(records)],
                                       value=len(records) - 1, description="step", continuous_update=False)
        layer = widgets.IntSlider(value=0, min=0, max=n_layers - 1, description="layer", continuous_update=False)

        def build(ckpt, layer):
            step, rec = records[ckpt]
            fig = rplots.token_experts(rec, layer, "1", width=width)
            fig.update_layout(title_text=f"step {step}, layer {layer}: first-choice expert "
                                         f"(saturation vs final {100 * sat[ckpt][layer]:.0f}%)")
            return fig
        return _wire({"ckpt": ckpt, "layer": layer}, build, "wb-routing-replay",
                     prebuild=[{"ckpt": i} for i in range(len(records))])
    except Exception as e:
        return _error_box(e)
