"""The scoring-function lab: switch scoring functions instantly on cached log-likelihoods.

Here: `scoring_lab(cache, models=None)`. `cache` maps (model name, task name) -> LabelLogprobs (from
`scoring.label_logprobs` or a stored grid, `scoring.study.family_grid`). Model, task and verbalizer aggregation are
Python controls: choosing one sends that record's results to the browser once (`scoring_view.ScoringView`). The
controls that only pick what to show run in the page, with no kernel round trip: scoring function (its bar
highlighted, its confusion matrix), the K x K "which examples flip" matrix and the flipped examples between two
functions (with McNemar's test), per-example token surprisal under each label, and the premise-strength slider
s = LL(y|x) - lambda * LL(y|premise). With `models` (name -> (model, tokenizer)), a "recompute" row lets the user
change template, verbalizers and premises; that button is the only control that runs a model. Errors are shown
inline; the kernel keeps working. A reloaded page shows what the controls say (their values are the view's
traits). `lab.fn` ... `lab.premise` read and set the browser's controls from Python (`.value`); `lab.acc_fig` ...
`lab.lam_fig` are the plotly figures of what is shown (go.Figure, for export); "save HTML" writes the charts and
their controls as one file that works offline.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
from ..errors import describe_error
from ..scoring import functions as F
from ..scoring import stats
from . import standalone
from .canvas import TraitControl
from .scoring_view import LAMBDAS, PREMISES, ScoringView, lambda_curves

__all__ = ["scoring_lab", "flip_table", "LAMBDAS"]


def _error(err: Exception) -> str:
    return (f"<div style='color:#b00020;white-space:pre-wrap'><b>scoring lab:</b> "
            f"{html.escape(describe_error(err))}</div>")


def flip_table(rec, a: str, b: str, how: str = "logsumexp", limit: int = 20) -> str:
    """HTML table of the examples whose prediction differs between functions a and b (as the lab lists them)."""
    pa, pb = F.predict(rec, a, how), F.predict(rec, b, how)
    idx = stats.flipped_examples(rec.golds, pa, pb)
    cls = rec.task.classes
    rows = "".join(
        f"<tr><td>{i}</td><td>{html.escape(cls[rec.golds[i]])}</td>"
        f"<td style='color:{'#2a7' if pa[i] == rec.golds[i] else '#c33'}'>{html.escape(cls[pa[i]])}</td>"
        f"<td style='color:{'#2a7' if pb[i] == rec.golds[i] else '#c33'}'>{html.escape(cls[pb[i]])}</td>"
        f"<td>{html.escape(rec.task.texts[i][:90])}…</td></tr>" for i in idx[:limit])
    m = stats.mcnemar(rec.golds, pa, pb)
    head = (f"<b>{len(idx)}</b> of {len(pa)} examples flip between <b>{a}</b> and <b>{b}</b> "
            f"({m.b} only {a} right, {m.c} only {b} right; McNemar p = {m.p_value:.3g})")
    return (f"<div>{head}</div><table style='font-size:12px'><tr><th>#</th><th>gold</th><th>{a}</th>"
            f"<th>{b}</th><th>text</th></tr>{rows}</table>")


class _Lab:
    def __init__(self, cache: dict, models: dict | None):
        self.cache, self.models = cache, models or {}
        keys = list(cache)
        dd = lambda desc, opts, val, w="220px": widgets.Dropdown(description=desc, options=opts, value=val,  # noqa
                                                                 layout=widgets.Layout(width=w))
        self.model = dd("model", sorted({m for m, _ in keys}), keys[0][0])
        self.task = dd("task", sorted({t for _, t in keys}), keys[0][1])
        self.how = dd("verbalizers", list(F.AGGREGATIONS), "logsumexp", "200px")
        self.err = widgets.HTML()
        self.view = ScoringView()
        v = self.view
        self.fn = TraitControl(v, "fn")
        self.a, self.b = TraitControl(v, "a"), TraitControl(v, "b")
        self.example = TraitControl(v, "example", max_fn=lambda: len(v.data.get("golds", [0])) - 1)
        self.lam, self.premise = TraitControl(v, "lam"), TraitControl(v, "premise", options=PREMISES)
        self._summaries: dict = {}
        self._curves: dict = {}
        for w in (self.model, self.task, self.how):
            w.observe(lambda change: self._safe(self.refresh_all), names="value")

    # the plotly figures of what the view shows now (go.Figure; for export and tests)
    acc_fig = property(lambda self: self.view.static_figures()["accuracy"])
    conf_fig = property(lambda self: self.view.static_figures()["confusion"])
    flip_fig = property(lambda self: self.view.static_figures()["flips"])
    tok_fig = property(lambda self: self.view.static_figures()["surprisal"])
    lam_fig = property(lambda self: self.view.static_figures()["lambda"])

    @property
    def rec(self):
        key = (self.model.value, self.task.value)
        if key not in self.cache:
            raise KeyError(f"no log-likelihoods cached for model {key[0]!r} on task {key[1]!r}")
        return self.cache[key]

    def _safe(self, cb):
        try:
            cb()
            self.err.value = ""
        except Exception as e:                   # shown inline: the kernel keeps working
            self.err.value = _error(e)

    def summary(self):
        key = (self.model.value, self.task.value, self.how.value)
        if key not in self._summaries:
            self._summaries[key] = F.summarize(self.rec, None if self._has_channel() else self._no_channel(),
                                               self.how.value, n_boot=300)
        return self._summaries[key]

    def _has_channel(self) -> bool:
        return not np.isnan(self.rec.channel).all()

    def _no_channel(self):
        return [n for n in F.SCORING_FUNCTIONS if n != "channel"]

    def refresh_all(self):
        """Send the chosen (model, task, aggregation) to the view (the only control callback that computes)."""
        key = (self.model.value, self.task.value, self.how.value)
        rec, summary = self.rec, self.summary()
        if key not in self._curves:
            self._curves[key] = lambda_curves(rec, self.how.value)
        self.view.set_record(rec, summary, self.how.value, self._curves[key])

    def flip_html(self) -> str:
        """The flipped-examples table the view shows for its two functions (HTML)."""
        return flip_table(self.rec, self.a.value, self.b.value, self.how.value)

    def lambda_text(self) -> str:
        """The line under the λ slider (HTML): accuracy at the current λ and premise."""
        return self.view.lambda_text()

    def recompute_row(self) -> widgets.Widget:
        """Template / verbalizers / premises editor; the button reruns the model (the only heavy control)."""
        if not self.models:
            return widgets.HTML("<i>Pass models={name: (model, tokenizer)} to edit the template and premises.</i>")
        t = self.rec.task
        template = widgets.Textarea(value=t.template, description="template", layout=widgets.Layout(width="420px"))
        verbs = widgets.Textarea(value="\n".join(f"{c}: {' | '.join(v)}" for c, v in zip(t.classes, t.verbalizers)),
                                 description="verbalizers", rows=max(3, len(t.classes)),
                                 layout=widgets.Layout(width="480px"))
        domain = widgets.Text(value=t.domain_premise, description="domain")
        generic = widgets.Text(value=t.generic_premise, description="generic")
        button = widgets.Button(description="recompute", button_style="primary")

        def run(_):
            def go_():
                from ..scoring import label_logprobs
                lines = [ln.split(":", 1) for ln in verbs.value.strip().splitlines() if ln.strip()]
                if any(len(x) != 2 for x in lines):
                    raise ValueError("write one class per line as 'class: verbalizer | verbalizer'")
                cls = tuple(c.strip() for c, _ in lines)
                vb = tuple(tuple(v.strip() for v in rest.split("|") if v.strip()) for _, rest in lines)
                task = self.rec.task.with_(template=template.value, classes=cls, verbalizers=vb,
                                           domain_premise=domain.value, generic_premise=generic.value,
                                           name=self.rec.task.name + "*")
                model, tok = self.models[self.model.value]
                self.cache[(self.model.value, task.name)] = label_logprobs(model, tok, task, self.model.value)
                self.task.options = sorted({k for _, k in self.cache})
                self.task.value = task.name
            self._safe(go_)
        button.on_click(run)
        return widgets.VBox([widgets.HBox([template, verbs]), widgets.HBox([domain, generic, button])])

    def build(self) -> widgets.Widget:
        self._safe(self.refresh_all)
        h = lambda s: widgets.HTML(f"<h4 style='margin:6px 0'>{s}</h4>")  # noqa: E731
        box = widgets.VBox([
            widgets.HBox([self.model, self.task, self.how]), self.err, self.view,
            standalone.save_html_row(self.view.to_html, "scoring_lab.html"),
            h("Template, verbalizers, premises"), self.recompute_row()])
        box.add_class("wb-scoring-lab")                  # stable hook for browser tests and styling
        box.lab = self
        return box


def scoring_lab(cache: dict, models: dict | None = None) -> widgets.Widget:
    """The lab on cached log-likelihoods: {(model, task): LabelLogprobs}; `models` enables recomputing."""
    if not cache:
        raise ValueError("scoring_lab needs at least one cached record: {(model, task): label_logprobs(...)}")
    return _Lab(dict(cache), models).build()
