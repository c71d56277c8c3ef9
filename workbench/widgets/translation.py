"""The translation lab: translate a sentence, see every metric and the exact judgement beside it, and where each
target token looked in the source.

`translation_lab(models)`: model, source and target language dropdowns, greedy or beam search, a text box (a
held-out test sentence to start; "another test sentence" draws one of the chosen direction), and "translate". The
result table shows the hypothesis, the exact reference rendered by the languages' rules (when the source is a
sentence of the story grammar), sentence BLEU, spBLEU and chrF++ against it, and the exact judgement with its
error categories; below it the cross-attention heat map (`plots.translation.cross_attention_heatmap`) with a
decoder-layer dropdown. Errors (an unknown word order, an empty source) show in the box, never as a traceback.
The returned box has `.translate()`, `.next_sentence()`, `.result` (the last result dict) and the controls as
attributes, for tests.
"""
from __future__ import annotations

import html
import random

import ipywidgets as widgets
from IPython.display import display

from ..errors import describe_error
from ..plots.translation import NAMES, cross_attention_heatmap


def _error(err: Exception) -> str:
    return (f"<div style='color:#b00020;white-space:pre-wrap'><b>translation:</b> "
            f"{html.escape(describe_error(err))}</div>")


def _row(name: str, value: str) -> str:
    return f"<tr><td style='padding:2px 10px;color:#555'>{name}</td><td style='padding:2px 10px'>{value}</td></tr>"


def _score(source: str, hyp: str, src: str, tgt: str) -> dict:
    """{"reference", "BLEU", "spBLEU", "chrF++", "judge", "errors"} of one translation (reference None and the
    metrics None when the source is not a sentence of the story grammar)."""
    from ..translation.judge import judge_segment, reference_translation
    from ..translation.metrics import METRICS, sentence_scores
    try:
        ref = reference_translation(source, src, tgt)
    except ValueError:
        return {"reference": None, **dict.fromkeys(METRICS), "judge": None, "errors": ()}
    scores = {m: float(sentence_scores(m, [hyp], [ref])[0]) for m in METRICS}
    j = judge_segment(source, hyp, src, tgt)
    return {"reference": ref, **scores, "judge": float(j.score), "errors": tuple(j.errors)}


def translation_lab(models=("mt-moe", "mt-dense"), test=None, load=None) -> widgets.Widget:
    """The lab (see the module docstring). `models`: names for `load` (default
    translation.load_translation_model), `test`: the pairs "another test sentence" draws from (default the
    shipped study's test set)."""
    try:
        from ..translation.data import MT_LANGS
        from ..translation.decode import load_translation_model, translate
        if load is None:
            load = load_translation_model
        if test is None:
            from ..translation.study import load_results, test_pairs_of
            test = test_pairs_of(load_results()["systems"])
        cache: dict = {}
        model_dd = widgets.Dropdown(options=list(models), value=models[0], description="model")
        src_dd = widgets.Dropdown(options=[(NAMES[x], x) for x in MT_LANGS], value="en", description="from")
        tgt_dd = widgets.Dropdown(options=[(NAMES[x], x) for x in MT_LANGS], value="vel", description="to")
        beams = widgets.ToggleButtons(options=[("greedy", 1), ("beam 4", 4)], value=1, description="decoding")
        first = next((p for p in test if (p.src_lang, p.tgt_lang) == ("en", "vel")), test[0])
        text = widgets.Textarea(value=first.src, layout=widgets.Layout(width="95%", height="60px"))
        go_btn = widgets.Button(description="translate", button_style="primary")
        next_btn = widgets.Button(description="another test sentence")
        layer_dd = widgets.Dropdown(options=[("all layers", -1)], value=-1, description="attention")
        table = widgets.HTML()
        figure = widgets.Output(layout=widgets.Layout(max_width="100%", overflow_x="auto"))
        rng = random.Random(0)
        box = widgets.VBox([widgets.HBox([model_dd, beams]), widgets.HBox([src_dd, tgt_dd]), text,
                            widgets.HBox([go_btn, next_btn]), table, layer_dd, figure])
        box.add_class("wb-translation-lab")
        state = {"ca": None}

        def model_and_tok():
            if model_dd.value not in cache:
                cache[model_dd.value] = load(model_dd.value)
            return cache[model_dd.value]

        def draw():
            figure.clear_output(wait=True)
            if state["ca"] is not None:
                with figure:
                    display(cross_attention_heatmap(state["ca"], None if layer_dd.value < 0 else layer_dd.value))

        def do_translate(_=None):
            try:
                from ..translation.attention import cross_attention
                model, tok = model_and_tok()
                src, tgt = src_dd.value, tgt_dd.value
                hyp = translate(model, tok, text.value, src, tgt, num_beams=beams.value)[0]
                ca = cross_attention(model, tok, text.value, src, tgt, target=hyp)
                res = {"hypothesis": hyp, **_score(text.value, hyp, src, tgt)}
                box.result = res
                rows = [_row("translation", f"<b>{html.escape(hyp)}</b>")]
                if res["reference"] is None:
                    rows.append(_row("reference", "(not a sentence of the story grammar: no exact reference)"))
                else:
                    rows.append(_row("exact reference", html.escape(res["reference"])))
                    rows.append(_row("sentence scores", " &nbsp; ".join(
                        f"{m} <b>{res[m]:.1f}</b>" for m in ("BLEU", "spBLEU", "chrF++"))))
                    errs = ", ".join(res["errors"]) or "none"
                    rows.append(_row("exact judgement", f"<b>{res['judge']:.2f}</b> (errors: {errs})"))
                table.value = "<table>" + "".join(rows) + "</table>"
                state["ca"] = ca
                opts = [("all layers", -1)] + [(f"decoder layer {i}", i) for i in range(ca.weights.shape[0])]
                if layer_dd.options != tuple(opts):
                    layer_dd.options = opts
                draw()
            except Exception as err:  # noqa: BLE001 (the widget's error boundary)
                table.value = _error(err)

        def next_sentence(_=None):
            pool = [p for p in test if (p.src_lang, p.tgt_lang) == (src_dd.value, tgt_dd.value)] or test
            p = rng.choice(pool)
            text.value = p.src
            do_translate()

        go_btn.on_click(do_translate)
        next_btn.on_click(next_sentence)
        layer_dd.observe(lambda ch: draw(), names="value")
        box.translate, box.next_sentence, box.result = do_translate, next_sentence, None
        box.model, box.src, box.tgt, box.beams, box.text, box.layer = model_dd, src_dd, tgt_dd, beams, text, layer_dd
        box.table = table
        do_translate()
        return box
    except Exception as err:  # noqa: BLE001
        return widgets.HTML(_error(err))
