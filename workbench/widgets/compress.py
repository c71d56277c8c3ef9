"""The compression lab: the shipped Pareto table under sliders, and one variant computed live on demand.

`compress_lab(table, lora=...)`: pick a model and the two axes; four sliders ring the matching precomputed rows on
the Pareto chart (`workbench.plots.compress.pareto_chart`) and list their measurements (no model runs in those
callbacks): **sparsity** (magnitude pruning), **bits** (torchao weight quantization), **student** (a smaller member
of the family, the student the model could be replaced by) and **LoRA rank** (LoRA and full fine-tuning on a
labelled task, from `bench/bench_lora.py`: accuracy as the mean over seeds with its 95% interval). A slider whose
rows the chosen axes cannot show moves the axes to its own: size and validation loss for the first three,
adapter size and the task's accuracy for LoRA. The live row prunes the model to any sparsity on this machine,
measures it quickly (validation loss on 20 held-out documents, 4 sampled stories) and adds it to the chart as
"live", with a story from the original and one from the pruned model side by side. Errors show inline.
The returned box has `.refresh(**controls)` (the slider callback), `.run_live(sparsity)` (the button's),
`.sliders` (name -> slider) and `.figure` (the `go.Figure` shown now). The chart is a `FigureOutput` (its state is
the figure last drawn, so a reloaded tab or a Voila page rings what the sliders say), not a plotly FigureWidget,
whose widget state carries plotly.js itself (about 5 MB with plotly 7).
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..errors import describe_error
from ..plots.compress import LABELS, pareto_chart
from .figure_output import FigureOutput

COSTS = ["disk_mb", "weights_mb", "peak_mb", "ms_per_token_1t", "ms_per_token_2t", "nonzero", "adapter_kb",
         "trainable"]
SHOWN = ["method", "setting", "task", "disk_mb", "peak_mb", "ms_per_token_1t", "val_loss", "well_formed",
         "trainable", "adapter_kb"]
BITS = {"32": ("original", ""), "8": ("quantize", "int8-weight"), "4": ("quantize", "int4-weight")}
MEMBER = "smaller member"                   # the method name of the student rows (bench/bench_compress.py)
NONE = "none"


class _LabBox(widgets.VBox):
    """The lab's box; `.figure` is the chart's `go.Figure` shown now."""

    @property
    def figure(self) -> go.Figure:
        return self.chart.figure


def _error(where: str, err: Exception) -> str:
    return (f"<div style='color:#b00020;white-space:pre-wrap'><b>{html.escape(where)}:</b> "
            f"{html.escape(describe_error(err))}</div>")


def _rows_html(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "<i>no precomputed variant matches these settings for this model</i>"
    cols = [c for c in SHOWN if c in rows] + [c for c in rows if c.startswith("acc:")] + \
        [c for c in ("ci_low", "ci_high", "seeds", "vs_full", "vs_full_low", "vs_full_high") if c in rows]
    cols = [c for c in cols if rows[c].notna().any() and (rows[c].astype(str) != "").any() or c in SHOWN[:2]]
    return rows[cols].to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, na_rep="")


def _story_pair(a: str, b: str, label_b: str) -> str:
    cell = "<td style='vertical-align:top;width:50%;padding:4px 8px;white-space:pre-wrap'>{}</td>"
    return ("<table style='width:100%;table-layout:fixed'><tr><th>original</th><th>" + html.escape(label_b)
            + "</th></tr><tr>" + cell.format(html.escape(a)) + cell.format(html.escape(b)) + "</tr></table>")


def _lora_table():
    from ..compress.variants import load_lora_results
    try:
        return load_lora_results()
    except FileNotFoundError:
        return pd.DataFrame(columns=["model", "method", "setting"])


def compress_lab(table: pd.DataFrame, model: str | None = None, load=None, lora: pd.DataFrame | None = None
                 ) -> widgets.Widget:
    """The lab over `table` (rows of `workbench.compress.measure.measure`, e.g. `variants.load_results()`).

    `model`: the model shown first; `load(name) -> (model, tokenizer)` for the live row (default
    `workbench.models.load_model`); `lora`: the LoRA rows (default the shipped `variants.load_lora_results()`,
    none when that file is missing)."""
    try:
        lora = _lora_table() if lora is None else lora
        both = pd.concat([table, lora], ignore_index=True)
        names = list(dict.fromkeys(list(table["model"]) + list(lora["model"])))
        qualities = ["val_loss", "well_formed"] + [c for c in both if c.startswith("acc:")]
        pick = widgets.Dropdown(options=names, value=model or names[0], description="model")
        x = widgets.Dropdown(options=[(LABELS.get(c, c), c) for c in COSTS if c in both], value="disk_mb",
                             description="cost")
        y = widgets.Dropdown(options=[(LABELS.get(c, c), c) for c in qualities if c in both], value="val_loss",
                             description="quality")
        sparsity = widgets.SelectionSlider(options=["0", "0.3", "0.5", "0.7"], value="0", description="sparsity",
                                           continuous_update=False)
        bits = widgets.SelectionSlider(options=list(BITS), value="32", description="bits", continuous_update=False)
        student = widgets.SelectionSlider(options=[NONE], value=NONE, description="student",
                                          continuous_update=False)
        rank = widgets.SelectionSlider(options=[NONE], value=NONE, description="LoRA rank", continuous_update=False)
        err, info, stories = widgets.HTML(), widgets.HTML(), widgets.HTML()
        live_rows: dict[str, list[dict]] = {}
        busy = {"on": False}                      # set while the lab moves its own controls

        def members(name):
            return list(dict.fromkeys(both.loc[(both["model"] == name) & (both["method"] == MEMBER), "setting"]))

        def ranks(name):
            r = lora[lora["model"] == name] if len(lora) else lora
            found = sorted({int(s.split()[-1]) for s in r.get("setting", []) if str(s).startswith("rank ")})
            return [str(k) for k in found] + (["full"] if (r.get("method", pd.Series()) == "full fine-tuning").any()
                                              else [])

        def selected(sp, b, st, r) -> set:
            sel = {("original", "") if sp == "0" else ("magnitude", sp), BITS[b]}
            if st != NONE:
                sel.add((MEMBER, st))
            if r == "full":
                sel.add(("full fine-tuning", ""))
            elif r != NONE:
                sel.add(("LoRA", f"rank {r}"))
            return sel

        def rows_of(name) -> pd.DataFrame:
            return pd.concat([both[both["model"] == name], pd.DataFrame(live_rows.get(name, []))], ignore_index=True)

        def build(name, xc, yc, sp, b, st, r) -> go.Figure:
            return pareto_chart(rows_of(name), xc, yc, title=f"{name}: {LABELS.get(yc, yc)} vs {LABELS.get(xc, xc)}",
                                highlight=selected(sp, b, st, r))

        def values(**over) -> dict:
            return {"name": pick.value, "xc": x.value, "yc": y.value, "sp": sparsity.value, "b": bits.value,
                    "st": student.value, "r": rank.value} | over
        chart = FigureOutput(build(**values()))

        def refresh(**over):
            if busy["on"]:
                return
            v = values(**over)
            try:
                chart.show(build(**v))
                sel = selected(v["sp"], v["b"], v["st"], v["r"])
                rows = rows_of(v["name"])
                chosen = np.array([(m, str(s)) in sel for m, s in zip(rows["method"], rows["setting"].fillna(""))],
                                  dtype=bool)
                info.value, err.value = _rows_html(rows[chosen]), ""
            except Exception as e:                   # shown inline: the kernel keeps working
                err.value = _error("compression lab", e)

        def set_quietly(**controls):
            busy["on"] = True
            try:
                for widget, value in controls.items():
                    if value is not None:
                        {"x": x, "y": y, "student": student, "rank": rank}[widget].value = value
            finally:
                busy["on"] = False

        def follow(kind: str):
            """Move the axes to the slider's own when none of its rows can be drawn on the chosen ones."""
            rows = rows_of(pick.value)
            sel = {"rank": selected("0", "32", NONE, rank.value) - {("original", ""), BITS["32"]},
                   "student": {(MEMBER, student.value)}}.get(kind, selected(sparsity.value, bits.value, NONE, NONE))
            mine = rows[[(m, str(s)) in sel for m, s in zip(rows["method"], rows["setting"].fillna(""))]]
            if mine.empty or mine[[x.value, y.value]].notna().all(axis=1).any():
                return
            if kind == "rank":
                accs = [c for c in mine if c.startswith("acc:") and mine[c].notna().any()]
                set_quietly(x="adapter_kb", y=y.value if y.value in accs else accs[0])
            else:
                set_quietly(x="disk_mb", y="val_loss")

        def on_model(_=None):
            busy["on"] = True
            try:
                student.options, rank.options = [NONE] + members(pick.value), [NONE] + ranks(pick.value)
                student.value, rank.value = NONE, NONE
            finally:
                busy["on"] = False
            student.disabled, rank.disabled = len(student.options) == 1, len(rank.options) == 1
            rows = rows_of(pick.value)
            if not rows[[x.value, y.value]].notna().all(axis=1).any():       # nothing to draw on these axes
                accs = [c for c in rows if c.startswith("acc:") and rows[c].notna().any()]
                lora_only = rows["val_loss"].isna().all() if "val_loss" in rows else True
                set_quietly(x="adapter_kb" if lora_only and accs else "disk_mb",
                            y=accs[0] if lora_only and accs else "val_loss")
            refresh()
        pick.observe(on_model, names="value")
        for c in (x, y):
            c.observe(lambda change: refresh(), names="value")
        for kind, c in (("sparsity", sparsity), ("bits", bits), ("student", student), ("rank", rank)):
            c.observe(lambda change, kind=kind: None if busy["on"] else (follow(kind), refresh()), names="value")

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
                set_quietly(x=None if x.value in row else "disk_mb", y=None if y.value in row else "val_loss")
                refresh()
            except Exception as e:
                err.value = _error("live pruning", e)
            finally:
                button.disabled = False
        button.on_click(lambda _: run_live())

        sliders = {"sparsity": sparsity, "bits": bits, "student": student, "rank": rank}
        box = _LabBox([widgets.HBox([pick, x, y]), widgets.VBox([widgets.HBox([sparsity, bits]),
                                                                      widgets.HBox([student, rank])]),
                            err, chart, info, widgets.HBox([live, button]), stories])
        box.add_class("wb-compress-lab")
        on_model()
        box.refresh, box.run_live, box.sliders, box.chart = refresh, run_live, sliders, chart
        return box
    except Exception as e:
        return widgets.HTML(_error("compression lab", e))


def _load(name: str):
    from ..models import load_model
    return load_model(name)
