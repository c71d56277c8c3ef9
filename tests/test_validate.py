"""The validator: generated stories score ~1, corrupted ones clearly lower; the `workbench validate` command."""
import json

import pytest

from workbench.cli import main
from workbench.corpora import generate_corpus, validate_text, validate_texts
from workbench.corpora.validate import corrupt_text


@pytest.fixture(scope="module")
def texts():
    return generate_corpus("stories", 120, seed=11).texts


def test_generated_stories_score_one(texts):
    v = validate_texts(texts)
    assert v["well_formed"] == 1.0 and v["hero_consistency"] == 1.0 and v["perfect_stories"] == 1.0


def test_single_story_numbers():
    from workbench.corpora.stories import generate_stories
    story = generate_stories(1, seed=4)[0]
    r = validate_text(story.text)
    assert r["sentences"] == len(story.plan) and r["hero"] == story.hero
    assert set(r) >= {"sentences", "well_formed", "hero_consistency", "friend_consistency", "object_consistency",
                      "plot_complete", "hero"}


@pytest.mark.parametrize("how,key", [("shuffle_words", "well_formed"), ("truncate", "well_formed"),
                                     ("swap_hero", "hero_consistency"), ("swap_object", "object_consistency"),
                                     ("shuffle_sentences", "plot_complete")])
def test_corrupted_text_scores_clearly_lower(texts, how, key):
    good = validate_texts(texts)[key]
    bad = validate_texts([corrupt_text(t, how, seed=i, rate=0.8) for i, t in enumerate(texts)])[key]
    assert bad < good - 0.2, (how, key, good, bad)


def test_one_swapped_name_or_broken_sentence_is_noticed(texts):
    t = texts[0]
    hero = validate_text(t)["hero"]
    other = "Otto" if hero != "Otto" else "Lily"
    last = t.rfind(hero)
    swapped = t[:last] + other + t[last + len(hero):]
    assert validate_text(swapped)["hero_consistency"] < 1.0
    dropped = t.replace(" the ", " ", 1)                  # one missing word
    assert validate_text(dropped)["well_formed"] < 1.0
    assert validate_text("The cat sat on the mat.")["well_formed"] == 0.0
    assert validate_text("He asked a unicorn if it had seen the kite.")["well_formed"] == 1.0
    assert validate_text("He asked an unicorn if it had seen the kite.")["well_formed"] == 0.0    # a/an checked
    assert validate_text("He asked a owl if it had seen the kite.")["well_formed"] == 0.0
    assert validate_text("He asked an owl if it had seen the kite.")["well_formed"] == 1.0


def test_model_like_slips_are_noticed():
    """Slips a small model makes: a boy's name called a girl, the friend given the hero's name."""
    ok = "Once upon a time, there was a kind boy named Sid. Sid had a good friend named Mia."
    assert validate_text(ok)["hero_consistency"] == validate_text(ok)["friend_consistency"] == 1.0
    wrong_kind = "Once upon a time, there was a kind girl named Sid. Sid had a good friend named Mia."
    assert validate_text(wrong_kind)["hero_consistency"] < 1.0
    self_friend = "Once upon a time, there was a kind boy named Sid. Mia was a shy girl, and she liked to run with Sid."
    assert validate_text(self_friend)["friend_consistency"] == 1.0
    same_name = "Once upon a time, there was a kind boy named Sid. Sid was a shy boy, and he liked to run with Sid."
    assert validate_text(same_name)["friend_consistency"] < 1.0


def test_unfinished_last_sentence_can_be_ignored(texts):
    cut = texts[0][: texts[0].rindex(" ", 0, len(texts[0]) - 3)]      # a sample stopped mid-sentence
    assert validate_text(cut)["well_formed"] < 1.0
    assert validate_text(cut, drop_unfinished=True)["well_formed"] == 1.0
    assert validate_texts([cut], drop_unfinished=True)["well_formed"] == 1.0


def test_bad_inputs():
    assert validate_text("")["sentences"] == 0
    with pytest.raises(ValueError, match="no texts"):
        validate_texts([])
    with pytest.raises(ValueError, match="valid:"):
        corrupt_text("Hi.", "reverse")
    with pytest.raises(TypeError):
        validate_text(None)


def test_cli_validate_json(tmp_path, capsys, texts):
    f = tmp_path / "stories.txt"
    f.write_text("\n\n".join(texts[:5] + [corrupt_text(texts[5], "shuffle_words", rate=1.0)]) + "\n", encoding="utf-8")
    assert main(["validate", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stories"] == 6 and 0.7 < out["well_formed"] < 1.0


def test_constructed_language_text_is_validated_through_english():
    c = generate_corpus("parallel", 4, seed=2)
    vel = [r["text"] for r in c.records if r["lang"] == "vel"]
    assert validate_texts(vel, lang="vel")["perfect_stories"] == 1.0
    assert validate_texts(vel)["well_formed"] == 0.0                      # not English
    assert validate_texts([corrupt_text(t, "shuffle_words", rate=1.0) for t in vel], lang="vel")["well_formed"] < 0.3
    with pytest.raises(ValueError, match="valid: en, vel, kor, tuu"):
        validate_text(vel[0], lang="xx")


def test_cli_validate_constructed_language(tmp_path, capsys):
    c = generate_corpus("parallel", 3, seed=0)
    f = tmp_path / "kor.txt"
    f.write_text("\n\n".join(r["text"] for r in c.records if r["lang"] == "kor"), encoding="utf-8")
    assert main(["validate", str(f), "--json", "--lang", "kor"]) == 0
    assert json.loads(capsys.readouterr().out)["well_formed"] == 1.0


def test_cli_validate_corpus_dir_reads_each_record_in_its_language(tmp_path, capsys):
    from workbench.corpora import write_corpus
    d = write_corpus(generate_corpus("mixed", 60, seed=3), tmp_path / "m")
    assert main(["validate", str(d), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["all"]["perfect_stories"] == 1.0 and {"en", "vel", "kor", "tuu"} <= set(out["by_lang"])
    n_stories = sum(r["domain"] == "story" for r in generate_corpus("mixed", 60, seed=3).records)
    assert out["all"]["stories"] == n_stories                                  # arithmetic and code skipped
    assert main(["validate", str(d)]) == 0 and "well_formed" in capsys.readouterr().out


def test_validate_records_grades_the_story_of_qa_records_and_names_the_domains():
    from workbench.corpora.validate import validate_records
    records = generate_corpus("qa", 20, seed=5).records
    assert all(r["domain"] == "qa" for r in records)
    out = validate_records(records)
    assert out["all"]["stories"] == 20 and out["all"]["perfect_stories"] == 1.0
    with pytest.raises(ValueError, match="domain arith, code"):
        validate_records([{"text": "1+1=2", "domain": "arith"}, {"text": "x = 1", "domain": "code"}])


@pytest.mark.parametrize("content,msg", [(b"", "empty"), (b"\xff\xfe caf\xe9\n", "not UTF-8")])
def test_cli_validate_bad_files(tmp_path, capsys, content, msg):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    assert main(["validate", str(f)]) == 2
    assert msg in capsys.readouterr().err
