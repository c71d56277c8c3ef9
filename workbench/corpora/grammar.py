"""The story grammar: sentence patterns with vocabulary slots, shared by the generator and the validator.

A pattern is text with `{slot}` holes, e.g. `{hero} looked under the {spot}.`; each slot draws from a word
list in `SLOTS`. The generator fills holes; the recognizer compiles every pattern into a regular expression
whose holes accept exactly the slot's words, so "well-formed" means "some pattern of the grammar produces
this sentence". Two spelling rules apply to every pattern: the first letter is capitalised, and the literal
word "a" becomes "an" before a vowel.
Here: `Pattern`, `SLOTS`, `fill()`, `Recognizer`, `split_sentences()`.
Not here: which patterns a story uses (`stories`), other languages (`languages`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import vocab as V

_HOLE = re.compile(r"\{([a-z_0-9]+)\}")
_AN = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])(?![Uu]ni|[Uu]se)")     # "an apple", but "a unicorn"

_ALL_NAMES = V.GIRL_NAMES + V.BOY_NAMES
_DISHES = ("cake", "pie", "cookie", "muffin", "tart", "pancake", "cupcake", "bun", "pizza", "soup", "bread",
           "sandwich", "salad", "apple pie", "carrot cake", "banana bread", "berry pie", "pumpkin pie", "waffle",
           "honey cake", "fruit salad", "cinnamon roll", "biscuit", "smoothie", "pudding")
_FEEL_WORDS = tuple(w for words in V.FEELINGS.values() for w in words)

# slot -> the words it may hold. Story-level slots (hero, thing, ...) keep one value per story; the
# generator draws the others afresh in every sentence.
SLOTS: dict[str, tuple[str, ...]] = {
    "hero": _ALL_NAMES, "friend": _ALL_NAMES,
    "he": ("he", "she"), "him": ("him", "her"), "his": ("his", "her"), "self": ("himself", "herself"),
    "fhe": ("he", "she"), "fhim": ("him", "her"), "fhis": ("his", "her"),
    "kind": V.HERO_KINDS, "fkind": V.HERO_KINDS, "hadj": V.HERO_ADJS, "fadj": V.HERO_ADJS,
    "thing": V.THINGS, "thing2": V.THINGS, "tadj": V.OBJ_ADJS, "oadj": V.OBJ_ADJS,
    "place": V.PLACES, "place2": V.PLACES, "home": V.PLACES, "padj": V.PLACE_ADJS,
    "spot": V.SPOTS, "spot2": V.SPOTS, "parent": V.PARENTS, "time": V.TIMES, "weather": V.WEATHER,
    "color": V.COLORS, "size": V.SIZES,
    "animal": V.ANIMALS, "animal2": V.ANIMALS, "creature": V.ANIMALS, "pet": V.ANIMALS,
    "animals": tuple(V.plural(a) for a in V.ANIMALS), "things": tuple(V.plural(t) for t in V.THINGS),
    "food": V.FOODS, "food2": V.FOODS, "foods": tuple(V.plural(f) for f in V.FOODS), "dish": _DISHES,
    "act": tuple(a for a, _ in V.ACTIVITIES), "act2": tuple(a for a, _ in V.ACTIVITIES),
    "act_past": tuple(p for _, p in V.ACTIVITIES),
    "do": tuple(a for a, _ in V.OBJ_ACTIONS), "did": tuple(p for _, p in V.OBJ_ACTIONS),
    "move": tuple(a for a, _ in V.MOVES), "moved": tuple(p for _, p in V.MOVES),
    "animal_act": V.ANIMAL_ACTS, "feel": _FEEL_WORDS,
    "about": tuple(w for words in V.TOPIC_PHRASES.values() for w in words),
    "endw": tuple(w for words in V.ENDING_WORDS.values() for w in words),
    "language": tuple(V.LANGUAGE_NAMES.values()),
}
PRONOUNS = {  # slot -> (masculine, feminine); the validator checks these against the character's name
    "he": ("he", "she"), "him": ("him", "her"), "his": ("his", "her"), "self": ("himself", "herself"),
    "fhe": ("he", "she"), "fhim": ("him", "her"), "fhis": ("his", "her"),
}
HERO_SLOTS = {"hero", "he", "him", "his", "self", "kind"}      # kind: "girl"/"boy" must fit the name too
FRIEND_SLOTS = {"friend", "fhe", "fhim", "fhis", "fkind"}


@dataclass(frozen=True)
class Pattern:
    """One sentence pattern: `group` says its place in the plot (e.g. "lost.try"), `text` holds `{slot}`s."""
    id: int
    group: str
    text: str
    slots: tuple[str, ...] = field(default=())

    @staticmethod
    def make(id: int, group: str, text: str) -> "Pattern":
        slots = tuple(_HOLE.findall(text))
        unknown = [s for s in slots if s not in SLOTS]
        if unknown:
            raise ValueError(f"pattern {text!r} uses unknown slot(s) {unknown}; known: {sorted(SLOTS)}")
        return Pattern(id, group, text, slots)


def fill(pattern: Pattern, values: dict[str, str]) -> str:
    """The English sentence of `pattern` with its holes filled from `values` (spelling rules applied)."""
    s = pattern.text.format_map(values)
    s = s[0].upper() + s[1:]
    return _AN.sub(r"\1n ", s) if "a " in s or "A " in s else s


def _alternation(words, capital: bool) -> str:
    words = set(words) | ({w[0].upper() + w[1:] for w in words} if capital else set())
    return "(?:" + "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w))) + ")"


def _literal(text: str, at_start: bool) -> str:
    """Regex for literal pattern text: exact, except the article 'a' may be 'an' and the first letter capital."""
    out = []
    for i, piece in enumerate(re.split(r"(\b[Aa]\b)", text)):
        start = at_start and not "".join(out) and (i == 0 or i == 1)
        if piece in ("a", "A"):
            out.append(_article("[Aa]" if start else "a"))
        elif start and piece and piece[0].isalpha():
            out.append(f"[{piece[0].upper()}{piece[0].lower()}]" + re.escape(piece[1:]))
        else:
            out.append(re.escape(piece))
    return "".join(out)


def _article(a: str) -> str:
    """'a' before a consonant (and uni-/use-), 'an' before a vowel: the recogniser is as strict as `fill`."""
    return rf"(?:{a}(?= (?:[b-df-hj-np-tv-z]|uni|use))|{a}n(?= (?:[aeio]|u(?!ni|se))))"


def pattern_regex(pattern: Pattern, slot_words: dict[str, tuple[str, ...]] = SLOTS) -> re.Pattern:
    """Compile `pattern` into a regex; group `s{i}` captures the i-th hole."""
    parts, pos, i = [], 0, 0
    for m in _HOLE.finditer(pattern.text):
        parts.append(_literal(pattern.text[pos:m.start()], at_start=pos == 0))
        parts.append(f"(?P<s{i}>{_alternation(slot_words[m.group(1)], capital=m.start() == 0)})")
        pos, i = m.end(), i + 1
    parts.append(_literal(pattern.text[pos:], at_start=pos == 0))
    return re.compile("".join(parts))


_SPLIT = re.compile(r'(?<=[.!?])\s+(?=[A-Z"])|(?<=[.!?]")\s+(?=[A-Z"])')


def split_sentences(text: str) -> list[str]:
    """Sentences of a story: a break follows . ! ? (or a closing quote after them) before a capital or quote."""
    return [s for s in _SPLIT.split(text.strip()) if s]


@dataclass(frozen=True)
class Parse:
    pattern: Pattern
    values: tuple[tuple[str, str], ...]    # (slot, word) in order of the holes


class Recognizer:
    """Matches sentences against every pattern of a grammar (compiled lazily, indexed by first character)."""

    def __init__(self, patterns: list[Pattern], slot_words: dict[str, tuple[str, ...]] = SLOTS):
        self.patterns = patterns
        self.slot_words = slot_words
        self._compiled: list[tuple[Pattern, re.Pattern]] | None = None
        self._sets: dict[str, frozenset] = {}

    def _compile(self):
        if self._compiled is None:
            self._compiled = [(p, pattern_regex(p, self.slot_words)) for p in self.patterns]
        return self._compiled

    def _canonical(self, slot: str, word: str) -> str:
        """The slot's own spelling of a word capitalised at the start of a sentence ("She" -> "she")."""
        if word in self._sets.setdefault(slot, frozenset(self.slot_words[slot])):
            return word
        return word[0].lower() + word[1:]

    def parse(self, sentence: str) -> Parse | None:
        """The first pattern producing `sentence` exactly, with its hole values; None when none does."""
        for p, rx in self._compile():
            m = rx.fullmatch(sentence)
            if m:
                vals = tuple((slot, self._canonical(slot, m.group(f"s{i}"))) for i, slot in enumerate(p.slots))
                return Parse(p, vals)
        return None
