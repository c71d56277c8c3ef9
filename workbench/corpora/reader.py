"""The ideal reader: the best accuracy a task's visible text allows, computed from the generator's own rules.

A classification task built from generated text can only be as hard or as easy as the text it shows. This
module says how easy, exactly: it reads what a perfect reader who knows the grammar can infer, and guesses
uniformly among the labels the text leaves possible.

- Story labels (`story_label_sets`): every sentence pattern constrains the labels (a `lost.try` sentence says
  topic = lost; `cause.sad` says feeling = sad and so ending = bad; the word after "felt" names the feeling).
  The labels consistent with all visible sentences form a set S; the reader is right with probability
  1/|S| when the gold label is in S. With balanced classes and a story plan that picks its sentences
  independently of the label within a group, this is the Bayes-optimal accuracy up to the unequal numbers of
  patterns per group (a lower bound on it otherwise).
- Languages and domains (`LexiconReader`): the labels whose training text contains every visible word.
Here: `story_label_sets()`, `uniform_guess_accuracy()`, `LexiconReader`.
"""
from __future__ import annotations

import functools
import re

from . import vocab as V
from .stories import FEELINGS_BY_ENDING, LABELS, PATTERNS, Story

_FEEL_CLASS = {w: label for label, words in V.FEELINGS.items() for w in words}
_TOPIC_CLASS = {w: label for label, words in V.TOPIC_PHRASES.items() for w in words}
_ENDING_CLASS = {w: label for label, words in V.ENDING_WORDS.items() for w in words}
_ENDING_OF = {f: e for e, fs in FEELINGS_BY_ENDING.items() for f in fs}


def story_label_sets(plan) -> dict[str, set[str]]:
    """{"topic": S_t, "feeling": S_f, "ending": S_e}: the labels consistent with the sentences of `plan`
    ((pattern id, ((slot, value), ...)) per visible sentence, as in `Story.plan`)."""
    topics, feelings = set(LABELS["topic"]), set(LABELS["feeling"])
    for pid, values in plan:
        group, vals = PATTERNS[pid].group, dict(values)
        head, _, tail = group.partition(".")
        if head in LABELS["topic"]:
            topics &= {head}
            if tail in FEELINGS_BY_ENDING:
                feelings &= set(FEELINGS_BY_ENDING[tail])
        elif head == "cause":
            feelings &= {tail}
        elif head == "closing":
            feelings &= set(FEELINGS_BY_ENDING[tail])
        elif group == "feeling":
            feelings &= {_FEEL_CLASS[vals["feel"]]}
        elif group == "verdict":
            feelings &= set(FEELINGS_BY_ENDING[_ENDING_CLASS[vals["endw"]]])
        elif group == "summary":
            topics &= {_TOPIC_CLASS[vals["about"]]}
    return {"topic": topics, "feeling": feelings, "ending": {_ENDING_OF[f] for f in feelings}}


def uniform_guess_accuracy(gold: str, possible: set[str]) -> float:
    """1/|possible| when `gold` is possible, else 0 (a reader guessing uniformly among possible labels)."""
    return 1.0 / len(possible) if gold in possible else 0.0


def story_ceiling(story: Story, visible: list[int], label: str) -> float:
    """The ideal reader's expected accuracy on `label` when only the sentences `visible` (indices) are shown."""
    sets = story_label_sets([story.plan[i] for i in visible])
    return uniform_guess_accuracy(getattr(story, label), sets[label])


_WORD = re.compile(r"[A-Za-z']+|\d+|[^\sA-Za-z\d]")


def words(text: str) -> list[str]:
    """Lower-cased words, numbers and single symbols: what the lexicon reader looks at."""
    return [w.lower() for w in _WORD.findall(text)]


class LexiconReader:
    """Labels whose reference texts contain every visible word; words no label has are ignored."""

    def __init__(self, texts_by_label: dict[str, list[str]]):
        self.lexicon = {label: set(w for t in texts for w in words(t)) for label, texts in texts_by_label.items()}

    def possible(self, text: str) -> set[str]:
        known = set().union(*self.lexicon.values())
        seen = [w for w in words(text) if w in known]
        return {label for label, lex in self.lexicon.items() if all(w in lex for w in seen)}

    def accuracy(self, text: str, gold: str) -> float:
        return uniform_guess_accuracy(gold, self.possible(text))


@functools.lru_cache(maxsize=1)
def language_reader(n: int = 3000) -> LexiconReader:
    """A LexiconReader over en/vel/kor/tuu built from `n` training stories rendered in each language."""
    from .corpus import story_record
    from .languages import LANGUAGES
    from .stories import generate_stories
    stories = generate_stories(n, seed=12345)
    return LexiconReader({lang: [story_record(s, "", lang)["text"] for s in stories]
                          for lang in ("en", *LANGUAGES)})


@functools.lru_cache(maxsize=1)
def domain_reader(n: int = 3000) -> LexiconReader:
    """A LexiconReader over story/arith/code built from `n` training documents of each domain."""
    import random

    from . import domains
    from .corpus import story_record
    from .languages import LANGUAGES
    from .stories import generate_stories
    rng = random.Random("domain-reader")
    langs = ("en", *LANGUAGES)
    stories = [story_record(s, "", langs[i % 4])["text"] for i, s in enumerate(generate_stories(n, seed=12346))]
    return LexiconReader({"story": stories, "arith": [domains.arith_doc(rng) for _ in range(n)],
                          "code": [domains.code_doc(rng) for _ in range(n)]})
