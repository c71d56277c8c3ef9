"""The validator: generated stories score ~1, corrupted ones clearly lower; the `workbench validate` command."""
import json

import pytest

from workbench.cli import main
from workbench.corpora import generate_corpus, validate_text, validate_texts
from workbench.corpora.validate import CORRUPTIONS, corrupt_text


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


def test_cli_validate_constructed_language(tmp_path, capsys):
    c = generate_corpus("parallel", 3, seed=0)
    f = tmp_path / "kor.txt"
    f.write_text("\n\n".join(r["text"] for r in c.records if r["lang"] == "kor"), encoding="utf-8")
    assert main(["validate", str(f), "--json", "--lang", "kor"]) == 0
    assert json.loads(capsys.readouterr().out)["well_formed"] == 1.0


@pytest.mark.parametrize("content,msg", [(b"", "empty"), (b"\xff\xfe caf\xe9\n", "not UTF-8")])
def test_cli_validate_bad_files(tmp_path, capsys, content, msg):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    assert main(["validate", str(f)]) == 2
    assert msg in capsys.readouterr().err
