"""Built-in classification tasks (v2): held out, balanced, in the corpus's own phrasing, with graded difficulty.

Six tasks, each at two or three levels of difficulty. Every example comes from the evaluation split of the
generator (`corpora.stories.text_split`), so no training corpus contains it; classes are interleaved, so every
head of a task is balanced; every prompt ends with words the training stories use right before the label
("... In the end, Mia" + " felt" + " proud"), and each class has the phrasings the stories use for it.

| task       | classes                                   | prompt ends with          | levels (what is removed)     |
|------------|-------------------------------------------|---------------------------|------------------------------|
| feeling    | happy, proud, sad, scared, angry          | In the end, {hero} felt   | -, the cause, the resolution |
| topic      | lost, friends, adventure, helping, baking | This was a story about    | -, all but the resolution, all plot |
| ending     | good, bad                                 | It was a                  | -, all after the resolution, it too |
| language   | en, vel, kor, tuu                         | This text is a story in   | -, all but a sentence, a word |
| domain     | story, arith, code                        | This text is              | -, all but the first word    |
| pronoun    | he, she (the hero's next pronoun)         | (the story so far)        | friend of the same / other gender |

Each task records per example what the ideal reader can reach (`corpora.reader`), so `task.ceiling` says how
well the shown text allows one to do and `task.majority` the majority baseline.
Here: `BUILTIN_TASKS`, `LEVELS`, `builtin_task()`, `task_card()`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from workbench.corpora import vocab as V
from workbench.corpora.corpus import story_record
from workbench.corpora.reader import domain_reader, language_reader, story_ceiling
from workbench.corpora.stories import LABELS, PATTERNS, Story, draw_story

from .tasks import Task


@dataclass(frozen=True)
class Spec:
    classes: tuple[str, ...]
    verbalizers: tuple[tuple[str, ...], ...]
    template: str
    domain_premise: str
    levels: tuple[str, ...]
    question: str


BUILTIN_TASKS: dict[str, Spec] = {
    "feeling": Spec(tuple(LABELS["feeling"]), tuple(V.FEELINGS[c] for c in LABELS["feeling"]),
                    "{text} felt", "felt", ("cause kept", "cause removed", "resolution and cause removed"),
                    "how does the hero feel at the end?"),
    "topic": Spec(tuple(LABELS["topic"]), tuple(V.TOPIC_PHRASES[c] for c in LABELS["topic"]),
                  "{text} This was a story about", "This was a story about",
                  ("whole story", "resolution only", "no plot sentence"), "what is the story about?"),
    "ending": Spec(tuple(LABELS["ending"]), tuple(V.ENDING_WORDS[c] for c in LABELS["ending"]),
                   "{text} It was a", "It was a", ("whole story", "up to the resolution", "before the resolution"),
                   "does the story end well?"),
    "language": Spec(tuple(V.LANGUAGE_NAMES), tuple((n,) for n in V.LANGUAGE_NAMES.values()),
                     "{text} This text is a story in", "This text is a story in",
                     ("whole story", "first sentence", "first word"), "which language is the story in?"),
    "domain": Spec(("story", "arith", "code"), (("a story",), ("arithmetic",), ("code",)),
                   "{text} This text is", "This text is", ("whole document", "first word"),
                   "is the text a story, arithmetic or code?"),
    "pronoun": Spec(("he", "she"), (("He",), ("She",)), "{text}", ".",
                    ("friend of the same gender", "friend of the other gender"),
                    "which pronoun starts the next sentence about the hero?"),
}
LEVELS = {name: spec.levels for name, spec in BUILTIN_TASKS.items()}
SEED_STREAM = "builtin-task"      # examples come from the eval split, drawn from this stream


def _groups(story: Story) -> list[str]:
    return [PATTERNS[pid].group for pid, _ in story.plan]


def _index(groups: list[str], pred) -> int:
    return next(i for i, g in enumerate(groups) if pred(g))


def _feeling(rng, label: str, level: int, split: str):
    story = draw_story(rng, split, feeling=label)
    g = _groups(story)
    resolution = (f"{story.topic}.good", f"{story.topic}.bad")
    drop = {0: (), 1: ("cause.",), 2: ("cause.", *resolution)}[level]
    visible = [i for i in range(_index(g, lambda x: x == "feeling")) if not (drop and g[i].startswith(drop))]
    text = " ".join(story.sentences[i] for i in visible) + f" In the end, {story.hero}"
    return text, story_ceiling(story, visible, "feeling")


def _topic(rng, label: str, level: int, split: str):
    story = draw_story(rng, split, topic=label)
    g = _groups(story)
    plot = tuple(f"{label}.{p}" for p in ("want", "talk", "problem", "try"))
    drop = {0: (), 1: plot, 2: (f"{label}.",)}[level]
    visible = [i for i, x in enumerate(g) if x not in ("verdict", "summary") and not (drop and x.startswith(drop))]
    return " ".join(story.sentences[i] for i in visible), story_ceiling(story, visible, "topic")


def _ending(rng, label: str, level: int, split: str):
    story = draw_story(rng, split, ending=label)
    g = _groups(story)
    res = _index(g, lambda x: x in (f"{story.topic}.good", f"{story.topic}.bad"))
    end = {0: _index(g + ["verdict"], lambda x: x in ("verdict", "summary")), 1: res + 1, 2: res}[level]
    visible = list(range(end))
    return " ".join(story.sentences[i] for i in visible), story_ceiling(story, visible, "ending")


def _language(rng, label: str, level: int, split: str):
    text = story_record(draw_story(rng, split), "", label)["text"]
    if level >= 1:
        text = text[:next(j for j, c in enumerate(text) if c in ".!?" and (j + 1 == len(text) or text[j + 1] == " "))
                    + 1]
    if level == 2:
        text = text.split()[0]
    return text, language_reader().accuracy(text, label)


def _domain(rng, label: str, level: int, split: str):
    from workbench.corpora import domains
    from workbench.corpora.corpus import _doc
    from workbench.corpora.languages import LANGUAGES
    if label == "story":
        text = story_record(draw_story(rng, split), "", rng.choice(("en", *LANGUAGES)))["text"]
    else:
        text = _doc(rng, split, domains.arith_doc if label == "arith" else domains.code_doc)
    if level == 1:
        text = text.split()[0]
    return text, domain_reader().accuracy(text, label)


def _pronoun(rng, label: str, level: int, split: str):
    want_friend = label if level == 0 else ("she" if label == "he" else "he")
    while True:
        story = draw_story(rng, split)
        he = "she" if V.gender(story.hero) == "f" else "he"
        fhe = "she" if V.gender(story.friend) == "f" else "he"
        starts = [i for i, (pid, _) in enumerate(story.plan) if i > 0 and PATTERNS[pid].text.startswith("{he}")]
        if he == label and fhe == want_friend and starts:
            return " ".join(story.sentences[:starts[-1]]), 1.0


_BUILDERS = {"feeling": _feeling, "topic": _topic, "ending": _ending, "language": _language, "domain": _domain,
             "pronoun": _pronoun}


def builtin_task(name: str, level: int | str = 0, n: int = 600, seed: int = 0, split: str = "eval") -> Task:
    """A built-in v2 task: `n` held-out examples, classes interleaved (balanced when n is a multiple of the
    number of classes), at difficulty `level` (an index into `LEVELS[name]` or its name).

    Deterministic in (name, level, n, seed); a longer task begins with the shorter one's examples.
    `split="train"` draws training-split stories instead (for fine-tuning probes; never for evaluation).
    Raises ValueError naming the valid tasks or levels.
    """
    if name not in BUILTIN_TASKS:
        raise ValueError(f"unknown built-in task {name!r}; valid: {', '.join(BUILTIN_TASKS)}")
    spec = BUILTIN_TASKS[name]
    if isinstance(level, str):
        if level not in spec.levels:
            raise ValueError(f"task {name!r} has no level {level!r}; levels: {', '.join(spec.levels)}")
        level = spec.levels.index(level)
    if not 0 <= level < len(spec.levels):
        raise ValueError(f"task {name!r} has levels 0..{len(spec.levels) - 1} ({', '.join(spec.levels)}), "
                         f"got {level}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of examples, got {n!r}")
    rng = random.Random(f"{SEED_STREAM}-{name}-{level}-{seed}-{split}")
    texts, golds, reach = [], [], []
    for i in range(n):
        k = i % len(spec.classes)
        text, ceiling = _BUILDERS[name](rng, spec.classes[k], level, split)
        texts.append(text)
        golds.append(k)
        reach.append(ceiling)
    return Task(name=f"{name}/{level}", texts=tuple(texts), golds=tuple(golds), classes=spec.classes,
                verbalizers=spec.verbalizers, template=spec.template, domain_premise=spec.domain_premise,
                reachable=tuple(reach), description=f"{name}: {spec.question} (level {level}: {spec.levels[level]})")


def task_card(n: int = 600, seed: int = 0):
    """DataFrame, one row per (task, level): classes, examples, majority baseline, ideal-reader ceiling."""
    import pandas as pd
    rows = []
    for name, spec in BUILTIN_TASKS.items():
        for level, what in enumerate(spec.levels):
            t = builtin_task(name, level, n=n, seed=seed)
            rows.append({"task": name, "level": level, "shows": what, "classes": len(spec.classes),
                         "examples": len(t.texts), "majority": round(t.majority, 3), "ceiling": round(t.ceiling, 3),
                         "prompt ends with": spec.template.replace("{text}", "…")})
    return pd.DataFrame(rows)
