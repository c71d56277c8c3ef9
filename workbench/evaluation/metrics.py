"""Metrics for one generated output against its references: each returns a score in [0, 1], max over references.

exact_match  1 if normalize(output) == normalize(reference) for some reference. normalize is SQuAD's answer
             normalisation (Rajpurkar et al. 2016, its evaluate-v1.1.py): lower-case, drop punctuation and the
             articles a/an/the, collapse white space.
rouge_l      ROUGE-L F-measure (longest common subsequence of words; Lin 2004) by Google's `rouge-score`
             package, its default tokenizer (lower-case, alphanumeric words), no stemming.
chrf         chrF (character n-grams up to 6, beta 2; Popovic 2015) by `sacrebleu`'s sentence_chrf, / 100.
judge        semantic correctness from the generator's facts: every `required` group has one alternative in
             the output (whole words, case-insensitive) and, once those are blanked out, no `forbidden` word
             occurs (a contradicting name, place, object, feeling or number). 1 or 0.
Here: `METRICS`, `normalize()`, `exact_match()`, `rouge_l()`, `chrf()`, `judge()`, `score_output()`.
"""
from __future__ import annotations

import re
import string
from functools import lru_cache

METRICS = ("exact_match", "rouge_l", "chrf", "judge")
_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """SQuAD normalisation: 'The Park.' -> 'park'; ' 17 ' -> '17'."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(output: str, references) -> float:
    """1.0 when the normalised output equals a normalised reference, else 0.0."""
    out = normalize(output)
    return float(any(out == normalize(r) for r in references))


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(output: str, references) -> float:
    """Max ROUGE-L F-measure over the references (0.0 for an empty output)."""
    if not output.strip():
        return 0.0
    return max(_rouge().score(r, output)["rougeL"].fmeasure for r in references)


def chrf(output: str, references) -> float:
    """Max sentence chrF over the references, in [0, 1] (sacrebleu's score / 100)."""
    metric = _chrf_metric()
    return max(metric.sentence_score(output, [r]).score for r in references) / 100.0


@lru_cache(maxsize=1)
def _chrf_metric():
    from sacrebleu.metrics import CHRF
    return CHRF()       # chrF: char_order 6, word_order 0, beta 2 (sacrebleu's defaults)


@lru_cache(maxsize=4096)
def _word(word: str) -> re.Pattern:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(word.lower())}(?![A-Za-z0-9])")


def judge(output: str, required, forbidden=()) -> float:
    """1.0 when each group in `required` has an alternative in `output` and no `forbidden` word remains.

    Matching is on whole words, case-insensitive; the matched required words are blanked before the
    forbidden check, so "blue lake" is not contradicted by its own word "lake".
    Example: judge("Bella.", [["Bella"]], ["Julia"]) == 1.0; judge("Julia and Bella", ...) == 0.0.
    """
    text = output.lower()
    for group in required:
        hits = [_word(alt).search(text) for alt in sorted(group, key=len, reverse=True)]
        hit = next((h for h in hits if h), None)
        if hit is None:
            return 0.0
        text = text[:hit.start()] + " " * (hit.end() - hit.start()) + text[hit.end():]
    return float(not any(_word(w).search(text) for w in forbidden))


def score_output(output: str, references, required=(), forbidden=()) -> dict[str, float]:
    """Every metric of METRICS for one output; `required` defaults to the references as one group."""
    refs = list(references)
    if not refs:
        raise ValueError("references is empty: every instance needs at least one reference")
    return {"exact_match": exact_match(output, refs), "rouge_l": rouge_l(output, refs),
            "chrf": chrf(output, refs), "judge": judge(output, required or [refs], forbidden)}
