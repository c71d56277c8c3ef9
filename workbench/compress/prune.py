"""Pruning: unstructured magnitude pruning, and structured pruning of MLP channels and attention heads.

- `magnitude_prune(model, sparsity)`: global unstructured L1 pruning of every linear weight in the decoder
  layers (`torch.nn.utils.prune.global_unstructured`, Han et al. 2015), made permanent. The matrices keep
  their shape, so the dense file does not shrink: the record states the sparsity and what a sparse (CSR)
  store of the pruned matrices would take, honestly.
- `prune_mlp(model, ratio, texts, tok)` and `prune_heads(model, ratio, texts, tok)`: structured pruning that
  rebuilds smaller matrices. Importance is measured on calibration text: an MLP channel j scores
  mean_t |act(gate_j(x_t)) * up_j(x_t)| * ||W_down[:, j]||_2 (its mean contribution to the residual stream, the
  activation-times-weight criterion of Wanda, Sun et al. 2024, per channel), a head h scores
  mean_t ||W_o[:, h] o_h(x_t)||_2 (its mean output norm after the output projection; cf. Michel et al. 2019).
  Every layer keeps the same number of channels / heads so that the result is a plain `transformers` model
  with a smaller config (`intermediate_size`, `num_attention_heads`): it saves and loads without workbench code.

Llama-layout decoders (Llama, Qwen2, Mistral and the workbench's dense presets): `self_attn.{q,k,v,o}_proj`,
`mlp.{gate,up,down}_proj`. Each function returns (model, PruneRecord); the input model is not changed.
Here: `PruneRecord`, `magnitude_prune()`, `prune_mlp()`, `prune_heads()`, `sparsity()`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class PruneRecord:
    """What a pruning step did: method, requested amount, parameters before/after (after = non-zero for
    unstructured pruning), and `detail` (e.g. kept channels per layer, CSR bytes)."""
    method: str
    amount: float
    params_before: int
    params_after: int
    detail: dict = field(default_factory=dict)


def _check_amount(amount: float, what: str) -> None:
    if not 0 <= amount < 1:
        raise ValueError(f"{what} must be in [0, 1) (the share removed), got {amount}")


def _layers(model) -> list:
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None or not all(hasattr(l, "mlp") and hasattr(l, "self_attn") for l in layers):
        raise ValueError(f"{type(model).__name__}: pruning supports Llama-layout decoders (model.model.layers[i] "
                         "with .self_attn and .mlp); MoE experts are pruned by routing share, not here")
    return list(layers)


def _decoder_linears(model) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for layer in _layers(model) for m in layer.modules() if isinstance(m, nn.Linear)]


def sparsity(model) -> dict:
    """{"zeros", "total", "sparsity"} over the decoder layers' linear weights."""
    ws = [m.weight for m, _ in _decoder_linears(model)]
    zeros = int(sum((w == 0).sum().item() for w in ws))
    total = int(sum(w.numel() for w in ws))
    return {"zeros": zeros, "total": total, "sparsity": zeros / max(total, 1)}


def magnitude_prune(model, sparsity_: float) -> tuple[nn.Module, PruneRecord]:
    """A copy of `model` with the smallest-magnitude `sparsity_` share of all decoder linear weights set to zero
    (one global threshold). Raises ValueError for a sparsity outside [0, 1)."""
    import torch.nn.utils.prune as tprune
    _check_amount(sparsity_, "sparsity")
    model = copy.deepcopy(model)
    before = sum(p.numel() for p in model.parameters())
    params = _decoder_linears(model)
    if sparsity_ > 0:
        tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=float(sparsity_))
        for m, name in params:
            tprune.remove(m, name)                      # zeros become plain weights: saves as a normal model
    s = sparsity(model)
    nnz = s["total"] - s["zeros"]
    # CSR of each pruned matrix: nnz values (fp16) + nnz column indices (int32) + row pointers (int32)
    rows = sum(m.weight.shape[0] + 1 for m, _ in params)
    csr = nnz * (2 + 4) + rows * 4
    return model, PruneRecord("magnitude", sparsity_, before, before - s["zeros"],
                              {"sparsity": s["sparsity"], "pruned_matrices_dense_fp16_bytes": s["total"] * 2,
                               "pruned_matrices_csr_bytes": csr})


@torch.no_grad()
def _calibrate(model, tok, texts: list[str], max_tokens: int = 128) -> None:
    """Run `texts` through the model with forward(-pre) hooks installed by the caller."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    for t in texts:
        ids = tok(t, add_special_tokens=False)["input_ids"][:max_tokens]
        if ids:
            model(input_ids=torch.tensor([ids], device=dev))
    model.train(was)


def _keep(n: int, ratio: float, what: str) -> int:
    keep = int(round(n * (1 - ratio)))
    if keep < 1:
        raise ValueError(f"ratio {ratio} would remove all {n} {what} of a layer: use a smaller ratio")
    return keep


def _scores(model, tok, texts, modules: list, score) -> list[torch.Tensor]:
    """Per module: the sum over calibration texts of `score(i, input)` for that module's input."""
    totals = [None] * len(modules)

    def hook(i):
        def pre(mod, args):
            s = score(i, args[0].detach().float()[0]).cpu()
            totals[i] = s if totals[i] is None else totals[i] + s
        return pre
    handles = [m.register_forward_pre_hook(hook(i)) for i, m in enumerate(modules)]
    try:
        _calibrate(model, tok, _texts(texts))
    finally:
        for h in handles:
            h.remove()
    return totals


def _texts(texts) -> list[str]:
    texts = [t for t in (texts or []) if t and t.strip()]
    if not texts:
        raise ValueError("structured pruning needs calibration texts (e.g. a few dozen training documents)")
    return texts


def prune_mlp(model, ratio: float, texts: list[str], tok) -> tuple[nn.Module, PruneRecord]:
    """A smaller copy of `model` whose every MLP keeps the (1 - ratio) share of channels that contribute most
    on `texts` (see the module docstring). Raises ValueError for a ratio outside [0, 1) or one that leaves no
    channel."""
    _check_amount(ratio, "ratio")
    layers = _layers(model)
    inter = layers[0].mlp.gate_proj.out_features
    keep = _keep(inter, ratio, "MLP channels")
    # input of down_proj = act(gate(x)) * up(x), (T, I): mean |.| per channel
    scores = _scores(model, tok, texts, [l.mlp.down_proj for l in layers], lambda i, x: x.abs().mean(dim=0))
    kept = [torch.sort((s * layer.mlp.down_proj.weight.detach().float().norm(dim=0).cpu()).topk(keep).indices).values
            for s, layer in zip(scores, layers)]
    before = sum(p.numel() for p in model.parameters())
    new = _rebuild(model, intermediate_size=keep)
    sd = model.state_dict()
    for i, idx in enumerate(kept):
        p = f"model.layers.{i}.mlp."
        for name in ("gate_proj", "up_proj"):
            sd[p + name + ".weight"] = sd[p + name + ".weight"][idx]
        sd[p + "down_proj.weight"] = sd[p + "down_proj.weight"][:, idx]
    new.load_state_dict(sd)
    return new, PruneRecord("mlp_channels", ratio, before, sum(p.numel() for p in new.parameters()),
                            {"intermediate_size": [inter, keep], "kept": [k.tolist() for k in kept]})


def prune_heads(model, ratio: float, texts: list[str], tok) -> tuple[nn.Module, PruneRecord]:
    """A smaller copy of `model` whose every attention layer keeps the (1 - ratio) share of heads with the
    largest mean output norm on `texts`, rounded down to a count that divides the hidden size (transformers
    requires it; `record.detail["heads"]` = [before, kept]). Needs as many key/value heads as query heads
    (no grouped-query attention). Raises ValueError for a ratio outside [0, 1) or one that would remove every head."""
    _check_amount(ratio, "ratio")
    layers = _layers(model)
    c = model.config
    heads, kv = c.num_attention_heads, getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    if kv != heads:
        raise ValueError(f"head pruning needs num_key_value_heads == num_attention_heads, got {kv} and {heads}")
    hd = getattr(c, "head_dim", None) or c.hidden_size // heads
    keep = _keep(heads, ratio, "heads")
    # transformers' configs require hidden_size % num_attention_heads == 0: round the kept count down to such a
    # count (the record states the count kept, so the effective ratio is visible)
    keep = max(k for k in range(1, keep + 1) if c.hidden_size % k == 0)
    w_o = [l.self_attn.o_proj.weight.detach().float() for l in layers]          # (hidden, heads * hd)

    def head_norms(i, x):                          # input of o_proj, (T, heads * hd): the heads side by side
        return torch.stack([(x[:, h * hd:(h + 1) * hd] @ w_o[i][:, h * hd:(h + 1) * hd].T).norm(dim=-1).mean()
                            for h in range(heads)])
    scores = _scores(model, tok, texts, [l.self_attn.o_proj for l in layers], head_norms)
    kept = [torch.sort(s.topk(keep).indices).values for s in scores]
    before = sum(p.numel() for p in model.parameters())
    new = _rebuild(model, num_attention_heads=keep, num_key_value_heads=keep, head_dim=hd)
    sd = model.state_dict()
    for i, idx in enumerate(kept):
        cols = torch.cat([torch.arange(h * hd, (h + 1) * hd) for h in idx.tolist()])
        p = f"model.layers.{i}.self_attn."
        for name in ("q_proj", "k_proj", "v_proj"):
            sd[p + name + ".weight"] = sd[p + name + ".weight"][cols]
            if p + name + ".bias" in sd:
                sd[p + name + ".bias"] = sd[p + name + ".bias"][cols]
        sd[p + "o_proj.weight"] = sd[p + "o_proj.weight"][:, cols]
    new.load_state_dict(sd)
    return new, PruneRecord("attention_heads", ratio, before, sum(p.numel() for p in new.parameters()),
                            {"heads": [heads, keep], "kept": [k.tolist() for k in kept]})


def _rebuild(model, **changes):
    """An untrained model of the same class whose config has `changes` (weights are loaded by the caller)."""
    config = copy.deepcopy(model.config)
    for k, v in changes.items():
        setattr(config, k, v)
    new = type(model)(config)
    return new.to(next(model.parameters()).dtype).eval()
