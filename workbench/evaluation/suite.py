"""The built-in generative task suite, made from the project's own generators on held-out (evaluation-split) text.

Eight tasks over four domains. Each instance is short (a 2-4 sentence story excerpt, a few arithmetic facts, a
small program) so that a three-shot prompt still fits the family's 256-token context.

| task       | task type           | domain                | reasoning       | the model must produce            |
|------------|---------------------|-----------------------|-----------------|-----------------------------------|
| qa         | question answering  | stories               | fact lookup     | a friend, place, parent or object |
| feeling    | classification      | stories               | cause -> effect | the hero's feeling, not stated    |
| ending     | classification      | stories               | outcome         | whether the story ended well      |
| language   | classification      | constructed languages | recognition     | the language's name               |
| title      | summary             | stories               | gist            | "<hero> and the <object>"         |
| cloze      | sentence completion | stories               | co-reference    | the word the context already named|
| arithmetic | arithmetic          | arithmetic            | calculation     | the result of the last fact       |
| code       | code completion     | code                  | program tracing | the program's print line          |

Every story comes from `draw_story(rng, "eval")` and every document from the evaluation split, so no training
corpus holds them (arithmetic facts themselves are few and all occur in training; the documents do not). The
few-shot pool of a task is drawn from another seed stream and never shares an input with the test set.
The semantic judge uses the generator's facts: the right name/place/object/number must appear and no other
value of the same kind may. Translation is not here: the family never saw parallel text (see the translation
models). Here: `SUITE`, `builtin_task()`, `builtin_suite()`.
"""
from __future__ import annotations

import random
import re

from workbench.corpora import domains
from workbench.corpora import vocab as V
from workbench.corpora.corpus import _doc, story_record
from workbench.corpora.grammar import _AN, SLOTS
from workbench.corpora.languages import LANGUAGES
from workbench.corpora.qa import facts
from workbench.corpora.stories import PATTERNS, draw_story

from .tasks import GenTask, Instance

SEED_STREAM = "gen-task"
_NAMES = SLOTS["hero"]
_SLOT_KIND = {"friend": ("Who is {hero}'s friend?", "{hero}'s friend is", _NAMES),
              "parent": ("Who lives with {hero}?", "{hero} lives with {his}", V.PARENTS),
              "place": ("Where did {hero} go?", "{hero} went to the", V.PLACES)}
_OBJECT = {"lost": ("thing", "What did {hero} lose?", "{hero} lost the", V.THINGS),
           "friends": ("thing", "What did {hero} want to play with?", "{hero} wanted to play with the", V.THINGS),
           "baking": ("dish", "What did {hero} want to make?", "{hero} wanted to make a", SLOTS["dish"]),
           "helping": ("creature", "Which animal did {hero} help?", "{hero} helped a", V.ANIMALS),
           "adventure": ("place2", "Where did {hero} want to go?", "{hero} wanted to go to the", V.PLACES)}


def _groups(story) -> list[str]:
    return [PATTERNS[pid].group for pid, _ in story.plan]


def _first_with(story, value: str, start: int = 0) -> int | None:
    pat = re.compile(rf"\b{re.escape(value)}\b")
    return next((i for i in range(start, len(story.sentences)) if pat.search(story.sentences[i])), None)


def _others(vocab, right: str | tuple) -> list[str]:
    right = (right,) if isinstance(right, str) else right
    return [w for w in vocab if w not in right]


def _excerpt(story, rng, fact_at: int) -> str:
    """The intro, one other sentence before the fact (a distractor), and the fact's sentence, in story order."""
    keep = {0, fact_at}
    between = [i for i in range(1, fact_at)]
    if between:
        keep.add(rng.choice(between))
    return " ".join(story.sentences[i] for i in sorted(keep))


def _qa(rng, split):
    story = draw_story(rng, split)
    f = facts(story)
    his = "her" if V.gender(story.hero) == "f" else "his"
    options = [(s, *_SLOT_KIND[s]) for s in _SLOT_KIND if s in f]
    if story.topic in _OBJECT and _OBJECT[story.topic][0] in f:
        options.append(_OBJECT[story.topic])
    slot, question, cue, vocab = rng.choice(options)
    value = f[slot]
    at = _first_with(story, value, 1)
    if at is None:
        return None
    q, c = question.format(hero=story.hero), cue.format(hero=story.hero, his=his)
    wrong = rng.choice([w for w in _others(vocab, value) if w != story.hero])
    return dict(input=_excerpt(story, rng, at), question=q, cue=c, instruction=f"Answer the question: {q}",
                answer=value, wrong=wrong, references=[value, _AN.sub(r"\1n ", f"{c} {value}.")], required=[[value]],
                forbidden=[w for w in _others(vocab, value) if w != story.hero])   # "Mia's friend is Bo" is right


def _feeling(rng, split):
    label = rng.choice(list(V.FEELINGS))
    story = draw_story(rng, split, feeling=label)
    g = _groups(story)
    res = next(i for i, x in enumerate(g) if x in (f"{story.topic}.good", f"{story.topic}.bad"))
    cause = next(i for i, x in enumerate(g) if x.startswith("cause."))
    text = " ".join(story.sentences[i] for i in (0, res, cause))
    words = V.FEELINGS[label]
    others = [w for k, ws in V.FEELINGS.items() if k != label for w in ws]
    return dict(input=text, question=f"How did {story.hero} feel at the end?", cue=f"In the end, {story.hero} felt",
                instruction=f"Name the feeling of {story.hero} at the end.", answer=label,
                wrong=rng.choice([k for k in V.FEELINGS if k != label]), references=list(words),
                required=[list(words)], forbidden=others)


def _ending(rng, split):
    label = rng.choice(("good", "bad"))
    story = draw_story(rng, split, ending=label)
    g = _groups(story)
    want = next(i for i, x in enumerate(g) if x.endswith(".want"))
    res = next(i for i, x in enumerate(g) if x in (f"{story.topic}.good", f"{story.topic}.bad"))
    words, other = V.ENDING_WORDS[label], V.ENDING_WORDS["bad" if label == "good" else "good"]
    return dict(input=" ".join(story.sentences[i] for i in (0, want, res)), question="How did the story end?",
                cue="It was a", instruction="Say how the story ended.", answer=f"{words[0]} ending",
                wrong=f"{other[0]} ending", references=[f"{w} ending" for w in words] + list(words),
                required=[list(words)], forbidden=[w for w in other if w not in words])


def _language(rng, split):
    lang = rng.choice(sorted(LANGUAGES))
    text = story_record(draw_story(rng, split), "", lang)["text"]
    cut = re.search(r"[.!?](\s|$)", text[40:])
    text = text[:40 + cut.end()].strip() if cut else text[:200]
    name = V.LANGUAGE_NAMES[lang]
    return dict(input=text, question="Which language is the text in?", cue="This text is a story in",
                instruction="Name the language of the text.", answer=name,
                wrong=rng.choice([n for k, n in V.LANGUAGE_NAMES.items() if k != lang]), references=[name],
                required=[[name]], forbidden=[n for n in V.LANGUAGE_NAMES.values() if n != name])


def _title(rng, split):
    story = draw_story(rng, split)
    f = facts(story)
    if story.topic not in _OBJECT or _OBJECT[story.topic][0] not in f:
        return None
    slot, *_, vocab = _OBJECT[story.topic]
    obj = f[slot]
    at = _first_with(story, obj, 1)
    if at is None:
        return None
    title = f"{story.hero} and the {obj}"
    return dict(input=_excerpt(story, rng, at), question="What is a good title for the story?",
                cue="Title:", instruction="Give the story a short title.", answer=title,
                wrong=f"{rng.choice(_others(_NAMES, story.hero))} and the {rng.choice(_others(vocab, obj))}",
                references=[title, f"{title}."], required=[[story.hero], [obj]],
                forbidden=_others(vocab, obj))


def _cloze(rng, split):
    story = draw_story(rng, split)
    f = facts(story)
    for j in range(2, len(story.sentences)):
        for slot in ("thing", "dish", "creature", "friend", "place", "pet", "parent", "thing2", "food"):
            value = f.get(slot)
            if not value or len(value) < 3:
                continue
            m = re.search(rf"\b{re.escape(value)}\b", story.sentences[j])
            first = _first_with(story, value)
            head = story.sentences[j][:m.start()].rstrip() if m else ""
            if len(head.split()) >= 3 and first is not None and first < j:   # "The ..." alone fixes nothing
                context = " ".join(story.sentences[i] for i in sorted({0, first}))
                vocab = _NAMES if slot == "friend" else SLOTS[slot]
                return dict(input=f"{context} {head}", question="Which word comes next?", cue="",
                            instruction="Continue the text with the next word.", answer=value,
                            wrong=rng.choice(_others(vocab, value)), references=[value], required=[[value]],
                            forbidden=[w for w in _others(vocab, value) if w != story.hero])
    return None


def _arithmetic(rng, split):
    doc = _doc(rng, split, domains.arith_doc)
    facts_ = doc.split(". ")
    *before, last = facts_[:rng.randint(2, min(4, len(facts_)))]
    lhs, result = last.rstrip(".").split(" = ")
    context = ". ".join(before) + ". " if before else ""
    a, op, b = lhs.split()
    wrong = str(max(0, int(result) + rng.choice((-2, -1, 1, 2))))
    return dict(input=f"{context}{lhs} =", question=f"What is {lhs}?", cue="",
                instruction=f"Compute {lhs}.", answer=result, wrong=wrong, references=[result],
                required=[[result]], forbidden=[str(n) for n in range(0, 201) if str(n) != result])


def _code(rng, split):
    doc = _doc(rng, split, domains.code_doc)
    lines = doc.split("\n")
    body, last = lines[:-1], lines[-1]
    var = re.search(r"print\((?:\w+\()?(\w+)\)", last).group(1)
    names = {ln.split(" = ")[0] for ln in body if " = " in ln}
    return dict(input="\n".join(body) + "\n", question="What is the next line?", cue="",
                instruction="Write the next line of the program.", answer=last,
                wrong=last.replace(var, rng.choice(sorted(names - {var}))), references=[last],
                required=[[last]], forbidden=[n for n in names if n != var])


# name -> (builder, aspect labels, definition, paraphrase, stop strings, max_new_tokens)
SUITE = {
    "qa": (_qa, ("question answering", "stories", "fact lookup"),
           "Read the story and answer the question about it.", "Find the answer in the story.", ("\n", "."), 12),
    "feeling": (_feeling, ("classification", "stories", "cause -> effect"),
                "Read the story and say how the hero felt at the end.",
                "Tell the feeling of the main character when the story ends.", ("\n", "."), 6),
    "ending": (_ending, ("classification", "stories", "outcome"),
               "Read the story and say whether it ended well or badly.", "Tell how the story turned out.",
               ("\n", "."), 6),
    "language": (_language, ("classification", "constructed languages", "recognition"),
                 "Say which language the text is written in.", "Name the language of this text.", ("\n", "."), 4),
    "title": (_title, ("summary", "stories", "gist"), "Give the story a short title.",
              "Write a few words that name what the story is about.", ("\n", "."), 10),
    "cloze": (_cloze, ("sentence completion", "stories", "co-reference"),
              "Fill in the next word of the text.", "Continue the text.", ("\n", ".", ","), 5),
    "arithmetic": (_arithmetic, ("arithmetic", "arithmetic", "calculation"), "Compute the result.",
                   "Work out the answer.", ("\n", "."), 4),
    "code": (_code, ("code completion", "code", "program tracing"), "Write the next line of the program.",
             "Complete the program.", ("\n",), 10),
}


def _instances(name: str, n: int, stream: str, split: str) -> tuple[Instance, ...]:
    build, (ttype, domain, reasoning) = SUITE[name][0], SUITE[name][1]
    rng = random.Random(f"{SEED_STREAM}-{name}-{stream}")
    out: list[Instance] = []
    while len(out) < n:
        row = build(rng, split)
        if row is None:
            continue
        refs, req, forb = row.pop("references"), row.pop("required"), row.pop("forbidden")
        out.append(Instance(f"{name}-{stream}-{len(out)}", row, tuple(refs),
                            {"task_type": ttype, "domain": domain, "reasoning": reasoning}, tuple(map(tuple, req)),
                            tuple(forb)))
    return tuple(out)


def builtin_task(name: str, n: int = 200, pool: int = 40, seed: int = 0) -> GenTask:
    """Built-in task `name` with `n` test instances and a few-shot pool of `pool`, all evaluation-split.

    Deterministic in (name, n, pool, seed): instance i is the same for every n > i. Raises ValueError for an
    unknown name (listing the valid ones) or n < 1.
    """
    if name not in SUITE:
        raise ValueError(f"unknown generative task {name!r}; valid: {', '.join(SUITE)}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    _, _, definition, paraphrase, stop, max_new = SUITE[name]
    test = _instances(name, n, f"test{seed}", "eval")
    inputs = {i.fields["input"] for i in test}
    shots = tuple(i for i in _instances(name, pool + 10, f"pool{seed}", "eval") if i.fields["input"] not in inputs)
    return GenTask(name, test, shots[:pool], definition, paraphrase, stop, max_new)


def builtin_suite(n: int = 200, pool: int = 40, seed: int = 0, names=None) -> list[GenTask]:
    """Every built-in task (or those in `names`), each with `n` instances; see `builtin_task`."""
    return [builtin_task(name, n, pool, seed) for name in (names or SUITE)]
