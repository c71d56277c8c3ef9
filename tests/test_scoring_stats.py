"""Statistics against known values (scikit-learn, statsmodels, scipy) and generation metrics."""
import numpy as np
import pandas as pd
import pytest

from workbench.scoring import stats

rng = np.random.default_rng(0)
GOLDS = rng.integers(0, 3, 200)
PA = np.where(rng.random(200) < 0.7, GOLDS, rng.integers(0, 3, 200))
PB = np.where(rng.random(200) < 0.5, GOLDS, rng.integers(0, 3, 200))


def test_accuracy_macro_f1_and_confusion_match_sklearn():
    from sklearn import metrics as m
    assert stats.accuracy(GOLDS, PA) == pytest.approx(m.accuracy_score(GOLDS, PA))
    assert stats.macro_f1(GOLDS, PA) == pytest.approx(m.f1_score(GOLDS, PA, average="macro"))
    assert stats.macro_f1([0, 0, 1], [0, 0, 2]) == pytest.approx(m.f1_score([0, 0, 1], [0, 0, 2], average="macro",
                                                                             zero_division=0))
    np.testing.assert_array_equal(stats.confusion_matrix(GOLDS, PA, 3), m.confusion_matrix(GOLDS, PA))


def test_majority_baseline():
    b = stats.majority_baseline([1, 1, 1, 0, 2])
    assert b["class"] == 1 and b["acc"] == pytest.approx(0.6) and b["macro_f1"] == pytest.approx(0.75 / 3)


@pytest.mark.parametrize("exact", [True, False])
def test_mcnemar_matches_statsmodels(exact):
    from statsmodels.stats.contingency_tables import mcnemar
    ra, rb = PA == GOLDS, PB == GOLDS
    table = [[np.sum(ra & rb), np.sum(ra & ~rb)], [np.sum(~ra & rb), np.sum(~ra & ~rb)]]
    ref = mcnemar(table, exact=exact, correction=True)
    ours = stats.mcnemar(GOLDS, PA, PB, exact=exact)
    assert ours.statistic == pytest.approx(ref.statistic) and ours.p_value == pytest.approx(ref.pvalue)


def test_mcnemar_identical_predictions_is_not_significant():
    assert stats.mcnemar(GOLDS, PA, PA).p_value == 1.0


def test_bootstrap_sanity():
    lo, hi = stats.bootstrap_ci(PA == GOLDS, n=1000)
    acc = stats.accuracy(GOLDS, PA)
    se = np.sqrt(acc * (1 - acc) / len(GOLDS))
    assert lo < acc < hi and (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.2)   # ~ normal interval
    same = stats.paired_bootstrap(GOLDS, PA, PA, n=200)
    assert same.diff == 0 and same.ci == (0.0, 0.0) and same.p_value == 1.0
    diff = stats.paired_bootstrap(GOLDS, PA, PB, n=500)
    assert diff.diff > 0 and diff.ci[0] > 0 and diff.p_value < 0.05     # 70% vs 50% signal on 200 examples


def test_flip_matrix_counts_disagreements():
    names, m = stats.flip_matrix({"a": np.array([0, 1, 1]), "b": np.array([0, 0, 1]), "c": np.array([1, 0, 0])})
    assert names == ["a", "b", "c"]
    np.testing.assert_array_equal(m, [[0, 1, 3], [1, 0, 2], [3, 2, 0]])
    assert stats.flipped_examples([0, 0, 0], [0, 1, 1], [0, 0, 1]).tolist() == [1]


def test_ancova_finds_a_planted_effect_and_not_a_null_one():
    r = np.random.default_rng(1)
    rows = [{"params": p, "arch": a, "instruct": i, "scoring": s,
             "acc": 0.5 + 0.2 * (a == "enc-dec") * i + 0.01 * r.standard_normal()}
            for p in (1e6, 4e6, 16e6) for a in ("dec", "enc-dec") for i in (0, 1) for s in ("acc", "dcpmi", "pmi")
            for _ in range(2)]
    table = stats.ancova(pd.DataFrame(rows))
    assert table.loc["C(instruct)", "PR(>F)"] < 1e-6 and table.loc["C(scoring)", "PR(>F)"] > 0.01
    assert "np.log(params)" in table.attrs["formula"]


def test_calibration_ece_and_brier():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    golds = np.array([0, 1, 0, 1])
    rel = stats.reliability(probs, golds, n_bins=5)
    # bins (a, b]: (.4,.6] {.6 right}, (.6,.8] {.8 wrong, .7 right}, (.8,1] {.9 right}
    np.testing.assert_array_equal(rel.counts, [0, 0, 1, 2, 1])
    expect = 1 / 4 * abs(1 - 0.6) + 2 / 4 * abs(0.5 - 0.75) + 1 / 4 * abs(1 - 0.9)
    assert rel.ece == pytest.approx(expect)
    assert stats.brier(probs, golds) == pytest.approx(np.mean([0.02, 1.28, 0.32, 0.18]))
    assert stats.ece(np.eye(2)[golds], golds) == 0.0


def test_bleu_and_chrf_pp_with_signatures():
    from workbench.scoring.metrics import bleu, chrf_pp
    hyps, refs = ["the cat sat on the mat", "a dog"], [["the cat sat on the mat"], ["a dog ran"]]
    b = bleu(hyps, refs)
    assert 0 < b.score < 100 and "tok:13a" in b.signature
    c = chrf_pp(hyps, refs)
    assert "nw:2" in c.signature and 0 < c.score < 100
    assert bleu(["x y z w"], ["x y z w"]).score == pytest.approx(100)
    with pytest.raises(ValueError, match="refs\\[i\\] per hypothesis"):
        bleu(hyps, [["only one"]])


def test_spbleu_never_downloads(tmp_path):
    from workbench.scoring.metrics import spbleu
    with pytest.raises(FileNotFoundError, match="never downloads"):
        spbleu(["a"], ["a"], spm_model=tmp_path / "missing.model")
