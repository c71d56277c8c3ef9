"""The scoring lab's charts drawn in the browser: one record's results sent once, the display controls there.

Here: `ScoringView` (an anywidget; JavaScript in js/charts.js and js/scoring.js) and `lab_payload(rec, ...)`, the
data it holds. For one (model, task, verbalizer aggregation) the browser gets every scoring function's accuracy,
95 % bootstrap interval, macro-F1 and predictions, the gold labels, McNemar's test for every pair of functions,
each example's per-token label surprisals and the accuracy-vs-λ curves of the three premises. The controls that
only pick what to show run in the page, with no kernel round trip:
    fn        the scoring function: its bar is highlighted, the confusion matrix is its predictions'
    a, b      the two functions whose flipped examples are listed (with McNemar's p)
    example   the example whose label tokens' surprisals are drawn
    lam       λ of s = LL(y|x) - λ LL(y|premise), on the grid `lambdas` (0 ... 1.5 by 0.05)
    premise   "domain", "generic" or "bos"
Their values are synced traits: Python reads them, a reloaded page restores them, and setting one out of range
raises traitlets.TraitError naming the valid values. The charts are the same pictures as workbench.plots.scoring
builds (`static_figures()` returns those plotly figures, for PNG/SVG/PDF export); `to_html(path)` saves the view
as one HTML file whose controls work offline.

Memory held by the browser, as JSON: about (K + 1) x N small integers (K functions, N examples), 90 characters of
text per example, and each example's label tokens and surprisals: 300 examples x 7 labels x 2 tokens is about
100 KiB. The whole record is always sent (the lab's records are hundreds of examples, not millions).
Not here: computing log-likelihoods (`workbench.scoring`), the model / task / recompute controls
(`workbench.widgets.scoring`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import traitlets as T

from ..plots import scoring as splots
from ..scoring import functions as F
from ..scoring import stats
from . import standalone
from .canvas import BaseView, CSS, colorscale_stops, esm

LAMBDAS = np.round(np.linspace(0, 1.5, 31), 2)
PREMISES = ("domain", "generic", "bos")
TEXT_CHARS = 90


def lambda_curves(rec, how: str = "logsumexp", lambdas=LAMBDAS) -> dict[str, np.ndarray]:
    """premise -> (len(lambdas),) accuracy of s = LL(y|x) - λ LL(y|premise) at each λ (`F.premise_strength`)."""
    return {p: np.array([stats.accuracy(rec.golds, F.premise_strength(rec, float(lam), p, how)) for lam in lambdas])
            for p in PREMISES}


def _context(rec, i: int, context_tokens: int = 6) -> str:
    """The end of example i's prompt as plots.scoring.surprisal_strip titles it (BOS, "…", the last tokens)."""
    ctx = [splots.show_token(t) for t in rec.ctx_tokens[i]]
    shown = ctx[:1] + ["…"] + ctx[-context_tokens:] if len(ctx) > context_tokens + 1 else ctx
    return " ".join(shown)


def lab_payload(rec, summary, how: str = "logsumexp", curves: dict | None = None) -> dict:
    """The `data` trait of a ScoringView: JSON-safe (no NaN) numbers of one record.

    `summary` is `F.summarize(rec, names, how)` (its rows are the functions shown); `curves` as `lambda_curves`
    (computed when None). Keys: title, functions, acc, acc_lo, acc_hi, macro_f1, majority, classes, verbalizers,
    golds (N,), preds {function: (N,)}, mcnemar {"a|b": [b, c, "p"]} (b: only a right, c: only b right; p as
    Python's .3g), texts (first 90 characters), examples [{ctx, toks (V lists), s (V lists of nats)}], lambdas,
    curves {premise: accuracies}, stops (the Blues colour scale)."""
    names = [str(n) for n in summary["scoring"]]
    preds = F.predictions(rec, names, how)
    golds = np.asarray(rec.golds)
    mc = {}
    for a in names:
        for b in names:
            m = stats.mcnemar(golds, preds[a], preds[b])
            mc[f"{a}|{b}"] = [m.b, m.c, f"{m.p_value:.3g}"]
    curves = lambda_curves(rec, how) if curves is None else curves
    examples = [{"ctx": _context(rec, i),
                 "toks": [[splots.show_token(t) for t in rec.cont_tokens[i][v]] for v in range(len(rec.verbalizers))],
                 "s": [[round(-float(x), 4) for x in rec.cont_logprobs[i][v]] for v in range(len(rec.verbalizers))]}
                for i in range(len(golds))]
    r4 = lambda xs: [round(float(x), 4) for x in xs]  # noqa: E731
    return {"title": f"{rec.model_name} · {rec.task.name}", "functions": names,
            "acc": r4(summary["acc"]), "acc_lo": r4(summary["acc_lo"]), "acc_hi": r4(summary["acc_hi"]),
            "macro_f1": r4(summary["macro_f1"]), "majority": round(float(summary.attrs["majority_acc"]), 4),
            "classes": list(rec.task.classes), "verbalizers": list(rec.verbalizers),
            "golds": golds.tolist(), "preds": {n: preds[n].tolist() for n in names}, "mcnemar": mc,
            "texts": [t[:TEXT_CHARS] for t in rec.task.texts], "examples": examples,
            "lambdas": [float(x) for x in LAMBDAS], "curves": {p: r4(c) for p, c in curves.items()},
            "stops": colorscale_stops("Blues")["Blues"]}


class ScoringView(BaseView):
    """The scoring lab's five charts of one record, their display controls handled in the browser.

    `data`: `lab_payload(...)` (set with `set_record`). Controls (synced both ways): `fn`, `a`, `b` (scoring
    functions of the record), `example` (0 <= example < N), `lam` (snapped to the nearest value of `LAMBDAS`;
    outside [0, 1.5] is an error), `premise` (one of PREMISES).
    """
    _esm = esm("charts", "scoring")
    _css = CSS

    data = T.Dict().tag(sync=True)
    fn = T.Unicode("acc").tag(sync=True)
    a = T.Unicode("acc").tag(sync=True)
    b = T.Unicode("dcpmi").tag(sync=True)
    example = T.Int(0).tag(sync=True)
    lam = T.Float(1.0).tag(sync=True)
    premise = T.Unicode("domain").tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rec, self.how = None, "logsumexp"
        self.add_class("wb-scoring-canvas")

    def set_record(self, rec, summary, how: str = "logsumexp", curves: dict | None = None) -> None:
        """Show `rec` (one message); controls keep their values where the new record has them."""
        data = lab_payload(rec, summary, how, curves)
        names = data["functions"]
        pick = lambda v, alt: v if v in names else alt  # noqa: E731
        with self.hold_sync():
            self.rec, self.how = rec, how
            self.set_trait("data", data)
            self.set_trait("fn", pick(self.fn, names[0]))
            self.set_trait("a", pick(self.a, names[0]))
            self.set_trait("b", pick(self.b, names[-1]))
            self.set_trait("example", min(self.example, len(data["golds"]) - 1))

    @property
    def functions(self) -> list[str]:
        return list(self.data.get("functions", []))

    @T.validate("fn", "a", "b")
    def _check_function(self, proposal):
        v = proposal["value"]
        if self.data and v not in self.functions:
            raise T.TraitError(f"{proposal['trait'].name}: {v!r} is not a scoring function of this record; "
                               f"choose one of {self.functions}")
        return v

    @T.validate("example")
    def _check_example(self, proposal):
        v, n = proposal["value"], len(self.data.get("golds", []))
        if n and not 0 <= v < n:
            raise T.TraitError(f"example must be in [0, {n - 1}], got {v}")
        return v

    @T.validate("lam")
    def _check_lam(self, proposal):
        v = float(proposal["value"])
        if not LAMBDAS[0] - 1e-9 <= v <= LAMBDAS[-1] + 1e-9:
            raise T.TraitError(f"lam must be in [{LAMBDAS[0]}, {LAMBDAS[-1]}], got {v}")
        return float(LAMBDAS[np.abs(LAMBDAS - v).argmin()])

    @T.validate("premise")
    def _check_premise(self, proposal):
        if proposal["value"] not in PREMISES:
            raise T.TraitError(f"premise must be one of {PREMISES}, got {proposal['value']!r}")
        return proposal["value"]

    # ------------------------------------------------------------------ what is shown, in Python
    def lambda_accuracy(self) -> float:
        """The accuracy the view shows for the current λ and premise."""
        i = int(np.abs(LAMBDAS - self.lam).argmin())
        return float(self.data["curves"][self.premise][i])

    def lambda_text(self) -> str:
        """The line under the λ slider, as HTML."""
        return f"λ = {self.lam:.2f}, premise = {self.premise}: accuracy <b>{self.lambda_accuracy():.3f}</b>"

    def static_figures(self) -> dict:
        """The plotly figures of what is shown now (workbench.plots.scoring; for export): accuracy, confusion,
        flips, surprisal, lambda. ValueError when no record is shown."""
        if self.rec is None:
            raise ValueError("nothing to show: this view has no record yet (set_record)")
        d, rec = self.data, self.rec
        import pandas as pd
        summary = pd.DataFrame({"scoring": d["functions"], "acc": d["acc"], "acc_lo": d["acc_lo"],
                                "acc_hi": d["acc_hi"], "macro_f1": d["macro_f1"]})
        summary.attrs["majority_acc"] = d["majority"]
        preds = {n: np.asarray(p) for n, p in d["preds"].items()}
        cm = stats.confusion_matrix(rec.golds, preds[self.fn], rec.task.n_classes)
        names, counts = stats.flip_matrix(preds)
        curves = {p: np.asarray(c) for p, c in d["curves"].items()}
        return {"accuracy": splots.accuracy_bars(summary, highlight=self.fn, title=self.accuracy_title()),
                "confusion": splots.confusion_heatmap(cm, d["classes"], f"Confusion matrix · {self.fn}"),
                "flips": splots.flip_heatmap(names, counts, len(rec.golds)),
                "surprisal": splots.surprisal_strip(rec, self.example),
                "lambda": splots.lambda_curve(LAMBDAS, curves, d["majority"], current=self.lam)}

    def accuracy_title(self) -> str:
        """The accuracy chart's title: model, task and the highlighted function."""
        return f"{self.data['title']}: accuracy per scoring function ({self.fn} in red)"

    def payload_bytes(self) -> int:
        """Bytes of the record's data as JSON (what the browser receives)."""
        return len(json.dumps(self.data, ensure_ascii=False))

    def to_html(self, path, max_bytes: int = standalone.HTML_MAX_BYTES) -> Path:
        """Save the five charts and their display controls as one self-contained HTML file (no network, no
        kernel), starting from the current values. Returns the path written (".html" added when missing).
        ValueError when no record is shown or past `max_bytes` of JSON."""
        if not self.data:
            raise ValueError("nothing to save: this view has no record yet (set_record)")
        state = standalone.view_state(self)
        standalone.check_size(standalone.payload_size(state), f"the scoring results of {len(self.data['golds'])} "
                              "examples", "score fewer examples", max_bytes)
        return standalone.save_view(self, path, state, f"scoring functions: {self.data['title']}")
