"""Three constructed languages, rule-based and reversible, for translation and language-routing studies.

Each language rewrites every English sentence pattern of the story grammar with fixed rules, then fills the
holes with translated words, so a story keeps its plan (pattern + slot values) in every language:
  vel  Velo   SOV (verb last in its clause), postpositions, adjective after noun,
              suffixes: past -ta, plural -ri, definite -n ("the cat" -> "cat-n")
  kor  Korru  VSO (verb first in its clause), prepositions, prefixes: past ka-, plural mi-, definite u-
  tuu  Tuuli  OSV (what follows the verb, then the subject, then the verb), agglutinative: a noun phrase's
              first word stacks plural -ba, definite -ne and a case suffix that replaces the preposition
              ("to the parks" -> "parkbaneek"), past -ru
Speech comes after its speaker ('"Help!" said Tom.' -> 'Tom said, "Help!"' before the word-order rule).
Clauses are split at punctuation and at joining words (and, but, so, when, that, ...); "the verb" is the
clause's first verb. Words get stems drawn per language from its own sound inventory (seeded per word, so
adding words to the vocabulary leaves the other stems alone); names stay as they are. Going back to English parses a sentence with the language's own recognizer (the
same grammar compiled for that language) and re-renders the English pattern: translation is exact both ways.
Here: `LANGUAGES`, `Language.render(plan)`, `translate(text, lang)`, `to_english(text, lang)`.
"""
from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

from . import vocab as V
from .grammar import SLOTS, Pattern, fill, split_sentences
from .stories import PATTERNS

_TOKEN = re.compile(r"\{[a-z_0-9]+\}|'s|[A-Za-z][A-Za-z'-]*|[^\sA-Za-z]")
_PUNCT = {",", ".", "!", "?", '"'}
JOINERS = {"and", "but", "so", "because", "when", "that", "if", "until", "where", "who", "how", "what"}
PREPOSITIONS = ("to", "in", "on", "at", "with", "under", "from", "for", "near", "behind", "inside", "over",
                "across", "through", "by", "about", "of", "into", "without", "upon")
# literal verbs of the patterns: surface -> lemma (past forms) or itself (base forms)
_LITERAL_PAST = dict(w.split(":") for w in """asked:ask ate:eat began:begin blew:blow broke:break burned:burn
called:call came:come cheered:cheer clapped:clap could:can cried:cry danced:dance did:do dropped:drop fell:fall
felt:feel followed:follow found:find gave:give got:get growled:growl had:have happened:happen heard:hear held:hold
hid:hide hoped:hope hugged:hug kept:keep kicked:kick laughed:laugh learned:learn licked:lick liked:like lived:live
looked:look loved:love missed:miss mixed:mix needed:need packed:pack played:play pulled:pull ran:run reached:reach
rolled:roll said:say sat:sit saw:see searched:search shared:share shouted:shout showed:show smiled:smile
stayed:stay stomped:stomp talked:talk thought:think told:tell took:take tried:try turned:turn used:use
waited:wait walked:walk wanted:want was:be went:go were:be worked:work would:will watched:watch
ruined:ruin""".split())
_LITERAL_BASE = set("""be buy can come do eat explore find get give go help know learn let look make must play reach
say see shake share show stir talk walk want will worry is put hurt""".split())
_SLOT_POS = {**{s: "name" for s in ("hero", "friend", "language")},
             **{s: "pron" for s in ("he", "him", "his", "self", "fhe", "fhim", "fhis")},
             **{s: "adj" for s in ("tadj", "oadj", "hadj", "fadj", "padj", "color", "size", "weather", "feel",
                                   "endw")},
             **{s: "verb" for s in ("act", "act2", "act_past", "do", "did", "move", "moved", "animal_act")}}
_PAST_SLOTS = {"act_past": V.ACTIVITIES, "did": V.OBJ_ACTIONS, "moved": V.MOVES}
_PLURAL_SLOTS = {"animals": V.ANIMALS, "things": V.THINGS, "foods": V.FOODS}


@dataclass(frozen=True)
class Tok:
    """A pattern token in some language: a literal English word or a hole, plus grammatical features."""
    word: str            # English word (lower case) or "{slot}"
    pos: str             # verb | noun | adj | name | pron | punct | word
    feats: tuple = ()    # ("DEF",), ("CASE:to",), ... added by the language's rules

    @property
    def slot(self) -> str | None:
        return self.word[1:-1] if self.word.startswith("{") else None


def _pos(word: str) -> str:
    if word.startswith("{"):
        return _SLOT_POS.get(word[1:-1], "noun")
    if word in _PUNCT:
        return "punct"
    return "verb" if word in _LITERAL_PAST or word in _LITERAL_BASE else "word"


def tokenize(pattern_text: str) -> list[Tok]:
    return [Tok(w if w.startswith("{") or w == "I" else w.lower(), _pos(w)) for w in _TOKEN.findall(pattern_text)]


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    order: str                  # SOV | VSO | OSV: where the clause's first verb goes
    consonants: str
    vowels: str
    affix: str                  # "suffix" | "prefix" | "agglutinative"
    past: str
    plural: str
    definite: str
    adj_after_noun: bool = False
    postpositions: bool = False

    # ---- pattern rules ---------------------------------------------------------------------------------
    def rewrite(self, toks: list[Tok]) -> list[Tok]:
        """Apply this language's rules to one English pattern's tokens."""
        toks = _speaker_first(toks)
        toks = self._merge_function_words(toks)
        if self.adj_after_noun:
            toks = _swap_adj_noun(toks)
        out, clause = [], []
        for t in toks + [Tok(".", "punct")]:
            if t.pos == "punct" or (t.word in JOINERS and not t.feats):
                out += self._reorder(clause) + [t]
                clause = []
            else:
                clause.append(t)
        return out[:-1]

    def _merge_function_words(self, toks: list[Tok]) -> list[Tok]:
        out: list[Tok] = []
        for t in reversed(toks):    # right to left: "to the park" -> park+DEF -> park+DEF+CASE:to
            nxt = out[0] if out else None
            mergeable = nxt is not None and nxt.pos != "punct" and nxt.word not in JOINERS
            if t.word == "the" and mergeable:
                out[0] = Tok(nxt.word, nxt.pos, nxt.feats + ("DEF",))
            elif t.word in PREPOSITIONS and mergeable and self.affix == "agglutinative":
                out[0] = Tok(nxt.word, nxt.pos, nxt.feats + (f"CASE:{t.word}",))
            elif t.word in PREPOSITIONS and mergeable and self.postpositions:
                out[0:1] = [nxt, t]
            else:
                out.insert(0, t)
        return out

    def _reorder(self, clause: list[Tok]) -> list[Tok]:
        """Move the clause's first verb (a joining word opening the clause stays in front)."""
        n_lead = 1 if clause and clause[0].word in JOINERS else 0
        v = next((i for i in range(n_lead, len(clause)) if clause[i].pos == "verb"), None)
        if v is None:
            return clause
        lead, pre, verb, post = clause[:n_lead], clause[n_lead:v], clause[v], clause[v + 1:]
        if self.order == "SOV":
            return lead + pre + post + [verb]
        if self.order == "VSO":
            return lead + [verb] + pre + post
        return lead + post + pre + [verb]     # OSV

    # ---- words -------------------------------------------------------------------------------------------
    def form(self, lemma: str, feats: tuple) -> str:
        """Surface form of an English lemma with features, e.g. ("cat", ("PL", "DEF"))."""
        stem = lemma if lemma[:1].isupper() and lemma != "I" else _lexicon(self.code)[lemma]
        pre, suf = [], []
        for f in feats:
            piece = {"PAST": self.past, "PL": self.plural, "DEF": self.definite}.get(f) or _CASES[f[5:]]
            (pre if self.affix == "prefix" else suf).append(piece)
        if self.affix == "prefix":
            return "".join(reversed(pre)) + stem
        if self.affix == "agglutinative":   # fixed slot order: stem-PL-DEF-CASE-PAST
            order = {"PL": 0, "DEF": 1, "PAST": 3}
            suf = [p for _, p in sorted(zip([order.get(f, 2) for f in feats], suf))]
        return stem + "".join(suf)

    def render_words(self, english: str, feats: tuple, slot: str | None) -> str:
        """Translate one hole value or literal word (possibly several words) carrying `feats`."""
        key = (self.code, english, feats, slot)
        if key not in _WORDS_DONE:
            _WORDS_DONE[key] = self._render_words(english, feats, slot)
        return _WORDS_DONE[key]

    def _render_words(self, english: str, feats: tuple, slot: str | None) -> str:
        words = english.split()
        lemmas = [_analyse(w, slot) for w in words]
        head = 0 if self.affix == "prefix" else len(words) - 1
        out = []
        for i, (lemma, inherent) in enumerate(lemmas):
            out.append(self.form(lemma, inherent + (feats if i == head else ())))
        return " ".join(out)

    @functools.cached_property
    def compiled(self) -> dict[int, "_Compiled"]:
        return {}

    def pattern(self, p: Pattern) -> "_Compiled":
        if p.id not in self.compiled:
            self.compiled[p.id] = _Compiled(self, p)
        return self.compiled[p.id]

    def render(self, plan) -> str:
        """The story `plan` (see stories.Story.plan) as text in this language."""
        return " ".join(self.render_sentence(PATTERNS[pid], dict(values)) for pid, values in plan)

    def render_sentence(self, p: Pattern, values: dict[str, str]) -> str:
        return self.pattern(p).render(values)


_WORDS_DONE: dict[tuple, str] = {}   # (language, English words, features, slot) -> rendering; bounded by the grammar


def _speaker_first(toks: list[Tok]) -> list[Tok]:
    """'"Help me!" said Tom.' -> 'said Tom, "Help me!"': the speaker comes before the speech."""
    if not toks or toks[0].word != '"':
        return toks
    close = next(i for i in range(1, len(toks)) if toks[i].word == '"')
    return toks[close + 1:-1] + [Tok(",", "punct")] + toks[:close + 1]


def _swap_adj_noun(toks: list[Tok]) -> list[Tok]:
    out = list(toks)
    i = 0
    while i < len(out) - 1:
        a, b = out[i], out[i + 1]
        if a.pos == "adj" and a.slot and b.pos == "noun" and b.slot:
            out[i], out[i + 1] = Tok(b.word, b.pos, b.feats + a.feats), Tok(a.word, a.pos, ())
            i += 2
        else:
            i += 1
    return out


_CASES = {"to": "ek", "in": "im", "on": "op", "at": "at", "with": "uz", "under": "ul", "from": "af", "for": "ip",
          "near": "en", "behind": "ob", "inside": "in", "over": "ov", "across": "ak", "through": "tu", "by": "ib",
          "about": "ab", "of": "os", "into": "iz", "without": "uf", "upon": "up"}


@functools.lru_cache(maxsize=None)
def _analyse(word: str, slot: str | None) -> tuple[str, tuple]:
    """English word -> (lemma, inherent features)."""
    if slot in _PAST_SLOTS:
        for base, past in _PAST_SLOTS[slot]:
            if past == word:
                return base, ("PAST",)
    if slot in _PLURAL_SLOTS:
        last = {V.plural(x).split()[-1]: x.split()[-1] for x in _PLURAL_SLOTS[slot]}
        if word in last:
            return last[word], ("PL",)
    if word in _LITERAL_PAST and slot in (None, "animal_act"):
        return _LITERAL_PAST[word], ("PAST",)
    return (word if word[:1].isupper() else word.lower()), ()


class _Compiled:
    """One pattern in one language: a render template and a recognizer with per-hole reverse dictionaries."""

    def __init__(self, lang: Language, p: Pattern):
        self.lang, self.p = lang, p
        self.toks = lang.rewrite(tokenize(p.text))
        self.holes = [t for t in self.toks if t.slot]
        self._rx: re.Pattern | None = None
        self._back: list[dict[str, str]] = []
        seps = _separators([t.word if t.pos == "punct" else None for t in self.toks])
        self._plan = [(sep, None if t.slot else self._piece(t), t.slot, t.feats) for sep, t in zip(seps, self.toks)]

    def _piece(self, t: Tok, value: str | None = None) -> str:
        if t.pos == "punct":
            return t.word
        return self.lang.render_words(value if t.slot else t.word, t.feats, t.slot)

    def render(self, values: dict[str, str]) -> str:
        words = self.lang.render_words
        return _capitalize("".join(sep + (lit if slot is None else words(values[slot], feats, slot))
                                   for sep, lit, slot, feats in self._plan))

    def regex(self) -> re.Pattern:
        if self._rx is None:
            parts, hole = [], 0
            first_word = next(i for i, t in enumerate(self.toks) if t.pos != "punct")
            for i, t in enumerate(self.toks):
                if t.slot:
                    back = {self._piece(t, v): v for v in SLOTS[t.slot]}
                    if i == first_word:
                        back.update({k[0].upper() + k[1:]: v for k, v in list(back.items())})
                    self._back.append(back)
                    alt = "|".join(re.escape(k) for k in sorted(back, key=lambda k: (-len(k), k)))
                    parts.append((None, f"(?P<h{hole}>{alt})"))
                    hole += 1
                elif t.pos == "punct":
                    parts.append((t.word, re.escape(t.word)))
                else:
                    w = self._piece(t)
                    parts.append((None, f"[{w[0].upper()}{w[0].lower()}]{re.escape(w[1:])}" if i == first_word
                                  else re.escape(w)))
            self._rx = re.compile(_detok(parts))
        return self._rx

    def parse(self, sentence: str) -> dict[str, str] | None:
        m = self.regex().fullmatch(sentence)
        if not m:
            return None
        return {t.slot: self._back[i][m.group(f"h{i}")] for i, t in enumerate(self.holes)}


def _separators(puncts: list[str | None]) -> list[str]:
    """The space before each piece (None = a word): none before , . ! ? or a closing quote, none after an
    opening quote, one otherwise."""
    seps, quotes, prev = [], 0, None
    for i, punct in enumerate(puncts):
        if punct in {",", ".", "!", "?"}:
            seps.append("")
        elif punct == '"':
            quotes += 1
            seps.append(" " if i and quotes % 2 == 1 else "")
        else:
            seps.append("" if i == 0 or (prev == '"' and quotes % 2 == 1) else " ")
        prev = punct
    return seps


def _detok(parts: list[tuple[str | None, str]]) -> str:
    """Join (punctuation or None, text) pieces with the spacing of `_separators`."""
    return "".join(sep + s for sep, (_, s) in zip(_separators([p for p, _ in parts]), parts))


def _capitalize(s: str) -> str:
    """Upper-case the first letter (which may follow an opening quote)."""
    i = next((k for k, c in enumerate(s) if c.isalpha()), None)
    return s if i is None else s[:i] + s[i].upper() + s[i + 1:]


LANGUAGES: dict[str, Language] = {
    "vel": Language("vel", "Velo", "SOV", "lmnvsrdtk", "aeio", "suffix", past="ta", plural="ri", definite="n",
                    adj_after_noun=True, postpositions=True),
    "kor": Language("kor", "Korru", "VSO", "kgrzbdh", "aou", "prefix", past="ka", plural="mi", definite="u"),
    "tuu": Language("tuu", "Tuuli", "OSV", "tphnwy", "uia", "agglutinative", past="ru", plural="ba", definite="ne"),
}


def get_language(code: str) -> Language:
    if code not in LANGUAGES:
        raise ValueError(f"unknown language {code!r}; valid: en, {', '.join(LANGUAGES)}")
    return LANGUAGES[code]


@functools.lru_cache(maxsize=None)
def _lexicon(code: str) -> dict[str, str]:
    """English lemma -> stem in language `code`: pronounceable, unique, and no stem+affixes equals another."""
    lang = LANGUAGES[code]
    lemmas = set()
    for p in PATTERNS:
        for t in tokenize(p.text):
            if not t.slot and t.pos != "punct":
                lemmas.add(_analyse(t.word, None)[0])
    for slot, words in SLOTS.items():
        for w in words:
            for x in w.split():
                lemmas.add(_analyse(x, slot)[0])
    lemmas = sorted(x for x in lemmas if not (x[:1].isupper() and x != "I"))
    affixes = [lang.past, lang.plural, lang.definite] + list(_CASES.values())
    taken: set[str] = set()
    lex = {}
    for lemma in lemmas:
        rng = random.Random(f"workbench-language-{code}-{lemma}")   # per word: new words leave old stems alone
        n_syll = 1 if len(lemma) <= 3 else 2 if len(lemma) <= 6 else 3
        while True:
            stem = "".join(rng.choice(lang.consonants) + rng.choice(lang.vowels) for _ in range(n_syll))
            if lang.affix != "prefix" and rng.random() < 0.5:
                stem += rng.choice(lang.consonants[:4])
            forms = {stem} | {stem + a for a in affixes} | {a + stem for a in affixes}
            if not forms & taken:
                break
            n_syll += rng.random() < 0.2
        taken |= forms
        lex[lemma] = stem
    return lex


def translate(text: str, lang: str) -> str:
    """English text of the story grammar -> language `lang`; raises naming the first sentence it cannot parse."""
    from .validate import english_recognizer
    target = get_language(lang)
    out = []
    for s in split_sentences(text):
        parse = english_recognizer().parse(s)
        if parse is None:
            raise ValueError(f"cannot translate {s!r}: it matches no pattern of the story grammar")
        out.append(target.render_sentence(parse.pattern, dict(parse.values)))
    return " ".join(out)


def parse_sentence(sentence: str, lang: str) -> tuple[Pattern, dict[str, str]] | None:
    """(pattern, English slot values) of a sentence in language `lang`, or None."""
    language = get_language(lang)
    for p in PATTERNS:
        values = language.pattern(p).parse(sentence)
        if values is not None:
            return p, values
    return None


def to_english(text: str, lang: str) -> str:
    """Text in language `lang` -> English, exactly the English the sentence was rendered from."""
    out = []
    for s in split_sentences(text):
        parsed = parse_sentence(s, lang)
        if parsed is None:
            raise ValueError(f"cannot read {s!r} as {get_language(lang).name}: it matches no pattern")
        out.append(fill(*parsed))
    return " ".join(out)
