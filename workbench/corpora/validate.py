"""Judge a story against the story grammar: the project's measurable stand-in for "coherent and grammatical".

For one story (`validate_text`):
  sentences         number of sentences (split after . ! ? and closing quotes)
  well_formed       fraction of sentences that some pattern of the grammar produces exactly
  hero_consistency  fraction of main-character mentions (name slots and he/she/his/her/himself slots of the
                    recognised sentences) that agree with the main character named first: same name, pronouns
                    of the name's gender. 0 when no main character is named.
  friend_consistency the same for the second character
  object_consistency fraction of later mentions of the story's fixed things (its object, creature, dish, food,
                    places, parent, pet, home) that repeat the first mention: "the kite" stays the kite
  plot_complete     fraction of the plot parts intro, want/problem, attempt, resolution, feeling that appear,
                    in that order, among the recognised sentences
  hero              the main character's name (None when none is found)
`validate_texts` averages per story and also gives `well_formed_micro` (pooled over all sentences) and
`perfect_stories` (share of stories fully well-formed and consistent in hero and objects).
Here: `validate_text()`, `validate_texts()`. Not here: the grammar (`grammar`, `stories`).
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


def _consistency(parses: list[Parse], name_slot: str, slots: set[str]) -> tuple[float, str | None]:
    """Share of mentions in `slots` agreeing with the first `name_slot` value (and its gender's pronouns)."""
    name = next((w for p in parses for s, w in p.values if s == name_slot), None)
    if name is None:
        return 0.0, None
    g = V.gender(name)
    ok = total = 0
    seen_first = False
    for p in parses:
        for slot, word in p.values:
            if slot not in slots:
                continue
            if slot == name_slot and not seen_first:
                seen_first = True
                continue
            total += 1
            if slot == name_slot:
                ok += word == name
            else:
                ok += word.lower() == PRONOUNS[slot][g == "f"]
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


def validate_text(text: str, recognizer: Recognizer | None = None) -> dict:
    """Grammar and consistency numbers for one story (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"validate_text needs a str, got {type(text).__name__}")
    pairs = parse_story(text, recognizer)
    parses = [p for _, p in pairs if p is not None]
    n = len(pairs)
    hero_c, hero = _consistency(parses, "hero", HERO_SLOTS)
    friend_c, _ = _consistency(parses, "friend", FRIEND_SLOTS)
    return {"sentences": n, "well_formed": len(parses) / n if n else 0.0, "hero_consistency": hero_c,
            "friend_consistency": friend_c, "object_consistency": _object_consistency(parses),
            "plot_complete": _plot_complete(parses), "hero": hero}


def validate_texts(texts: Iterable[str], recognizer: Recognizer | None = None) -> dict:
    """Per-story numbers averaged over `texts`, plus pooled `well_formed_micro` and the share of perfect stories."""
    rows = [validate_text(t, recognizer) for t in texts]
    if not rows:
        raise ValueError("validate_texts got no texts: give at least one story")
    n_sent = sum(r["sentences"] for r in rows)
    mean = lambda k: sum(r[k] for r in rows) / len(rows)   # noqa: E731
    return {
        "stories": len(rows), "sentences": n_sent,
        "well_formed": mean("well_formed"),
        "well_formed_micro": sum(r["well_formed"] * r["sentences"] for r in rows) / n_sent if n_sent else 0.0,
        "hero_consistency": mean("hero_consistency"), "friend_consistency": mean("friend_consistency"),
        "object_consistency": mean("object_consistency"),
        "plot_complete": mean("plot_complete"),
        "perfect_stories": sum(r["well_formed"] == r["hero_consistency"] == r["object_consistency"] == 1.0
                               for r in rows) / len(rows),
    }


CORRUPTIONS = ("shuffle_words", "swap_hero", "swap_object", "truncate", "shuffle_sentences")


def corrupt_text(text: str, how: str, seed: int = 0, rate: float = 0.5) -> str:
    """A damaged copy of a story, for checking that the validator notices:
      shuffle_words      words of a share `rate` of the sentences in random order
      swap_hero          the main character's name replaced by another name in a share `rate` of its later mentions
      swap_object        the story's object (e.g. "kite") replaced by another thing in a share `rate` of its later mentions
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
