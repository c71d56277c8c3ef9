"""Attention records: equal to transformers' output_attentions, row-stochastic, causal, GQA, generation, bad input."""
import numpy as np
import pytest
import torch

from workbench.probes import attention as A
from workbench.probes import heads as H
from workbench.testing import tiny_model

TEXT = "Once upon a time, there was a little girl named Lily."


def _hf_attentions(model, ids):
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_attentions=True)
    return torch.stack([a[0] for a in out.attentions]).numpy()


@pytest.mark.parametrize("kind", ["dense", "moe"])
def test_weights_equal_transformers_output_attentions(kind, tiny_tok):
    model = tiny_model(kind, tokenizer=tiny_tok)
    rec = A.attention_record(model, tiny_tok, TEXT)
    np.testing.assert_allclose(rec.weights, _hf_attentions(model, rec.token_ids.tolist()), atol=1e-6)
    assert rec.weights.shape == (2, 4, len(rec.tokens), len(rec.tokens))
    assert rec.model_type == ("mixtral" if kind == "moe" else "llama")


def test_rows_sum_to_one_and_respect_causal_mask(tiny_dense, tiny_tok):
    w = A.attention_record(tiny_dense, tiny_tok, TEXT).weights
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(np.ones(w.shape[-2:]), 1)[None, None] * w == 0)


def test_gqa_gives_one_map_per_query_head(tiny_tok):
    model = tiny_model("dense", tokenizer=tiny_tok, num_key_value_heads=2)
    rec = A.attention_record(model, tiny_tok, TEXT)
    assert rec.n_heads == 4 and rec.n_kv_heads == 2
    np.testing.assert_allclose(rec.weights, _hf_attentions(model, rec.token_ids.tolist()), atol=1e-6)


def test_switches_to_eager_and_back(tiny_tok):
    model = tiny_model("dense", tokenizer=tiny_tok, attn_implementation="sdpa")
    rec = A.attention_record(model, tiny_tok, TEXT)
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        model.set_attn_implementation("eager")
        ref = _hf_attentions(model, rec.token_ids.tolist())
    np.testing.assert_allclose(rec.weights, ref, atol=1e-6)


def test_generated_tokens_attention_equals_generate_steps(tiny_tok):
    model = A.sharpen(tiny_model("dense", tokenizer=tiny_tok))
    rec = A.generation_record(model, tiny_tok, "Once upon a time", max_new_tokens=4)
    assert rec.n_generated == 4 and rec.n_tokens == rec.n_prompt + 4
    x = torch.tensor([rec.token_ids[:rec.n_prompt].tolist()])
    with torch.no_grad():
        g = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=4, do_sample=False,
                           output_attentions=True, return_dict_in_generate=True, pad_token_id=tiny_tok.pad_token_id)
    assert g.sequences[0].tolist() == rec.token_ids.tolist()
    for step in range(1, 4):   # step s: the query is token n_prompt + s - 1 (the one fed at that step)
        q = rec.n_prompt + step - 1
        for layer, att in enumerate(g.attentions[step]):
            np.testing.assert_allclose(rec.weights[layer, :, q, :q + 1], att[0, :, -1].numpy(), atol=1e-5)


def test_empty_text_is_a_clear_error(tiny_dense, tiny_tok):
    with pytest.raises(ValueError, match="empty"):
        A.attention_record(tiny_dense, tiny_tok, "   ")


def test_too_long_text_is_truncated_with_visible_warning(tiny_dense, tiny_tok):
    with pytest.warns(A.TruncationWarning):
        rec = A.attention_record(tiny_dense, tiny_tok, "Lily and Max " * 100)
    assert rec.n_tokens == tiny_dense.config.max_position_embeddings
    assert any("only the first" in w for w in rec.warnings)


def test_byte_tokens_are_shown_as_real_bytes(tiny_dense, tiny_tok):
    rec = A.attention_record(tiny_dense, tiny_tok, "é")
    assert rec.tokens[1:] == ("<0xC3>", "<0xA9>")
    assert any("raw bytes" in w for w in rec.warnings)


def test_model_without_attention_outputs(tiny_dense, tiny_tok):
    class NoAttention(torch.nn.Module):
        config = tiny_dense.config

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, **kw):
            return type("Out", (), {"attentions": None})()

    with pytest.raises(A.AttentionUnavailable, match="eager"):
        A.attention_record(NoAttention(), tiny_tok, TEXT)


def test_layer_and_head_out_of_range(tiny_dense, tiny_tok):
    rec = A.attention_record(tiny_dense, tiny_tok, TEXT)
    with pytest.raises(IndexError, match="layers 0..1"):
        rec.head(2, 0)
    with pytest.raises(IndexError, match="heads 0..3"):
        rec.head(0, 4)


# ----------------------------------------------------------------------------- head summaries

def _stack(*maps):
    return np.stack([np.stack(maps)])         # (1 layer, n heads, T, T)


def test_head_scores_on_constructed_patterns():
    t = 6
    prev = np.eye(t, k=-1)
    prev[0, 0] = 1.0
    sink = np.zeros((t, t))
    sink[:, 0] = 1.0
    uniform = np.tril(np.ones((t, t)))
    uniform /= uniform.sum(-1, keepdims=True)
    w = _stack(prev, sink, uniform)
    np.testing.assert_allclose(H.prev_token_score(w)[0], [1.0, 0.2, np.mean(1 / np.arange(2, t + 1))])
    np.testing.assert_allclose(H.sink_score(w)[0], [0.2, 1.0, np.mean(1 / np.arange(2, t + 1))])
    np.testing.assert_allclose(H.entropy(w, normalize=True)[0], [0.0, 0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(H.mean_distance(w)[0][:2], [1.0, np.mean(np.arange(1, t))])


def test_induction_score_on_constructed_pattern():
    period, offset = 3, 1
    t = offset + 2 * period
    ind = np.zeros((t, t))
    ind[np.arange(t), 0] = 1.0                           # everything on BOS ...
    for q in range(offset + period, t):                 # ... except repeat queries, on the token after the copy
        ind[q] = 0
        ind[q, q - period + 1] = 1.0
    w = _stack(ind, np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None])
    s = H.induction_score(w, period, offset)[0]
    assert s[0] == pytest.approx(1.0) and s[1] < 0.3


def test_head_summary_on_a_model_ranks_heads(tiny_tok):
    model = A.sharpen(tiny_model("dense", tokenizer=tiny_tok))
    rec = A.attention_record(model, tiny_tok, TEXT)
    summary = H.head_summary(rec, H.induction_record(model, tiny_tok, period=8))
    top = summary.top("prev_token", k=8)
    assert [s for *_, s in top] == sorted((s for *_, s in top), reverse=True)
    assert summary.table().shape == (8, 2 + len(H.SCORES))
    assert np.all((summary.induction >= 0) & (summary.induction <= 1))
    with pytest.raises(ValueError, match="unknown head score"):
        summary.score("nope")
