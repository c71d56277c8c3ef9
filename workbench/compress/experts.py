"""Pruning a mixture of experts by routing share, and recovery fine-tuning after any pruning.

- `expert_shares(model, tok, texts)`: (layers, experts) share of the top-k choices each expert receives on
  calibration text, read from the routers' own logits (rows sum to 1; uniform = 1/E).
- `prune_experts(model, ratio, texts, tok)`: removes, in every MoE layer, the `ratio` share of experts that
  receive the fewest top-k choices (the routing-share criterion used to drop experts in e.g. Lu et al. 2024,
  "Not All Experts are Equal", and Chen et al. 2022, "Task-specific expert pruning"). Each layer's router keeps
  only the rows of the kept experts; the fused expert tensors keep only their slices; the result is a plain
  `transformers` model whose config says the new `num_local_experts`, so it saves and loads without workbench
  code. Routing is softmax then top-k then renormalised over the k chosen (Mixtral), so a token whose k
  choices were all kept is routed and weighted exactly as before: only tokens that chose a removed expert change.
- `recover(model, tok, corpus, steps)`: a short fine-tuning after pruning (`train()` with a low learning rate),
  the "optional recovery" step of pruning pipelines (e.g. Sheared-LLaMA's continued pre-training, much shorter).

Mixtral-layout MoE models (`model.model.layers[i].mlp` with `.gate.weight` (E, hidden) and fused
`.experts.gate_up_proj` (E, 2I, hidden) and `.experts.down_proj` (E, hidden, I), as in transformers 5).
Here: `expert_shares()`, `prune_experts()`, `recover()`.
"""
from __future__ import annotations

import numpy as np
import torch

from .prune import PruneRecord, _check_amount, _keep, _rebuild, _texts


def _moe_blocks(model) -> list:
    layers = getattr(getattr(model, "model", None), "layers", None) or []
    blocks = [l.mlp for l in layers]
    if not blocks or not all(hasattr(b, "gate") and hasattr(getattr(b, "experts", None), "gate_up_proj")
                             for b in blocks):
        raise ValueError(f"{type(model).__name__}: expert pruning needs a Mixtral-layout MoE (every layer's .mlp with "
                         ".gate and fused .experts.gate_up_proj / .down_proj); for dense models use prune_mlp")
    return blocks


@torch.no_grad()
def expert_shares(model, tok, texts: list[str], max_tokens: int = 256) -> np.ndarray:
    """(layers, experts) share of the top-k assignments each expert gets over the tokens of `texts` (each text
    cut to `max_tokens`). Raises ValueError for a model that is not a Mixtral-layout MoE or texts without tokens."""
    _moe_blocks(model)
    c = model.config
    k, n_exp = c.num_experts_per_tok, c.num_local_experts
    counts = np.zeros((c.num_hidden_layers, n_exp))
    was, dev = model.training, next(model.parameters()).device
    model.eval()
    for t in _texts(texts):
        ids = tok(t, add_special_tokens=False)["input_ids"][:max_tokens]
        if not ids:
            continue
        out = model(input_ids=torch.tensor([ids], device=dev), output_router_logits=True)
        for layer, logits in enumerate(out.router_logits):
            top = logits.float().reshape(-1, n_exp).topk(k, dim=-1).indices.flatten().cpu()
            counts[layer] += np.bincount(top.numpy(), minlength=n_exp)
    model.train(was)
    if counts.sum() == 0:
        raise ValueError("expert_shares: the texts hold no tokens")
    return counts / counts.sum(axis=1, keepdims=True)


def prune_experts(model, ratio: float, texts: list[str], tok) -> tuple[torch.nn.Module, PruneRecord]:
    """A copy of `model` whose every MoE layer keeps the (1 - ratio) share of its experts that receive the most
    top-k choices on `texts` (see the module docstring). `record.detail`: experts [before, kept], the removed
    expert ids per layer and the shares measured. Raises ValueError for a ratio outside [0, 1), a model that is
    not a Mixtral-layout MoE, or a ratio that would leave fewer experts than `num_experts_per_tok`."""
    _check_amount(ratio, "ratio")
    _moe_blocks(model)
    c = model.config
    n_exp, k = c.num_local_experts, c.num_experts_per_tok
    keep = _keep(n_exp, ratio, "experts")
    if keep < k:
        raise ValueError(f"ratio {ratio} keeps {keep} of {n_exp} experts, fewer than the {k} each token is routed to "
                         f"(num_experts_per_tok): use a ratio up to {(n_exp - k) / n_exp:.2f}")
    shares = expert_shares(model, tok, texts)
    kept = [np.sort(np.argsort(-s, kind="stable")[:keep]) for s in shares]
    before = sum(p.numel() for p in model.parameters())
    new = _rebuild(model, num_local_experts=keep)
    sd = model.state_dict()
    for i, idx in enumerate(kept):
        sel = torch.as_tensor(idx)
        p = f"model.layers.{i}.mlp."
        for name in ("gate.weight", "gate.bias", "experts.gate_up_proj", "experts.down_proj",
                     "experts.gate_up_proj_bias", "experts.down_proj_bias"):
            if p + name in sd:
                sd[p + name] = sd[p + name][sel]
    new.load_state_dict(sd)
    return new, PruneRecord("experts", ratio, before, sum(p.numel() for p in new.parameters()),
                            {"experts": [n_exp, keep],
                             "removed": [sorted(set(range(n_exp)) - set(i.tolist())) for i in kept],
                             "shares": shares.round(4).tolist()})


def recover(model, tok, corpus, steps: int = 100, lr: float = 3e-4, keep_zeros: bool = True, **train_kw):
    """Fine-tune a pruned `model` on `corpus` for `steps` at a low learning rate (`train()`; warm-up 10% of the
    steps). Returns the TrainResult (its .model is the recovered model, .history the losses). `train_kw` go to
    `train()` (batch_size, seq_len, seed, device, out_dir, callbacks, ...).

    keep_zeros: weights that are exactly zero (magnitude pruning) stay zero: their gradients are masked, so
    AdamW's moments and its decoupled weight decay leave them at 0 and the sparsity survives recovery."""
    from ..train import train
    kw = dict(warmup=max(1, steps // 10), eval_every=0, sample_n=1, sample_max_new_tokens=8, log_every=max(1, steps // 10))
    hooks = []
    if keep_zeros:
        for p in model.parameters():
            if p.dim() >= 2 and p.requires_grad and bool((p == 0).any()):
                mask = (p.detach() != 0).to(p.dtype)
                hooks.append(p.register_hook(lambda g, m=mask: g * m.to(g.device)))
    try:
        return train(model.train(), corpus, tokenizer=tok, steps=steps, lr=lr, **{**kw, **train_kw})
    finally:
        for h in hooks:
            h.remove()
