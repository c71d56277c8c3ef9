"""The prompt-style lab's grid drawn in the browser: every aspect value and metric sent once, the controls there.

Here: `PromptView` (an anywidget; JavaScript in js/charts.js and js/prompting.js) and `grid_payload(table)`, the
data it holds. For every aspect (task type, domain, reasoning type, task), each of its values and each metric, the
browser gets every (model, style) cell's mean score with its 95 % bootstrap interval over instances
(`evaluation.summary.aspect_scores`) and its row mean (what `summary.best_style` ranks). The controls that only
pick what to show run in the page, with no kernel round trip:
    aspect, entity   the aspect and one of its values
    metric           one of evaluation.metrics.METRICS present in the table
    models, styles   the ticked models and styles (lists of names)
    selected         the style ringed on the line graph (the lab's preview sets it)
Their values are synced traits: Python reads them, a reloaded page restores them, and setting one to a value the
table does not have raises traitlets.TraitError naming the valid ones. `figures()` returns the same pictures as
plotly figures (workbench.plots.prompting, for export); `to_html(path)` saves the view as one offline HTML file.

Memory held by the browser, as JSON: 4 numbers per (aspect value, metric, model, style): 26 aspect values x
4 metrics x 11 models x 9 styles is about 41,000 numbers, some 300 KiB.
Not here: the preview and live generation (`workbench.widgets.prompting`), computing the grid
(`workbench.evaluation.grid`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import traitlets as T

from ..evaluation.metrics import METRICS
from ..evaluation.summary import ASPECT_NAMES, aspect_scores_many, best_style
from ..plots.prompting import METRIC_NAMES, _base_colours, style_heatmap, style_lines
from . import standalone
from .canvas import BaseView, CSS, colorscale_stops, esm


def _matrices(frame: pd.DataFrame, by: str, cols, models, styles) -> dict:
    """{value of `by`: {col: (models x styles) list of lists}} of frame's rows (columns model, style, by, *cols);
    None where there is no cell; 4 decimals."""
    mi, si = {m: k for k, m in enumerate(models)}, {s: k for k, s in enumerate(styles)}
    i, j = frame["model"].map(mi).to_numpy(), frame["style"].map(si).to_numpy()
    keep = ~(pd.isna(i) | pd.isna(j))
    out = {}
    for value, rows in frame[keep].groupby(by, sort=False).indices.items():
        ii, jj = i[keep][rows].astype(int), j[keep][rows].astype(int)
        out[str(value)] = {}
        for c in cols:
            z = np.full((len(models), len(styles)), np.nan)
            z[ii, jj] = frame[c].to_numpy(dtype=float)[keep][rows]
            out[str(value)][c] = [[None if v != v else round(float(v), 4) for v in row] for row in z]
    return out


def _unique(col: pd.Series) -> list:
    """The values of a column in order of first appearance (fast on Arrow-backed strings)."""
    return [v.item() if hasattr(v, "item") else v for v in pd.unique(col)]


def aspect_values(table: pd.DataFrame, aspect: str, task_order=None) -> list:
    """The values of `aspect` in the order of the first task (in `task_order`, else the table's) that has each."""
    rank = {t: k for k, t in enumerate(task_order or _unique(table["task"]))}
    pairs = table[list(dict.fromkeys([aspect, "task"]))].drop_duplicates()
    if aspect == "task":
        first = pd.Series([rank.get(t, 10 ** 6) for t in pairs["task"]], index=pairs["task"].to_numpy())
    else:
        first = pairs.groupby(aspect, sort=False)["task"].agg(lambda ts: min(rank.get(t, 10 ** 6) for t in ts))
    return [v.item() if hasattr(v, "item") else v for v in first.sort_values(kind="stable").index]


def grid_payload(table: pd.DataFrame, models=None, styles=None, task_order=None, n_boot: int = 200) -> dict:
    """The `data` trait of a PromptView (JSON-safe): aspects [[label, key]], values {aspect: [...]}, metrics,
    models, styles (in these orders), colors {model: colour}, tie_rank {style: first row in the table},
    cells {aspect: {value: {metric: {mean, low, high, rowmean: (models x styles)}}}}, aspect_names, metric_names,
    stops (Viridis). KeyError naming a missing column."""
    missing = [c for c in ("model", "style", "task", "instance") if c not in table.columns]
    if missing:
        raise KeyError(f"the results table has no column(s) {missing}: use the rows of evaluation.grid.evaluate")
    models = list(models or _unique(table["model"]))
    styles = list(styles or _unique(table["style"]))
    aspects = [a for a in ASPECT_NAMES if a in table.columns]
    metrics = [m for m in METRICS if m in table.columns]
    cells: dict = {}
    for aspect in aspects:
        per = cells.setdefault(aspect, {})
        scores = aspect_scores_many(table, aspect, metrics, n_boot=n_boot)
        rowmeans = table.groupby(["model", aspect, "style"], sort=False)[metrics].mean().reset_index()
        for metric in metrics:
            a = _matrices(scores[metric], aspect, ("mean", "low", "high"), models, styles)
            b = _matrices(rowmeans.rename(columns={metric: "rowmean"}), aspect, ("rowmean",), models, styles)
            for value in a:
                per.setdefault(value, {})[metric] = {**a[value], **b.get(value, {})}
    tie = {s: k for k, s in enumerate(_unique(table["style"]))}
    return {"aspects": [[ASPECT_NAMES[a], a] for a in aspects], "aspect_names": dict(ASPECT_NAMES),
            "values": {a: [str(v) for v in aspect_values(table, a, task_order)] for a in aspects},
            "metrics": metrics, "metric_names": {m: METRIC_NAMES.get(m, m) for m in metrics},
            "models": models, "styles": styles, "colors": _base_colours(models),
            "tie_rank": {s: tie.get(s, len(tie)) for s in styles}, "cells": cells,
            "stops": colorscale_stops("Viridis")["Viridis"]}


class PromptView(BaseView):
    """Line graph, heat map and best-style table of one aspect value and metric, every one of them in the page.

    `data`: `grid_payload(...)` (set with `set_table`). Controls (synced both ways): `aspect`, `entity`, `metric`,
    `models`, `styles` (ticked names; empty lists are allowed and shown as a note), `selected` (the ringed style).
    """
    _esm = esm("charts", "prompting")
    _css = CSS

    data = T.Dict().tag(sync=True)
    aspect = T.Unicode("task_type").tag(sync=True)
    entity = T.Unicode("").tag(sync=True)
    metric = T.Unicode("judge").tag(sync=True)
    models = T.List(T.Unicode()).tag(sync=True)
    styles = T.List(T.Unicode()).tag(sync=True)
    selected = T.Unicode("").tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_class("wb-prompt-canvas")
        self.observe(self._first_value, names="aspect")

    def set_table(self, table, models=None, styles=None, ticked_models=None, ticked_styles=None, task_order=None,
                  n_boot: int = 200) -> None:
        """Show `table` (rows of evaluation.grid.evaluate): one message with every aspect value and metric."""
        data = grid_payload(table, models, styles, task_order, n_boot)
        with self.hold_sync():
            self.set_trait("data", data)
            aspect = self.aspect if self.aspect in data["values"] else data["aspects"][0][1]
            self.set_trait("aspect", aspect)
            if self.entity not in data["values"][aspect]:
                self.set_trait("entity", data["values"][aspect][0])
            if self.metric not in data["metrics"]:
                self.set_trait("metric", "judge" if "judge" in data["metrics"] else data["metrics"][0])
            self.set_trait("models", [m for m in data["models"] if ticked_models is None or m in ticked_models])
            self.set_trait("styles", [s for s in data["styles"] if ticked_styles is None or s in ticked_styles])
            if self.selected not in data["styles"]:
                self.set_trait("selected", data["styles"][0])

    def _first_value(self, change) -> None:
        values = self.data.get("values", {}).get(change["new"], [])
        if values and self.entity not in values:
            self.entity = values[0]

    def _check(self, name: str, value, valid) -> None:
        if self.data and value not in valid:
            raise T.TraitError(f"{name}: {value!r} is not in the results; choose one of {list(valid)}")

    @T.validate("aspect")
    def _check_aspect(self, proposal):
        self._check("aspect", proposal["value"], self.data.get("values", {}))
        return proposal["value"]

    @T.validate("entity")
    def _check_entity(self, proposal):
        self._check(f"value of {self.aspect}", proposal["value"], self.data.get("values", {}).get(self.aspect, []))
        return proposal["value"]

    @T.validate("metric")
    def _check_metric(self, proposal):
        self._check("metric", proposal["value"], self.data.get("metrics", []))
        return proposal["value"]

    @T.validate("models", "styles", "selected")
    def _check_names(self, proposal):
        name = proposal["trait"].name
        valid = self.data.get("models" if name == "models" else "styles", [])
        for v in proposal["value"] if name != "selected" else [proposal["value"]]:
            self._check(name, v, valid)
        return proposal["value"]

    # ------------------------------------------------------------------ what is shown, in Python
    def ticked(self) -> tuple[list[str], list[str]]:
        """(models, styles) ticked, in the table's order."""
        return ([m for m in self.data["models"] if m in self.models],
                [s for s in self.data["styles"] if s in self.styles])

    def scores(self) -> pd.DataFrame:
        """The shown cells as rows: model, style, mean, low, high, rowmean (every model and style)."""
        cell = self.data["cells"][self.aspect][self.entity][self.metric]
        rows = [{"model": m, "style": s, **{k: cell[k][i][j] for k in ("mean", "low", "high", "rowmean")}}
                for i, m in enumerate(self.data["models"]) for j, s in enumerate(self.data["styles"])]
        return pd.DataFrame(rows).dropna(subset=["mean"]).astype({"mean": float, "low": float, "high": float})

    def title(self) -> str:
        return f"{self.data['aspect_names'][self.aspect]} = {self.entity}"

    def figures(self) -> dict:
        """The plotly figures of what is shown (workbench.plots.prompting): lines, heatmap. ValueError when no
        model or no style is ticked."""
        ms, ss = self.ticked()
        if not ms or not ss:
            raise ValueError("tick at least one model and one style")
        s = self.scores()
        return {"lines": style_lines(s, ss, ms, self.metric, f"{self.title()}: {self.metric} across prompt styles",
                                     selected=self.selected),
                "heatmap": style_heatmap(s, ss, ms, self.metric, f"{self.title()}: model x style")}

    def best(self) -> pd.DataFrame:
        """The best-style table shown: `summary.best_style` over the ticked models and styles of the shown cell
        (one row per model and style at its row mean, in the results table's style order, so ties break as
        there). Columns: model, best_style, score, runner_up, runner_up_score, margin."""
        ms, ss = self.ticked()
        s = self.scores()
        s = s[s["model"].isin(ms) & s["style"].isin(ss)].dropna(subset=["rowmean"])
        s = s.assign(rank=s["style"].map(self.data["tie_rank"]), model_rank=s["model"].map(ms.index))
        rows = s.sort_values(["model_rank", "rank"], kind="stable")
        table = pd.DataFrame({"model": rows["model"], self.aspect: self.entity, "style": rows["style"],
                              self.metric: rows["rowmean"].astype(float)})
        return best_style(table, self.aspect, self.metric).drop(columns=self.aspect)

    def payload_bytes(self) -> int:
        """Bytes of the grid's data as JSON (what the browser receives)."""
        return len(json.dumps(self.data, ensure_ascii=False))

    def to_html(self, path, max_bytes: int = standalone.HTML_MAX_BYTES) -> Path:
        """Save the grid and its controls as one self-contained HTML file (no network, no kernel), starting from
        the current values. Returns the path written (".html" added when missing). ValueError when nothing is
        shown or past `max_bytes` of JSON."""
        if not self.data:
            raise ValueError("nothing to save: this view has no results yet (set_table)")
        state = standalone.view_state(self)
        n = int(np.prod([len(self.data["models"]), len(self.data["styles"])]))
        standalone.check_size(standalone.payload_size(state), f"the prompt-style grid ({n} model x style cells per "
                              "aspect value and metric)", "evaluate fewer models or styles", max_bytes)
        return standalone.save_view(self, path, state, "prompt styles: model x style grid")
