"""The scoring lab's browser-side view: the record's data it sends, its controls' checks, its standalone file."""
import numpy as np
import pytest
import traitlets

from workbench.scoring import Task, label_logprobs, predictions, stats, summarize
from workbench.widgets.scoring_view import LAMBDAS, ScoringView, lab_payload, lambda_curves


@pytest.fixture(scope="module")
def rec(tiny_dense, tiny_tok):
    texts = tuple(f"Tom {'broke' if i % 3 else 'won'} the {('cup', 'race', 'toy')[i % 3]} {i}." for i in range(12))
    task = Task("mood", texts, tuple(int(i % 3 == 0) for i in range(12)), ("sad", "happy"),
                verbalizers=(("sad", "upset"), ("happy",)), template="Story: {text}\\nHe feels",
                domain_premise="He feels", generic_premise="Answer:")
    return label_logprobs(tiny_dense, tiny_tok, task, model_name="tiny")


@pytest.fixture(scope="module")
def view(rec):
    v = ScoringView()
    v.set_record(rec, summarize(rec, n_boot=50))
    return v


def test_payload_holds_what_the_charts_draw(rec, view):
    d, s = view.data, summarize(rec, n_boot=50)
    assert d["functions"] == list(s["scoring"]) and np.allclose(d["acc"], s["acc"], atol=1e-4)
    preds = predictions(rec, d["functions"])
    assert all(d["preds"][n] == preds[n].tolist() for n in d["functions"])       # the confusion / flip source
    assert d["golds"] == list(rec.golds) and d["classes"] == ["sad", "happy"]
    m = stats.mcnemar(rec.golds, preds["acc"], preds["dcpmi"])
    assert d["mcnemar"]["acc|dcpmi"] == [m.b, m.c, f"{m.p_value:.3g}"]
    assert d["mcnemar"]["dcpmi|acc"][:2] == [m.c, m.b]
    for i in (0, 5):                                       # the strip's segments add up to -LL(label | prompt)
        for v in range(len(rec.verbalizers)):
            assert sum(d["examples"][i]["s"][v]) == pytest.approx(-rec.cond[i, v], abs=1e-3)
    assert d["examples"][0]["toks"][0][0].startswith("␣")  # the delimiter is scored with the label
    assert d["lambdas"] == [float(x) for x in LAMBDAS] and len(d["lambdas"]) == 31
    # λ = 0 is raw log-prob (acc); λ = 1 with the domain premise is DCPMI, with BOS acc_mutual_info
    assert d["curves"]["domain"][0] == pytest.approx(stats.accuracy(rec.golds, preds["acc"]), abs=1e-4)
    assert d["curves"]["domain"][20] == pytest.approx(stats.accuracy(rec.golds, preds["dcpmi"]), abs=1e-4)
    assert d["curves"]["generic"][20] == pytest.approx(stats.accuracy(rec.golds, preds["pmi"]), abs=1e-4)
    assert 0 < view.payload_bytes() < 60_000


def test_controls_are_checked_and_snap_lambda(view):
    with pytest.raises(traitlets.TraitError, match="not a scoring function of this record"):
        view.fn = "bleu"
    with pytest.raises(traitlets.TraitError, match=r"example must be in \[0, 11\]"):
        view.example = 12
    with pytest.raises(traitlets.TraitError, match="lam must be in"):
        view.lam = 2.0
    with pytest.raises(traitlets.TraitError, match="premise must be one of"):
        view.premise = "story"
    view.lam = 0.33
    assert view.lam == pytest.approx(0.35)
    view.premise, view.lam = "bos", 1.0
    assert view.lambda_accuracy() == view.data["curves"]["bos"][20]
    assert "premise = bos: accuracy <b>" in view.lambda_text()


def test_static_figures_follow_the_controls(rec, view):
    view.fn, view.example, view.lam = "pmi", 4, 0.5
    figs = view.static_figures()
    assert figs["confusion"].layout.title.text == "Confusion matrix · pmi"
    cm = np.array(figs["confusion"].data[0].z)
    assert cm.sum() == 12 and np.trace(cm) == round(view.data["acc"][view.functions.index("pmi")] * 12)
    assert figs["surprisal"].layout.title.text.startswith("Example 4")
    assert figs["lambda"].layout.shapes[-1].x0 == 0.5


def test_a_new_record_keeps_the_controls_it_can(rec, tiny_dense, tiny_tok, view):
    view.fn, view.example = "dcpmi", 11
    small = rec.task.with_(texts=rec.task.texts[:5], golds=rec.task.golds[:5], name="mood5")
    rec5 = label_logprobs(tiny_dense, tiny_tok, small, model_name="tiny")
    view.set_record(rec5, summarize(rec5, ["acc", "dcpmi", "pmi"], n_boot=20), curves=lambda_curves(rec5))
    assert view.fn == "dcpmi" and view.example == 4 and view.functions == ["acc", "dcpmi", "pmi"]
    assert view.data["title"] == "tiny · mood5"
    view.set_record(rec5, summarize(rec5, ["acc", "pmi"], n_boot=20))
    assert view.fn == "acc"                                # dcpmi is not shown any more: the first one is


def test_lab_model_task_switch_resends_and_saves_html(rec, tmp_path):
    from workbench.widgets.scoring import scoring_lab
    from workbench.widgets.standalone import read_state
    other = rec.__class__(**{**rec.__dict__, "model_name": "tiny-b"}) if hasattr(rec, "__dict__") else rec
    box = scoring_lab({("tiny", "mood"): rec, ("tiny-b", "mood"): other})
    lab = box.lab
    assert lab.view.data["title"] == "tiny · mood"
    lab.fn.value = "pmi"
    lab.model.value = "tiny-b"
    assert lab.err.value == "" and lab.view.data["title"] == "tiny-b · mood" and lab.fn.value == "pmi"
    path = lab.view.to_html(tmp_path / "lab")
    state = read_state(path.read_text(encoding="utf-8"))
    assert path.suffix == ".html" and state["fn"] == "pmi" and state["data"]["functions"] == lab.view.functions


def test_payload_is_json_without_nan_and_the_lab_drops_a_missing_channel(rec, tiny_dense, tiny_tok):
    import json

    from workbench.widgets.scoring import scoring_lab
    json.dumps(lab_payload(rec, summarize(rec, n_boot=20)), allow_nan=False)   # the standalone file refuses NaN
    no_channel = label_logprobs(tiny_dense, tiny_tok, rec.task, model_name="tiny", channel=False)
    assert np.isnan(no_channel.channel).all()
    lab = scoring_lab({("tiny", "mood"): no_channel}).lab
    assert lab.err.value == "" and "channel" not in lab.view.functions and len(lab.view.functions) == 9
    json.dumps(lab.view.data, allow_nan=False)
