"""Metric-vs-judgement agreement on synthetic systems, bootstrap CIs and sacrebleu's paired tests."""
import numpy as np
import pytest

from workbench.corpora import generate_corpus, translation_pairs
from workbench.translation import agreement as A
from workbench.translation.synthetic import corrupt, sentence_pairs, synthetic_systems


@pytest.fixture(scope="module")
def data():
    pairs = sentence_pairs(translation_pairs(generate_corpus("parallel", 4, seed=7, split="eval"), "en", "vel"))
    srcs, refs = [s for s, _ in pairs], [t for _, t in pairs]
    return srcs, refs, synthetic_systems(srcs, refs, "en", "vel", rates=(0.0, 0.2, 0.4, 0.7, 0.9))


def test_correlate_known_answers():
    x = np.arange(10.0)
    assert A.correlate(x, x ** 3, "spearman", n_boot=50)[0] == pytest.approx(1.0)
    assert A.correlate(x, -x, "kendall", n_boot=50)[0] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="method='pearson'"):
        A.correlate(x, x, "pearson")
    with pytest.raises(ValueError, match="3 or more"):
        A.correlate([1, 2], [1, 2])


def test_agreement_on_synthetic_systems_is_positive_with_cis(data):
    srcs, refs, systems = data
    table = A.agreement_table(systems, srcs, refs, "en", "vel", n_boot=200)
    assert set(table.level) == {"segment", "system"} and set(table.metric) == {"BLEU", "spBLEU", "chrF++"}
    assert (table.value > 0).all()
    assert ((table.lo <= table.value + 1e-12) & (table.value <= table.hi + 1e-12)).all()
    assert "spm-wb4k-" in table.attrs["signatures"]["spBLEU"]
    judged = table.attrs["judgements"]
    means = [judged[s].mean() for s in systems]
    assert means == sorted(means, reverse=True) and means[0] == 1.0


def test_paired_tests_find_the_clearly_better_system(data):
    srcs, refs, systems = data
    bad, good = systems["synthetic-r0.90"], systems["synthetic-r0.00"]
    res = A.paired_significance(bad, good, refs, metrics=("BLEU", "chrF++"), test="bs")
    assert all(r.significant and r.score_b > r.score_a for r in res.values())
    assert "bs:1000" in res["BLEU"].signature
    ar = A.paired_significance(bad, good, refs, metrics=("spBLEU",), test="ar", n_samples=500)
    assert ar["spBLEU"].p_value < 0.05 and "ar:500" in ar["spBLEU"].signature
    same = A.paired_significance(good, good, refs, metrics=("BLEU",), n_samples=200)
    assert not same["BLEU"].significant


def test_bad_input_is_refused_with_the_fix(data):
    srcs, refs, systems = data
    two = dict(list(systems.items())[:2])
    with pytest.raises(ValueError, match="at least 3"):
        A.system_agreement(two, refs, {s: np.ones(len(refs)) for s in two})
    with pytest.raises(ValueError, match=r"hypotheses_b and references differ in count"):
        A.paired_significance(refs, refs[:-1], refs)
    with pytest.raises(ValueError, match="test='t'"):
        A.paired_significance(refs, refs, refs, test="t")
    with pytest.raises(ValueError, match="rate=1.5"):
        corrupt(srcs, refs, "en", "vel", rate=1.5)
    with pytest.raises(ValueError, match="kinds=.*use one or more of"):
        corrupt(srcs, refs, "en", "vel", kinds=("typo",))
    with pytest.raises(ValueError, match="tgt_lang='fr'"):
        A.agreement_table(systems, srcs, refs, "en", "fr")
