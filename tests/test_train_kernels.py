"""GPU training forward (workbench.train.kernels): the lean forward has transformers' maths in plain ops (tested on
CPU here) and on Liger-Kernel's Triton kernels (tested where a CUDA device and Liger-Kernel are present)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from workbench.testing import tiny_model
from workbench.train import TrainConfig
from workbench.train import loop
from workbench.train.kernels import gpu_forward, liger_available

CASES = [("dense", {}), ("dense", {"num_key_value_heads": 2}), ("moe", {})]


def _check(kind, extra, kernels, device, dtype_tol):
    torch.manual_seed(0)
    model = tiny_model(kind, **extra).to(device).train()
    lean = copy.deepcopy(model)
    x = torch.randint(0, model.config.vocab_size, (3, 20), device=device)
    y = torch.randint(0, model.config.vocab_size, (3, 20), device=device)
    moe = kind == "moe"
    out = model(input_ids=x, output_router_logits=True) if moe else model(input_ids=x)
    loss = F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]).float(), y.reshape(-1))
    loss.backward()
    fwd = gpu_forward(lean, kernels)
    lean_loss, routers = fwd(x, moe, targets=y)
    lean_loss.backward()
    rtol, atol = dtype_tol
    torch.testing.assert_close(lean_loss, loss, rtol=rtol, atol=atol)
    with torch.no_grad():
        logits, _ = fwd(x, moe)
    torch.testing.assert_close(logits, out.logits, rtol=rtol, atol=atol)
    for (name, p), q in zip(model.named_parameters(), lean.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=rtol * 10, atol=atol, msg=name)
    if moe:
        assert len(routers) == model.config.num_hidden_layers
        for a, b in zip(routers, out.router_logits):
            torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("qkv", ["shared-backward", "cat"])
@pytest.mark.parametrize("kind,extra", CASES)
def test_plain_ops_forward_matches_transformers(kind, extra, qkv, monkeypatch):
    from workbench.train import kernels
    monkeypatch.setattr(kernels, "QKV", qkv)
    _check(kind, extra, "torch", "cpu", (1e-5, 1e-6))


def test_the_qkv_projection_has_linear_gradients_in_float64_and_bf16_outputs_under_autocast():
    from workbench.train.kernels import qkv_projection
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    ws = [torch.randn(o, 8, dtype=torch.float64, requires_grad=True) for o in (8, 4, 4)]
    assert torch.autograd.gradcheck(qkv_projection, (x, *ws))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs = qkv_projection(x.float(), *[w.float() for w in ws])
    assert [o.dtype for o in outs] == [torch.bfloat16] * 3
    for o, w in zip(outs, ws):
        torch.testing.assert_close(o.float(), (x @ w.T).float(), rtol=2e-2, atol=5e-2)


@pytest.mark.skipif(not liger_available(), reason="needs a CUDA device and Liger-Kernel")
@pytest.mark.parametrize("kind,extra", CASES)
def test_liger_forward_matches_transformers(kind, extra):
    _check(kind, extra, "liger", "cuda", (1e-4, 1e-5))


def test_forward_steps_aside_and_rejects_unknown_kernels():
    model = tiny_model("dense")
    model.config.hidden_act = "gelu"
    assert gpu_forward(model, "torch") is None
    with pytest.raises(ValueError, match="kernels must be one of"):
        gpu_forward(tiny_model("dense"), "triton")
    with pytest.raises(ValueError, match="kernels must be"):
        TrainConfig(kernels="fast")


def test_kernel_choice(monkeypatch):
    monkeypatch.setattr(loop, "liger_available", lambda: True)
    assert loop.gpu_kernels(TrainConfig()) == "liger"
    assert loop.gpu_kernels(TrainConfig(compile=True)) == "torch"     # torch.compile fuses plain ops itself
    assert loop.gpu_kernels(TrainConfig(kernels="none")) == "none"
    monkeypatch.setattr(loop, "liger_available", lambda: False)
    assert loop.gpu_kernels(TrainConfig()) == "torch"
    with pytest.raises(ValueError, match="pip install liger-kernel"):
        loop.gpu_kernels(TrainConfig(kernels="liger"))


def _experts_reference(gate_up, down, x, index, weights):
    out = torch.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(index.shape[1]):
            e = index[i, j]
            g, u = (gate_up[e] @ x[i]).chunk(2)
            out[i] += weights[i, j] * (down[e] @ (F.silu(g) * u))
    return out


def _experts_case(device, n_exp=4, d=16, inner=8, n=12, k=2):
    torch.manual_seed(1)
    gate_up = torch.randn(n_exp, 2 * inner, d, device=device, requires_grad=True)
    down = torch.randn(n_exp, d, inner, device=device, requires_grad=True)
    x = torch.randn(n, d, device=device, requires_grad=True)
    index = torch.stack([torch.randperm(n_exp - 1, device=device)[:k] for _ in range(n)])   # the last expert idle
    weights = torch.rand(n, k, device=device, requires_grad=True)
    return gate_up, down, x, index, weights


def test_grouped_experts_equal_the_per_token_sum_with_an_idle_expert():
    from workbench.train.kernels import grouped_experts
    gate_up, down, x, index, weights = _experts_case("cpu")
    out = grouped_experts(gate_up, down, x, index, weights)
    ref = _experts_reference(gate_up, down, x, index, weights)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), (gate_up, down, x, weights))
    ref_grads = torch.autograd.grad(ref.square().sum(), (gate_up, down, x, weights))
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)
    assert grads[0][-1].abs().sum() == 0          # the idle expert gets no gradient


def test_hooked_experts_run_as_their_module():
    model = tiny_model("moe")
    seen = []
    model.model.layers[0].mlp.experts.register_forward_hook(lambda *a: seen.append(1))
    fwd = gpu_forward(model, "torch")
    fwd(torch.randint(0, model.config.vocab_size, (2, 8)))
    assert seen == [1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_grouped_experts_on_cuda_run_in_bf16_under_autocast():
    from workbench.train.kernels import grouped_experts
    gate_up, down, x, index, weights = _experts_case("cuda", d=64, inner=32, n=64)
    ref = _experts_reference(gate_up, down, x, index, weights)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = grouped_experts(gate_up, down, x, index, weights)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=3e-2, atol=3e-2 * ref.abs().max().item())
    out.square().sum().backward()
    assert gate_up.grad is not None and torch.isfinite(gate_up.grad).all()
    fp32 = grouped_experts(gate_up, down, x, index, weights)
    torch.testing.assert_close(fp32, ref, rtol=1e-3, atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_grouped_experts_of_a_width_cutlass_refuses_loop_over_experts():
    from workbench.train.kernels import grouped_experts
    gate_up, down, x, index, weights = _experts_case("cuda", d=64, inner=36, n=64)    # 36 x 2 bytes: not 16-aligned
    ref = _experts_reference(gate_up, down, x, index, weights)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = grouped_experts(gate_up, down, x, index, weights)
    torch.testing.assert_close(out, ref, rtol=3e-2, atol=3e-2 * ref.abs().max().item())
