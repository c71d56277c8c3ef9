"""MoE routing widgets: client-side views of records computed up front, with errors shown inline.

Here: `routing_explorer` (tokens coloured by expert; layer slider, top-1/top-k toggle), `group_explorer`
(group x expert and group-similarity heat maps; layer slider, soft/hard, cosine/JS), `checkpoint_replay`
(routing through training: step and layer sliders). The data of every layer (and checkpoint) goes to the
browser once, and the controls redraw there (`routing_view`: TokenExpertView, FramesView): no Python runs
on a control change, and a reloaded page shows what the controls say.
Each returned box has `.view` (the anywidget; its control values are traits) and `.refresh(**controls)`, which
sets controls from Python and shows a bad value's error inline (used by tests and bench/bench_routing.py), and
`.to_html(path)` (also a "save HTML" button): the view as one HTML file whose controls work offline, no kernel.
Not here: statistics (`workbench.probes.routing`), figures for export (`workbench.plots.routing`).
"""
from __future__ import annotations

import html
import itertools

import ipywidgets as widgets

from ..errors import describe_error
from ..plots import routing as rplots
from ..probes import routing as rprobes
from .routing_view import FramesView, TokenExpertView, frame_key, heatmap_frame
from .standalone import save_html_row


def _error_box(err: Exception) -> widgets.HTML:
    return widgets.HTML(f"<div style='color:#b00020;white-space:pre-wrap'><b>routing explorer:</b> "
                        f"{html.escape(describe_error(err))}</div>")


def _box(view, css: str, check=None, filename: str = "routing.html") -> widgets.VBox:
    """VBox(view, error line, "save HTML" row) with `.view`, `.refresh(**controls)` and `.to_html(path)` (the view
    as one offline HTML file; the button writes `filename` under the working directory unless another name is
    typed); `check(values)` raises for bad values."""
    err = widgets.HTML()

    def refresh(**values):
        try:
            if check is not None:
                check(values)
            if isinstance(view, FramesView):
                view.set_values(**values)
            else:
                with view.hold_sync():
                    for name, value in values.items():
                        setattr(view, name, value)
            err.value = ""
        except Exception as e:                       # shown inline: the kernel keeps working
            err.value = _error_box(e).value
    save = save_html_row(view.to_html, filename)
    box = widgets.VBox([view, err, save])
    box.add_class(css)                               # stable hook for browser tests and styling
    box.view, box.refresh, box.to_html, box.save = view, refresh, view.to_html, save
    return box


def _check_layer(rec):
    return lambda values: rec.layer_pos(values["layer"]) if "layer" in values else None


def _record(rec_or_model, tokenizer, text):
    if isinstance(rec_or_model, rprobes.RoutingRecord):
        return rec_or_model
    if tokenizer is None or text is None:
        raise ValueError("pass a RoutingRecord, or a model together with tokenizer= and text=")
    return rprobes.routing_record(rec_or_model, tokenizer, text)


def routing_explorer(rec_or_model, tokenizer=None, text: str | None = None, width: int = 16,
                     max_tokens: int = 512) -> widgets.Widget:
    """Tokens coloured by their expert, one layer at a time (slider), first choice or all top-k (toggle).

    Shows the first `max_tokens` tokens; the browser holds every layer (see routing_view for the bytes).
    Returns a box (`.view`: TokenExpertView, `.refresh(layer=.., top="1"|"k")`), or an error box (HTML)."""
    try:
        rec = _record(rec_or_model, tokenizer, text)
        view = TokenExpertView.from_records([rec], width=width, max_tokens=max_tokens)
        return _box(view, "wb-routing-explorer", _check_layer(rec), "routing_tokens.html")
    except Exception as e:
        return _error_box(e)


def group_explorer(rec, key: str = "lang", groups=None) -> widgets.Widget:
    """NLLB-style heat maps for a token labelling: group x expert or group x group similarity, per layer.

    Every layer x view x soft/hard x metric is computed once here and sent to the browser as one heat map each
    (FramesView); the controls pick one there. Returns a box (`.view`, `.refresh(layer=.., view=.., counts=..,
    metric=..)`), or an error box (HTML)."""
    try:
        cache = {}
        for hard in (False, True):
            for metric in ("cosine", "js"):
                names, dists, sims = rprobes.similarity_stack(rec, key, metric, hard, groups)
                orders = [rprobes.cluster_order(s) for s in sims]
                cache[hard, metric] = (names, dists, sims, orders)

        def build(layer, view, counts, metric):
            names, dists, sims, orders = cache[counts, metric]
            if view == "similarity":
                return rplots.group_similarity_heatmap(names, sims[layer], layer, metric, orders[layer])
            return rplots.group_expert_heatmap(names, dists[layer], layer, orders[layer], hard=counts,
                                               score_fn=rec.score_fn)
        controls = [
            {"name": "layer", "kind": "slider", "label": "layer", "min": 0, "max": rec.n_layers - 1},
            {"name": "view", "kind": "toggle", "label": "view",
             "options": [["similarity", "similarity"], ["group × expert", "group × expert"]]},
            {"name": "counts", "kind": "toggle", "label": "from", "options": [["soft probs", False],
                                                                            ["top-k counts", True]]},
            {"name": "metric", "kind": "toggle", "label": "metric",
             "options": [["cosine", "cosine"], ["1 - JS", "js"]]}]
        frames = {}
        for layer, view, counts, metric in itertools.product(range(rec.n_layers), ("similarity", "group × expert"),
                                                            (False, True), ("cosine", "js")):
            values = {"layer": layer, "view": view, "counts": counts, "metric": metric}
            frames[frame_key(controls, values)] = heatmap_frame(build(**values))
        view = FramesView(controls=controls, frames=frames,
                          values={"layer": rec.n_layers - 1, "view": "similarity", "counts": False, "metric": "cosine"})
        return _box(view, "wb-routing-groups", _check_layer(rec), "routing_groups.html")
    except Exception as e:
        return _error_box(e)


def checkpoint_replay(records, width: int = 16) -> widgets.Widget:
    """Routing of the same text through training: a checkpoint slider and a layer slider over
    [(step, RoutingRecord)] (from routing.checkpoint_records); the title shows saturation vs the last one.
    Returns a box (`.view`: TokenExpertView in replay mode, `.refresh(ckpt=i, layer=..)`), or an error box."""
    try:
        if not records:
            raise ValueError("no checkpoint records: pass [(step, RoutingRecord), ...]")
        final = records[-1][1]
        sat = [rprobes.router_saturation(rec, final) for _, rec in records]    # also checks compatibility
        view = TokenExpertView.from_records([rec for _, rec in records], steps=[s for s, _ in records],
                                            saturation=sat, width=width)
        return _box(view, "wb-routing-replay", _check_layer(final), "routing_replay.html")
    except Exception as e:
        return _error_box(e)
