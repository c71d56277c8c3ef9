"""From-scratch attention scoring functions: formulas, masking, and that brief training solves the copy task."""
import math

import pytest
import torch

from workbench.teach import attention_scoring as T


def test_scores_follow_their_formulas():
    torch.manual_seed(0)
    q, k = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    dot = q @ k.transpose(1, 2)
    torch.testing.assert_close(T.Score("dot", 8)(q, k), dot)
    torch.testing.assert_close(T.Score("scaled_dot", 8)(q, k), dot / math.sqrt(8))
    cos = T.Score("cosine", 8)
    assert cos(q, k).abs().max() <= cos.log_scale.exp() + 1e-5          # bounded by its scale
    gen = T.Score("general", 8)
    torch.testing.assert_close(gen(q, k), q @ gen.w.weight.T @ k.transpose(1, 2) * 0 + q @ gen.w(k).transpose(1, 2))
    assert T.Score("additive", 8)(q, k).shape == (2, 5, 5)
    with pytest.raises(ValueError, match="unknown score"):
        T.Score("euclid", 8)


@pytest.mark.parametrize("name", T.SCORERS)
def test_attention_is_causal_and_row_stochastic(name):
    model = T.TinyAttention(name, vocab=10, seq_len=9)
    _, alpha = model(T.copy_batch(torch.Generator().manual_seed(0), 4, 4, 10))
    torch.testing.assert_close(alpha.sum(-1), torch.ones(4, 9))
    assert torch.all(alpha.triu(1) == 0)


def test_brief_training_learns_to_look_back():
    runs = T.compare_scorers(("scaled_dot", "cosine"), steps=60, n=4, vocab=8, batch=32)
    for r in runs.values():
        assert r.losses[-1] < 0.5 * r.losses[0]
        assert T.copy_offset_mass(r) > 0.5          # uniform attention would give about 1/(n + 1)
        assert r.attention.shape == (9, 9) and len(r.tokens) == 9
