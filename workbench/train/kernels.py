"""GPU training forward for the workbench's own architectures (Llama dense, Mixtral MoE) on fused kernels.

`gpu_forward(model, kernels)` returns f(input_ids, output_router_logits=False, targets=None), the same maths as
the transformers forward (tested: equal loss and gradients) without its per-call overhead (masks, caches, output
recorders) and, with `kernels="liger"`, on Liger-Kernel's Triton kernels (Hsu et al. 2024, "Liger Kernel:
Efficient Triton Kernels for LLM Training", arXiv:2410.10989):
    RMSNorm       y = w * x / sqrt(mean(x^2) + eps) in float32: torch's fused F.rms_norm (faster here than Liger's)
    RoPE          q, k rotated in place by one kernel (half-split layout, as transformers' rotate_half)
    SwiGLU        silu(gate) * up in one kernel, recomputed in backward instead of stored
    output layer  fused linear cross-entropy: logits made chunk by chunk and never kept, their gradient made
                  in the forward pass, so the (tokens x vocabulary) float32 logits never exist in memory.
MoE experts (Mixtral's layout): with `kernels="liger"`, Liger-Kernel's fused MoE (`LigerFusedMoEFunction`, Triton
kernels after SonicMoE, Guo et al. 2025, arXiv:2512.14080): the gather of each expert's tokens, the gate/up GEMM
and SwiGLU in one kernel, the down GEMM in another, and the weighted combine in a third, so the token-expert pairs
are never copied, permuted or weighted in separate passes over memory. Otherwise two grouped GEMMs over the pairs
sorted by expert (`torch.nn.functional.grouped_mm`, CUTLASS on CUDA). Both in the autocast dtype; transformers'
own grouped_mm experts are not autocast-aware and multiply in float32 under bf16 autocast. Routers run as modules,
so routing hooks (expert output masking, gating dropout, probes) and the router logits for the aux/z losses are
unchanged.
Attention is PyTorch's scaled_dot_product_attention (FlashAttention-2 / cuDNN kernels on CUDA). `kernels="torch"`
is the same forward in plain PyTorch ops, for `torch.compile` (which fuses them itself) and for tests on CPU.
The model is not changed: its modules' own weights are used, so a saved model is a plain transformers model.
Models `fast.lean_forward` does not recognise get None and train through their own forward.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .fast import _eligible, cached_tables

KERNELS = ("liger", "torch")
CAST_ONCE = True     # under autocast, each RMSNorm output is cast to bf16 once, not once per matmul reading it
QKV = "shared-backward"   # fuse_qkv's form: "shared-backward" (qkv_projection) or "cat"; see gpu_forward
FUSED_MOE = True     # kernels="liger": Liger-Kernel's fused MoE experts on CUDA in bf16/fp16 (False: grouped GEMMs)


def liger_available() -> bool:
    """True when Liger-Kernel and Triton import and a CUDA device is present."""
    if not torch.cuda.is_available():
        return False
    try:
        import liger_kernel.transformers.functional  # noqa: F401
    except Exception:            # not installed, or Triton missing/broken: train through the plain forward
        return False
    return True


def _rms_norm(x, w, eps):
    """transformers' LlamaRMSNorm: float32 statistics, the weight applied in the input's dtype. A float32 input
    (the residual stream under autocast) goes through torch's fused RMSNorm (one kernel each way on CUDA),
    measured faster than Liger-Kernel's on an H200 at these widths: its backward kernel's launch and its
    partial weight-gradient sums cost more than they save for a few million rows of width 384-512."""
    if x.dtype == torch.float32 and w.dtype == torch.float32:
        return F.rms_norm(x, (x.shape[-1],), w, eps)
    xf = x.float()
    return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def _torch_ops():
    def rope(q, k, cos, sin):
        def rot(x):
            h = x.shape[-1] // 2
            return torch.cat((-x[..., h:], x[..., :h]), dim=-1)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)                   # (T, head_dim) broadcasts
        return q * cos + rot(q) * sin, k * cos + rot(k) * sin

    def swiglu(gate, up):
        return F.silu(gate) * up

    def linear_ce(h, w, targets):
        return F.cross_entropy(F.linear(h, w).float(), targets)

    return _rms_norm, rope, swiglu, linear_ce


def _liger_ops():
    from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy, liger_rope, liger_swiglu

    def rope(q, k, cos, sin):
        return liger_rope(q, k, cos, sin)

    def linear_ce(h, w, targets):
        return liger_fused_linear_cross_entropy(h, w, targets)

    return _rms_norm, rope, liger_swiglu, linear_ce


def gpu_forward(model, kernels: str = "liger", fuse_qkv: bool = True, graph_safe: bool = False) -> Callable | None:
    """f(input_ids (B, T) int64, output_router_logits=False, targets=None (B, T) int64) -> (logits (B, T, V), or
    the mean token cross-entropy in nats against `targets`; the routers' logits per MoE layer or None).

    `kernels`: "liger" (Liger-Kernel's Triton kernels; CUDA only) or "torch" (plain PyTorch ops). `fuse_qkv`: q, k
    and v as one autograd node, by `QKV`: "shared-backward" (`qkv_projection`: three GEMMs into contiguous q, k,
    v, one input gradient accumulated by addmm) or "cat" (one GEMM on the three weights concatenated; its q and
    k are strided column blocks, which Liger's RoPE copies to contiguous memory, two copies a layer each way).
    Measured on an H200 at width 512 x 8 layers, batch 64 x 512, graphed steps: 22.16 ms ("shared-backward"),
    22.60 ("cat"), 22.52 (three separate linears; autograd adds their three input gradients). Under
    torch.compile three linears were faster (19.28 against 19.47 ms): compile plans them itself.
    `graph_safe`: no host syncs, so that a CUDA graph can capture the step (`workbench.train.graphs`): the output
    layer's cross-entropy in plain ops (Liger's fused one counts its targets on the host) and the MoE experts as
    grouped GEMMs (Liger's fused MoE sizes its grid on the host).
    Returns None for a model the lean forwards do not cover (see `workbench.train.fast`). Raises ValueError for
    an unknown `kernels`, ImportError when "liger" is asked for and Liger-Kernel does not import."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}, got {kernels!r}")
    if not _eligible(model):
        return None
    rms_norm, rope, swiglu, linear_ce = _liger_ops() if kernels == "liger" else _torch_ops()
    if graph_safe:
        linear_ce = _torch_ops()[3]
    c, inner = model.config, model.model
    n_q, n_kv = c.num_attention_heads, c.num_key_value_heads
    head = getattr(c, "head_dim", None) or c.hidden_size // n_q
    tables = {}
    split = (n_q * head, n_kv * head, n_kv * head)

    def normed(x, norm):
        y = rms_norm(x, norm.weight, norm.variance_epsilon)
        if CAST_ONCE and torch.is_autocast_enabled(y.device.type):
            y = y.to(torch.get_autocast_dtype(y.device.type))
        return y

    def forward(input_ids, output_router_logits=False, targets=None):
        b, t = input_ids.shape
        cos, sin = cached_tables(tables, _rope_tables, inner.rotary_emb, input_ids)
        h = inner.embed_tokens(input_ids)
        routers = []
        for layer in inner.layers:
            a = layer.self_attn
            x = normed(h, layer.input_layernorm)
            if fuse_qkv and QKV == "shared-backward":
                q, k, v = qkv_projection(x, a.q_proj.weight, a.k_proj.weight, a.v_proj.weight)
            elif fuse_qkv:
                q, k, v = F.linear(x, torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])).split(split, -1)
            else:
                q, k, v = a.q_proj(x), a.k_proj(x), a.v_proj(x)
            q, k, v = (z.reshape(b, t, -1, head).transpose(1, 2) for z in (q, k, v))
            q, k = rope(q, k, cos, sin)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=a.scaling, enable_gqa=n_kv != n_q)
            h = h + a.o_proj(y.transpose(1, 2).reshape(b, t, n_q * head))
            x = normed(h, layer.post_attention_layernorm)
            if hasattr(layer.mlp, "experts"):
                h = h + _moe(layer.mlp, x, routers, swiglu, fused=kernels == "liger" and not graph_safe)
            else:
                m = layer.mlp
                h = h + m.down_proj(swiglu(m.gate_proj(x), m.up_proj(x)))
        h = rms_norm(h, inner.norm.weight, inner.norm.variance_epsilon)
        if targets is None:
            out = model.lm_head(h)
        else:
            out = linear_ce(h.reshape(-1, h.shape[-1]), model.lm_head.weight, targets.reshape(-1))
        return out, (tuple(routers) if output_router_logits and routers else None)

    return forward


class _QKV(torch.autograd.Function):
    """q, k, v = x W_q^T, x W_k^T, x W_v^T as three GEMMs, each output contiguous (so RoPE and attention read
    them without a copy), with one input gradient dx = dq W_q + dk W_k + dv W_v accumulated in place by addmm
    (beta = 1) instead of three products and two additions. Weight gradients as nn.Linear's."""

    @staticmethod
    def forward(ctx, x, wq, wk, wv):
        ws = [w.to(x.dtype) for w in (wq, wk, wv)]
        ctx.save_for_backward(x, *ws)
        ctx.dtypes = [w.dtype for w in (wq, wk, wv)]
        return tuple(F.linear(x, w) for w in ws)

    @staticmethod
    def backward(ctx, dq, dk, dv):
        x, *ws = ctx.saved_tensors
        grads = [g.reshape(-1, g.shape[-1]) for g in (dq, dk, dv)]
        dx = None
        if ctx.needs_input_grad[0]:
            dx = grads[0] @ ws[0]
            for g, w in zip(grads[1:], ws[1:]):
                dx.addmm_(g, w)
            dx = dx.view(x.shape)
        flat = x.reshape(-1, x.shape[-1])
        dw = [(g.t() @ flat).to(dt) if need else None
              for g, dt, need in zip(grads, ctx.dtypes, ctx.needs_input_grad[1:])]
        return dx, *dw


def qkv_projection(x, wq, wk, wv):
    """(q, k, v) = (x W_q^T, x W_k^T, x W_v^T), x (..., d), W (out, d); under autocast in its dtype (weights cast
    as nn.Linear's are). One autograd node: see `_QKV`."""
    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        x = x.to(torch.get_autocast_dtype(dev))
        with torch.autocast(dev, enabled=False):
            return _QKV.apply(x, wq, wk, wv)
    return _QKV.apply(x, wq, wk, wv)


def _moe(block, x, routers, swiglu=None, fused: bool = False):
    """Mixtral's sparse block: the router as a module (its hooks run; logits kept for the losses), the experts
    as grouped GEMMs with `swiglu` (Liger's fused MoE when `fused`) when they are Mixtral-layout and hook-free,
    else through their own module."""
    b, t, d = x.shape
    if block.training and block.jitter_noise > 0:
        x = x * torch.empty_like(x).uniform_(1.0 - block.jitter_noise, 1.0 + block.jitter_noise)
    flat = x.reshape(-1, d)
    logits, weights, index = block.gate(flat)
    routers.append(logits)
    e = block.experts
    plain = (getattr(e, "gate_up_proj", None) is not None and getattr(e, "down_proj", None) is not None
             and e.gate_up_proj.dim() == 3 and not getattr(e, "is_transposed", False)
             and not (e._forward_hooks or e._forward_pre_hooks))
    if not plain:
        out = e(flat, index, weights)
    elif fused and FUSED_MOE and (moe := _fused_moe(flat)) is not None:
        out = fused_experts(moe, e.gate_up_proj, e.down_proj, flat, index, weights)
    else:
        out = grouped_experts(e.gate_up_proj, e.down_proj, flat, index, weights, swiglu)
    return out.reshape(b, t, d)


def _fused_moe(x):
    """Liger-Kernel's fused MoE autograd function when x is on CUDA and the multiply dtype is bf16/fp16, else None."""
    dev = x.device.type
    dt = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
    if dev != "cuda" or dt not in (torch.bfloat16, torch.float16):
        return None
    try:
        from liger_kernel.ops.fused_moe import LigerFusedMoEFunction
    except Exception:             # an older Liger-Kernel without it, or Triton missing: the grouped GEMMs
        return None
    return LigerFusedMoEFunction


def fused_experts(moe, gate_up, down, x, index, weights):
    """The same sum as `grouped_experts`, by Liger-Kernel's fused MoE (`moe`: LigerFusedMoEFunction). Shapes as
    there; returns (N, d) in x's dtype. The operands are cast to the autocast dtype first (the kernels multiply in
    their inputs' dtype with float32 accumulators). Its routing metadata costs one host sync per call (the
    number of row tiles), and the routing weights' gradient is summed with atomics (not bitwise reproducible)."""
    dev = x.device.type
    dt = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
    out = moe.apply(x.to(dt), gate_up.to(dt), down.to(dt), index.to(torch.int32), weights.to(dt))
    return out.to(x.dtype)


def grouped_experts(gate_up, down, x, index, weights, swiglu=None):
    """SwiGLU experts over routed tokens by grouped GEMM: out_i = sum_j weights[i, j] * E_index[i, j](x_i),
    E_e(x) = down[e] @ (silu(g) * u), (g, u) = split(gate_up[e] @ x). Shapes: gate_up (E, 2I, d), down (E, d, I),
    x (N, d), index (N, k) int64 in [0, E), weights (N, k). Returns (N, d) in x's dtype. `swiglu`: f(g, u) ->
    silu(g) * u (e.g. Liger-Kernel's fused one); None: plain ops.
    The N*k token-expert pairs are sorted by expert (a stable sort: pairs keep token order within an expert),
    each expert's rows multiplied by its weights in grouped GEMMs (offsets = cumulative pair counts), and the
    k outputs of a token summed with a float32 accumulator after restoring the pairs' order (deterministic: no
    atomics). g and u come from two grouped GEMMs, not one split in two: contiguous operands for the SwiGLU
    (measured on an H200 at width 512, 8 experts: 40.0 -> 36.7 ms a graphed step with Liger's SwiGLU; the
    strided halves ran torch's slow non-vectorised elementwise kernels). Under autocast the GEMMs run in the
    autocast dtype (bf16), as nn.Linear's do."""
    n, k = index.shape
    n_exp = gate_up.shape[0]
    dev = x.device.type
    dt = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
    ids, perm = torch.sort(index.reshape(-1), stable=True)
    # offs[e] = number of pairs routed to experts <= e; searchsorted keeps it on the device (bincount would wait
    # for the GPU to learn its output size)
    offs = torch.searchsorted(ids, torch.arange(1, n_exp + 1, device=ids.device), out_int32=True)
    xs = x.to(dt)[perm // k]
    inner = gate_up.shape[1] // 2
    gate = _gmm(xs, gate_up[:, :inner].to(dt).transpose(-2, -1), offs)
    up = _gmm(xs, gate_up[:, inner:].to(dt).transpose(-2, -1), offs)
    ys = _gmm(swiglu(gate, up) if swiglu is not None else F.silu(gate) * up, down.to(dt).transpose(-2, -1), offs)
    ys = ys * weights.reshape(-1)[perm].to(dt).unsqueeze(-1)
    pairs = torch.empty_like(ys).index_copy(0, perm, ys)          # back to (token, slot) order
    return pairs.view(n, k, -1).sum(1).to(x.dtype)      # torch sums bf16 with a float32 accumulator


def _gmm(a, b_t, offs):
    """Grouped GEMM: rows offs[g-1]:offs[g] of a (S, K) times b_t[g] (K, N) -> (S, N). CUDA in bf16 with K and N
    multiples of 8 (CUTLASS needs 16-byte strides): one grouped GEMM; otherwise a loop over the groups (torch's
    CPU grouped GEMM has no backward for every stride)."""
    if a.is_cuda and a.dtype == torch.bfloat16 and a.shape[-1] % 8 == 0 and b_t.shape[-1] % 8 == 0:
        gmm = getattr(F, "grouped_mm", None) or torch._grouped_mm
        return gmm(a, b_t, offs=offs)
    ends = offs.tolist()
    parts = [a[s:e] @ b_t[g] for g, (s, e) in enumerate(zip([0] + ends[:-1], ends))]
    return torch.cat(parts) if parts else a.new_zeros(0, b_t.shape[-1])


def _rope_tables(rotary, t: int, device):
    """cos, sin (t, head_dim) in transformers' layout (each half repeated), float32."""
    pos = torch.arange(t, device=device, dtype=torch.float32)
    freqs = pos[:, None] * rotary.inv_freq.to(device=device, dtype=torch.float32)[None]
    emb = torch.cat([freqs, freqs], -1)
    return emb.cos() * rotary.attention_scaling, emb.sin() * rotary.attention_scaling
