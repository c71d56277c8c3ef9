"""MT metrics: same numbers as sacrebleu's own functions, signatures present, spBLEU's local model deterministic."""
import pytest
import sacrebleu

from workbench.corpora import generate_corpus, translation_pairs
from workbench.translation import metrics as M
from workbench.translation.synthetic import corrupt


@pytest.fixture(scope="module")
def pairs():
    return translation_pairs(generate_corpus("parallel", 6, seed=3, split="eval"), "en", "vel")


@pytest.fixture(scope="module")
def system(pairs):
    srcs, refs = [s for s, _ in pairs], [t for _, t in pairs]
    return corrupt(srcs, refs, "en", "vel", rate=0.4, seed=1), refs


def test_bleu_and_chrfpp_equal_sacrebleu_with_signatures(system):
    hyps, refs = system
    b, c = M.bleu(hyps, refs, segments=True), M.chrf_pp(hyps, refs, segments=True)
    assert b.score == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)
    assert c.score == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score, abs=1e-9)
    assert "tok:13a" in b.signature and "nw:2" in c.signature and "version:" in b.signature
    assert b.signature in str(b) and 0 < b.score < 100
    assert b.segments == pytest.approx([sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(hyps, refs)])
    assert c.segments == pytest.approx([sacrebleu.sentence_chrf(h, [r], word_order=2).score
                                        for h, r in zip(hyps, refs)])
    assert "eff:yes" in b.segment_signature
    assert M.bleu(refs, refs).score == pytest.approx(100.0)


def test_spbleu_uses_the_local_model_named_in_its_signature(system):
    hyps, refs = system
    model = M.spm_model()
    sp = M.spbleu(hyps, refs)
    assert f"tok:spm-wb4k-{model.sha12}" in sp.signature and "flores" not in sp.signature
    assert "FLORES-200" in M.SPM_NOTE
    assert model.path.stat().st_size < M.SPM_MAX_BYTES
    # where segmentation matters (a wrong affix is a wrong word for 13a, a wrong piece for spm) they differ
    assert abs(sp.score - M.bleu(hyps, refs).score) > 0.1
    pieces = " ".join(model.pieces(refs[0])).replace(" ", "").replace("\u2581", " ").strip()
    assert pieces == refs[0]


def test_spm_training_is_deterministic(tmp_path):
    a = M.train_spm(tmp_path / "a.model")
    b = M.train_spm(tmp_path / "b.model")
    assert a.sha12 == b.sha12 == M.spm_model().sha12
    assert len(a.sha12) == 12


def test_score_all_and_sentence_scores(system):
    hyps, refs = system
    res = M.score_all(hyps, refs)
    assert list(res) == list(M.METRICS)
    assert all(len(r.segments) == len(hyps) for r in res.values())
    assert M.sentence_scores("chrF++", hyps, refs).tolist() == pytest.approx(list(res["chrF++"].segments))


@pytest.mark.parametrize("hyps, refs, message", [
    (["a", "b"], ["a"], r"hypotheses and references differ in count \(2 vs 1\)"),
    ([], [], "hypotheses is empty"),
    ("a b", ["a b"], "list of strings"),
    (["a", None], ["a", "b"], r"hypotheses\[1\]"),
])
def test_bad_input_is_refused_with_the_fix(hyps, refs, message):
    with pytest.raises(ValueError, match=message):
        M.bleu(hyps, refs)


def test_unknown_metric_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: BLEU, spBLEU, chrF"):
        M.corpus_score("METEOR", ["a"], ["a"])
