"""CPU fast path: the lean forward has transformers' maths (loss, gradients, router logits) and steps aside
for models it does not cover."""
import copy

import pytest
import torch
import torch.nn.functional as F

from workbench.testing import tiny_model, tiny_tokenizer
from workbench.train import train
from workbench.train.fast import lean_forward, tune_allocator

from test_train import FAST, TINY, stories, weights


def _both(model, x, y, moe):
    """Gradients, logits and router logits from the transformers forward and from the lean one (whose training
    loss comes from its fused output layer + cross-entropy)."""
    ref, lean = model.train(), copy.deepcopy(model).train()
    out = ref(input_ids=x, output_router_logits=True) if moe else ref(input_ids=x)
    n = out.logits.shape[-1]
    loss = F.cross_entropy(out.logits.reshape(-1, n), y.reshape(-1))
    loss.backward()
    fwd = lean_forward(lean)
    lean_loss, routers = fwd(x, moe, targets=y)
    lean_loss.backward()
    torch.testing.assert_close(lean_loss, loss)
    with torch.no_grad():
        logits, _ = fwd(x, moe)
    return out, ref, (logits, routers), lean


@pytest.mark.parametrize("fuse_max_width", [128, 0])      # fused q/k/v and gate/up matmuls, and separate ones
@pytest.mark.parametrize("kind,extra", [("dense", {}), ("dense", {"num_key_value_heads": 2}), ("moe", {})])
def test_lean_forward_matches_transformers(kind, extra, fuse_max_width, monkeypatch):
    monkeypatch.setattr("workbench.train.fast.FUSE_MAX_WIDTH", fuse_max_width)
    torch.manual_seed(0)
    model = tiny_model(kind, **extra)
    x = torch.randint(0, model.config.vocab_size, (3, 20))
    y = torch.randint(0, model.config.vocab_size, (3, 20))
    out, ref, (logits, routers), lean = _both(model, x, y, kind == "moe")
    torch.testing.assert_close(logits, out.logits, rtol=1e-5, atol=1e-5)
    for (name, p), q in zip(ref.named_parameters(), lean.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
    if kind == "moe":
        assert len(routers) == model.config.num_hidden_layers
        for a, b in zip(routers, out.router_logits):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_lean_forward_steps_aside():
    for change in ({"attention_bias": True}, {"hidden_act": "gelu"}, {"model_type": "gpt2"}):
        model = tiny_model("dense")
        for k, v in change.items():
            setattr(model.config, k, v)
        assert lean_forward(model) is None, change
    hooked = tiny_model("dense")
    hooked.model.norm.register_forward_hook(lambda m, a, o: o)                # a probe on a bypassed module
    assert lean_forward(hooked) is None
    routed = tiny_model("moe")
    routed.model.layers[0].mlp.gate.register_forward_hook(lambda m, a, o: o)  # routers are still called
    assert lean_forward(routed) is not None


@pytest.mark.parametrize("preset", ["dense-nano", "moe-nano"])
def test_fast_path_trains_to_the_same_weights(preset):
    tok, texts = tiny_tokenizer(), stories()
    runs = [train(preset, texts, tokenizer=tok, steps=6, fast_path=on, device="cpu", **TINY, **FAST)
            for on in (True, False)]
    # Adam turns float rounding in near-zero gradients into weight differences of a small fraction of lr (1e-2
    # here, each step moving weights by up to lr); a wrong gradient would move them by whole steps.
    for k, v in weights(runs[1].model).items():
        torch.testing.assert_close(weights(runs[0].model)[k], v, rtol=1e-4, atol=5e-5, msg=k)
    assert runs[0].history["loss"].tolist() == pytest.approx(runs[1].history["loss"].tolist(), rel=1e-4)


def test_tune_allocator_is_idempotent():
    first = tune_allocator()
    assert tune_allocator() == first


@pytest.mark.parametrize("scale", [1.0, 20.0])    # 20: target probabilities underflow float32 in some rows
def test_linear_cross_entropy_matches_torch(scale):
    from workbench.train.fast import linear_cross_entropy
    torch.manual_seed(0)
    h, w = (scale * torch.randn(3, 7, 16)).requires_grad_(), torch.randn(50, 16).requires_grad_()
    y = torch.randint(0, 50, (3, 7))
    ref = F.cross_entropy(F.linear(h, w).reshape(-1, 50), y.reshape(-1))
    assert (torch.softmax(F.linear(h, w), -1).gather(-1, y[..., None]) < 1e-30).any() == (scale > 1)
    g_ref = torch.autograd.grad(2.5 * ref, (h, w))
    ours = linear_cross_entropy(h, w, y)
    g_ours = torch.autograd.grad(2.5 * ours, (h, w))
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(g_ours, g_ref)
    with torch.no_grad():
        torch.testing.assert_close(linear_cross_entropy(h, w, y), ref)
