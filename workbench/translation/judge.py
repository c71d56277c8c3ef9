"""An exact adequacy judgement of a translation, from the rules of the story grammar and its constructed languages.

Every sentence of the corpora is one pattern of the story grammar with its holes filled ("meaning" = pattern +
slot values), and every language renders a meaning by fixed rules, so a hypothesis can be read back to its
meaning by rule and compared with the source's. The judgement stands in for a human adequacy rating.

Per source sentence s (meaning M, n slots; R = the exact rendering of M in the target language) and its
aligned hypothesis sentence h:
  1. h reads back (target language's recognizer: `languages.parse_sentence`, or the English grammar's) to a
     meaning with the same English sentence as M:  score 1, no error.
  2. h reads back to the same pattern with other slot values:  score = 1 - (c + 0.5 r) / n, where r = slots
     holding another character of the source segment ("roles": hero/friend swapped or confused) and c = the
     other wrong slots ("content").
  3. h parses as the source language (or another one) instead of the target:  score 0, "untranslated"
     ("off_target" for a third language).
  4. otherwise (no parse, or another pattern) compare word forms: each word is analysed into lemma + affixes
     (PAST, PL, DEF, CASE:x) by the language's morphology; with B = the multiset of morphemes (lemmas and
     affixes), F1 = 2 |B_h & B_R| / (|B_h| + |B_R|) and O = LCS(analysed words of h, of R) / max(lengths):
        score = 0.5 * F1 * (0.5 + 0.5 * O)           (a sentence not readable by rule gets at most 0.5)
     errors: "word_order" (same words, other order), "tense_number" (same lemmas, other affixes: tense,
     number, definiteness, case), "content" (lemmas missing, extra or replaced), "unparseable" (F1 < 0.5:
     little of R is there at all). Only case or punctuation differing: score 0.9, "punctuation".
Sentences are split by `grammar.split_sentences` and aligned 1:1 when the counts agree, else monotonically by
dynamic programming (maximum total score); an unaligned source sentence scores 0 ("missing"), an unaligned
hypothesis sentence adds 0 to the sum and 1 to the count ("extra"):
  segment score = sum of aligned sentence scores / (source sentences + extra hypothesis sentences), in [0, 1].
Here: `LANGS`, `CATEGORIES`, `Meaning`, `meaning()`, `render()`, `analyse()`, `judge_segment()`, `judge()`,
`judge_scores()`, `reference_translation()`, `SentenceJudgement`, `Judgement`.
"""
from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..corpora import vocab as V
from ..corpora.grammar import SLOTS, Pattern, fill, split_sentences
from ..corpora.languages import (_CASES, _LITERAL_PAST, _PAST_SLOTS, _PLURAL_SLOTS, _SLOT_POS, LANGUAGES,
                                 _lexicon, parse_sentence)

LANGS = ("en",) + tuple(LANGUAGES)
CATEGORIES = ("content", "roles", "tense_number", "word_order", "punctuation", "untranslated", "off_target",
              "unparseable", "missing", "extra")
UNREADABLE_MAX = 0.5       # the most a sentence that does not read back to the source meaning can score
PUNCTUATION_SCORE = 0.9    # right words in the right order, only case or punctuation differ
ROLE_WEIGHT = 0.5          # a slot holding another character of the segment counts half a wrong slot
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
NAMES = frozenset(SLOTS["hero"])


def check_lang(code, argument: str) -> str:
    """`code` if it is a language of the corpora, else ValueError naming `argument` and the valid codes."""
    if code not in LANGS:
        raise ValueError(f"{argument}={code!r} is not a language of the corpora; valid: {', '.join(LANGS)}")
    return code


# ---- meanings --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Meaning:
    """A sentence's meaning: its pattern and (slot, English value) for each distinct slot, in pattern order."""
    pattern: Pattern
    values: tuple[tuple[str, str], ...]

    @property
    def english(self) -> str:
        return fill(self.pattern, dict(self.values))

    @property
    def slots(self) -> dict[str, str]:
        return dict(self.values)


@functools.lru_cache(maxsize=1)
def _english():
    from ..corpora.validate import english_recognizer
    return english_recognizer()


@functools.lru_cache(maxsize=200_000)
def meaning(sentence: str, lang: str) -> Meaning | None:
    """The meaning of one sentence in `lang` (en | vel | kor | tuu), or None when no pattern produces it."""
    if lang == "en":
        parse = _english().parse(sentence)
        if parse is None:
            return None
        pattern, values = parse.pattern, dict(reversed(parse.values))     # first occurrence of a slot wins
    else:
        parsed = parse_sentence(sentence, lang)
        if parsed is None:
            return None
        pattern, values = parsed
    return Meaning(pattern, tuple((s, values[s]) for s in dict.fromkeys(pattern.slots)))


def render(m: Meaning, lang: str) -> str:
    """The exact rendering of meaning `m` in `lang`."""
    if lang == "en":
        return m.english
    return LANGUAGES[lang].render_sentence(m.pattern, m.slots)


def reference_translation(source: str, src_lang: str, tgt_lang: str) -> str:
    """The exact translation of `source` (text of the story grammar in `src_lang`) into `tgt_lang`."""
    check_lang(src_lang, "src_lang"), check_lang(tgt_lang, "tgt_lang")
    return " ".join(render(m, tgt_lang) for m in _source_meanings(source, src_lang, "source"))


def _source_meanings(source: str, lang: str, argument: str) -> list[Meaning]:
    out = []
    for s in split_sentences(source):
        m = meaning(s, lang)
        if m is None:
            raise ValueError(f"{argument}: sentence {s!r} is not {lang} of the story grammar; the judge reads only "
                             f"sources from the corpora (e.g. translation_pairs(generate_corpus('parallel', n))) "
                             f"in src_lang={lang!r}")
        out.append(m)
    return out


# ---- morphology -------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _english_forms() -> dict[str, tuple[str, tuple[str, ...]]]:
    """English inflected surface word -> (lemma, features), from the grammar's verb and plural lists."""
    table: dict[str, tuple[str, tuple[str, ...]]] = {}
    for past, lemma in _LITERAL_PAST.items():
        table[past] = (lemma, ("PAST",))
    for pairs in _PAST_SLOTS.values():
        for base, past in pairs:
            for b, p in zip(base.split(), past.split()):
                if b != p:
                    table.setdefault(p, (b, ("PAST",)))
    for words in _PLURAL_SLOTS.values():
        for w in words:
            sg, pl = w.split()[-1], V.plural(w).split()[-1]
            if sg != pl:
                table.setdefault(pl, (sg, ("PL",)))
    return table


@functools.lru_cache(maxsize=None)
def english_surface() -> dict[tuple[str, tuple[str, ...]], str]:
    """(lemma, features) -> English surface word, the inverse of the analysis (base forms are themselves)."""
    return {v: k for k, v in sorted(_english_forms().items())}


@functools.lru_cache(maxsize=None)
def _stems(lang: str) -> dict[str, str]:
    return {stem: lemma for lemma, stem in _lexicon(lang).items()}


@functools.lru_cache(maxsize=None)
def _affixes(lang: str) -> tuple[tuple[str, str], ...]:
    language = LANGUAGES[lang]
    pieces = [(language.past, "PAST"), (language.plural, "PL"), (language.definite, "DEF")]
    if language.affix == "agglutinative":
        pieces += [(piece, f"CASE:{prep}") for prep, piece in _CASES.items()]
    return tuple(sorted(pieces, key=lambda x: (-len(x[0]), x[0])))


def _strip(word: str, lang: str, depth: int = 0) -> tuple[str, tuple[str, ...]] | None:
    stems = _stems(lang)
    if word in stems:
        return stems[word], ()
    if depth == 4:
        return None
    prefix = LANGUAGES[lang].affix == "prefix"
    for piece, feat in _affixes(lang):
        if len(word) <= len(piece):
            continue
        if prefix and word.startswith(piece):
            inner = _strip(word[len(piece):], lang, depth + 1)
        elif not prefix and word.endswith(piece):
            inner = _strip(word[:-len(piece)], lang, depth + 1)
        else:
            continue
        if inner is not None:
            return inner[0], inner[1] + (feat,)
    return None


@functools.lru_cache(maxsize=200_000)
def analyse(word: str, lang: str) -> tuple[str, tuple[str, ...]]:
    """One word of `lang` -> (English lemma, features in the order `Language.form` applies them).

    Names stay as they are (English: every word lower-cased); an unknown word is its own lower-cased lemma.
    Example: analyse("puyanbaneek", "tuu") == ("park", ("PL", "DEF", "CASE:to")) ("to the parks").
    """
    low = word.lower()
    if lang == "en":       # lower-cased throughout: "Rose" (a name) and "rose" (a flower) read alike
        return _english_forms().get(low, (low, ()))
    if word in NAMES:
        return word, ()
    w = word[0].lower() + word[1:]
    return _strip(w, lang) or (low, ())


def words(sentence: str) -> list[str]:
    return _WORD.findall(sentence)


def _lcs(a: list, b: list) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _morphemes(analysed) -> Counter:
    return Counter(m for lemma, feats in analysed for m in (lemma,) + feats)


# ---- one sentence -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SentenceJudgement:
    source: str
    hypothesis: str            # "" for a missing sentence; the source is "" for an extra one
    score: float               # in [0, 1]
    errors: tuple[str, ...]    # categories of CATEGORIES; () when the meaning is exact
    parsed: bool               # the hypothesis reads back in the target language


def _compare_forms(ref: str, hyp: str, tgt: str) -> tuple[float, tuple[str, ...]]:
    ra = [analyse(w, tgt) for w in words(ref)]
    ha = [analyse(w, tgt) for w in words(hyp)]
    if ra == ha:
        return PUNCTUATION_SCORE, ("punctuation",)
    rm, hm = _morphemes(ra), _morphemes(ha)
    total = sum(rm.values()) + sum(hm.values())
    f1 = 2 * sum((rm & hm).values()) / total if total else 0.0
    order = _lcs(ra, ha) / max(len(ra), len(ha), 1)
    score = UNREADABLE_MAX * f1 * (0.5 + 0.5 * order)
    if Counter(ra) == Counter(ha):
        errors = ("word_order",)
    elif Counter(x for x, _ in ra) == Counter(x for x, _ in ha):
        same_order = [x for x, _ in ra] == [x for x, _ in ha]
        errors = ("tense_number",) if same_order else ("tense_number", "word_order")
    elif f1 < 0.5:
        errors = ("unparseable",)
    else:
        errors = ("content",)
    return score, errors


def judge_sentence(src: Meaning, hyp: str, src_lang: str, tgt_lang: str,
                   characters: frozenset = frozenset()) -> SentenceJudgement:
    """Judge one hypothesis sentence `hyp` (in `tgt_lang`) against one source meaning; see the module doc.

    characters: the names of the source segment's characters (a wrong name that is one of them is a
    "roles" error, any other wrong value a "content" error).
    """
    source_text = render(src, src_lang)
    m = meaning(hyp, tgt_lang)
    if m is not None:
        if m.english == src.english:
            return SentenceJudgement(source_text, hyp, 1.0, (), True)
        if m.pattern.id == src.pattern.id:
            want, got = src.slots, m.slots
            wrong = [s for s in want if got.get(s) != want[s]]
            roles = [s for s in wrong if _SLOT_POS.get(s) == "name" and got.get(s) in characters]
            content = [s for s in wrong if s not in roles]
            score = 1.0 - (len(content) + ROLE_WEIGHT * len(roles)) / max(len(want), 1)
            errors = ("roles",) * bool(roles) + ("content",) * bool(content)
            return SentenceJudgement(source_text, hyp, max(0.0, score), errors, True)
    else:
        for other in (src_lang,) + tuple(x for x in LANGS if x not in (src_lang, tgt_lang)):
            if meaning(hyp, other) is not None:
                kind = "untranslated" if other == src_lang else "off_target"
                return SentenceJudgement(source_text, hyp, 0.0, (kind,), False)
    score, errors = _compare_forms(render(src, tgt_lang), hyp, tgt_lang)
    return SentenceJudgement(source_text, hyp, score, errors, m is not None)


# ---- one segment ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Judgement:
    """The exact judgement of one segment: score in [0, 1], per-sentence details, error counts."""
    score: float
    sentences: tuple[SentenceJudgement, ...]
    errors: dict = field(default_factory=dict)     # category -> number of sentences with it


def _characters(meanings: list[Meaning]) -> frozenset:
    return frozenset(v for m in meanings for s, v in m.values if _SLOT_POS.get(s) == "name" and v in NAMES)


def judge_segment(source: str, hypothesis: str, src_lang: str, tgt_lang: str) -> Judgement:
    """Judge `hypothesis` (text in `tgt_lang`) as a translation of `source` (story-grammar text in `src_lang`).

    Raises ValueError for an unknown language code, src_lang == tgt_lang, or a source sentence that is not
    of the story grammar in `src_lang`.
    """
    check_lang(src_lang, "src_lang"), check_lang(tgt_lang, "tgt_lang")
    if src_lang == tgt_lang:
        raise ValueError(f"src_lang and tgt_lang are both {src_lang!r}: the judge scores translations between "
                         f"two different languages")
    src = _source_meanings(source, src_lang, "source")
    hyps = split_sentences(hypothesis)
    chars = _characters(src)
    if len(hyps) == len(src):
        sents = [judge_sentence(m, h, src_lang, tgt_lang, chars) for m, h in zip(src, hyps)]
    else:
        sents = _align(src, hyps, src_lang, tgt_lang, chars)
    n_extra = sum(1 for s in sents if "extra" in s.errors)
    total = sum(s.score for s in sents)
    score = total / (len(src) + n_extra) if (len(src) + n_extra) else 0.0
    counts = Counter(e for s in sents for e in s.errors)
    return Judgement(float(score), tuple(sents), {c: counts[c] for c in CATEGORIES if counts[c]})


def _align(src: list[Meaning], hyps: list[str], src_lang: str, tgt_lang: str,
           chars: frozenset) -> list[SentenceJudgement]:
    """Monotone alignment maximising the summed sentence scores; gaps score 0 (missing / extra)."""
    n, k = len(src), len(hyps)
    pair = [[judge_sentence(m, h, src_lang, tgt_lang, chars) for h in hyps] for m in src]
    best = np.zeros((n + 1, k + 1))
    for i in range(n + 1):
        for j in range(k + 1):
            if i == 0 and j == 0:
                continue
            options = []
            if i and j:
                options.append(best[i - 1, j - 1] + pair[i - 1][j - 1].score)
            if i:
                options.append(best[i - 1, j])
            if j:
                options.append(best[i, j - 1])
            best[i, j] = max(options)
    out, i, j = [], n, k
    while i or j:
        if i and j and np.isclose(best[i, j], best[i - 1, j - 1] + pair[i - 1][j - 1].score):
            out.append(pair[i - 1][j - 1])
            i, j = i - 1, j - 1
        elif i and np.isclose(best[i, j], best[i - 1, j]):
            out.append(SentenceJudgement(render(src[i - 1], src_lang), "", 0.0, ("missing",), False))
            i -= 1
        else:
            out.append(SentenceJudgement("", hyps[j - 1], 0.0, ("extra",), False))
            j -= 1
    return out[::-1]


def judge(sources, hypotheses, src_lang: str, tgt_lang: str) -> list[Judgement]:
    """`judge_segment` for each (source, hypothesis) pair; lists of equal length > 0 (ValueError otherwise)."""
    from .metrics import check_pairs
    hyps, srcs = check_pairs(hypotheses, sources, names=("hypotheses", "sources"))
    check_lang(src_lang, "src_lang"), check_lang(tgt_lang, "tgt_lang")
    out = []
    for i, (s, h) in enumerate(zip(srcs, hyps)):
        try:
            out.append(judge_segment(s, h, src_lang, tgt_lang))
        except ValueError as e:
            if str(e).startswith("source:"):
                raise ValueError(f"sources[{i}]" + str(e)[len("source"):]) from None
            raise
    return out


def judge_scores(sources, hypotheses, src_lang: str, tgt_lang: str) -> np.ndarray:
    """(N,) segment scores in [0, 1] of `judge`."""
    return np.array([j.score for j in judge(sources, hypotheses, src_lang, tgt_lang)], dtype=float)
