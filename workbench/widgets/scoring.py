"""The scoring-function lab: switch scoring functions instantly on cached log-likelihoods.

Here: `scoring_lab(cache, models=None)`. `cache` maps (model name, task name) -> LabelLogprobs (from
`scoring.label_logprobs` or a stored grid, `scoring.study.family_grid`); every control below only re-reads that cache:
scoring function, aggregation, the K x K "which examples flip" matrix between two functions (flipped examples
listed), per-example token surprisal under each label, and the premise-strength slider
s = LL(y|x) - lambda * LL(y|premise). With `models` (name -> (model, tokenizer)), a "recompute" row lets
the user change template, verbalizers and premises; that button is the only control that runs a model.
Errors are shown inline; the kernel keeps working. The five figures are shown through `ipywidgets.Output`s
(`figure_output.FigureOutput`) whose state is the figure itself, so a reloaded page shows what the controls say;
`lab.acc_fig` ... `lab.lam_fig` are the figures shown now (go.Figure), `lab.acc_out` ... their Outputs.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
from ..errors import describe_error
from ..plots import scoring as splots
from ..scoring import functions as F
from ..scoring import stats
from .figure_output import FigureOutput

LAMBDAS = np.round(np.linspace(0, 1.5, 31), 2)


def _error(err: Exception) -> str:
    return (f"<div style='color:#b00020;white-space:pre-wrap'><b>scoring lab:</b> "
            f"{html.escape(describe_error(err))}</div>")


def flip_table(rec, a: str, b: str, how: str = "logsumexp", limit: int = 20) -> str:
    """HTML table of the examples whose prediction differs between functions a and b."""
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
        names = list(F.SCORING_FUNCTIONS)
        dd = lambda desc, opts, val, w="220px": widgets.Dropdown(description=desc, options=opts, value=val,  # noqa
                                                                 layout=widgets.Layout(width=w))
        self.model = dd("model", sorted({m for m, _ in keys}), keys[0][0])
        self.task = dd("task", sorted({t for _, t in keys}), keys[0][1])
        self.fn = dd("scoring", names, "acc")
        self.how = dd("verbalizers", list(F.AGGREGATIONS), "logsumexp", "200px")
        self.a, self.b = dd("flip A", names, "acc"), dd("flip B", names, "dcpmi")
        self.example = widgets.IntSlider(description="example", min=0, max=0, value=0)
        self.lam = widgets.FloatSlider(description="λ", min=0.0, max=1.5, step=0.05, value=1.0)
        self.premise = dd("premise", ["domain", "generic", "bos"], "domain", "200px")
        self.err, self.flips, self.lam_text = widgets.HTML(), widgets.HTML(), widgets.HTML()
        half = lambda: widgets.Layout(width="50%", min_width="0")  # noqa: E731  (side by side, fits 1366 px)
        self.acc_out, self.conf_out = FigureOutput(layout=half()), FigureOutput(layout=half())
        self.flip_out, self.tok_out, self.lam_out = FigureOutput(), FigureOutput(), FigureOutput()
        self._summaries: dict = {}
        self._curves: dict = {}
        for w, cb in [(self.model, self.refresh_all), (self.task, self.refresh_all), (self.how, self.refresh_all),
                      (self.fn, self.refresh_function), (self.a, self.refresh_flips), (self.b, self.refresh_flips),
                      (self.example, self.refresh_tokens), (self.lam, self.refresh_lambda),
                      (self.premise, self.refresh_lambda)]:
            w.observe(lambda change, cb=cb: self._safe(cb), names="value")

    # the figures shown now (go.Figure; each lives in an Output whose state is the figure: survives a reload)
    acc_fig = property(lambda self: self.acc_out.figure)
    conf_fig = property(lambda self: self.conf_out.figure)
    flip_fig = property(lambda self: self.flip_out.figure)
    tok_fig = property(lambda self: self.tok_out.figure)
    lam_fig = property(lambda self: self.lam_out.figure)

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
        self.example.max = len(self.rec.task.texts) - 1
        self.refresh_function()
        self.refresh_flips()
        self.refresh_tokens()
        self.refresh_lambda()

    def refresh_function(self):
        s = self.summary()
        self.acc_out.show(splots.accuracy_bars(s, highlight=self.fn.value,
                                                 title=f"{self.rec.model_name} · {self.rec.task.name}"))
        p = F.predict(self.rec, self.fn.value, self.how.value)
        cm = stats.confusion_matrix(self.rec.golds, p, self.rec.task.n_classes)
        self.conf_out.show(splots.confusion_heatmap(cm, list(self.rec.task.classes),
                                                      f"Confusion matrix · {self.fn.value}"))

    def refresh_flips(self):
        names = list(self.summary()["scoring"])
        preds = F.predictions(self.rec, names, self.how.value)
        fnames, counts = stats.flip_matrix(preds)
        self.flip_out.show(splots.flip_heatmap(fnames, counts, len(self.rec.golds)))
        self.flips.value = flip_table(self.rec, self.a.value, self.b.value, self.how.value)

    def refresh_tokens(self):
        self.tok_out.show(splots.surprisal_strip(self.rec, self.example.value))

    def refresh_lambda(self):
        key = (self.model.value, self.task.value, self.how.value)
        if key not in self._curves:
            self._curves[key] = {p: np.array([stats.accuracy(self.rec.golds, F.premise_strength(
                self.rec, lam, p, self.how.value)) for lam in LAMBDAS]) for p in ("domain", "generic", "bos")}
        curves = self._curves[key]
        maj = np.bincount(self.rec.golds).max() / len(self.rec.golds)
        self.lam_out.show(splots.lambda_curve(LAMBDAS, curves, maj, current=self.lam.value))
        acc = stats.accuracy(self.rec.golds, F.premise_strength(self.rec, self.lam.value, self.premise.value,
                                                                self.how.value))
        self.lam_text.value = f"λ = {self.lam.value:.2f}, premise = {self.premise.value}: accuracy <b>{acc:.3f}</b>"

    def recompute_row(self) -> widgets.Widget:
        """Template / verbalizers / premises editor; the button reruns the model (the only heavy control)."""
        if not self.models:
            return widgets.HTML("<i>Pass models={name: (model, tokenizer)} to edit the template and premises.</i>")
        t = self.rec.task
        template = widgets.Textarea(value=t.template, description="template", layout=widgets.Layout(width="420px"))
        verbs = widgets.Textarea(value="\n".join(f"{c}: {' | '.join(v)}" for c, v in zip(t.classes, t.verbalizers)),
                                 description="verbalizers", layout=widgets.Layout(width="300px"))
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
            widgets.HBox([self.model, self.task, self.how]), self.err,
            h("Scoring function"), self.fn, widgets.HBox([self.acc_out, self.conf_out]),
            h("Which examples flip"), widgets.HBox([self.a, self.b]), self.flip_out, self.flips,
            h("Why: token surprisal under each label"), self.example, self.tok_out,
            h("Premise strength"), widgets.HBox([self.lam, self.premise]), self.lam_text, self.lam_out,
            h("Template, verbalizers, premises"), self.recompute_row()])
        box.add_class("wb-scoring-lab")                  # stable hook for browser tests and styling
        box.lab = self
        return box


def scoring_lab(cache: dict, models: dict | None = None) -> widgets.Widget:
    """The lab on cached log-likelihoods: {(model, task): LabelLogprobs}; `models` enables recomputing."""
    if not cache:
        raise ValueError("scoring_lab needs at least one cached record: {(model, task): label_logprobs(...)}")
    return _Lab(dict(cache), models).build()
