"""The prompt-style lab: the shipped grid under dropdowns and checkboxes, and a live prompt preview.

`prompt_lab(table)`: pick an aspect (task type, domain, reasoning type or task) and one of its values, a
metric, and tick models and styles; the per-entity line graph (`plots.prompting.style_lines`), the model x
style heat map and the best-style table follow (no model runs in those callbacks: the table holds every
output). The preview shows, for one instance and style, the exact text the model sees, the model's greedy
output and each metric from the table; "generate live" runs the model on this machine and shows its output
beside the stored one. Changing the preview's style also rings that style on the line graph.
The returned box has `.refresh()`, `.preview()`, `.run_live()`, the controls, and `.figure` / `.heatmap` (the
figures shown now) as attributes, for tests. The figures are shown through `ipywidgets.Output`s
(`figure_output.FigureOutput`), whose state is the figure itself, so a reloaded page shows what the controls say.
"""
from __future__ import annotations

import html

import ipywidgets as widgets

from ..errors import describe_error
from ..evaluation.metrics import METRICS, score_output
from ..evaluation.summary import ASPECT_NAMES, aspect_scores, best_style
from ..plots.prompting import style_heatmap, style_lines
from .figure_output import FigureOutput


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
        all_models = list(dict.fromkeys(table["model"]))
        from ..evaluation.styles import STYLES
        present = list(dict.fromkeys(table["style"]))
        all_styles = [s for s in STYLES if s in present] + [s for s in present if s not in STYLES]   # registry order
        if tasks is None:
            from ..evaluation.suite import SUITE, builtin_suite
            per = table.groupby("task")["instance"].nunique().max()
            tasks = builtin_suite(n=int(per), names=[n for n in SUITE if n in set(table["task"])])
        by_name = {t.name: t for t in tasks}
        aspect = widgets.Dropdown(options=[(v, k) for k, v in ASPECT_NAMES.items()], value="task_type",
                                  description="aspect")
        entity = widgets.Dropdown(description="value")
        metric = widgets.Dropdown(options=list(METRICS), value="judge", description="metric")
        model_boxes = {m: widgets.Checkbox(value=models is None or m in models, description=m, indent=False,
                                           layout=widgets.Layout(width="130px")) for m in all_models}
        style_boxes = {s: widgets.Checkbox(value=styles is None or s in styles, description=s, indent=False,
                                           layout=widgets.Layout(width="150px")) for s in all_styles}
        err, best = widgets.HTML(), widgets.HTML()
        task_pick = widgets.Dropdown(options=list(by_name), description="task")
        inst = widgets.IntSlider(value=0, min=0, max=len(tasks[0].instances) - 1, description="instance",
                                 continuous_update=False)
        style_pick = widgets.Dropdown(options=all_styles, value=all_styles[0], description="style")
        model_pick = widgets.Dropdown(options=all_models, value=all_models[0], description="model")
        prompt_box, output_box, live_box = widgets.HTML(), widgets.HTML(), widgets.HTML()
        button = widgets.Button(description="generate live", icon="play")

        def chosen(boxes):
            return [k for k, b in boxes.items() if b.value]

        rank = {name: k for k, name in enumerate(by_name)}            # the suite's order, not the table's

        def set_entities():
            first = table.groupby(aspect.value, sort=False)["task"].agg(lambda ts: min(rank.get(t, 99) for t in ts))
            values = list(first.sort_values(kind="stable").index)
            entity.options = values
            entity.value = values[0]

        def figures():
            ms, ss = chosen(model_boxes), chosen(style_boxes)
            sub = table[(table[aspect.value] == entity.value) & table["model"].isin(ms) & table["style"].isin(ss)]
            scores = aspect_scores(sub, aspect.value, metric.value, n_boot=200)
            name = f"{ASPECT_NAMES[aspect.value]} = {entity.value}"
            lines = style_lines(scores, ss, ms, metric.value, f"{name}: {metric.value} across prompt styles",
                                selected=style_pick.value)
            heat = style_heatmap(scores, ss, ms, metric.value, f"{name}: model x style")
            return lines, heat, best_style(sub, aspect.value, metric.value)

        set_entities()
        out_lines, out_heat = FigureOutput(), FigureOutput()     # Outputs, not FigureWidgets: survive a reload

        def refresh(*_):
            try:
                if not chosen(model_boxes) or not chosen(style_boxes):
                    raise ValueError("tick at least one model and one style")
                lines, heat, table_best = figures()
                out_lines.show(lines)
                out_heat.show(heat)
                best.value = ("<b>Best style per model</b> (runner-up and the margin between them)"
                              + table_best.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0))
                err.value = ""
            except Exception as e:                 # shown inline: the kernel keeps working
                err.value = _error("prompt-style lab", e)

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

        aspect.observe(lambda c: (set_entities(), refresh()), names="value")
        for c in (entity, metric, *model_boxes.values(), *style_boxes.values()):
            c.observe(refresh, names="value")
        for c in (task_pick, inst, model_pick):
            c.observe(preview, names="value")
        style_pick.observe(on_style, names="value")
        button.on_click(run_live)
        grid_boxes = widgets.VBox([
            widgets.HTML("<b>models</b>"), widgets.HBox(list(model_boxes.values()),
                                                        layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HTML("<b>styles</b>"), widgets.HBox(list(style_boxes.values()),
                                                        layout=widgets.Layout(flex_flow="row wrap"))])
        box = _LabBox([widgets.HBox([aspect, entity, metric]), grid_boxes, err, out_lines, out_heat, best,
                       widgets.HTML("<h4>Prompt preview</h4>"), widgets.HBox([task_pick, inst]),
                       widgets.HBox([style_pick, model_pick, button]), prompt_box, output_box, live_box])
        box.add_class("wb-prompt-lab")
        refresh()
        preview()
        box.refresh, box.preview, box.run_live = refresh, preview, run_live
        box.figure_outputs = {"lines": out_lines, "heatmap": out_heat}
        box.controls = dict(aspect=aspect, entity=entity, metric=metric, task=task_pick, instance=inst,
                            style=style_pick, model=model_pick, models=model_boxes, styles=style_boxes)
        box.prompt, box.output, box.live = prompt_box, output_box, live_box
        return box
    except Exception as e:
        return widgets.HTML(_error("prompt-style lab", e))


class _LabBox(widgets.VBox):
    """The lab's box; `.figure` / `.heatmap` are the line graph and heat map shown now (go.Figure)."""
    figure = property(lambda self: self.figure_outputs["lines"].figure)
    heatmap = property(lambda self: self.figure_outputs["heatmap"].figure)


def _load(name: str):
    from ..models import load_model
    return load_model(name, trust_remote_code=False)
