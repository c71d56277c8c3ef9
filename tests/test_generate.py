"""`workbench generate`: its output reads back as one story per sample, and the context window is respected
loudly (a too-long prompt is cut from the left, a continuation cut by the context is reported)."""
import json
import warnings

import pytest

from workbench.cli import main
from workbench.config import DEFAULT_MODELS
from workbench.corpora import read_texts, split_txt
from workbench.testing import tiny_model
from workbench.train.generate import ContextWarning, generate

LONG_PROMPT = "Once upon a time, there was a little girl named Lily. " * 40


def test_generate_output_validates_as_one_story_per_sample(tmp_path, capsys):
    assert (DEFAULT_MODELS["tiny-dense"] / "config.json").exists(), "the default model tiny-dense ships in data/"
    n = 4
    assert main(["generate", "--n", str(n), "--seed", "0", "--max-new-tokens", "48"]) == 0
    out = tmp_path / "samples.txt"
    out.write_text(capsys.readouterr().out)
    texts = read_texts(out)
    assert len(texts) == n and all(t.startswith("Once upon a time") for t in texts)
    assert not any("--- sample" in t for t in texts)
    assert main(["validate", str(out), "--json", "--drop-unfinished"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["stories"] == n
    assert result["well_formed"] > 0.8          # was 0.46: each header line counted as an empty story


def test_split_txt_reads_sample_headers_as_separators():
    text = "--- sample 1\nA cat sat.\n\nIt was red.\n\n--- sample 2\nA dog ran.\n--- sample 3  \nEnd.\n"
    assert split_txt(text) == ["A cat sat.\n\nIt was red.", "A dog ran.", "End."]
    assert split_txt("one\ntwo\n") == ["one", "two"]                    # other files read as before


@pytest.fixture
def spy(tiny_tok):
    """A tiny model (context 128) whose `generate` records its input ids and max_new_tokens."""
    model = tiny_model("dense", tokenizer=tiny_tok)
    calls, real = [], model.generate

    def record(x, **kw):
        calls.append((x[0].tolist(), kw["max_new_tokens"]))
        return real(x, **kw)
    model.generate = record
    return model, calls


def test_a_prompt_longer_than_the_context_is_cut_from_the_left(spy, tiny_tok):
    model, calls = spy
    full = tiny_tok(LONG_PROMPT)["input_ids"]
    assert len(full) > 128
    with pytest.warns(ContextWarning, match="kept its last 117 tokens after BOS"):
        generate(model, tiny_tok, LONG_PROMPT, temperature=0, max_new_tokens=10)
    ids, new = calls[-1]
    assert len(ids) == 118 and new == 10                                # room left for every new token
    assert ids[0] == tiny_tok.bos_token_id and ids[1:] == full[-117:]
    with pytest.warns(ContextWarning) as got:                            # half the context stays the prompt
        generate(model, tiny_tok, LONG_PROMPT, temperature=0, max_new_tokens=500)
    said = " | ".join(str(w.message) for w in got)
    assert "kept its last 63 tokens" in said and "samples stop after 64 new tokens" in said
    ids, new = calls[-1]
    assert len(ids) == 64 and new == 64


def test_a_continuation_cut_by_the_context_is_reported(spy, tiny_tok):
    model, calls = spy
    prompt = tiny_tok.decode(tiny_tok(LONG_PROMPT)["input_ids"][:100])
    with pytest.warns(ContextWarning, match="samples stop after"):
        generate(model, tiny_tok, prompt, temperature=0, max_new_tokens=64)
    ids, new = calls[-1]
    assert len(ids) + new == 128 and new < 64
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContextWarning)                   # fits: no warning
        generate(model, tiny_tok, "Once upon a time", temperature=0, max_new_tokens=10)
    assert calls[-1][1] == 10


def test_cli_reports_context_cuts_on_stderr(tiny_tok, tmp_path, capsys):
    model = tiny_model("dense", tokenizer=tiny_tok)
    model.save_pretrained(tmp_path)
    tiny_tok.save_pretrained(tmp_path)
    assert main(["generate", "--model", str(tmp_path), "--prompt", LONG_PROMPT, "--n", "1",
                 "--max-new-tokens", "8", "--temperature", "0"]) == 0
    cap = capsys.readouterr()
    assert "workbench generate: warning:" in cap.err and "kept its last" in cap.err
    assert cap.out.startswith("--- sample 1\n")
    assert main(["generate", "--model", str(tmp_path), "--prompt", "Once", "--n", "1",
                 "--max-new-tokens", "500", "--temperature", "0"]) == 0
    assert "samples stop after" in capsys.readouterr().err


def test_greedy_decoding_passes_no_sampling_flags(tiny_tok):
    model = tiny_model("dense", tokenizer=tiny_tok)
    seen, real = [], model.generate

    def record(x, **kw):
        seen.append(kw)
        return real(x, **kw)
    model.generate = record
    generate(model, tiny_tok, "Once", temperature=0, max_new_tokens=2, top_k=5)
    assert "top_k" not in seen[-1] and "temperature" not in seen[-1]
    generate(model, tiny_tok, "Once", temperature=0.8, max_new_tokens=2)
    assert seen[-1]["top_k"] == 0 and seen[-1]["temperature"] == 0.8


def test_cli_warnings_are_one_line_and_transformers_is_quiet(tiny_tok, tmp_path, capsys):
    from transformers.utils import logging as hf_logging
    before = (warnings.showwarning, hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled())
    model = tiny_model("dense", tokenizer=tiny_tok)
    model.resize_token_embeddings(len(tiny_tok) + 64)                   # padded rows: a warning, not an error
    model.save_pretrained(tmp_path)
    tiny_tok.save_pretrained(tmp_path)
    capsys.readouterr()
    assert main(["generate", "--model", str(tmp_path), "--prompt", "Once", "--n", "1",
                 "--max-new-tokens", "4", "--temperature", "0"]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("workbench generate: warning: ") for ln in lines), err
    assert "embedding rows" in err and "UserWarning" not in err and "Loading weights" not in err
    assert "generation flags" not in err
    assert (warnings.showwarning, hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()) == before

