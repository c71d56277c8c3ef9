"""Router losses in four conventions, z-loss, Expert Output Masking and emulated Gating Dropout."""
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func
from transformers.models.switch_transformers.modeling_switch_transformers import router_z_loss_func

from workbench import moe
from workbench.testing import tiny_model


def _logits(seed=0, layers=3, tokens=40, experts=8):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(tokens, experts, generator=g) * 2 for _ in range(layers))


def _by_hand(logits, k, convention):
    """Each convention written out with explicit loops over tokens (the test's own reading of the papers)."""
    vals = []
    for z in logits:
        p = torch.softmax(z, -1).numpy()
        T, E = p.shape
        order = np.argsort(-p, axis=1)
        P = p.mean(0)
        f1 = np.array([sum(order[t, 0] == e for t in range(T)) / T for e in range(E)])
        fk = np.array([sum(e in order[t, :k] for t in range(T)) / T for e in range(E)])
        vals.append({"switch": E * (f1 * P).sum(), "gshard": E * (f1 * P).sum(),
                     "deepseek": (E / k) * (fk * P).sum(), "hf": E * (fk * P).sum()}[convention])
    return np.array(vals)


@pytest.mark.parametrize("convention", ["switch", "gshard", "deepseek", "hf"])
def test_each_convention_equals_its_formula(convention):
    logits = _logits()
    per = moe.load_balance_loss(logits, 2, convention, per_layer=True).numpy()
    np.testing.assert_allclose(per, _by_hand(logits, 2, convention), rtol=1e-5)
    if convention != "hf":
        assert float(moe.load_balance_loss(logits, 2, convention)) == pytest.approx(per.mean(), rel=1e-6)


def test_hf_convention_is_transformers_own_loss_pooled_over_layers():
    logits = _logits(seed=1)
    ours = moe.load_balance_loss(logits, 2, "hf")
    assert torch.allclose(ours, load_balancing_loss_func(logits, 8, 2))
    # pooled over layers: not the mean of the per-layer values in general
    pooled_by_hand = 8 * (np.mean([_fk(z, 2) for z in logits], 0) * np.mean([torch.softmax(z, -1).mean(0).numpy()
                                                                             for z in logits], 0)).sum()
    assert float(ours) == pytest.approx(pooled_by_hand, rel=1e-5)
    mask = torch.ones(4, 10)
    mask[1, 6:] = 0
    assert torch.allclose(moe.load_balance_loss(logits, 2, "hf", attention_mask=mask),
                          load_balancing_loss_func(logits, 8, 2, mask))


def _fk(z, k):
    idx = torch.softmax(z, -1).topk(k, -1).indices
    return torch.zeros_like(z).scatter_(1, idx, 1.0).mean(0).numpy()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_uniform_routing_values(k):
    logits = tuple(torch.zeros(20, 6) for _ in range(2))        # p = 1/E for every token
    for conv in moe.CONVENTIONS:
        assert float(moe.load_balance_loss(logits, k, conv)) == pytest.approx(moe.uniform_value(conv, k))
    assert moe.uniform_value("hf", k) == k
    assert float(moe.z_loss(logits)) == pytest.approx(np.log(6) ** 2)


def test_z_loss_matches_switch_transformers():
    logits = _logits(seed=2)
    ref = router_z_loss_func(torch.stack(logits))                 # (layers as groups, tokens, experts)
    assert float(moe.z_loss(logits)) == pytest.approx(float(ref), rel=1e-6)


def test_router_losses_convention_and_errors(tiny_moe):
    logits = _logits(layers=2, experts=4)
    out = moe.router_losses(logits, tiny_moe.config, convention="switch")
    assert float(out["aux"]) == pytest.approx(float(moe.load_balance_loss(logits, 2, "switch")))
    assert float(moe.router_losses(logits, tiny_moe.config)["aux"]) == pytest.approx(
        float(load_balancing_loss_func(logits, 4, 2)))
    with pytest.raises(ValueError, match="convention"):
        moe.router_losses(logits, tiny_moe.config, convention="nope")
    with pytest.raises(ValueError, match="experts"):
        moe.router_losses(_logits(experts=8), tiny_moe.config)


def test_aux_loss_has_gradient():
    z = torch.randn(30, 4, requires_grad=True)
    for conv in moe.CONVENTIONS:
        z.grad = None
        moe.load_balance_loss((z,), 2, conv).backward()
        assert z.grad is not None and z.grad.abs().sum() > 0


def _gate_io(model, p_eom=0.0, p_gd=0.0, n=4000, seed=0):
    block = moe.moe_blocks(model)[0][1]
    h = torch.randn(n, model.config.hidden_size, generator=torch.Generator().manual_seed(seed))
    plain = block.gate.forward(h)                                  # .forward bypasses hooks
    handles = moe.prepare_for_training(model, expert_output_mask_p=p_eom, gating_dropout_p=p_gd)
    try:
        model.train()
        hooked = block.gate(h)
        model.eval()
        evaluated = block.gate(h)
    finally:
        for hd in handles:
            hd.remove()
        model.eval()
    return plain, hooked, evaluated


@pytest.mark.parametrize("kind", ["mixtral", "qwen2moe"])
def test_eom_drops_each_slot_with_prob_p_without_rescaling(kind, tiny_tok):
    extra = {"shared_expert_intermediate_size": 32} if kind == "qwen2moe" else {}
    model = tiny_model("moe", tokenizer=tiny_tok, **extra)
    (_, w0, i0), (_, w1, i1), (_, w2, _) = _gate_io(model, p_eom=0.3)
    assert torch.equal(i0, i1)
    dropped = w1 == 0
    assert abs(dropped.float().mean().item() - 0.3) < 0.02        # 8000 slots: sd ~0.005
    assert torch.equal(w1[~dropped], w0[~dropped])                # kept slots: not rescaled
    assert torch.equal(w2, w0)                                     # eval: untouched


def test_eom_inference_scaling_is_baked_into_saved_weights(tiny_tok, tmp_path):
    model = tiny_model("moe", tokenizer=tiny_tok)
    block = moe.moe_blocks(model)[0][1]
    h = torch.randn(1, 12, model.config.hidden_size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = block(h.clone())
    handles = moe.prepare_for_training(model, expert_output_mask_p=0.25)
    model.train()
    with torch.no_grad():
        mean_train = block(h.repeat(800, 1, 1)).mean(0, keepdim=True)   # 800 independent masks
    for hd in handles:
        hd.remove()
    model.eval()
    moe.finalize_for_inference(model, expert_output_mask_p=0.25)
    with torch.no_grad():
        scaled = block(h.clone())
    torch.testing.assert_close(scaled, 0.75 * full, rtol=1e-4, atol=1e-6)   # y_eval = (1-p) * y
    assert (mean_train - scaled).abs().max() < 0.1 * full.abs().max()       # E[y_train] = (1-p) y
    with pytest.warns(UserWarning, match="already applied"):
        moe.finalize_for_inference(model, expert_output_mask_p=0.25)         # idempotent
    model.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path).eval()           # plain reload, no workbench
    ids = torch.tensor([[5, 9, 17, 33, 2]])
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, model(ids).logits)


def test_gating_dropout_emulation_routes_to_local_experts(tiny_moe):
    (_, w0, i0), (_, w1, i1), (_, _, i2) = _gate_io(tiny_moe, p_gd=0.999999, n=100)
    local = 4 // 2
    device = torch.arange(100)[:, None] * 2 // 100
    assert torch.equal(i1, device * local + i0 % local)           # same local slot on the token's own device
    assert torch.equal(w1, w0) and torch.equal(i2, i0)            # weights kept; eval untouched


def test_regulariser_bad_inputs(tiny_moe, tiny_dense):
    with pytest.raises(ValueError, match="MoE"):
        moe.prepare_for_training(tiny_dense, expert_output_mask_p=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        moe.prepare_for_training(tiny_moe, expert_output_mask_p=1.0)
    with pytest.raises(ValueError, match="divide"):
        moe.prepare_for_training(tiny_moe, gating_dropout_p=0.1, gating_dropout_devices=3)
    assert moe.prepare_for_training(tiny_moe) == []
    moe.finalize_for_inference(tiny_moe, 0.0)                      # no-op
    assert getattr(tiny_moe.config, "eom_inference_scale", None) is None


def test_z_loss_leaves_padding_rows_out():
    from types import SimpleNamespace
    torch.manual_seed(0)
    batch, seq, experts = 2, 5, 4
    logits = tuple(3 * torch.randn(batch * seq, experts) for _ in range(2))   # rows: batch-major tokens
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    real = mask.reshape(-1).bool()
    expected = moe.z_loss(tuple(r[real] for r in logits))
    assert float(moe.z_loss(logits, attention_mask=mask)) == pytest.approx(float(expected), rel=1e-6)
    assert float(moe.z_loss(logits)) != pytest.approx(float(expected), rel=1e-3)
    per_layer = moe.z_loss(logits, per_layer=True, attention_mask=mask)
    assert torch.allclose(per_layer, moe.z_loss(tuple(r[real] for r in logits), per_layer=True))
    config = SimpleNamespace(num_local_experts=experts, num_experts_per_tok=2)
    out = moe.router_losses(logits, config, attention_mask=mask)
    assert float(out["z"]) == pytest.approx(float(expected), rel=1e-6)
    assert float(out["aux"]) == pytest.approx(float(load_balancing_loss_func(logits, experts, 2, mask)), rel=1e-6)
    with pytest.raises(ValueError, match="attention_mask has 6 positions"):
        moe.z_loss(logits, attention_mask=torch.ones(2, 3))
