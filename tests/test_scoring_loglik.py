"""Log-likelihood engine: lm-eval's tokenisation rules, cache reuse vs naive passes, enc-dec, truncation."""
import warnings

import numpy as np
import pytest
import torch

from workbench.scoring import Task, label_logprobs, predict
from workbench.scoring.loglik import ContextScorer


def naive_ll(model, ctx, cont):
    """Reference: one full forward over ctx+cont, no cache, no batching."""
    with torch.no_grad():
        lp = model(torch.tensor([ctx + cont])).logits[0].float().log_softmax(-1)
    return sum(lp[len(ctx) - 1 + t, c].item() for t, c in enumerate(cont))


def test_trailing_context_whitespace_moves_into_the_continuation(tiny_dense, tiny_tok):
    sc = ContextScorer(tiny_dense, tiny_tok)
    ctx_a, cont_a = sc.encode_pair("She feels ", "happy")
    ctx_b, cont_b = sc.encode_pair("She feels", " happy")
    assert (ctx_a, cont_a) == (ctx_b, cont_b)
    assert tiny_tok.convert_ids_to_tokens(cont_a)[0].startswith("Ġ")   # the space is scored with the label
    assert tiny_tok.decode(ctx_a) == "She feels"


def test_split_is_at_the_encoded_context_length(tiny_dense, tiny_tok):
    sc = ContextScorer(tiny_dense, tiny_tok)
    ctx, cont = sc.encode_pair("Lily", "s ball")            # "Lily"+"s" may merge across the boundary
    whole = tiny_tok.encode("Lilys ball")
    assert ctx + cont == whole and ctx == tiny_tok.encode("Lily")


def test_empty_context_becomes_bos(tiny_dense, tiny_tok):
    sc = ContextScorer(tiny_dense, tiny_tok)
    ctx, cont = sc.encode_pair("", " happy")
    assert ctx == [tiny_tok.bos_token_id] and cont == tiny_tok.encode(" happy")
    ctx, cont = sc.encode_pair("", tiny_tok.bos_token + " happy")   # starts with BOS: split it off
    assert ctx == [tiny_tok.bos_token_id] and cont == tiny_tok.encode(" happy")


@pytest.mark.parametrize("kind", ["dense", "moe"])
def test_cached_batched_scores_equal_naive_passes(kind, tiny_tok, tiny_dense, tiny_moe):
    model = tiny_dense if kind == "dense" else tiny_moe
    sc = ContextScorer(model, tiny_tok, batch_tokens=64, pack_tokens=4)   # several batches and packed rows
    pairs = [(c, x) for c in ["Story: Lily was sad.\nShe feels", "Tom had a boat. He", "x"]
             for x in [" happy", " very sad and tired", " y"]] + [("", " happy")]
    for (c, x), r in zip(pairs, sc.score(pairs)):
        ctx, cont = sc.encode_pair(c, x)
        assert r.total == pytest.approx(naive_ll(model, ctx, cont), abs=1e-5)
        assert len(r.logprobs) == len(cont) and r.total == pytest.approx(float(r.logprobs.sum()), abs=1e-5)


def _tiny_t5(tok):
    from transformers import T5Config, T5ForConditionalGeneration
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                   decoder_start_token_id=tok.pad_token_id, pad_token_id=tok.pad_token_id,
                   eos_token_id=tok.eos_token_id)
    return T5ForConditionalGeneration(cfg).eval()


def test_encoder_decoder_path_matches_a_naive_decoder_pass(tiny_tok):
    t5 = _tiny_t5(tiny_tok)
    sc = ContextScorer(t5, tiny_tok)
    assert sc.seq2seq
    pairs = [("Lily was sad. She feels", " happy"), ("Lily was sad. She feels", " very sad"),
             ("Tom had a boat.", " y z")]
    for (c, x), r in zip(pairs, sc.score(pairs)):
        ctx, cont = tiny_tok.encode(c), tiny_tok.encode(x, add_special_tokens=False)
        assert list(r.token_ids) == cont                       # no EOS scored on the label
        with torch.no_grad():
            dec = torch.tensor([[t5.config.decoder_start_token_id] + cont[:-1]])
            lp = t5(input_ids=torch.tensor([ctx]), decoder_input_ids=dec).logits[0].log_softmax(-1)
        assert r.total == pytest.approx(sum(lp[t, c].item() for t, c in enumerate(cont)), abs=1e-5)


def test_label_logprobs_on_an_encoder_decoder_model(tiny_tok):
    task = Task("t", ("a dog", "a doll"), (0, 1), ("animals", "toys"), template="{text} is about")
    rec = label_logprobs(_tiny_t5(tiny_tok), tiny_tok, task)
    assert rec.cond.shape == (2, 2) and np.isfinite(rec.cond).all() and np.isfinite(rec.channel).all()
    assert predict(rec, "dcpmi").shape == (2,)


def test_premise_terms_are_computed_once_per_label(tiny_dense, tiny_tok, monkeypatch):
    task = Task("t", tuple(f"story {i}" for i in range(6)), (0, 1) * 3, ("good", "bad"),
                template="{text}. It ends", domain_premise="It ends")
    seen = []
    orig = ContextScorer.score_tokens
    monkeypatch.setattr(ContextScorer, "score_tokens", lambda self, enc: seen.extend(enc) or orig(self, enc))
    rec = label_logprobs(tiny_dense, tiny_tok, task, channel=False)
    N, V, C = 6, 2, len(task.content_free)
    assert len(seen) == N * V + 3 * V + C * V                 # not N * V per premise
    sc = ContextScorer(tiny_dense, tiny_tok)
    ctx, cont = sc.encode_pair("It ends", " bad")
    assert rec.domain[1] == pytest.approx(naive_ll(tiny_dense, ctx, cont), abs=1e-5)


def test_examples_longer_than_the_context_are_left_truncated_with_a_warning(tiny_tok):
    from workbench.testing import tiny_model
    model = tiny_model("dense", tokenizer=tiny_tok, max_position_embeddings=16)
    sc = ContextScorer(model, tiny_tok)
    long_ctx = "Lily had a red ball and a blue boat and a big dog."
    with pytest.warns(UserWarning, match="truncated from the left"):
        r = sc.score([(long_ctx, " happy")])[0]
    ctx, cont = sc.encode_pair(long_ctx, " happy")
    kept = (ctx + cont)[-17:][:-len(cont)]                    # lm-eval: (ctx+cont)[-(max_length+1):][:-1]
    assert r.truncated and r.total == pytest.approx(naive_ll(model, kept, cont), abs=1e-5)


def test_labels_longer_than_the_context_window_are_rejected(tiny_tok):
    from workbench.testing import tiny_model
    model = tiny_model("dense", tokenizer=tiny_tok, max_position_embeddings=8)
    with pytest.raises(ValueError, match="longer than the model's context window"):
        ContextScorer(model, tiny_tok).score([("x", " a very long label that goes on and on")])


def test_first_token_collisions_warn(tiny_dense, tiny_tok):
    task = Task("t", ("a",), (0,), ("sadness", "sad"), template="{text} feels")
    with pytest.warns(UserWarning, match="share their first token"):
        label_logprobs(tiny_dense, tiny_tok, task, channel=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        label_logprobs(tiny_dense, tiny_tok, Task("t", ("a",), (0,), ("happy", "xyz"), template="{text} feels"),
                       channel=False)


def test_record_keeps_tokens_for_the_surprisal_view(tiny_dense, tiny_tok):
    task = Task("t", ("Lily was sad.",), (0,), ("happy", "sad"), template="{text} She feels")
    rec = label_logprobs(tiny_dense, tiny_tok, task, channel=False)
    assert rec.cont_tokens[0][0][0] == "Ġhappy" or rec.cont_tokens[0][0][0].startswith("Ġ")
    assert rec.cont_logprobs[0][1].sum() == pytest.approx(rec.cond[0, 1], abs=1e-5)
    assert rec.n_tokens[0, 0] == len(rec.cont_tokens[0][0])


MERGE_TEXTS = ["Once upon a time there was a cat.", "Once upon a time there was a dog.", "The cat was happy."] * 8


def test_a_continuation_merging_with_its_context_warns_and_can_be_scored_whole():
    from workbench.scoring.loglik import TokenMergeWarning
    from workbench.testing import tiny_model
    from workbench.tokenizer import train_tokenizer
    tok = train_tokenizer(MERGE_TEXTS, vocab_size=280, min_frequency=1)
    model = tiny_model("dense", tokenizer=tok)
    context, continuation = "Once upon a ti", "me there was a cat"
    whole, ctx_ids = tok.encode(context + continuation), tok.encode(context)
    assert whole[:len(ctx_ids)] != ctx_ids                       # " time" is one token: the boundary merges
    with pytest.warns(TokenMergeWarning, match="'Once upon a ti' \\+ 'me there was a cat'.*split_rule='separate'"):
        ctx, cont = ContextScorer(model, tok).encode_pair(context, continuation)
    assert ctx == ctx_ids and tok.decode(cont) != continuation   # lm-eval's split loses part of it
    sep = ContextScorer(model, tok, split_rule="separate")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ctx, cont = sep.encode_pair(context, continuation)
        r = sep.score([(context, continuation)])[0]
    assert ctx == ctx_ids and tok.decode(cont) == continuation
    assert r.token_ids == tuple(cont) and r.total == pytest.approx(naive_ll(model, ctx, cont), abs=1e-5)

    task = Task("merge", ("ti",), (0,), ("me there was a cat", "me there was a dog"),
                template="Once upon a {text}", target_delimiter="")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        label_logprobs(model, tok, task, channel=False)
    merges = [w for w in caught if issubclass(w.category, TokenMergeWarning)]
    assert len(merges) == 1 and "task 'merge'" in str(merges[0].message)       # once per task, naming it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = label_logprobs(model, tok, task, channel=False, split_rule="separate")
    assert not [w for w in caught if issubclass(w.category, TokenMergeWarning)]
    assert list(rec.n_tokens[0]) == [len(tok.encode(v, add_special_tokens=False)) for _, v in task.choices]
    with pytest.raises(ValueError, match="split_rule"):
        ContextScorer(model, tok, split_rule="nope")
