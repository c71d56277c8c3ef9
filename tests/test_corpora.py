"""Corpus generation: determinism, story shape, labels a simple reader recovers, languages, domains, writing."""
import json
import math
import re
from collections import Counter

import pytest

from workbench.corpora import (KINDS, LABELS, LANGUAGES, generate_corpus, load_corpus, to_english, translate,
                               validate_texts, write_corpus)
from workbench.corpora import vocab
from workbench.corpora.languages import tokenize
from workbench.corpora.stories import PATTERNS, generate_stories


@pytest.fixture(scope="module")
def stories():
    return generate_corpus("stories", 1500, seed=0)


@pytest.fixture(scope="module")
def parallel():
    return generate_corpus("parallel", 60, seed=3)


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = write_corpus(generate_corpus("mixed", 200, seed=7), tmp_path / "a")
    b = write_corpus(generate_corpus("mixed", 200, seed=7), tmp_path / "b")
    for name in ("corpus.jsonl", "corpus.txt", "meta.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    c = generate_corpus("mixed", 200, seed=8)
    assert c.texts != load_corpus(a).texts


def test_records_carry_the_contract_fields(stories, parallel):
    for r in stories.records[:50]:
        assert {"id", "text", "lang", "domain", "feeling", "topic", "ending", "hero"} <= set(r)
        assert r["lang"] == "en" and r["domain"] == "story"
        assert r["hero"] in r["text"].split(".")[0]          # named in the first sentence
        for label, classes in LABELS.items():
            assert r[label] in classes
    for r in parallel.records:
        assert r["pair_id"] and r["spans"]
        for start, end, lang in r["spans"]:
            assert 0 <= start < end <= len(r["text"]) and lang == r["lang"]
    assert {len([r for r in parallel.records if r["pair_id"] == p]) for p in {r["pair_id"] for r in parallel.records}} \
        == {1 + len(LANGUAGES)}


def test_stories_have_tinystories_shape(stories):
    words = [len(t.split()) for t in stories.texts]
    assert 80 <= min(words) and max(words) <= 200, (min(words), max(words))
    s = stories.stats()
    assert s["distinct_ratio"] == 1.0
    assert s["vocabulary"] > 1000
    assert all('"' in t for t in stories.texts[:100])                          # some dialogue in every story


def test_vocabulary_is_curated_and_about_1500_words(stories):
    words = set(vocab.content_words())
    assert 1200 <= len(words) <= 2000
    used = {w.lower() for t in stories.texts for w in re.findall(r"[A-Za-z]+", t)}
    from workbench.corpora.grammar import SLOTS
    names = {w.lower() for values in SLOTS.values() for v in values for w in v.split()}
    literal = {w.lower() for p in PATTERNS for w in re.findall(r"[A-Za-z]+", re.sub(r"\{\w+\}", " ", p.text))}
    allowed = {w.lower() for x in words for w in re.findall(r"[A-Za-z]+", x)} | names | literal | {"an"}
    assert used <= allowed, sorted(used - allowed)[:20]


def test_labels_are_reasonably_balanced(stories):
    bal = stories.stats()["label_balance"]
    for label, shares in bal.items():
        assert min(shares.values()) >= 0.5 / len(shares), (label, shares)


def _naive_bayes_accuracy(train, test, label):
    """Multinomial naive Bayes on lower-cased words: log p(c) + sum_w log p(w|c) with add-one smoothing."""
    counts, totals, prior = {}, Counter(), Counter()
    for r in train:
        c = r[label]
        prior[c] += 1
        counts.setdefault(c, Counter()).update(re.findall(r"[a-z]+", r["text"].lower()))
    vocab_size = len(set().union(*counts.values()))
    for c in counts:
        totals[c] = sum(counts[c].values())
    hits = 0
    for r in test:
        words = re.findall(r"[a-z]+", r["text"].lower())
        scores = {c: math.log(prior[c]) + sum(math.log((counts[c][w] + 1) / (totals[c] + vocab_size)) for w in words)
                  for c in counts}
        hits += max(scores, key=scores.get) == r[label]
    return hits / len(test)


@pytest.mark.parametrize("label", sorted(LABELS))
def test_bag_of_words_recovers_each_label_well_above_chance(stories, label):
    recs = stories.records
    acc = _naive_bayes_accuracy(recs[:1000], recs[1000:1400], label)
    chance = max(Counter(r[label] for r in recs[1000:1400]).values()) / 400   # majority class
    kappa = (acc - chance) / (1 - chance)       # share of the errors of majority guessing that are avoided
    assert kappa > 0.5, (label, acc, chance)     # measured: feeling ~0.7, topic and ending ~0.99


def test_feeling_words_give_the_feeling_label(stories):
    """A rule reader: the feeling word in the 'felt ... / was ... that day' sentence names the class."""
    word_to_class = {w: c for c, ws in vocab.FEELINGS.items() for w in ws}
    rx = re.compile(r"(?:felt|was|feeling) ((?:very |so )?[a-z]+(?: and tall)?)(?: that day)?\.")
    hits = 0
    for r in stories.records[:300]:
        found = [word_to_class.get(m) for m in rx.findall(r["text"]) if m in word_to_class]
        hits += bool(found) and found[-1] == r["feeling"]
    assert hits / 300 > 0.95


def test_stories_follow_requested_labels():
    from workbench.corpora.stories import make_story
    rng = __import__("random").Random(0)
    s = make_story(rng, topic="baking", ending="bad", feeling="angry")
    assert (s.topic, s.ending, s.feeling) == ("baking", "bad", "angry")
    assert make_story(rng, ending="good").feeling in ("happy", "proud")
    with pytest.raises(ValueError, match="does not fit"):
        make_story(rng, ending="good", feeling="sad")
    with pytest.raises(ValueError, match="topics:"):
        make_story(rng, topic="space")


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError, match="valid kinds: stories, parallel, mixed"):
        generate_corpus("poems", 10)
    with pytest.raises(ValueError, match="positive integer"):
        generate_corpus("stories", 0)


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_constructed_languages_translate_back_exactly(parallel, lang):
    by_pair = {(r["pair_id"], r["lang"]): r["text"] for r in parallel.records}
    for pid in sorted({r["pair_id"] for r in parallel.records})[:40]:
        en, other = by_pair[(pid, "en")], by_pair[(pid, lang)]
        assert other != en
        assert to_english(other, lang) == en
        assert translate(en, lang) == other


def test_translation_pairs(parallel):
    from workbench.corpora import translation_pairs
    pairs = translation_pairs(parallel, "en", "tuu")
    assert len(pairs) == 60 and all(to_english(t, "tuu") == s for s, t in pairs[:5])
    with pytest.raises(ValueError, match="languages present: en, kor, tuu, vel"):
        translation_pairs(parallel, "en", "fr")
    with pytest.raises(ValueError, match="pair_id"):
        translation_pairs(generate_corpus("stories", 2))


def test_constructed_languages_differ_in_vocabulary_order_and_morphology(parallel):
    texts = {lang: " ".join(r["text"] for r in parallel.records if r["lang"] == lang) for lang in ["en", *LANGUAGES]}
    words = {lang: set(re.findall(r"[a-z]+", t)) for lang, t in texts.items()}
    for a in words:
        for b in words:
            if a < b:
                overlap = len(words[a] & words[b]) / len(words[a] | words[b])
                assert overlap < 0.1, (a, b, overlap)
    # word order: "Tom went to the park." puts the verb last (vel), first (kor), last after the place (tuu)
    from workbench.corpora.grammar import fill
    p = next(p for p in PATTERNS if p.text == "One day, {hero} and {friend} went to the {place}.")
    vals = {"hero": "Tom", "friend": "Mia", "place": "park"}
    go = {code: L.form("go", ("PAST",)) for code, L in LANGUAGES.items()}
    park = {code: L.render_words("park", (), "place") for code, L in LANGUAGES.items()}
    sent = {code: L.render_sentence(p, vals) for code, L in LANGUAGES.items()}
    assert fill(p, vals) == "One day, Tom and Mia went to the park."
    assert sent["vel"].rstrip(".").split()[-1] == go["vel"]                       # verb final (SOV)
    assert sent["kor"].split(", ")[1].split()[2] == go["kor"]        # "Tom and | went Mia to the park" (VSO)
    assert sent["tuu"].rstrip(".").split()[-1] == go["tuu"]                       # verb final, object first
    assert sent["tuu"].split(", ")[1].split()[2].startswith(park["tuu"])         # "to the park" is one word
    assert go["vel"].endswith("ta") and go["kor"].startswith("ka") and go["tuu"].endswith("ru")


def test_every_pattern_tokenizes_to_words_and_slots():
    for p in PATTERNS:
        toks = tokenize(p.text)
        assert [t.slot for t in toks if t.slot] == list(p.slots)


def test_mixed_interleaves_languages_and_domains():
    c = generate_corpus("mixed", 400, seed=1)
    s = c.stats()
    assert set(s["domains"]) == {"story", "arith", "code"}
    assert {"en", "vel", "kor", "tuu", "mix", "num", "code"} == set(s["langs"])
    firsts = [r["domain"] for r in c.records[:40]]
    assert len(set(firsts)) == 3                                                   # interleaved, not blocked
    switched = next(r for r in c.records if r["lang"] == "mix")
    assert len({lang for _, _, lang in switched["spans"]}) >= 2


def test_arithmetic_facts_are_true_and_code_runs():
    c = generate_corpus("mixed", 300, seed=2)
    for r in c.records:
        if r["domain"] == "arith":
            for a, op, b, res in re.findall(r"(\d+) ([-+*]) (\d+) = (\d+)\.", r["text"]):
                assert eval(f"{a} {op} {b}") == int(res)
        elif r["domain"] == "code":
            end = r["spans"][-2][1] if r.get("label_line") else len(r["text"])   # without "This text is code."
            compile(r["text"][:end], "<doc>", "exec")


def test_write_refuses_a_different_corpus_unless_overwrite(tmp_path):
    out = tmp_path / "c"
    write_corpus(generate_corpus("stories", 20, seed=0), out)
    before = (out / "corpus.jsonl").read_bytes()
    write_corpus(generate_corpus("stories", 20, seed=0), out)                       # same corpus: fine
    with pytest.raises(FileExistsError, match="overwrite"):
        write_corpus(generate_corpus("stories", 20, seed=1), out)
    assert (out / "corpus.jsonl").read_bytes() == before                            # nothing lost
    write_corpus(generate_corpus("stories", 20, seed=1), out, overwrite=True)
    assert (out / "corpus.jsonl").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]                      # no temp dirs left behind
    assert json.loads((out / "meta.json").read_text())["seed"] == 1


def test_write_refuses_a_dir_with_other_files_and_never_half_writes(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        write_corpus(generate_corpus("stories", 5), tmp_path / "d")
    assert (tmp_path / "d" / "notes.txt").read_text() == "mine"
    import workbench.corpora.io as io
    monkeypatch.setattr(io, "_swap_into_place", lambda tmp, out: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_corpus(generate_corpus("stories", 5), tmp_path / "e")
    assert not (tmp_path / "e").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_write_refuses_an_empty_corpus(tmp_path):
    from workbench.corpora import Corpus
    with pytest.raises(ValueError, match="empty"):
        write_corpus(Corpus([]), tmp_path / "x")


def test_generated_stories_validate(stories):
    v = validate_texts(stories.texts[:300])
    assert v["well_formed"] == 1.0 and v["hero_consistency"] == 1.0 and v["plot_complete"] == 1.0


def test_generation_is_fast():
    import time
    t = time.perf_counter()
    generate_stories(2000, seed=0)
    assert time.perf_counter() - t < 10.0     # ~0.4 s on one free core (100k stories: ~18 s); slack for busy CI


def test_kinds_are_the_documented_ones():
    assert KINDS == ("stories", "parallel", "mixed", "qa")


def test_cli_corpus_writes_and_prints_stats(tmp_path, capsys):
    from workbench.cli import main
    out = tmp_path / "c"
    assert main(["corpus", "--kind", "parallel", "--n", "5", "--seed", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    stats = json.loads(printed[:printed.rindex("}") + 1])
    assert stats["n"] == 20 and set(stats["langs"]) == {"en", "vel", "kor", "tuu"}
    assert load_corpus(out).texts == generate_corpus("parallel", 5, seed=1).texts
    assert main(["corpus", "--kind", "stories", "--n", "5", "--out", str(out)]) == 2       # different corpus
    assert "--overwrite" in capsys.readouterr().err
    assert main(["corpus", "--kind", "stories", "--n", "5", "--out", str(out), "--overwrite"]) == 0
    assert main(["corpus", "--kind", "poems", "--n", "5", "--out", str(tmp_path / "p")]) == 2
    assert "valid kinds: stories, parallel, mixed" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_files_do_not_depend_on_the_interpreter_hash_seed(tmp_path):
    """Same seed -> same bytes in fresh processes with different PYTHONHASHSEED (set/dict order never leaks)."""
    import os
    import subprocess
    import sys
    # the package shell is stubbed so that the child skips workbench/__init__ (torch): corpora need none of it
    code = ("import hashlib, importlib.util, sys, types; m = types.ModuleType('workbench'); "
            "m.__path__ = importlib.util.find_spec('workbench').submodule_search_locations; "
            "sys.modules['workbench'] = m; from workbench.corpora import generate_corpus, write_corpus; "
            "d = write_corpus(generate_corpus('mixed', 60, seed=4), sys.argv[1]); "
            "print(hashlib.sha256((d / 'corpus.jsonl').read_bytes()).hexdigest())")
    digests = []
    for hs in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hs}
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / hs)], capture_output=True, text=True,
                             check=True, env=env)
        digests.append(out.stdout.strip())
    local = write_corpus(generate_corpus("mixed", 60, seed=4), tmp_path / "here")
    assert digests[0] == digests[1] == __import__("hashlib").sha256((local / "corpus.jsonl").read_bytes()).hexdigest()
