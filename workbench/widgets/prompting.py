"""The prompt-style lab: the shipped grid drawn in the browser, and a live prompt preview.

`prompt_lab(table)`: pick an aspect (task type, domain, reasoning type or task) and one of its values, a
metric, and tick models and styles; the per-entity line graph, the model x style heat map and the best-style table
follow at once: every aspect value and metric of the table is in the page (`prompting_view.PromptView`), so these
controls redraw there without a kernel round trip. The preview shows, for one instance and style, the exact text
the model sees, the model's greedy output and each metric from the table; "generate live" runs the model on this
machine and shows its output beside the stored one. Changing the preview's style also rings that style on the
line graph. The returned box has `.refresh()`, `.preview()`, `.run_live()`, `.view`, the controls (the grid's are
`TraitControl`s and per-name ticks with `.value`), `.figure` / `.heatmap` (the plotly figures of what is shown,
for export) and `.best()` (the best-style table) as attributes, for tests. A reloaded page shows what the controls
say (their values are the view's traits); "save HTML" keeps the grid and its controls as one offline file.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import pandas as pd

from ..errors import describe_error
from ..evaluation.metrics import METRICS, score_output
from . import standalone
from .canvas import TraitControl
from .prompting_view import PromptView


def _error(where: str, err: Exception) -> str:
    return (f"<div style='color:#b00020;white-space:pre-wrap'><b>{html.escape(where)}:</b> "
            f"{html.escape(describe_error(err))}</div>")


def _prompt_html(prompt: str) -> str:
    shown = html.escape(prompt).replace("\n", "<span style='color:#999'>&#8629;</span>\n")
    return ("<pre class='wb-prompt' style='white-space:pre-wrap;background:#f6f6f6;padding:6px;"
            f"max-width:100%;font-size:12px'>{shown}<span style='background:#ffe08a'>&#9647;</span></pre>")


def _metrics_html(row: dict) -> str:
    cells = "".join(f"<td style='padding:0 10px'>{m}: <b>{row[m]:.2f}</b></td>" for m in METRICS)
    return f"<table><tr>{cells}</tr></table>"


def prompt_lab(table, tasks=None, load=None, models=None, styles=None) -> widgets.Widget:
    """The lab over `table` (rows of `evaluation.grid.evaluate`, e.g. `grid.load_results()`).

    `tasks`: the GenTask objects behind the table (default: the built-in suite at the table's size), for the
    preview; `load(name) -> (model, tokenizer)` for the live button (default `workbench.models.load_model`);
    `models`/`styles`: those ticked first (default: all)."""
    try:
        from ..evaluation.styles import render, style_registry
        all_models = list(pd.unique(table["model"]))
        from ..evaluation.styles import STYLES
        present = list(pd.unique(table["style"]))
        all_styles = [s for s in STYLES if s in present] + [s for s in present if s not in STYLES]   # registry order
        if tasks is None:
            from ..evaluation.suite import SUITE, builtin_suite
            per = table.groupby("task")["instance"].nunique().max()
            tasks = builtin_suite(n=int(per), names=[n for n in SUITE if n in set(table["task"])])
        by_name = {t.name: t for t in tasks}
        view = PromptView()
        view.set_table(table, all_models, all_styles, models, styles, task_order=list(by_name))
        err = widgets.HTML()
        task_pick = widgets.Dropdown(options=list(by_name), description="task")
        inst = widgets.IntSlider(value=0, min=0, max=len(tasks[0].instances) - 1, description="instance",
                                 continuous_update=False)
        style_pick = widgets.Dropdown(options=all_styles, value=all_styles[0], description="style")
        model_pick = widgets.Dropdown(options=all_models, value=all_models[0], description="model")
        prompt_box, output_box, live_box = widgets.HTML(), widgets.HTML(), widgets.HTML()
        button = widgets.Button(description="generate live", icon="play")

        def refresh(*_):
            """Ring the preview's style (everything else is drawn in the page from the view's traits)."""
            view.selected = style_pick.value

        def preview(*_):
            try:
                task = by_name[task_pick.value]
                inst.max = len(task.instances) - 1
                item = task.instances[inst.value]
                prompt_box.value = _prompt_html(render(task, item, style_registry(task)[style_pick.value]))
                row = table[(table["model"] == model_pick.value) & (table["task"] == task.name)
                            & (table["style"] == style_pick.value) & (table["instance"] == item.id)]
                refs = " | ".join(item.references)
                if row.empty:
                    output_box.value = f"<i>not in the table</i>; references: {html.escape(refs)}"
                else:
                    r = row.iloc[0].to_dict()
                    note = " <i>(cut at max length)</i>" if r["hit_max"] else ""
                    output_box.value = (f"<b>{html.escape(model_pick.value)}</b> (stored greedy output): "
                                        f"<code>{html.escape(str(r['output']))}</code>{note}<br>references: "
                                        f"{html.escape(refs)}" + _metrics_html(r))
                live_box.value = ""
                err.value = ""
            except Exception as e:
                err.value = _error("prompt preview", e)

        cache = {}

        def run_live(*_):
            from ..evaluation.generation import generate_batch
            button.disabled = True
            try:
                task = by_name[task_pick.value]
                item = task.instances[inst.value]
                if model_pick.value not in cache:
                    cache[model_pick.value] = (load or _load)(model_pick.value)
                model, tok = cache[model_pick.value]
                g = generate_batch(model, tok, [render(task, item, style_pick.value)], task.stop,
                                   task.max_new_tokens)[0]
                m = score_output(g.text.strip(), item.references, item.required, item.forbidden)
                live_box.value = (f"<b>live</b>: <code>{html.escape(g.text.strip())}</code> (raw "
                                  f"<code>{html.escape(g.raw)}</code>)" + _metrics_html(m))
                err.value = ""
            except Exception as e:
                err.value = _error("live generation", e)
            finally:
                button.disabled = False

        def on_style(*_):
            preview()
            refresh()

        for c in (task_pick, inst, model_pick):
            c.observe(preview, names="value")
        style_pick.observe(on_style, names="value")
        button.on_click(run_live)
        box = _LabBox([view, standalone.save_html_row(view.to_html, "prompt_styles.html"), err,
                       widgets.HTML("<h4>Prompt preview</h4>"), widgets.HBox([task_pick, inst]),
                       widgets.HBox([style_pick, model_pick, button]), prompt_box, output_box, live_box])
        box.add_class("wb-prompt-lab")
        refresh()
        preview()
        box.refresh, box.preview, box.run_live, box.view, box.err = refresh, preview, run_live, view, err
        box.controls = dict(aspect=TraitControl(view, "aspect"), entity=_Values(view),
                            metric=TraitControl(view, "metric"), task=task_pick, instance=inst, style=style_pick,
                            model=model_pick,
                            models={m: _Tick(view, "models", m) for m in all_models},
                            styles={s: _Tick(view, "styles", s) for s in all_styles})
        box.prompt, box.output, box.live = prompt_box, output_box, live_box
        return box
    except Exception as e:
        return widgets.HTML(_error("prompt-style lab", e))


class _LabBox(widgets.VBox):
    """The lab's box; `.figure` / `.heatmap` are the plotly figures of the line graph and heat map shown now."""
    figure = property(lambda self: self.view.figures()["lines"])
    heatmap = property(lambda self: self.view.figures()["heatmap"])

    def best(self):
        """The best-style table shown (DataFrame: model, best_style, score, runner_up, runner_up_score, margin)."""
        return self.view.best()


class _Values(TraitControl):
    """The aspect's value control: `.value` and `.options` (the values of the current aspect)."""

    def __init__(self, view):
        self.widget, self.trait, self._max_fn = view, "entity", None

    @property
    def options(self) -> list:
        return list(self.widget.data["values"][self.widget.aspect])


class _Tick:
    """One model's (or style's) tick in the view, as a checkbox: `.value` True when `name` is in view.<trait>."""

    def __init__(self, view, trait: str, name: str):
        self.view, self.trait, self.name = view, trait, name

    @property
    def value(self) -> bool:
        return self.name in getattr(self.view, self.trait)

    @value.setter
    def value(self, on: bool) -> None:
        cur = [x for x in getattr(self.view, self.trait) if x != self.name]
        setattr(self.view, self.trait, [x for x in self.view.data[self.trait] if x in cur or (on and x == self.name)])


def _load(name: str):
    from ..models import load_model
    return load_model(name, trust_remote_code=False)
