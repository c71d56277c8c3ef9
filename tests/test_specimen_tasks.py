"""Corpus v2 and the built-in v2 tasks: held out, answerable from the corpus's own phrasing, graded."""
import hashlib
import re

import pytest

from workbench.corpora import generate_corpus
from workbench.corpora import vocab as V
from workbench.corpora.reader import story_label_sets
from workbench.corpora.stories import draw_story, generate_stories, text_split
from workbench.scoring import load_task
from workbench.scoring.builtin import BUILTIN_TASKS, LEVELS, builtin_task

N = 60   # examples per task in these tests (a multiple of 2, 3, 4 and 5: balanced)


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def train_texts():
    return generate_corpus("mixed", 3000, seed=0).texts + generate_corpus("stories", 1000, seed=1).texts


def test_eval_and_train_splits_never_share_a_text():
    train = {_h(t) for k in ("stories", "mixed", "qa") for t in generate_corpus(k, 1500, seed=3).texts}
    ev = {_h(t) for k in ("stories", "mixed", "qa") for t in generate_corpus(k, 300, seed=3, split="eval").texts}
    assert train and ev and not train & ev
    # the split is a property of the text: every story of a corpus lies in its split whatever the seed
    assert {text_split(s.text) for s in generate_stories(200, seed=7)} == {"train"}
    assert {text_split(s.text) for s in generate_stories(50, seed=7, split="eval")} == {"eval"}


def test_builtin_examples_come_from_eval_stories_only(train_texts):
    # an ending/0 example is its story up to the verdict: no training story begins with it
    starts = {t[:200] for t in train_texts}
    for x in builtin_task("ending", 0, n=N).texts:
        assert x[:200] not in starts
    rng = __import__("random").Random("x")
    assert text_split(draw_story(rng, "eval").text) == "eval"
    with pytest.raises(ValueError, match="split"):
        draw_story(rng, "test")


def test_every_label_word_follows_its_prompt_in_training_text(train_texts):
    blob = "\n".join(train_texts)
    cue = {"feeling": "felt", "topic": "This was a story about", "ending": "It was a",
           "language": "This text is a story in", "domain": "This text is"}
    for name, phrase in cue.items():
        for verbs in BUILTIN_TASKS[name].verbalizers:
            for v in verbs:
                assert f"{phrase} {v}" in blob, f"{name}: '{phrase} {v}' never occurs in training text"
    for pronoun in ("He", "She"):
        assert re.search(rf"\. {pronoun} [a-z]", blob)


@pytest.mark.parametrize("name", list(BUILTIN_TASKS))
def test_tasks_are_balanced_deterministic_and_state_their_baselines(name):
    t = builtin_task(name, 0, n=N)
    k = len(t.classes)
    assert len(t.texts) == N and sorted(set(t.golds)) == list(range(k))
    assert all(t.golds.count(c) == N // k for c in range(k))
    assert t.majority == pytest.approx(1 / k)
    assert t.ceiling is not None and t.majority <= t.ceiling <= 1.0
    again = builtin_task(name, 0, n=N)
    assert again.texts == t.texts and builtin_task(name, 0, n=N // 2).texts == t.texts[:N // 2]
    assert len(t.verbalizers) == k and "{text}" in t.template


def test_no_example_states_its_answer_after_the_cue():
    for name, phrase in (("feeling", "felt"), ("topic", "This was a story about"), ("ending", "It was a ")):
        t = builtin_task(name, 0, n=N)
        for text in t.texts:
            assert not text.endswith(".") or name != "feeling"
            if name == "topic":
                assert "This was a story about" not in text
            if name == "ending":
                assert not re.search(r"It was a (very )?(happy|good|sad|bad) ending", text)


@pytest.mark.parametrize("name", ["feeling", "topic", "ending", "language", "domain"])
def test_difficulty_levels_are_graded(name):
    ceilings = [builtin_task(name, lv, n=N).ceiling for lv in range(len(LEVELS[name]))]
    assert all(a >= b for a, b in zip(ceilings, ceilings[1:])), ceilings
    assert ceilings[0] == pytest.approx(1.0) and ceilings[-1] < ceilings[0]


def test_ideal_reader_uses_the_grammar():
    s = generate_stories(1, seed=5)[0]
    full = story_label_sets(s.plan)
    assert full["feeling"] == {s.feeling} and full["topic"] == {s.topic} and full["ending"] == {s.ending}
    none = story_label_sets(s.plan[:1])                 # the intro alone says nothing about the labels
    assert len(none["feeling"]) == 5 and len(none["topic"]) == 5


def test_feeling_levels_remove_what_they_say():
    t0, t1, t2 = (builtin_task("feeling", lv, n=20) for lv in range(3))
    cause_words = ("cried", "hug", "clapped", "shake", "fault", "give up", "growled", "by herself", "by himself")
    assert any(any(w in x for w in cause_words) for x in t0.texts)
    assert t1.ceiling == pytest.approx(0.4, abs=0.05) and t2.ceiling == pytest.approx(0.2)
    assert all(x.endswith(tuple(V.GIRL_NAMES + V.BOY_NAMES)) for x in t1.texts)


def test_pronoun_levels_set_the_friends_gender():
    for level, same in ((0, True), (1, False)):
        t = builtin_task("pronoun", level, n=N)
        assert all(x.endswith((".", "!", "?", '"')) for x in t.texts)
        assert t.verbalizers == (("He",), ("She",))


def test_qa_answers_are_the_storys_own_facts():
    for r in generate_corpus("qa", 200, seed=0).records:
        assert 3 <= len(r["qa"]) <= 5 and r["domain"] == "qa"
        for q, a in r["qa"]:
            assert f"Answer: {a}" in r["text"] or f"Response: {a}" in r["text"]
            if q.startswith("How did") and "feel" in q:
                assert a.split(" felt ")[1].rstrip(".") in V.FEELINGS[r["feeling"]]
            if q == "What was the story about?":
                assert a.removeprefix("It was a story about ").rstrip(".") in V.TOPIC_PHRASES[r["topic"]]
            if q == "Who is the story about?":
                assert r["hero"] in a
    assert all(r["domain"] != "qa" for r in generate_corpus("mixed", 500, seed=0).records)


def test_load_task_names_and_levels():
    assert load_task("feeling", n=10).name == "feeling/0"
    assert load_task("topic/2", n=10).name == "topic/2"
    assert load_task("stories-topic", n=10).name == "stories-topic"
    with pytest.raises(ValueError, match="levels"):
        builtin_task("feeling", 7, n=5)
    with pytest.raises(ValueError, match="no level"):
        builtin_task("feeling", "hard", n=5)
    with pytest.raises(ValueError, match="valid"):
        builtin_task("colour")


def test_mixed_corpus_label_lines_name_the_right_language_and_domain():
    c = generate_corpus("mixed", 800, seed=0)
    tagged = [r for r in c.records if r.get("label_line")]
    assert 0.3 < len(tagged) / len(c) < 0.6
    for r in tagged:
        if r["domain"] == "story":
            assert r["text"].endswith(f"This text is a story in {V.LANGUAGE_NAMES[r['lang']]}.")
        else:
            assert r["text"].endswith({"arith": "This text is arithmetic.", "code": "This text is code."}[r["domain"]])
    langs = [r["lang"] for r in c.records if r["domain"] == "story"]
    assert langs.count("en") / len(langs) > 0.45
