"""workbench.tokenizer on generated corpora: round trip, save/load without workbench, bad inputs, the CLI."""
import json
import subprocess
import sys

import pytest

from workbench.cli import main
from workbench.corpora import generate_corpus, write_corpus
from workbench.tokenizer import BOS, EOS, PAD, load_tokenizer, save_tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus("mixed", 150, seed=0)


@pytest.fixture(scope="module")
def tok(corpus):
    return train_tokenizer(corpus.texts, vocab_size=512)


def test_round_trip_on_every_language_and_unseen_text(tok, corpus):
    unseen = ["Zoë ate 12 crêpes 🍓 — très bien!", "  two  spaces\nand\ttabs ", "x = y ** 2"]
    samples = corpus.texts[:40] + unseen
    for text in samples:
        ids = tok(text)["input_ids"]
        assert tok.decode(ids) == text
    assert len(tok) == 512


def test_special_tokens_and_merges(tok, corpus):
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == (PAD, BOS, EOS)
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    text = next(r["text"] for r in corpus.records if r["lang"] == "en")
    assert len(tok(text)["input_ids"]) < 0.7 * len(text.encode("utf-8"))   # merges learned (bytes alone: 1.0)


@pytest.mark.slow   # a fresh interpreter importing transformers: ~3-8 s
def test_saved_tokenizer_loads_with_plain_autotokenizer(tok, tmp_path, corpus):
    save_tokenizer(tok, tmp_path / "tok")
    code = ("import json, sys; from transformers import AutoTokenizer; "
            f"t = AutoTokenizer.from_pretrained({str(tmp_path / 'tok')!r}); "
            "text = sys.stdin.read(); "
            "print(json.dumps([t(text)['input_ids'], t.decode(t(text)['input_ids']), 'workbench' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], input=corpus.texts[3], capture_output=True, text=True,
                         check=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    ids, decoded, imported = json.loads(out.stdout)
    assert ids == tok(corpus.texts[3])["input_ids"] and decoded == corpus.texts[3] and not imported
    assert load_tokenizer(tmp_path / "tok")(corpus.texts[3])["input_ids"] == ids


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="empty corpus"):
        train_tokenizer([], vocab_size=300)
    with pytest.raises(ValueError, match="empty corpus"):
        train_tokenizer(["", "   "], vocab_size=300)
    with pytest.raises(ValueError, match="too small for vocab_size"):
        train_tokenizer(["a tiny corpus"], vocab_size=5000)
    with pytest.raises(ValueError, match="below"):
        train_tokenizer(["abc"], vocab_size=100)
    with pytest.raises(FileNotFoundError, match="workbench tokenizer"):
        load_tokenizer(tmp_path)


def test_cli_trains_on_a_corpus_dir(tmp_path, capsys, corpus):
    d = write_corpus(corpus, tmp_path / "c")
    assert main(["tokenizer", "--corpus", str(d), "--vocab-size", "400", "--out", str(tmp_path / "tok")]) == 0
    assert "characters/token" in capsys.readouterr().out
    t = load_tokenizer(tmp_path / "tok")
    assert len(t) == 400 and t.decode(t(corpus.texts[0])["input_ids"]) == corpus.texts[0]


@pytest.mark.parametrize("content,msg", [(b"", "empty"), (b"\xc3\x28 bad utf8", "not UTF-8"),
                                         (b"just a few words", "too small for vocab_size")])
def test_cli_bad_corpus_files(tmp_path, capsys, content, msg):
    f = tmp_path / "c.txt"
    f.write_bytes(content)
    assert main(["tokenizer", "--corpus", str(f), "--vocab-size", "2000", "--out", str(tmp_path / "t")]) == 2
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
