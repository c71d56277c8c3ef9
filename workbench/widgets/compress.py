"""The compression lab: the shipped Pareto table under sliders, and one variant computed live on demand.

`compress_lab(table)`: pick a model and the two axes; the sparsity and bit-width sliders ring the matching
precomputed variants on the Pareto chart (`workbench.plots.compress.pareto_chart`) and list their measurements
(no model runs in those callbacks). The live row prunes the model to any sparsity on this machine, measures it
quickly (validation loss on 20 held-out documents, 4 sampled stories) and adds it to the chart as "live",
with a story from the original and one from the pruned model side by side. Errors show inline.
The returned box has `.refresh(**controls)` (the slider callback) and `.run_live(sparsity)` (the button's).
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..errors import describe_error
from ..plots.compress import LABELS, pareto_chart
from .routing import _swap

COSTS = ["disk_mb", "weights_mb", "ms_per_token_1t", "ms_per_token_2t", "nonzero"]
SHOWN = ["method", "setting", "disk_mb", "ms_per_token_1t", "val_loss", "well_formed"]
BITS = {"32": ("original", ""), "8": ("quantize", "int8-weight"), "4": ("quantize", "int4-weight")}


def _error(where: str, err: Exception) -> str:
    return (f"<div style='color:#b00020;white-space:pre-wrap'><b>{html.escape(where)}:</b> "
            f"{html.escape(describe_error(err))}</div>")


def _rows_html(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "<i>no precomputed variant matches these settings for this model</i>"
    cols = [c for c in SHOWN if c in rows] + [c for c in rows if c.startswith("acc:")]
    return rows[cols].to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0)


def _story_pair(a: str, b: str, label_b: str) -> str:
    cell = "<td style='vertical-align:top;width:50%;padding:4px 8px;white-space:pre-wrap'>{}</td>"
    return ("<table style='width:100%;table-layout:fixed'><tr><th>original</th><th>" + html.escape(label_b)
            + "</th></tr><tr>" + cell.format(html.escape(a)) + cell.format(html.escape(b)) + "</tr></table>")


def compress_lab(table: pd.DataFrame, model: str | None = None, load=None) -> widgets.Widget:
    """The lab over `table` (rows of `workbench.compress.measure.measure`, e.g. `variants.load_results()`).

    `model`: the model shown first; `load(name) -> (model, tokenizer)` for the live row (default
    `workbench.models.load_model`)."""
    try:
        names = list(dict.fromkeys(table["model"]))
        qualities = ["val_loss", "well_formed"] + [c for c in table if c.startswith("acc:")]
        pick = widgets.Dropdown(options=names, value=model or names[0], description="model")
        x = widgets.Dropdown(options=[(LABELS.get(c, c), c) for c in COSTS if c in table], value="disk_mb",
                             description="cost")
        y = widgets.Dropdown(options=[(LABELS.get(c, c), c) for c in qualities if c in table], value="val_loss",
                             description="quality")
        sparsity = widgets.SelectionSlider(options=["0", "0.3", "0.5", "0.7"], value="0", description="sparsity",
                                           continuous_update=False)
        bits = widgets.SelectionSlider(options=list(BITS), value="32", description="bits", continuous_update=False)
        err, info, stories = widgets.HTML(), widgets.HTML(), widgets.HTML()
        live_rows: dict[str, list[dict]] = {}

        def selected(name, sp, b):
            return {("original", "") if sp == "0" else ("magnitude", sp), BITS[b]}

        def build(name, xc, yc, sp, b) -> go.Figure:
            rows = pd.concat([table[table["model"] == name], pd.DataFrame(live_rows.get(name, []))],
                             ignore_index=True)
            return pareto_chart(rows, xc, yc, title=f"{name}: {LABELS.get(yc, yc)} vs {LABELS.get(xc, xc)}",
                                highlight=selected(name, sp, b))
        state = {"shown": build(pick.value, x.value, y.value, sparsity.value, bits.value)}
        fw = go.FigureWidget(state["shown"])

        def refresh(**values):
            v = {"name": pick.value, "xc": x.value, "yc": y.value, "sp": sparsity.value, "b": bits.value} | values
            try:
                fig = build(**v)
                _swap(fw, fig, state["shown"])
                state["shown"] = fig
                sel = selected(v["name"], v["sp"], v["b"])
                chosen = np.array([(m, str(s)) in sel for m, s in zip(table["method"], table["setting"])], dtype=bool)
                rows = table[(table["model"] == v["name"]).to_numpy() & chosen]
                info.value, err.value = _rows_html(rows), ""
            except Exception as e:                   # shown inline: the kernel keeps working
                err.value = _error("compression lab", e)
        for c in (pick, x, y, sparsity, bits):
            c.observe(lambda change: refresh(), names="value")

        live = widgets.FloatSlider(value=0.6, min=0.1, max=0.9, step=0.1, description="live sparsity",
                                   continuous_update=False, readout_format=".1f")
        button = widgets.Button(description="prune live and compare", icon="play",
                                layout=widgets.Layout(width="240px"))
        cache = {}

        def run_live(value: float | None = None):
            from ..compress import magnitude_prune
            from ..compress.measure import measure
            from ..train.generate import generate
            value = round(float(live.value if value is None else value), 2)
            button.disabled, err.value = True, ""
            try:
                name = pick.value
                if name not in cache:
                    cache[name] = (load or _load)(name)
                base, tok = cache[name]
                pruned, _ = magnitude_prune(base, value)
                row = measure(pruned, tok, name, "live magnitude", f"{value:g}", tasks=(), n_val=20, n_stories=4,
                              threads=(1,), repeats=2)
                live_rows.setdefault(name, []).append(row)
                a, b = (generate(m, tok, "Once upon a time", n=1, temperature=0.8, max_new_tokens=96, seed=0)[0]
                        for m in (base, pruned))
                stories.value = _story_pair(a, b, f"{value:.0%} of the weights pruned (val loss "
                                                  f"{row['val_loss']:.3f}, well_formed {row['well_formed']:.2f})")
                refresh()
            except Exception as e:
                err.value = _error("live pruning", e)
            finally:
                button.disabled = False
        button.on_click(lambda _: run_live())

        box = widgets.VBox([widgets.HBox([pick, x, y]), widgets.HBox([sparsity, bits]), err, fw, info,
                            widgets.HBox([live, button]), stories])
        box.add_class("wb-compress-lab")
        refresh()
        box.refresh, box.run_live, box.figure = refresh, run_live, fw
        return box
    except Exception as e:
        return widgets.HTML(_error("compression lab", e))


def _load(name: str):
    from ..models import load_model
    return load_model(name)
