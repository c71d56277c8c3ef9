"""TinyStories-style children's stories from a small story grammar, with labels a careful reader can recover.

A story is a plan: intro -> description -> friend -> setting -> want -> dialogue -> problem -> attempts ->
resolution -> cause -> feeling -> closing. Each step picks sentence patterns from a group (`PATTERNS`);
the topic picks the want/problem/attempt/resolution groups, the ending picks the resolution and closing,
the feeling picks the cause and the feeling word. Labels:
  topic   lost | friends | adventure | helping | baking   (what the plot is about)
  ending  good | bad                                      (does the hero get what they wanted)
  feeling happy | proud (good endings), sad | scared | angry (bad endings): the hero's feeling at the end
Here: `PATTERNS`, `LABELS`, `make_story()` (one story as a `Story` plan + text), `generate_stories()`.
Not here: checking text against the grammar (`validate`), other languages (`languages`).
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from . import vocab as V
from .grammar import SLOTS, Pattern, fill

LABELS = {
    "feeling": ["happy", "proud", "sad", "scared", "angry"],
    "topic": ["lost", "friends", "adventure", "helping", "baking"],
    "ending": ["good", "bad"],
}
FEELINGS_BY_ENDING = {"good": ("happy", "proud"), "bad": ("sad", "scared", "angry")}

_GROUPS: dict[str, list[str]] = {
    "intro": [
        "Once upon a time, there was a {hadj} {kind} named {hero}.",
        "Once upon a time, in a {padj} town, there lived a {hadj} {kind} called {hero}.",
        "There once was a {hadj} {kind} named {hero}.",
        "{hero} was a {hadj} {kind} who lived near the {home}.",
        "Long ago, a {hadj} {kind} named {hero} lived by the {home}.",
    ],
    "describe": [
        "{he} liked to {act} and {act2} every day.",
        "{hero} had a {oadj} {thing2} and many {color} {things}.",
        "Every morning, {he} ate a {food} with {his} {parent}.",
        "{his} favorite color was {color}.",
        "{he} lived in a {padj} house with {his} {parent} and a {size} {pet}.",
        "{hero} loved to {act} with {his} {pet}.",
        "{he} was very {hadj} and always wanted to learn new things.",
        "{his} {parent} often said that {he} was the most {hadj} {kind} in the {home}.",
        "{hero} liked {foods} more than anything.",
        "On rainy days, {he} stayed inside and {act_past} with {his} {things}.",
        "Every night, {his} {parent} told {him} a story about a {animal}.",
        "{he} always carried a {color} {thing2} in {his} pocket.",
    ],
    "friend": [
        "{hero} had a good friend named {friend}.",
        "{his} best friend was a {fadj} {fkind} called {friend}.",
        "{friend} lived next door, and {fhe} was {hero}'s best friend.",
        "{hero} and {friend} were best friends, and they liked to {act} together.",
        "{hero} often played with {friend}, a {fadj} {fkind} from the {home}.",
        "{friend} was a {fadj} {fkind}, and {fhe} liked to {act} with {hero}.",
    ],
    "setting": [
        "One {time}, it was {weather} outside.",
        "One day, {hero} and {friend} went to the {place}.",
        "One {time}, {hero} {moved} to the {place} with {his} {parent}.",
        "The {place} was {padj} and full of {animals}.",
        "The sun was shining, and a {size} {animal} {animal_act}.",
        "It was a {weather} {time}, and the {animals} were out.",
        "{hero} and {friend} {moved} to the {place} after lunch.",
    ],
    # ---- topic: lost ---------------------------------------------------------------------------------
    "lost.want": [
        "{hero} had a {tadj} {thing} that {he} loved very much.",
        "{he} took the {thing} everywhere {he} went.",
        "{hero} wanted to show the {thing} to {friend}.",
    ],
    "lost.talk": [
        '{hero} said, "Oh no, where is my {thing}?"',
        '"Can you help me find my {thing}?" asked {hero}.',
        '{friend} said, "Do not worry, we will look for it together."',
        '"Did you see my {thing}?" asked {hero}.',
    ],
    "lost.problem": [
        "But when {he} looked in {his} bag, the {thing} was gone!",
        "{hero} looked on the {spot}, but the {thing} was not there.",
        "Then the wind blew, and the {thing} was lost.",
    ],
    "lost.try": [
        "{hero} and {friend} looked under the {spot}.",
        "They searched the whole {place} from the {spot} to the {spot2}.",
        "{he} asked a {animal} if it had seen the {thing}.",
        "{he} looked behind the {spot} and inside the {spot2}.",
        "{hero} called for the {thing} again and again.",
        "{he} {moved} back to the {place} to look there.",
    ],
    "lost.good": [
        "At last, {hero} found the {thing} under the {spot}!",
        "A {creature} had been playing with the {thing}, and it gave the {thing} back.",
        "{friend} saw something {color} near the {spot}, and it was the {thing}!",
        "The {thing} was safe, and {hero} held it tight.",
    ],
    "lost.bad": [
        "They looked until the sun went down, but the {thing} was gone.",
        "{hero} never found the {thing} again.",
        "A {creature} had taken the {thing} far away.",
        "When {he} finally saw the {thing}, it was broken in the mud.",
    ],
    # ---- topic: friends ------------------------------------------------------------------------------
    "friends.want": [
        "{hero} wanted to play with {friend}'s {tadj} {thing}.",
        "{friend} had a new {thing}, and it was {tadj} and {color}.",
        "{hero} wanted to {act} with {friend} and the {thing}.",
    ],
    "friends.talk": [
        '{hero} said, "Can I play with your {thing}, please?"',
        '{friend} said, "It is my {thing}, and I want to play alone."',
        '"Let us play together!" said {hero}.',
    ],
    "friends.problem": [
        "But {friend} did not want to share the {thing}.",
        "They both pulled the {thing} at the same time.",
        "{friend} said no and held the {thing} close.",
    ],
    "friends.try": [
        "{hero} asked again and said please.",
        "{he} gave {friend} a {food} and a {color} {thing2}.",
        "{hero} waited for {his} turn under the {spot}.",
        "{he} showed {friend} how to {act} with the {thing}.",
        "{hero} and {friend} talked about a fair way to play.",
        "{hero} said that they could take turns with the {thing}.",
    ],
    "friends.good": [
        "{friend} smiled and shared the {thing} with {hero}.",
        "They took turns and played with the {thing} all day.",
        "{friend} said sorry, and they played together in the {place}.",
    ],
    "friends.bad": [
        "The {thing} fell and broke into many pieces.",
        "{friend} took the {thing} and went home without {hero}.",
        "They did not play together, and {friend} walked away.",
    ],
    # ---- topic: adventure ----------------------------------------------------------------------------
    "adventure.want": [
        "{hero} wanted to explore the {place2} far away.",
        "{he} packed a {food} and {his} {thing} in a bag.",
        "{hero} had heard that the {place2} was full of {things}.",
    ],
    "adventure.talk": [
        '{hero} said, "Let us go on an adventure!"',
        '{his} {parent} said, "Be careful, and come home before dark."',
        '"What will we find in the {place2}?" asked {friend}.',
    ],
    "adventure.problem": [
        "The path was long, and the {place2} was far away.",
        "Soon it got dark, and {hero} could not see the path.",
        "A big river was in the way, and the water was fast.",
    ],
    "adventure.try": [
        "{he} {moved} over the {spot} and across the {place}.",
        "{he} used {his} {thing} to find the way.",
        "{hero} followed a {size} {animal} through the trees.",
        "{hero} and {friend} held hands and kept going.",
        "{hero} climbed up a {size} hill to look around.",
    ],
    "adventure.good": [
        "At last, {hero} reached the {place2}, and it was {padj} and beautiful.",
        "{he} saw many {animals} and a {color} {animal2}.",
        "{hero} found a {oadj} {thing2} in the {place2} and took it home.",
    ],
    "adventure.bad": [
        "{hero} got lost and had to go back home.",
        "A big storm came, and {hero} ran home without seeing the {place2}.",
        "{hero} fell and hurt {his} knee, so {he} could not go on.",
    ],
    # ---- topic: helping ------------------------------------------------------------------------------
    "helping.want": [
        "One day, {hero} saw a {size} {creature} near the {spot}.",
        "The {creature} was stuck and could not get out.",
        "{hero} wanted to help the {creature} get home.",
    ],
    "helping.talk": [
        '{hero} said, "Do not be afraid, little {creature}, I will help you."',
        '"How can we help it?" asked {friend}.',
        '{hero} said, "We must be gentle and quiet."',
        '{friend} said, "Look, it is so small and soft."',
    ],
    "helping.problem": [
        "The {creature} was hungry and cold, and it was far from its home.",
        "The {creature} was scared, and it did not want to come close.",
        "The {creature} had hurt its leg and could not walk.",
    ],
    "helping.try": [
        "{hero} gave the {creature} some {food}.",
        "{he} used a {thing} to help the {creature}.",
        "{he} called {friend} to come and help.",
        "{hero} sat very still and waited for the {creature}.",
        "{hero} made a soft bed for the {creature} in a box.",
    ],
    "helping.good": [
        "The {creature} was safe, and it went back to its family.",
        "The {creature} licked {hero}'s hand to say thank you.",
        "The {creature} got better and played with {hero} every day.",
    ],
    "helping.bad": [
        "The {creature} ran away, and {hero} never saw it again.",
        "{hero} tried very hard, but {he} could not help the {creature}.",
        "The {creature} was too scared and hid where no one could reach it.",
    ],
    # ---- topic: baking -------------------------------------------------------------------------------
    "baking.want": [
        "{hero} wanted to make a {dish} for {his} {parent}.",
        "{he} needed {food}, milk, and eggs.",
        "{hero} found a book about how to make a {dish}.",
    ],
    "baking.talk": [
        '{hero} said, "I will make the best {dish} ever!"',
        '{his} {parent} said, "I can help you if you want."',
        '"Can I help you stir?" asked {friend}.',
        '{friend} said, "I love {foods} very much."',
    ],
    "baking.problem": [
        "But there was no {food} in the kitchen.",
        "The oven was hot, and the bowl was very heavy.",
        "{hero} did not know how much {food} to put in.",
    ],
    "baking.try": [
        "{hero} mixed the {food} and the milk in a big bowl.",
        "{he} went to the market to buy some {foods}.",
        "{friend} came over to help {hero} stir.",
        "{he} put the {dish} in the oven and waited.",
        "{hero} asked {his} {parent} where to find the {food}.",
    ],
    "baking.good": [
        "The {dish} came out warm and sweet, and everyone ate it.",
        "{his} {parent} said it was the best {dish} ever.",
        "{hero} shared the {dish} with {friend} and {his} {parent}.",
    ],
    "baking.bad": [
        "The {dish} got burned and turned black.",
        "{hero} dropped the {dish} on the floor, and it was ruined.",
        "The {dish} was too salty, and no one wanted to eat it.",
    ],
    # ---- fillers, causes, feelings, closings ---------------------------------------------------------
    "middle": [
        "A {size} {animal} {animal_act} nearby.",
        "{hero} thought about what to do next.",
        "{he} took a deep breath and tried again.",
        "The {animal} and the {animal2} watched from the {spot}.",
        "The wind blew, and the leaves danced in the air.",
        "{hero} sang a little song to feel brave.",
    ],
    "cause.happy": [
        "{friend} gave {hero} a big hug.",
        "Everyone clapped and cheered for {hero}.",
        "{hero} and {friend} laughed and danced in the {place}.",
    ],
    "cause.proud": [
        "{hero} had done it all by {self}.",
        '{his} {parent} said, "You did not give up, {hero}."',
        "{hero} had worked hard and never gave up.",
    ],
    "cause.sad": [
        "{hero} sat down on the {spot} and cried.",
        "{hero} hugged {his} {pet} and cried.",
        "A tear rolled down {hero}'s face.",
    ],
    "cause.scared": [
        "Then {he} heard a loud noise in the dark, and {he} began to shake.",
        "The night was dark, and {hero} did not know the way home.",
        "A big {animal} growled at {hero} from behind the {spot}.",
    ],
    "cause.angry": [
        '{hero} stomped {his} feet and shouted, "It is not fair!"',
        "{hero} kicked the {spot} and would not talk to anyone.",
        "{hero} said that it was all {friend}'s fault.",
    ],
    "feeling": [
        "In the end, {hero} felt {feel}.",
        "{hero} was {feel} that day.",
        "That night, {hero} went to bed feeling {feel}.",
    ],
    "closing.good": [
        "From that day on, {hero} and {friend} were always together.",
        "It was the best day ever.",
        "{hero} smiled and hugged {his} {parent}.",
    ],
    "closing.bad": [
        "{hero} learned that some days do not go as planned.",
        "{hero} hoped that tomorrow would be a better day.",
        "{hero} went home and told {his} {parent} what had happened.",
    ],
    # ---- v2: what the story was, said after it (each in half the stories); new groups go last so that ------
    # ---- the ids of older patterns stay the same -----------------------------------------------------------
    "verdict": ["It was a {endw} ending."],              # endw: a word of the story's ending class
    "summary": ["This was a story about {about}."],      # about: a phrase of the story's topic class
    # label lines that the mixed corpus puts after half of its documents (never part of a story's plan)
    "label.story": ["This text is a story in {language}."],
    "label.arith": ["This text is arithmetic."],
    "label.code": ["This text is code."],
}


def _build_patterns() -> list[Pattern]:
    out, seen = [], set()
    for group, texts in _GROUPS.items():
        for text in texts:
            if text in seen:
                raise ValueError(f"pattern listed twice: {text!r}")
            seen.add(text)
            out.append(Pattern.make(len(out), group, text))
    return out


PATTERNS: list[Pattern] = _build_patterns()
BY_GROUP: dict[str, list[Pattern]] = {}
for _p in PATTERNS:
    BY_GROUP.setdefault(_p.group, []).append(_p)
# plot parts the validator looks for, in order (group prefixes); see validate.plot_complete
PLOT = ("intro", "want", "try", "resolution", "feeling")


def plot_part(group: str) -> str | None:
    """Which PLOT part a pattern group belongs to (None for description/filler groups)."""
    if group == "intro" or group == "feeling":
        return group
    tail = group.rsplit(".", 1)[-1]
    return {"want": "want", "problem": "want", "try": "try", "good": "resolution", "bad": "resolution"}.get(tail)


@dataclass(frozen=True)
class Story:
    """One generated story: its sentence plan, text and labels."""
    text: str
    plan: tuple[tuple[int, tuple[tuple[str, str], ...]], ...]   # (pattern id, ((slot, value), ...)) per sentence
    hero: str
    friend: str
    feeling: str
    topic: str
    ending: str
    sentences: tuple[str, ...] = ()


def _cast(rng: random.Random) -> dict[str, str]:
    """Story-level slot values: who, what and where stay the same through a story."""
    hero, friend = rng.sample(V.GIRL_NAMES + V.BOY_NAMES, 2)
    g, fg = V.gender(hero), V.gender(friend)
    animal_kinds = V.HERO_KINDS[2:]
    kind = ("girl" if g == "f" else "boy") if rng.random() < 0.6 else rng.choice(animal_kinds)
    fkind = ("girl" if fg == "f" else "boy") if rng.random() < 0.6 else rng.choice(animal_kinds)
    thing = rng.choice(V.THINGS)
    place, place2, home = rng.sample(V.PLACES, 3)
    creature, pet = rng.sample(V.ANIMALS, 2)
    f = g == "f"
    return {
        "hero": hero, "friend": friend, "kind": kind, "fkind": fkind,
        "he": "she" if f else "he", "him": "her" if f else "him", "his": "her" if f else "his",
        "self": "herself" if f else "himself",
        "fhe": "she" if fg == "f" else "he", "fhim": "her" if fg == "f" else "him",
        "fhis": "her" if fg == "f" else "his",
        "hadj": rng.choice(V.HERO_ADJS), "fadj": rng.choice(V.HERO_ADJS),
        "thing": thing, "tadj": rng.choice(V.OBJ_ADJS), "place": place, "place2": place2, "home": home,
        "padj": rng.choice(V.PLACE_ADJS), "parent": rng.choice(V.PARENTS), "creature": creature, "pet": pet,
        "dish": rng.choice(SLOTS["dish"]), "food": rng.choice(V.FOODS),
    }


def _outline(rng: random.Random, topic: str, ending: str, feeling: str) -> list[Pattern]:
    """The sentence patterns of one story, in order."""
    pick = lambda g, k=1: sorted(rng.sample(BY_GROUP[g], k), key=lambda p: p.id)   # noqa: E731  (story order)
    out = pick("intro") + pick("describe", rng.randint(0, 2)) + pick("friend") + pick("setting", rng.randint(1, 2))
    out += pick(f"{topic}.want", rng.randint(1, 2)) + pick(f"{topic}.talk", rng.randint(1, 2))
    out += pick(f"{topic}.problem")
    tries = pick(f"{topic}.try", rng.randint(1, 3))
    if rng.random() < 0.5:
        tries.insert(rng.randint(0, len(tries)), pick("middle")[0])
    out += tries + pick(f"{topic}.{ending}") + pick(f"cause.{feeling}")
    out += pick("feeling") + pick(f"closing.{ending}")
    if rng.random() < 0.5:
        out += pick("verdict")
    if rng.random() < 0.5:
        out += pick("summary")
    return out


def make_story(rng: random.Random, topic: str | None = None, ending: str | None = None,
               feeling: str | None = None) -> Story:
    """One story; labels not given are drawn so that every feeling (and so topic) is equally likely."""
    topic = topic or rng.choice(LABELS["topic"])
    if topic not in LABELS["topic"] or (ending or "good") not in FEELINGS_BY_ENDING:
        raise ValueError(f"unknown topic {topic!r} or ending {ending!r}; topics: {LABELS['topic']}, "
                         f"endings: {LABELS['ending']}")
    if feeling is None:
        feeling = rng.choice([f for f in LABELS["feeling"] if ending is None or f in FEELINGS_BY_ENDING[ending]])
    ending = ending or ("good" if feeling in FEELINGS_BY_ENDING["good"] else "bad")
    if feeling not in FEELINGS_BY_ENDING[ending]:
        raise ValueError(f"feeling {feeling!r} does not fit a {ending} ending; "
                         f"pick one of {FEELINGS_BY_ENDING[ending]}")
    cast = _cast(rng)
    sentences, plan = [], []
    for p in _outline(rng, topic, ending, feeling):
        values = dict(cast)
        for s in p.slots:
            if s not in cast:
                values[s] = _draw(rng, s, values, feeling, topic, ending)
        sentences.append(fill(p, values))
        plan.append((p.id, tuple((s, values[s]) for s in dict.fromkeys(p.slots))))
    return Story(" ".join(sentences), tuple(plan), cast["hero"], cast["friend"], feeling, topic, ending,
                 tuple(sentences))


def _draw(rng: random.Random, slot: str, values: dict, feeling: str, topic: str = "", ending: str = "") -> str:
    """A fresh word for a sentence-level slot; "feel", "about" and "endw" draw a phrase of the story's
    feeling, topic and ending class."""
    if slot == "feel":
        return rng.choice(V.FEELINGS[feeling])
    if slot == "about":
        return rng.choice(V.TOPIC_PHRASES[topic])
    if slot == "endw":
        return rng.choice(V.ENDING_WORDS[ending])
    w = rng.choice(SLOTS[slot])
    while slot.endswith("2") and w == values.get(slot[:-1]):   # thing2 differs from thing, act2 from act, ...
        w = rng.choice(SLOTS[slot])
    return w


def generate_stories(n: int, seed: int = 0, split: str = "train") -> list[Story]:
    """`n` stories of `split` ("train" or "eval", see `text_split`), deterministic in `seed`."""
    rng = random.Random(seed if split == "train" else f"{seed}-{split}")
    return [draw_story(rng, split) for _ in range(n)]


# ---- held-out split ---------------------------------------------------------------------------------------
SPLITS = ("train", "eval")
EVAL_SHARE = 10     # one text in EVAL_SHARE is reserved for evaluation


def text_split(text: str) -> str:
    """"eval" for the share 1/EVAL_SHARE of all possible texts reserved for evaluation, else "train".

    The split is a property of the text itself (its SHA-256), not of a seed or a position in a file, so no
    generator call, whatever its seed or size, can put the same story into both splits.
    """
    h = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    return "eval" if h % EVAL_SHARE == 0 else "train"


def draw_story(rng: random.Random, split: str = "train", **labels) -> Story:
    """`make_story(rng, **labels)` drawn again until its English text belongs to `split`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    while True:
        story = make_story(rng, **labels)
        if text_split(story.text) == split:
            return story
