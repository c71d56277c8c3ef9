"""The exact judgement: references score 1 in every direction; each corruption gets its category and less."""
import random

import pytest

from workbench.corpora import generate_corpus, translation_pairs
from workbench.corpora.grammar import split_sentences
from workbench.translation import judge as J
from workbench.translation.synthetic import CORRUPTIONS, corrupt, corrupt_sentence

DIRECTIONS = [(a, b) for a in J.LANGS for b in J.LANGS if a != b]
EXPECTED = {"substitute": "content", "drop": "content", "swap_roles": "roles", "tense_number": "tense_number",
            "shuffle": "word_order", "copy_source": "untranslated"}


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus("parallel", 3, seed=5, split="eval")


@pytest.mark.parametrize("src, tgt", DIRECTIONS)
def test_reference_translation_scores_one(corpus, src, tgt):
    pairs = translation_pairs(corpus, src, tgt)
    js = J.judge([s for s, _ in pairs], [t for _, t in pairs], src, tgt)
    assert [j.score for j in js] == [1.0] * len(pairs)
    assert all(j.errors == {} for j in js)
    assert J.reference_translation(pairs[0][0], src, tgt) == pairs[0][1]


@pytest.mark.parametrize("src, tgt", [("en", "vel"), ("en", "kor"), ("en", "tuu"), ("tuu", "en"), ("kor", "vel")])
@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_each_corruption_gets_its_category_and_a_lower_score(corpus, src, tgt, kind):
    rng, seen = random.Random(0), 0
    for s, r in translation_pairs(corpus, src, tgt):
        meanings = [J.meaning(x, tgt) for x in split_sentences(r)]
        chars = J._characters(meanings)
        for x, y in zip(split_sentences(s), split_sentences(r)):
            h = corrupt_sentence(x, y, src, tgt, kind, rng, chars)
            if h is None:
                continue
            seen += 1
            sj = J.judge_sentence(J.meaning(x, src), h, src, tgt, chars)
            assert sj.errors == (EXPECTED[kind],), (y, h, sj)
            assert sj.score < 1.0
            if kind == "copy_source":
                assert sj.score == 0.0
            if kind in ("shuffle", "tense_number") or not sj.parsed:
                assert sj.score <= J.UNREADABLE_MAX
    assert seen >= 5


def test_scores_fall_with_the_corruption_rate(corpus):
    pairs = translation_pairs(corpus, "en", "tuu")
    srcs, refs = [s for s, _ in pairs], [t for _, t in pairs]
    means = [J.judge_scores(srcs, corrupt(srcs, refs, "en", "tuu", rate), "en", "tuu").mean()
             for rate in (0.0, 0.3, 0.8)]
    assert means[0] == 1.0 > means[1] > means[2]


def test_missing_and_extra_sentences_are_aligned(corpus):
    src, ref = translation_pairs(corpus, "en", "kor")[0]
    sents = split_sentences(ref)
    short = J.judge_segment(src, " ".join(sents[:-1]), "en", "kor")
    assert short.errors == {"missing": 1} and short.score == pytest.approx((len(sents) - 1) / len(sents))
    longer = J.judge_segment(src, " ".join(sents[:2] + ["Kabu zagu."] + sents[2:]), "en", "kor")
    assert longer.errors == {"extra": 1} and longer.score == pytest.approx(len(sents) / (len(sents) + 1))
    assert J.judge_segment(src, "", "en", "kor").score == 0.0


def test_morphology_analysis():
    assert J.analyse("puyanbaneek", "tuu") == ("park", ("PL", "DEF", "CASE:to"))
    assert J.analyse("went", "en") == ("go", ("PAST",))


def test_bad_input_is_refused_with_the_fix(corpus):
    src, ref = translation_pairs(corpus, "en", "vel")[0]
    with pytest.raises(ValueError, match="src_lang='xx' .*valid: en, vel, kor, tuu"):
        J.judge([src], [ref], "xx", "vel")
    with pytest.raises(ValueError, match="both 'vel'"):
        J.judge_segment(ref, ref, "vel", "vel")
    with pytest.raises(ValueError, match=r"hypotheses and sources differ in count \(2 vs 1\)"):
        J.judge([src], [ref, ref], "en", "vel")
    with pytest.raises(ValueError, match=r"sources\[0\]: sentence .* not en of the story grammar"):
        J.judge(["Colourless green ideas sleep furiously."], [ref], "en", "vel")
    with pytest.raises(ValueError, match="hypotheses is empty"):
        J.judge([], [], "en", "vel")
