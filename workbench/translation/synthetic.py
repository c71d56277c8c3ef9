"""SYNTHETIC translation systems: reference translations with controlled corruptions, for studying metrics offline.

No model is involved: a synthetic system's output is the exact reference translation with some sentences
corrupted on purpose, so metric-vs-judgement agreement can be measured before any translation model exists.
Corruptions (each applies to one sentence; `None` when it does not apply to that sentence):
  substitute    one slot value replaced by another value of the same slot (content word wrong)
  drop          one content word deleted (content word missing)
  swap_roles    hero and friend exchanged; a sentence naming one character names another of the segment
  tense_number  one PAST or PL affix removed (English: the base form) - a morphology error
  shuffle       the words of the sentence permuted, punctuation kept in place, into an order that reads as no
                sentence of the grammar (word order)
  copy_source   the source sentence copied untranslated
Here: `CORRUPTIONS`, `corrupt_sentence()`, `corrupt()`, `synthetic_systems()`, `sentence_pairs()`.
"""
from __future__ import annotations

import random
import re

from ..corpora.grammar import SLOTS, split_sentences
from ..corpora.languages import LANGUAGES, _SLOT_POS, _analyse
from .judge import Meaning, _characters, analyse, check_lang, english_surface, meaning, render

CORRUPTIONS = ("substitute", "drop", "swap_roles", "tense_number", "shuffle", "copy_source")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_CONTENT_POS = ("noun", "adj", "verb")


def _check_kinds(kinds) -> tuple[str, ...]:
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    bad = [k for k in kinds if k not in CORRUPTIONS]
    if bad or not kinds:
        raise ValueError(f"kinds={kinds!r}: use one or more of {', '.join(CORRUPTIONS)}")
    return kinds


def _capitalize_first(s: str, was_first: str) -> str:
    """Upper-case the new first word; lower-case the old first word where it moved (names and I stay)."""
    spans = list(_WORD.finditer(s))
    if not spans:
        return s
    out = list(s)
    for m in spans[1:]:
        w = m.group()
        if w == was_first and w not in SLOTS["hero"] and w != "I":
            out[m.start()] = w[0].lower()
    out[spans[0].start()] = out[spans[0].start()].upper()
    return "".join(out)


def _replace_words(s: str, new_words: list[str]) -> str:
    spans = list(_WORD.finditer(s))
    parts, pos = [], 0
    for m, w in zip(spans, new_words):
        parts += [s[pos:m.start()], w]
        pos = m.end()
    return "".join(parts) + s[pos:]


def _content_lemmas(m: Meaning) -> set[str]:
    return {_analyse(w, slot)[0] for slot, v in m.values if _SLOT_POS.get(slot, "noun") in _CONTENT_POS
            for w in v.split()}


def corrupt_sentence(source: str, reference: str, src_lang: str, tgt_lang: str, kind: str, rng: random.Random,
                     characters=frozenset()) -> str | None:
    """`reference` (one sentence in `tgt_lang`, the exact translation of `source`) with corruption `kind`;
    None when the corruption cannot change this sentence. `characters`: names of the segment's characters."""
    m = meaning(reference, tgt_lang)
    if m is None:
        raise ValueError(f"references: sentence {reference!r} is not {tgt_lang} of the story grammar; corruptions "
                         f"start from exact reference translations (translation_pairs of a parallel corpus)")
    if kind == "copy_source":
        return source if source != reference else None
    if kind == "substitute":
        slots = [s for s, _ in m.values if _SLOT_POS.get(s, "noun") in _CONTENT_POS and len(SLOTS[s]) > 1]
        if not slots:
            return None
        slot = rng.choice(slots)
        value = rng.choice([v for v in SLOTS[slot] if v != m.slots[slot]])
        new = Meaning(m.pattern, tuple((s, value if s == slot else v) for s, v in m.values))
        out = render(new, tgt_lang)
        return out if out != reference else None
    if kind == "swap_roles":
        vals = m.slots
        if vals.get("hero") and vals.get("friend") and vals["hero"] != vals["friend"]:
            swap = {"hero": vals["friend"], "friend": vals["hero"]}
        else:
            slot = next((s for s in ("hero", "friend") if s in vals), None)
            others = sorted(c for c in characters if slot and c != vals[slot])
            if not others:
                return None
            swap = {slot: rng.choice(others)}
        new = Meaning(m.pattern, tuple((s, swap.get(s, v)) for s, v in m.values))
        return render(new, tgt_lang)
    words = _WORD.findall(reference)
    if kind == "shuffle":
        if len(set(words)) < 2:
            return None
        for _ in range(20):       # a permutation that reads as another sentence would be another error
            new = list(words)
            while new == words:
                rng.shuffle(new)
            out = _capitalize_first(_replace_words(reference, new), words[0])
            if meaning(out, tgt_lang) is None:
                return out
        return None
    analysed = [analyse(w, tgt_lang) for w in words]
    if kind == "drop":
        lemmas = _content_lemmas(m)
        idx = [i for i, (lemma, _) in enumerate(analysed) if lemma in lemmas]
        if not idx or len(words) < 2:
            return None
        i = rng.choice(idx)
        spans = list(_WORD.finditer(reference))
        a, b = spans[i].start(), spans[i].end()
        if b < len(reference) and reference[b] == " ":
            b += 1
        elif a > 0 and reference[a - 1] == " ":
            a -= 1
        return _capitalize_first(reference[:a] + reference[b:], words[i])
    if kind == "tense_number":
        idx = [i for i, (_, feats) in enumerate(analysed) if "PAST" in feats or "PL" in feats]
        if not idx:
            return None
        i = rng.choice(idx)
        lemma, feats = analysed[i]
        drop = rng.choice([f for f in feats if f in ("PAST", "PL")])
        feats = tuple(f for f in feats if f != drop)
        if tgt_lang == "en":
            form = english_surface().get((lemma, feats), lemma) if feats else lemma
        else:
            form = LANGUAGES[tgt_lang].form(lemma, feats)
        if words[i][0].isupper():
            form = form[0].upper() + form[1:]
        new = list(words)
        new[i] = form
        return _replace_words(reference, new)
    raise ValueError(f"kind={kind!r}: use one of {', '.join(CORRUPTIONS)}")


def corrupt(sources, references, src_lang: str, tgt_lang: str, rate: float = 0.3, kinds=CORRUPTIONS,
            seed: int = 0) -> list[str]:
    """A SYNTHETIC system's outputs: each reference sentence is corrupted with probability `rate` by a kind
    drawn uniformly from `kinds` (another applicable kind is tried when the drawn one does not apply).

    sources, references: segments (e.g. `translation_pairs(corpus, src_lang, tgt_lang)`), the references exact
    translations with as many sentences as their sources. Deterministic for a given seed.
    """
    from .metrics import check_pairs
    refs, srcs = check_pairs(references, sources, names=("references", "sources"))
    check_lang(src_lang, "src_lang"), check_lang(tgt_lang, "tgt_lang")
    kinds = _check_kinds(kinds)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate={rate!r}: pass the share of sentences to corrupt, between 0 and 1")
    rng = random.Random(f"synthetic-{seed}-{rate}-{','.join(kinds)}")
    out = []
    for k, (src, ref) in enumerate(zip(srcs, refs)):
        ss, rs = split_sentences(src), split_sentences(ref)
        if len(ss) != len(rs):
            raise ValueError(f"sources[{k}] has {len(ss)} sentences but references[{k}] {len(rs)}: corrupt() "
                             f"needs sentence-aligned pairs such as translation_pairs() gives")
        chars = _characters([x for x in (meaning(r, tgt_lang) for r in rs) if x is not None])
        sents = []
        for s, r in zip(ss, rs):
            new = None
            if rng.random() < rate:
                order = list(kinds)
                rng.shuffle(order)
                for kind in order:
                    new = corrupt_sentence(s, r, src_lang, tgt_lang, kind, rng, chars)
                    if new is not None:
                        break
            sents.append(new or r)
        out.append(" ".join(sents))
    return out


def synthetic_systems(sources, references, src_lang: str, tgt_lang: str,
                      rates=(0.0, 0.1, 0.25, 0.5, 0.75), kinds=CORRUPTIONS, seed: int = 0) -> dict[str, list[str]]:
    """{"synthetic-r0.25": outputs, ...}: one SYNTHETIC system per corruption rate (see `corrupt`), graded
    from exact (rate 0) to mostly corrupted."""
    rates = list(rates)
    if not rates:
        raise ValueError("rates is empty: pass one corruption rate (0-1) per synthetic system")
    return {f"synthetic-r{r:.2f}": corrupt(sources, references, src_lang, tgt_lang, r, kinds, seed + i)
            for i, r in enumerate(rates)}


def sentence_pairs(pairs) -> list[tuple[str, str]]:
    """Story-level (source, target) pairs -> one pair per sentence (segments the size NLLB's metric study uses).

    pairs: e.g. `translation_pairs(corpus, src, tgt)`; each pair's texts must have as many sentences.
    """
    out = []
    for k, (src, tgt) in enumerate(pairs):
        ss, ts = split_sentences(src), split_sentences(tgt)
        if len(ss) != len(ts):
            raise ValueError(f"pairs[{k}] has {len(ss)} source and {len(ts)} target sentences: pass sentence-"
                             f"aligned pairs such as translation_pairs() gives")
        out += list(zip(ss, ts))
    return out
