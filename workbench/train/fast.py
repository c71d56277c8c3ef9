"""CPU fast path for training the workbench's own architectures (Llama dense, Mixtral MoE).

`lean_forward(model)` gives a forward with the same maths as the transformers one (tested: equal loss and
gradients) in fewer ops and less memory. On narrow models each attention input (RMSNorm, q/k/v as one matmul,
RoPE on q and k at once) and each MLP branch (RMSNorm, gate/up as one matmul, SwiGLU, down) is one autograd
node with a hand-written backward; on wider ones RoPE, RMSNorm and the SwiGLU MLP are. The output layer and
cross-entropy make their gradients in the forward pass, and no masks, caches or output recorders are built.
Models it does not recognise (other architectures, biases, dropout, sliding windows, position-dependent RoPE)
get `None` and train through their own forward. `tune_allocator()` stops glibc from returning freed tensor
memory to the OS after every step, which otherwise costs thousands of page faults per step.
"""
from __future__ import annotations

import ctypes
import sys
from typing import Callable

import torch
import torch.nn.functional as F

STATIC_ROPE = {"default", "linear", "llama3"}   # inv_freq does not depend on the sequence length
FUSE_MAX_WIDTH = 128   # up to this width, norm + concatenated projections run as one node: per-call overhead
                       # dominates there, while wider matrices run as fast apart and concatenating them every
                       # step would copy their weights


class _Rope(torch.autograd.Function):
    """Rotary embedding in transformers' half-split layout, with rotate_half's sign folded into `sin`:
    out = x * cos + swap(x) * sin, where swap exchanges the two halves of the head dimension;
    grad_x = g * cos + swap(g * sin)."""

    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        return _rope(x, cos, sin)

    @staticmethod
    def backward(ctx, g):
        cos, sin = ctx.saved_tensors
        return _rope(g, cos, sin, inverse=True), None, None


def _rms(x, eps: float):
    """x_hat = x * r with r = (mean(x^2) + eps)^-1/2 over the last dimension; returns (x_hat, r)."""
    r = torch.linalg.vector_norm(x, dim=-1, keepdim=True).pow_(2).div_(x.shape[-1]).add_(eps).rsqrt_()
    return x * r, r


def _rms_backward(g_hat, x_hat, r):
    """d_x from the gradient of x_hat (overwritten): r * (g_hat - x_hat * mean(g_hat * x_hat))."""
    dot = torch.linalg.vecdot(g_hat, x_hat).unsqueeze_(-1).div_(-x_hat.shape[-1])
    return g_hat.addcmul_(x_hat, dot).mul_(r)


class _NormLinear(torch.autograd.Function):
    """Narrow models' RMSNorm followed by one matmul with cat(W_1..W_n), the norm's weight w folded into the
    matrix: (x_hat * w) W^T = x_hat (W diag(w))^T. Backward, with G the output gradient and W' = W diag(w):
    d_W' = G^T x_hat, d_W = d_W' diag(w), d_w = sum_rows(d_W' * W), d_x_hat = G W'. The norm's per-token
    weight multiply moves onto the weight matrix, and norm, concatenation and matmul are one autograd node.
    Subclasses shape the output (q/k/v with RoPE, or the SwiGLU MLP)."""

    @staticmethod
    def project(ctx, x, w_norm, eps, weights):
        x_hat, r = _rms(x, eps)
        w_cat = torch.cat(weights)
        w = w_cat * w_norm
        ctx.norm = (x_hat, r, w_cat, w, w_norm)
        ctx.sizes = [v.shape[0] for v in weights]
        return F.linear(x_hat, w)

    @staticmethod
    def project_backward(ctx, g):
        """(d_x, d_w_norm, d_W_1..d_W_n) from the gradient of the matmul's output."""
        x_hat, r, w_cat, w, w_norm = ctx.norm
        g = g.reshape(-1, w.shape[0])
        d_w = g.t() @ x_hat.reshape(-1, x_hat.shape[-1])
        d_x = _rms_backward((g @ w).view(x_hat.shape), x_hat, r)
        d_norm = (d_w * w_cat).sum(0)
        return d_x, d_norm, *d_w.mul_(w_norm).split(ctx.sizes)


class _NormQKV(_NormLinear):
    """q, k, v as (batch, heads, seq, head_dim) views, RoPE applied to q and k at once, from the attention
    input: norm, one matmul, rotation. Backward writes the three gradients (RoPE undone on q and k) into one
    buffer, with no zero-filled slice gradients."""

    @staticmethod
    def forward(ctx, x, w_norm, eps, cos, sin, n_q: int, n_kv: int, *weights):
        b, t, _ = x.shape
        qkv = _NormLinear.project(ctx, x, w_norm, eps, weights).view(b, t, n_q + 2 * n_kv, -1)
        qk = _rope(qkv[:, :, :n_q + n_kv], cos, sin)
        ctx.rope, ctx.heads = (cos, sin), (n_q, n_kv)
        return qk[:, :, :n_q].transpose(1, 2), qk[:, :, n_q:].transpose(1, 2), qkv[:, :, n_q + n_kv:].transpose(1, 2)

    @staticmethod
    def backward(ctx, gq, gk, gv):
        (cos, sin), (n_q, n_kv) = ctx.rope, ctx.heads
        b, _, t, head = gq.shape
        g = torch.empty(b, t, n_q + 2 * n_kv, head, dtype=gq.dtype, device=gq.device)
        _rope(gq.transpose(1, 2), cos, sin, out=g[:, :, :n_q], inverse=True)
        _rope(gk.transpose(1, 2), cos, sin, out=g[:, :, n_q:n_q + n_kv], inverse=True)
        g[:, :, n_q + n_kv:].copy_(gv.transpose(1, 2))
        d_x, d_norm, *d_ws = _NormLinear.project_backward(ctx, g)
        return d_x, d_norm, None, None, None, None, None, *d_ws


class _NormSwiGLU(_NormLinear):
    """The whole MLP branch of a narrow model, norm included: down(silu(gate) * up) with [gate, up] from one
    matmul. With h = silu(gate) * up: d_W_down = g^T h, d_h = g W_down, d_up = d_h * silu(gate),
    d_gate = d_h * up * silu'(gate)."""

    @staticmethod
    def forward(ctx, x, w_norm, eps, w_gate, w_up, w_down):
        gate_up = _NormLinear.project(ctx, x, w_norm, eps, (w_gate, w_up))
        gate, up = gate_up.chunk(2, dim=-1)
        silu = F.silu(gate)
        h = silu * up
        ctx.save_for_backward(gate_up, silu, h, w_down)
        return F.linear(h, w_down)

    @staticmethod
    def backward(ctx, g):
        gate_up, silu, h, w_down = ctx.saved_tensors
        gate, up = gate_up.chunk(2, dim=-1)
        d_down = g.reshape(-1, g.shape[-1]).t() @ h.reshape(-1, h.shape[-1])
        d_h = g @ w_down
        d_gate_up = torch.empty_like(gate_up)
        d_gate, d_up = d_gate_up.chunk(2, dim=-1)
        torch.ops.aten.silu_backward.grad_input(d_h * up, gate, grad_input=d_gate)
        torch.mul(d_h, silu, out=d_up)
        d_x, d_norm, d_gate_w, d_up_w = _NormLinear.project_backward(ctx, d_gate_up)
        return d_x, d_norm, None, d_gate_w, d_up_w, d_down


def _rope(x, cos, sin, out=None, inverse: bool = False):
    """x * cos + swap(x) * sin (see _Rope), into `out` if given; inverse=True applies the transpose (backward)."""
    h = x.shape[-1] // 2
    out = torch.mul(x, cos, out=out) if out is not None else x * cos
    lo, hi = (sin[..., h:], sin[..., :h]) if inverse else (sin[..., :h], sin[..., h:])
    out[..., :h].addcmul_(x[..., h:], lo)
    out[..., h:].addcmul_(x[..., :h], hi)
    return out


class _RMSNorm(torch.autograd.Function):
    """y = x_hat * w (see _rms). Backward in a few passes instead of autograd's composite:
    d_w = sum_rows g * x_hat, d_x = _rms_backward(g * w)."""

    @staticmethod
    def forward(ctx, x, w, eps: float):
        x_hat, r = _rms(x, eps)
        ctx.save_for_backward(x_hat, w, r)
        return x_hat * w

    @staticmethod
    def backward(ctx, g):
        x_hat, w, r = ctx.saved_tensors
        d_w = (g * x_hat).reshape(-1, x_hat.shape[-1]).sum(0) if ctx.needs_input_grad[1] else None
        return _rms_backward(g * w, x_hat, r), d_w, None


class _SwiGLUDown(torch.autograd.Function):
    """down(silu(gate) * up) for wide models, saving only gate, up and the down weight (backward recomputes
    silu): with h = silu(gate) * up, d_W = g^T h, d_h = g W, d_up = d_h * silu(gate), d_gate = d_h * up * silu'(gate)."""

    @staticmethod
    def forward(ctx, gate, up, w_down):
        ctx.save_for_backward(gate, up, w_down)
        return F.linear(F.silu(gate) * up, w_down)

    @staticmethod
    def backward(ctx, g):
        gate, up, w_down = ctx.saved_tensors
        silu = F.silu(gate)
        d_w = g.reshape(-1, g.shape[-1]).t() @ (silu * up).reshape(-1, up.shape[-1])
        d_h = g @ w_down
        return torch.ops.aten.silu_backward(d_h * up, gate), d_h * silu, d_w


class _LinearCrossEntropy(torch.autograd.Function):
    """Mean token cross-entropy of logits = h W^T, with both gradients made in the forward pass from one softmax:
    p = softmax(h W^T), loss = -mean_i log p_i[y_i], G = (p - onehot(y)) / n, d_h = G W, d_W = G^T h.
    The logits are never kept for backward and no log-softmax backward runs. Rows whose target probability
    underflows float32 take their loss from logsumexp instead, so the value stays exact."""

    @staticmethod
    def forward(ctx, h, w, targets, grad: bool):
        shape, h = h.shape, h.reshape(-1, h.shape[-1])
        x = F.linear(h, w).float()
        p = torch.softmax(x, dim=-1)
        rows = torch.arange(len(targets), device=targets.device)
        p_t = p[rows, targets]
        logp_t = p_t.log()
        tiny = p_t < 1e-30
        if bool(tiny.any()):
            logp_t[tiny] = x[rows[tiny], targets[tiny]] - x[tiny].logsumexp(-1)
        del x
        if grad:
            p[rows, targets] -= 1.0
            p = p.div_(len(targets)).to(w.dtype)
            ctx.save_for_backward((p @ w).view(shape), p.t() @ h)
        return -logp_t.mean()

    @staticmethod
    def backward(ctx, g):
        d_h, d_w = ctx.saved_tensors       # backward runs once per graph, so they may be scaled in place
        if g.item() != 1.0:
            d_h.mul_(g)
            d_w.mul_(g)
        return d_h, d_w, None, None


def linear_cross_entropy(h, w, targets):
    """F.cross_entropy(F.linear(h, w) flattened, targets flattened) for training (no ignore_index), faster on CPU.
    h: (..., d); w: (vocab, d); targets: h's leading shape."""
    grad = torch.is_grad_enabled() and (h.requires_grad or w.requires_grad)
    return _LinearCrossEntropy.apply(h, w, targets.reshape(-1), grad)


def _eligible(model) -> bool:
    c, inner = model.config, getattr(model, "model", None)
    rope = (getattr(c, "rope_parameters", None) or {}).get("rope_type", "default")
    return (c.model_type in ("llama", "mixtral") and inner is not None and hasattr(inner, "rotary_emb")
            and rope in STATIC_ROPE and not getattr(c, "attention_bias", False) and not getattr(c, "mlp_bias", False)
            and not getattr(c, "attention_dropout", 0.0) and c.hidden_act == "silu"
            and getattr(c, "sliding_window", None) is None and not _bypassed_hooks(model))


def _bypassed_hooks(model) -> bool:
    """True if a module the lean forward does not call (norms, q/k/v, layers...) carries a hook: a probe or a
    test poking at it must see the real forward."""
    called = {"embed_tokens", "o_proj", "gate", "experts"}
    for name, m in model.named_modules():
        hooked = m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
        if hooked and name.rsplit(".", 1)[-1] not in called:
            return True
    return False


def lean_forward(model) -> Callable | None:
    """f(input_ids, output_router_logits=False, targets=None) -> (logits, or the mean token cross-entropy against
    `targets` if given; router_logits tuple or None). None if the model is not eligible."""
    if not _eligible(model):
        return None
    c = model.config
    n_q, n_kv = c.num_attention_heads, c.num_key_value_heads
    head = getattr(c, "head_dim", None) or c.hidden_size // n_q
    inner = model.model

    fuse = c.hidden_size <= FUSE_MAX_WIDTH
    tables = {}       # (seq_len, device) -> (cos, sin): fixed for a run, so built once, not every step

    def forward(input_ids, output_router_logits=False, targets=None):
        b, t = input_ids.shape
        cos, sin = cached_tables(tables, _rope_tables, inner.rotary_emb, input_ids)
        h = inner.embed_tokens(input_ids)
        routers = []
        for layer in inner.layers:
            a = layer.self_attn
            q, k, v = _attention_input(a, layer.input_layernorm, h, fuse, (n_q, n_kv, head), (cos, sin))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=a.scaling, enable_gqa=n_kv != n_q)
            h = h + a.o_proj(y.transpose(1, 2).reshape(b, t, n_q * head))
            if hasattr(layer.mlp, "experts"):
                h = h + _moe(layer.mlp, _norm(layer.post_attention_layernorm, h), routers)
            else:
                h = h + _mlp(layer.mlp, layer.post_attention_layernorm, h, fuse)
        h = _norm(inner.norm, h)
        out = model.lm_head(h) if targets is None else linear_cross_entropy(h, model.lm_head.weight, targets)
        return out, (tuple(routers) if output_router_logits and routers else None)

    return forward


def _attention_input(a, norm, h, fuse: bool, heads, rope):
    """q, k, v as (batch, heads, seq, head_dim), RoPE applied to q and k, from the residual stream h: one
    autograd node on narrow models (norm, one matmul, one rotation), else a norm, three matmuls, two rotations."""
    (n_q, n_kv, head), (cos, sin) = heads, rope
    weights = (a.q_proj.weight, a.k_proj.weight, a.v_proj.weight)
    if fuse:
        return _NormQKV.apply(h, norm.weight, norm.variance_epsilon, cos[:, None], sin[:, None], n_q, n_kv, *weights)
    b, t, _ = h.shape
    x = _norm(norm, h)
    q, k, v = (F.linear(x, w).view(b, t, -1, head).transpose(1, 2) for w in weights)
    return _Rope.apply(q, cos, sin), _Rope.apply(k, cos, sin), v


def _norm(m, x):
    return _RMSNorm.apply(x, m.weight, m.variance_epsilon)


def _mlp(m, norm, h, fuse: bool):
    """The SwiGLU MLP of the normed residual stream h: one autograd node on narrow models."""
    if fuse:
        return _NormSwiGLU.apply(h, norm.weight, norm.variance_epsilon, m.gate_proj.weight, m.up_proj.weight,
                                 m.down_proj.weight)
    x = _norm(norm, h)
    return _SwiGLUDown.apply(F.linear(x, m.gate_proj.weight), F.linear(x, m.up_proj.weight), m.down_proj.weight)


def _moe(block, x, routers):
    """Mixtral's sparse block, calling its router and experts as modules (so their hooks still run)."""
    b, t, d = x.shape
    if block.training and block.jitter_noise > 0:
        x = x * torch.empty_like(x).uniform_(1.0 - block.jitter_noise, 1.0 + block.jitter_noise)
    flat = x.reshape(-1, d)
    logits, weights, index = block.gate(flat)
    routers.append(logits)
    return block.experts(flat, index, weights).reshape(b, t, d)


def cached_tables(tables: dict, build, rotary, input_ids):
    """build(rotary, T, device) for input_ids (B, T), made once per (T, device) and kept in `tables`: a run's
    RoPE tables are fixed, so they are built once, not every step."""
    key = (input_ids.shape[1], input_ids.device)
    if key not in tables:
        tables[key] = build(rotary, *key)
    return tables[key]


def _rope_tables(rotary, t: int, device):
    """cos, sin of shape (t, head_dim); sin's first half negated (rotate_half's sign)."""
    pos = torch.arange(t, device=device, dtype=torch.float32)
    freqs = pos[:, None] * rotary.inv_freq.to(device=device, dtype=torch.float32)[None]
    cos, sin = freqs.cos() * rotary.attention_scaling, freqs.sin() * rotary.attention_scaling
    return torch.cat([cos, cos], -1), torch.cat([-sin, sin], -1)


_TUNED = False


def tune_allocator() -> bool:
    """glibc only: keep freed blocks for reuse (mmap threshold and trim threshold at 1 GiB), so each step's
    activations reuse last step's pages instead of faulting in fresh zeroed ones. True if applied. The setting
    lasts for the process (a notebook kernel keeps its peak memory instead of returning it to the OS)."""
    global _TUNED
    if _TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        _TUNED = bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False
    return _TUNED
