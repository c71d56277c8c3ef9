"""Figures of workbench.plots.data: built from a corpus, one bar per class, no display side effects."""
import numpy as np
import pytest

from workbench.corpora import LABELS, Corpus, generate_corpus
from workbench.plots import data as P


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus("mixed", 120, seed=0)


def test_label_balance_has_one_bar_per_class_and_sums_to_one(corpus):
    fig = P.label_balance(corpus)
    assert [list(t.x) for t in fig.data] == [LABELS[k] for k in LABELS]
    for t in fig.data:
        assert np.isclose(sum(t.y), 1.0, atol=1e-3)
    assert P.label_balance(corpus.stats()).to_dict()["data"] == fig.to_dict()["data"]   # stats dict works too


def test_label_balance_needs_labels():
    with pytest.raises(ValueError, match="no labelled records"):
        P.label_balance(Corpus([{"id": "a", "text": "1 + 1 = 2.", "lang": "num", "domain": "arith"}]))


def test_length_histogram_and_mix(corpus):
    hist = P.length_histogram(corpus)
    assert sum(len(t.x) for t in hist.data) == len(corpus)
    assert {t.name for t in hist.data} == {r["lang"] for r in corpus.records}
    mix = P.mix(corpus)
    assert sum(mix.data[0].y) == sum(mix.data[1].y) == len(corpus)
