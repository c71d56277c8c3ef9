"""Expert pruning by routing share: the least-used experts go, the router loses their rows, tokens that never
chose them are routed exactly as before, the result is a plain transformers model; recovery fine-tuning
lowers the pruned model's loss."""
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from workbench.compress import expert_shares, prune_experts, recover
from workbench.compress.measure import val_loss
from workbench.testing import tiny_model, word_stories

TEXTS = word_stories(12, seed=4)


@pytest.fixture(scope="module")
def moe(tiny_tok):
    return tiny_model("moe", seed=2, tokenizer=tiny_tok, num_local_experts=6, num_experts_per_tok=2)


def test_shares_are_the_routers_top_k_counts(moe, tiny_tok):
    shares = expert_shares(moe, tiny_tok, TEXTS)
    assert shares.shape == (2, 6) and np.allclose(shares.sum(1), 1.0)
    ids = torch.tensor([tiny_tok(TEXTS[0], add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logits = moe(input_ids=ids, output_router_logits=True).router_logits[1]
    one = np.bincount(logits.topk(2, -1).indices.flatten().numpy(), minlength=6)
    assert np.allclose(expert_shares(moe, tiny_tok, TEXTS[:1])[1], one / one.sum())


def test_pruning_removes_the_least_used_experts_and_keeps_the_rest_exact(moe, tiny_tok, tmp_path):
    shares = expert_shares(moe, tiny_tok, TEXTS)
    new, rec = prune_experts(moe, 1 / 3, TEXTS, tiny_tok)
    assert new.config.num_local_experts == 4 and rec.detail["experts"] == [6, 4]
    for layer, removed in enumerate(rec.detail["removed"]):
        assert sorted(removed) == sorted(np.argsort(shares[layer], kind="stable")[:2].tolist())
    per_expert = sum(p[0].numel() for n, p in moe.model.layers[0].mlp.experts.named_parameters())
    router_row = moe.model.layers[0].mlp.gate.weight.shape[1]
    assert rec.params_before - rec.params_after == 2 * 2 * (per_expert + router_row)
    # layer 0 on the same hidden states: tokens whose top-2 avoided the removed experts are unchanged
    h = torch.randn(1, 9, moe.config.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        old_out, new_out = moe.model.layers[0].mlp(h), new.model.layers[0].mlp(h)
        old_out = old_out[0] if isinstance(old_out, tuple) else old_out
        new_out = new_out[0] if isinstance(new_out, tuple) else new_out
        chosen = moe.model.layers[0].mlp.gate.weight @ h[0].T           # (E, T) router logits
    top = chosen.T.topk(2, -1).indices
    untouched = ~torch.isin(top, torch.tensor(rec.detail["removed"][0])).any(-1)
    assert untouched.any() and (~untouched).any()
    assert torch.allclose(old_out[0][untouched], new_out[0][untouched], atol=1e-5)
    assert not torch.allclose(old_out[0][~untouched], new_out[0][~untouched], atol=1e-5)
    new.save_pretrained(tmp_path)
    back = AutoModelForCausalLM.from_pretrained(tmp_path, trust_remote_code=False)
    assert back.config.num_local_experts == 4
    ids = torch.tensor([tiny_tok(TEXTS[1])["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(back(input_ids=ids).logits, new(input_ids=ids).logits, atol=1e-5)


def test_bad_requests_say_what_would_work(moe, tiny_tok, tiny_dense):
    with pytest.raises(ValueError, match="fewer than the 2 each token is routed to.*up to 0.67"):
        prune_experts(moe, 0.8, TEXTS, tiny_tok)
    with pytest.raises(ValueError, match="Mixtral-layout MoE.*prune_mlp"):
        prune_experts(tiny_dense, 0.5, TEXTS, tiny_tok)
    with pytest.raises(ValueError, match="calibration texts"):
        prune_experts(moe, 0.5, [" "], tiny_tok)


def test_recovery_fine_tuning_lowers_the_pruned_models_loss(moe, tiny_tok):
    pruned, _ = prune_experts(moe, 0.5, TEXTS, tiny_tok)
    before = val_loss(pruned, tiny_tok, TEXTS[:4])
    result = recover(pruned, tiny_tok, TEXTS, steps=15, lr=3e-3, batch_size=4, seq_len=32, seed=0)
    assert val_loss(result.model, tiny_tok, TEXTS[:4]) < before - 0.1
    assert result.model.config.num_local_experts == 3


def test_magnitude_pruned_zeros_stay_zero_through_recovery(tiny_tok):
    from workbench.compress import magnitude_prune, sparsity
    dense = tiny_model("dense", seed=1, tokenizer=tiny_tok)
    pruned, _ = magnitude_prune(dense, 0.5)
    zeros = {n: (p == 0) for n, p in pruned.named_parameters() if p.dim() >= 2 and (p == 0).any()}
    before = {n: p.detach().clone() for n, p in pruned.named_parameters()}
    result = recover(pruned, tiny_tok, TEXTS, steps=5, lr=1e-2, batch_size=4, seq_len=32, seed=0)
    after = dict(result.model.named_parameters())
    assert zeros and all((after[n][z] == 0).all() for n, z in zeros.items())
    assert abs(sparsity(result.model)["sparsity"] - 0.5) < 0.01
    assert all((after[n][~z] != before[n][~z]).any() for n, z in zeros.items())     # the rest did train
