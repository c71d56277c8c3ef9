"""Scoring figures and the lab widget: figures reflect the record; switching a function changes the chart."""
import numpy as np
import pytest

from workbench.plots import scoring as P
from workbench.scoring import Task, label_logprobs, predictions, stats, summarize


@pytest.fixture(scope="module")
def rec(tiny_dense, tiny_tok):
    texts = tuple(f"Lily {'lost' if i % 2 else 'found'} her ball {i}." for i in range(8))
    task = Task("feel", texts, tuple(i % 2 for i in range(8)), ("happy", "sad"),
                verbalizers=(("happy", "glad"), ("sad",)), template="Story: {text}\nShe feels",
                domain_premise="She feels")
    return label_logprobs(tiny_dense, tiny_tok, task, model_name="tiny")


def test_accuracy_bars_show_every_function_and_the_majority_line(rec):
    s = summarize(rec, n_boot=100)
    fig = P.accuracy_bars(s, highlight="dcpmi")
    assert list(fig.data[0].x) == list(s["scoring"]) and np.allclose(fig.data[0].y, s["acc"])
    colors = list(fig.data[0].marker.color)
    assert colors.count(P.COLORS[2]) == 1 and colors[list(s["scoring"]).index("dcpmi")] == P.COLORS[2]
    assert any("majority" in (a.text or "") for a in fig.layout.annotations)


def test_flip_heatmap_is_symmetric_with_zero_diagonal(rec):
    names, counts = stats.flip_matrix(predictions(rec))
    fig = P.flip_heatmap(names, counts, 8)
    z = np.array(fig.data[0].z)
    assert (z == z.T).all() and (np.diag(z) == 0).all() and list(fig.data[0].x) == names


def test_surprisal_strip_shows_label_tokens_with_leading_space(rec):
    fig = P.surprisal_strip(rec, 1)
    assert len(fig.data) == 3                                   # one row per verbalizer
    assert fig.data[0].text[0].startswith("␣")                   # the delimiter is scored with the label
    assert sum(fig.data[2].x) == pytest.approx(-rec.cond[1, 2], abs=1e-4)


def test_lambda_curve_and_reliability_and_study_heatmap(rec):
    fig = P.lambda_curve(np.array([0, 1.0]), {"domain": np.array([0.5, 0.75])}, majority=0.5, current=1.0)
    assert list(fig.data[0].y) == [0.5, 0.75]
    rel = stats.reliability(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), n_bins=2)
    assert "ECE" in P.reliability_diagram(rel).layout.title.text
    import pandas as pd
    df = pd.DataFrame({"model": ["a", "a", "b"], "scoring": ["acc", "dcpmi", "acc"], "acc": [0.5, 0.7, 0.6]})
    assert np.array(P.study_heatmap(df).data[0].z).shape == (2, 2)


def test_lab_switching_scoring_function_changes_the_chart(rec):
    from workbench.widgets.scoring import scoring_lab
    box = scoring_lab({("tiny", "feel"): rec})
    lab = box.lab
    assert lab.err.value == ""
    before = list(lab.acc_fig.data[0].marker.color)
    lab.fn.value = "acc_norm"
    assert list(lab.acc_fig.data[0].marker.color) != before
    assert "acc_norm" in lab.conf_fig.layout.title.text
    lab.a.value, lab.b.value = "acc", "first_token"
    assert "between <b>acc</b> and <b>first_token</b>" in lab.flip_html()
    lab.lam.value = 0.0
    assert f"{stats.accuracy(rec.golds, predictions(rec, ['acc'])['acc']):.3f}" in lab.lambda_text()
    lab.example.value = 3
    assert "Example 3" in lab.tok_fig.layout.title.text and lab.err.value == ""


def test_lab_shows_errors_inline(rec):
    from workbench.widgets.scoring import scoring_lab
    lab = scoring_lab({("tiny", "feel"): rec}).lab
    lab.task.options = ["feel", "missing"]
    lab.task.value = "missing"
    assert "no log-likelihoods cached" in lab.err.value
    with pytest.raises(ValueError, match="at least one cached record"):
        scoring_lab({})
