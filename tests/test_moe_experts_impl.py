"""The grouped-GEMM experts (transformers' grouped_mm, the default on CUDA) train exactly as the per-expert loop:
same losses, routing statistics and weights on a small model (CPU, float32)."""
import numpy as np
import pytest

from workbench.train import train


def _run(tok, texts, impl):
    return train("moe-nano", texts, tokenizer=tok, steps=5, batch_size=4, seq_len=32, warmup=1, eval_every=0,
                 sample_every=0, seed=0, fast_path=False, experts_implementation=impl)


def test_grouped_mm_experts_train_like_the_eager_loop(tok, texts):
    eager, grouped = _run(tok, texts, "eager"), _run(tok, texts, "grouped_mm")
    assert grouped.model.get_experts_implementation() == {"": "grouped_mm"}
    for col in ("loss", "aux_loss", "z_loss"):
        assert grouped.history[col].tolist() == pytest.approx(eager.history[col].tolist(), rel=1e-4)
    assert np.allclose(np.stack(grouped.history.expert_load), np.stack(eager.history.expert_load), atol=1e-6)
    a, b = eager.model.state_dict(), grouped.model.state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4


def test_a_bad_experts_implementation_is_refused(tok, texts):
    with pytest.raises(ValueError, match="experts_implementation must be 'eager', 'grouped_mm'"):
        train("moe-nano", texts, tokenizer=tok, steps=1, experts_implementation="fast")
