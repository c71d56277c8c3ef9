"""Judge a story against the story grammar: the project's measurable stand-in for "coherent and grammatical".

For one story (`validate_text`):
  sentences         number of sentences (split after . ! ? and closing quotes)
  well_formed       fraction of sentences that some pattern of the grammar produces exactly
  hero_consistency  fraction of main-character mentions (name slots and he/she/his/her/himself slots of the
                    recognised sentences) that agree with the main character named first: same name, pronouns
                    and "girl"/"boy" of the name's gender. 0 when no main character is named.
  friend_consistency the same for the second character, who must not carry the main character's name
                    (1 when no second character is named)
  object_consistency fraction of later mentions of the story's fixed things (its object, creature, dish, food,
                    places, parent, pet, home) that repeat the first mention: "the kite" stays the kite
  plot_complete     fraction of the plot parts intro, want/problem, attempt, resolution, feeling that appear,
                    in that order, among the recognised sentences
  hero              the main character's name (None when none is found)
`validate_texts` averages per story and also gives `well_formed_micro` (pooled over all sentences) and
`perfect_stories` (share of stories fully well-formed and consistent in hero, friend and objects).
The numbers measure conformity to this project's story grammar and vocabulary, not English in general: other
stories (e.g. TinyStories) score near 0 on well_formed however good they are.
Here: `validate_text()`, `validate_texts()`, `validate_records()` (a corpus: per language, other domains skipped),
`corrupt_text()`. Not here: the grammar (`grammar`, `stories`).
"""
from __future__ import annotations

import functools
import re
from typing import Iterable

from . import vocab as V
from .grammar import FRIEND_SLOTS, HERO_SLOTS, PRONOUNS, Parse, Recognizer, split_sentences
from .stories import PATTERNS, PLOT, plot_part


@functools.lru_cache(maxsize=1)
def english_recognizer() -> Recognizer:
    return Recognizer(PATTERNS)


def parse_story(text: str, recognizer: Recognizer | None = None) -> list[tuple[str, Parse | None]]:
    """Each sentence of `text` with its parse (None when no pattern produces it)."""
    rec = recognizer or english_recognizer()
    return [(s, rec.parse(s)) for s in split_sentences(text)]


def _consistency(parses: list[Parse], name_slot: str, slots: set[str], other: str | None = None,
                 missing: float = 0.0) -> tuple[float, str | None]:
    """Share of mentions in `slots` agreeing with the first `name_slot` value: the same name (never `other`,
    the other character), pronouns of the name's gender, "girl"/"boy" of that gender (animal kinds always fit)."""
    names = [w for p in parses for s, w in p.values if s == name_slot]
    name = next((w for w in names if w != other), None)
    if name is None:
        return (0.0 if names else missing), None
    g = V.gender(name)
    ok = total = 0
    seen_first = False
    for p in parses:
        for slot, word in p.values:
            if slot not in slots:
                continue
            if slot == name_slot and word == name and not seen_first:
                seen_first = True
                continue
            total += 1
            if slot == name_slot:
                ok += word == name
            elif slot in PRONOUNS:
                ok += word.lower() == PRONOUNS[slot][g == "f"]
            else:
                ok += word not in ("girl", "boy") or word == ("girl" if g == "f" else "boy")
    return (ok / total if total else 1.0), name


STORY_OBJECT_SLOTS = ("thing", "creature", "dish", "food", "place", "place2", "parent", "pet", "home")


def _object_consistency(parses: list[Parse]) -> float:
    first: dict[str, str] = {}
    ok = total = 0
    for p in parses:
        for slot, word in p.values:
            if slot not in STORY_OBJECT_SLOTS:
                continue
            if slot not in first:
                first[slot] = word
            else:
                total += 1
                ok += word == first[slot]
    return ok / total if total else 1.0


def _plot_complete(parses: list[Parse]) -> float:
    """Longest in-order run of PLOT parts found, as a fraction of len(PLOT)."""
    parts = [plot_part(p.pattern.group) for p in parses]
    i = 0
    for part in parts:
        if i < len(PLOT) and part == PLOT[i]:
            i += 1
        elif i > 0 and part == PLOT[i - 1]:
            continue
    return i / len(PLOT)


def validate_text(text: str, recognizer: Recognizer | None = None, drop_unfinished: bool = False,
                  lang: str = "en") -> dict:
    """Grammar and consistency numbers for one story (see the module docstring).
    `drop_unfinished` ignores a last sentence without final punctuation (a model sample cut at max tokens).
    `lang` (vel, kor, tuu, or "auto" for mixed-language text): sentences are read back into English first;
    those that do not parse stay as they are."""
    if not isinstance(text, str):
        raise TypeError(f"validate_text needs a str, got {type(text).__name__}")
    if lang != "en":
        text = _to_english_or_keep(text, lang)
    pairs = parse_story(text, recognizer)
    if drop_unfinished and pairs and not pairs[-1][0].rstrip('"').endswith((".", "!", "?")):
        pairs = pairs[:-1]
    parses = [p for _, p in pairs if p is not None]
    n = len(pairs)
    hero_c, hero = _consistency(parses, "hero", HERO_SLOTS)
    friend_c, _ = _consistency(parses, "friend", FRIEND_SLOTS, other=hero, missing=1.0)
    return {"sentences": n, "well_formed": len(parses) / n if n else 0.0, "hero_consistency": hero_c,
            "friend_consistency": friend_c, "object_consistency": _object_consistency(parses),
            "plot_complete": _plot_complete(parses), "hero": hero}


def validate_texts(texts: Iterable[str], recognizer: Recognizer | None = None,
                   drop_unfinished: bool = False, lang: str = "en") -> dict:
    """Per-story numbers averaged over `texts`, plus pooled `well_formed_micro` and the share of perfect stories."""
    rows = [validate_text(t, recognizer, drop_unfinished, lang) for t in texts]
    if not rows:
        raise ValueError("validate_texts got no texts: give at least one story")
    return _aggregate(rows)


_QA_LINE = re.compile(r"^(?:Question|Instruction):", re.MULTILINE)


def validate_records(records: Iterable[dict], drop_unfinished: bool = False) -> dict:
    """Story records of a corpus (of `qa` records their story, the text before the first Question: or
    Instruction: line; other domains skipped), each read in its own `lang` ("mix": sentence by sentence):
    {"all": numbers over every story, "by_lang": {lang: numbers}}."""
    rows: dict[str, list[dict]] = {}
    domains: set[str] = set()
    for r in records:
        domain = r.get("domain", "story")
        domains.add(str(domain))
        if domain not in ("story", "text", "qa"):
            continue
        text = _QA_LINE.split(r["text"], maxsplit=1)[0].strip() if domain == "qa" else r["text"]
        if not text:
            continue
        lang = r.get("lang", "en")
        rows.setdefault(lang, []).append(validate_text(text, None, drop_unfinished,
                                                       lang if lang in _STORY_LANGS() else "auto"))
    if not rows:
        raise ValueError("no story records to validate: the records are of domain "
                         f"{', '.join(sorted(domains)) or '(none)'}; only story, text and qa records hold stories")
    return {"all": _aggregate([x for group in rows.values() for x in group]),
            "by_lang": {lang: _aggregate(group) for lang, group in sorted(rows.items())}}


def _STORY_LANGS() -> tuple[str, ...]:   # noqa: N802 (a constant computed late: languages imports this module)
    from .languages import LANGUAGES
    return ("en", *LANGUAGES)


def _aggregate(rows: list[dict]) -> dict:
    n_sent = sum(r["sentences"] for r in rows)
    mean = lambda k: sum(r[k] for r in rows) / len(rows)   # noqa: E731
    return {
        "stories": len(rows), "sentences": n_sent,
        "well_formed": mean("well_formed"),
        "well_formed_micro": sum(r["well_formed"] * r["sentences"] for r in rows) / n_sent if n_sent else 0.0,
        "hero_consistency": mean("hero_consistency"), "friend_consistency": mean("friend_consistency"),
        "object_consistency": mean("object_consistency"),
        "plot_complete": mean("plot_complete"),
        "perfect_stories": sum(r["well_formed"] == r["hero_consistency"] == r["friend_consistency"]
                               == r["object_consistency"] == 1.0 for r in rows) / len(rows),
    }


def _to_english_or_keep(text: str, lang: str) -> str:
    """Each sentence of `text` (in a constructed language; "auto": whichever parses) in English; a sentence
    that does not parse stays as it is (and so counts as not well-formed)."""
    from .grammar import fill
    from .languages import LANGUAGES, get_language, parse_sentence
    langs = list(LANGUAGES) if lang == "auto" else [get_language(lang).code]   # unknown codes raise, listing valid
    out = []
    for s in split_sentences(text):
        parsed = None
        if lang == "auto" and english_recognizer().parse(s) is not None:
            out.append(s)
            continue
        for code in langs:
            parsed = parse_sentence(s, code)
            if parsed:
                break
        out.append(fill(*parsed) if parsed else s)
    return " ".join(out)


CORRUPTIONS = ("shuffle_words", "swap_hero", "swap_object", "truncate", "shuffle_sentences")


def corrupt_text(text: str, how: str, seed: int = 0, rate: float = 0.5) -> str:
    """A damaged copy of a story, for checking that the validator notices:
      shuffle_words      words of a share `rate` of the sentences in random order
      swap_hero          the main character's name replaced by another name in a share `rate` of its later mentions
      swap_object        the story's object (e.g. "kite") replaced by another thing in a share `rate` of its
                         later mentions
      truncate           a share `rate` of the sentences cut after a random word (punctuation dropped)
      shuffle_sentences  all sentences in random order (grammar intact, plot order broken)
    """
    import random
    if how not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {how!r}; valid: {', '.join(CORRUPTIONS)}")
    rng = random.Random(seed)
    sents = split_sentences(text)
    if how == "shuffle_sentences":
        rng.shuffle(sents)
        return " ".join(sents)
    if how == "swap_object":
        parses = [p for _, p in parse_story(text) if p is not None]
        thing = next((w for p in parses for slot, w in p.values if slot == "thing"), None)
        if thing is None:
            return text
        other = rng.choice([t for t in V.THINGS if t not in text])
        seen = [False]

        def swap(m):
            keep = not seen[0] or rng.random() >= rate
            seen[0] = True
            return m.group(0) if keep else other
        return re.sub(rf"\b{re.escape(thing)}\b", swap, text)
    if how == "swap_hero":
        hero = validate_text(text)["hero"]
        if hero is None:
            return text
        others = [n for n in V.GIRL_NAMES + V.BOY_NAMES if n != hero and n not in text]
        other = rng.choice(others)
        seen = False
        out = []
        for s in sents:
            words = s.split(" ")
            for i, w in enumerate(words):
                if w.startswith(hero) and w[len(hero):len(hero) + 1] in ("", "'", ",", ".", "!", "?"):
                    if seen and rng.random() < rate:
                        words[i] = other + w[len(hero):]
                    seen = True
            out.append(" ".join(words))
        return " ".join(out)
    out = []
    for s in sents:
        words = s.split(" ")
        if rng.random() < rate and len(words) > 2:
            if how == "shuffle_words":
                shuffled = words[:]
                while shuffled == words:
                    rng.shuffle(shuffled)
                words = shuffled
            else:
                words = words[:rng.randint(1, len(words) - 1)]
                words[-1] = words[-1].rstrip('.,!?"')
        out.append(" ".join(words))
    return " ".join(out)
