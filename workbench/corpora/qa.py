"""Question/answer and instruction lines about a story, made from the story's own facts.

A `qa` document is a story followed by 3-5 exchanges about it, one of two styles per exchange:

    Question: How did Mia feel at the end?
    Answer: Mia felt proud.
    Instruction: Give the story a short title.
    Response: Mia and the kite.

Every answer is read off the story's plan (who, what, where, its labels), so it is right by construction and
uses the words the classification tasks use (`vocab.FEELINGS`, `TOPIC_PHRASES`, `ENDING_WORDS`). These lines
are for instruction-tuned ("-it") models and the prompt-style studies; base models never see them.
Here: `facts()`, `exchanges()`, `qa_record()`.
"""
from __future__ import annotations

import random

from . import vocab as V
from .stories import PATTERNS, Story


def facts(story: Story) -> dict[str, str]:
    """Slot values that occur in the story's text (first value of each slot), plus its labels."""
    out: dict[str, str] = {}
    for _, values in story.plan:
        for slot, value in values:
            out.setdefault(slot, value)
    out.update(hero=story.hero, friend=story.friend, feeling=story.feeling, topic=story.topic, ending=story.ending)
    return out


def _object_question(f: dict) -> tuple[str, str] | None:
    topic, hero = f["topic"], f["hero"]
    if topic == "lost" and "thing" in f:
        return f"What did {hero} lose?", f"{hero} lost the {f['thing']}."
    if topic == "friends" and "thing" in f:
        return f"What did {hero} want to play with?", f"{hero} wanted to play with the {f['thing']}."
    if topic == "baking" and "dish" in f:
        return f"What did {hero} want to make?", f"{hero} wanted to make a {f['dish']}."
    if topic == "helping" and "creature" in f:
        return f"Which animal did {hero} help?", f"{hero} helped a {f['creature']}."
    if topic == "adventure" and "place2" in f:
        return f"Where did {hero} want to go?", f"{hero} wanted to go to the {f['place2']}."
    return None


def exchanges(story: Story, rng: random.Random) -> list[tuple[str, str, str]]:
    """Every (style, prompt, answer) the story supports; style is "question" or "instruction"."""
    f = facts(story)
    hero, friend = f["hero"], f["friend"]
    out = [
        ("question", "Who is the story about?", f"The story is about {hero}."),
        ("question", f"Who is {hero}'s friend?", f"{hero}'s friend is {friend}."),
        ("question", f"How did {hero} feel at the end?", f"{hero} felt {rng.choice(V.FEELINGS[f['feeling']])}."),
        ("question", "What was the story about?", f"It was a story about {rng.choice(V.TOPIC_PHRASES[f['topic']])}."),
        ("question", "How did the story end?", f"It was a {rng.choice(V.ENDING_WORDS[f['ending']])} ending."),
        ("instruction", "Say in one word how the story ended.", "Well." if f["ending"] == "good" else "Badly."),
        ("instruction", f"Name the feeling of {hero} at the end.", f"{f['feeling'].capitalize()}."),
    ]
    obj = _object_question(f)
    if obj:
        out.append(("question", *obj))
        title = obj[1].rsplit(" ", 1)[-1].rstrip(".")
        out.append(("instruction", "Give the story a short title.", f"{hero} and the {title}."))
    if "place" in f:
        out.append(("question", f"Where did {hero} go?", f"{hero} went to the {f['place']}."))
    if "parent" in f:
        his = "her" if V.gender(hero) == "f" else "his"
        out.append(("question", f"Who lives with {hero}?", f"{hero} lives with {his} {f['parent']}."))
    resolution = next((s for (pid, _), s in zip(story.plan, story.sentences)
                       if PATTERNS[pid].group.endswith((".good", ".bad")) and "closing" not in PATTERNS[pid].group),
                      None)
    if resolution:
        out.append(("instruction", "Say in one sentence what happened at the end.", resolution))
    return out


def qa_record(story: Story, rid: str, rng: random.Random) -> dict:
    """A `qa` corpus record: the story, then 3-5 exchanges drawn from `exchanges()`, one per line."""
    pool = exchanges(story, rng)
    picked = rng.sample(pool, rng.randint(3, min(5, len(pool))))
    lines = [story.text]
    for style, prompt, answer in picked:
        head, tail = ("Question", "Answer") if style == "question" else ("Instruction", "Response")
        lines += [f"{head}: {prompt}", f"{tail}: {answer}"]
    text = "\n".join(lines)
    return {"id": rid, "text": text, "lang": "en", "domain": "qa", "feeling": story.feeling, "topic": story.topic,
            "ending": story.ending, "hero": story.hero, "spans": [[0, len(text), "en"]],
            "qa": [[p, a] for _, p, a in picked]}
