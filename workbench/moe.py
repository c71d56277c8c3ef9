"""Router losses and routing regularisers for MoE training, computed from the model's router logits.

Here:
- `load_balance_loss()` in four conventions (`CONVENTIONS`), `z_loss()`, and `router_losses()` -> {"aux", "z"};
  the training loss adds `router_aux_loss_coef * aux + router_z_loss_coef * z` to the language-model loss
  itself, so the aux loss is really optimised (transformers only adds it when router logits are requested).
- `moe_layers()` / `moe_blocks()`: the routed MoE blocks and their routers, found per layer by module type.
- `router_rule()`: how a router scores experts (softmax or sigmoid) and whether it picks the top-k of its logits;
  `check_trainable()` refuses training for routers that are not softmax top-k (e.g. DeepSeek-V3's sigmoid router).
- `prepare_for_training()` installs Expert Output Masking (fairseq/NLLB semantics) and an emulated Gating
  Dropout as forward hooks on each MoE block's router; `finalize_for_inference()` bakes EOM's
  inference scaling (1 - p) into the saved expert weights.
Works on any transformers MoE whose router returns (logits, weights, expert ids); shared experts untouched.
Not here: routing analyses (`workbench.probes.routing`).
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch

# convention -> (description, value under uniform routing as a function of top-k)
CONVENTIONS = {
    "hf": ("Hugging Face load_balancing_loss_func: E * sum_i F_i P_i, F_i = share of tokens with i in their "
           "top-k, pooled over all layers", lambda k: float(k)),
    "switch": ("Switch Transformer (eqs. 4-6): E * sum_i f_i P_i, f_i = share of tokens whose top-1 is i; "
               "per layer, mean over layers", lambda k: 1.0),
    "gshard": ("GShard / fairseq top2gate: E * sum_i me_i ce_i, me = mean gate probs, ce = top-1 mask share "
               "(the second expert is not counted); per layer, mean over layers", lambda k: 1.0),
    "deepseek": ("DeepSeekMoE expert-level: sum_i f_i P_i, f_i = E/(k T) * #tokens with i in top-k; "
                 "per layer, mean over layers", lambda k: 1.0),
}


def uniform_value(convention: str, top_k: int) -> float:
    """The loss value when every token's router distribution is uniform (its floor under balanced routing)."""
    _check_convention(convention)
    return CONVENTIONS[convention][1](top_k)


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown aux-loss convention {convention!r}; choose one of {sorted(CONVENTIONS)}")


def _layer_stats(logits: torch.Tensor, top_k: int, mask: torch.Tensor | None):
    """Per layer: P (mean router prob per expert), F1 (top-1 share), Fk (share of tokens with e in top-k)."""
    probs = logits.float().softmax(-1)                              # (tokens, experts)
    n_exp = probs.shape[-1]
    w = torch.ones(probs.shape[0], device=probs.device) if mask is None else mask.reshape(-1).float()
    total = w.sum().clamp_min(1e-9)
    P = (probs * w[:, None]).sum(0) / total                          # (experts,)
    topk = probs.topk(top_k, dim=-1).indices                         # (tokens, k)
    hot = torch.zeros_like(probs).scatter_(1, topk, 1.0)            # (tokens, experts) 1 if e in top-k
    Fk = (hot * w[:, None]).sum(0) / total
    top1 = torch.nn.functional.one_hot(topk[:, 0], n_exp).float()
    F1 = (top1 * w[:, None]).sum(0) / total
    return P, F1, Fk


def load_balance_loss(router_logits, top_k: int, convention: str = "hf", attention_mask=None,
                      per_layer: bool = False, chosen: torch.Tensor | None = None) -> torch.Tensor:
    """Load-balancing loss of router logits (tuple over layers of (tokens, experts)) in a named convention.

    hf:       E * sum_i F_i P_i pooled over layers (uniform routing: k)
    switch:   E * sum_i f1_i P_i per layer, mean over layers (uniform: 1)
    gshard:   E * sum_i me_i ce_i per layer (same formula as switch: fairseq's top-2 gate counts only the
              first expert in ce), mean over layers (uniform: 1)
    deepseek: (E/k) * sum_i F_i P_i per layer, mean over layers (uniform: 1)
    per_layer=True returns the (layers,) vector (for "hf": each layer's own value, uniform k).
    Differentiable (P carries the gradient; the counts do not). `chosen`: the logits' top-k expert ids
    (layers, tokens, k), when the caller has them already (one top-k for the aux loss and the routing
    statistics); used by the pooled "hf" value, computed here when None.
    """
    _check_convention(convention)
    if isinstance(router_logits, torch.Tensor):
        router_logits = (router_logits,)
    if not router_logits:
        raise ValueError("no router logits: call the model with output_router_logits=True on an MoE model")
    n_exp = router_logits[0].shape[-1]
    if not 1 <= top_k <= n_exp:
        raise ValueError(f"top_k={top_k} must be between 1 and the number of experts {n_exp}")
    if convention == "hf" and not per_layer:
        return _pooled_hf(tuple(router_logits), top_k, attention_mask, chosen)
    values = []
    for logits in router_logits:
        P, F1, Fk = _layer_stats(logits, top_k, attention_mask)
        if convention == "hf":
            values.append(n_exp * (Fk * P).sum())
        elif convention in ("switch", "gshard"):
            values.append(n_exp * (F1 * P).sum())
        else:
            values.append(n_exp / top_k * (Fk * P).sum())
    values = torch.stack(values)
    return values if per_layer else values.mean()


def _pooled_hf(router_logits: tuple, top_k: int, attention_mask=None, chosen=None) -> torch.Tensor:
    """transformers' Mixtral `load_balancing_loss_func`, the same maths without a host sync (some transformers
    versions count assignments with `bincount`, which waits for the GPU and cannot be captured in a CUDA graph):
    E * sum_e (A_e / N) (S_e / N), A_e = top-k assignments to expert e, S_e = summed router probabilities of e,
    N = rows, all pooled over the layers' (unmasked) tokens. Tested equal to the library's function."""
    dev = router_logits[0].device
    n_exp = router_logits[0].shape[-1]
    counts = torch.zeros(n_exp, dtype=torch.float32, device=dev)
    prob_sum = torch.zeros(n_exp, dtype=torch.float32, device=dev)
    w = None if attention_mask is None else attention_mask.reshape(-1).to(dev, torch.float32)
    total = 0.0
    for i, logits in enumerate(router_logits):
        probs = torch.nn.functional.softmax(logits.to(dev), dim=-1)
        ids = (probs.topk(top_k, dim=-1).indices if chosen is None else chosen[i].to(dev)).reshape(-1)
        ones = torch.ones_like(ids, dtype=torch.float32) if w is None else w.repeat_interleave(top_k)
        counts = counts.scatter_add(0, ids, ones)                # whole numbers: exact in any order
        prob_sum = prob_sum + (probs.float() if w is None else probs.float() * w[:, None]).sum(0)
        total = total + (probs.shape[0] if w is None else w.sum())
    return n_exp * ((counts / total) * (prob_sum / total)).sum()


def z_loss(router_logits: tuple[torch.Tensor, ...], per_layer: bool = False, attention_mask=None) -> torch.Tensor:
    """ST-MoE router z-loss: mean over tokens (and layers) of logsumexp(logits)^2.

    `attention_mask` (batch, seq), 1 for real tokens: padding rows are left out of the mean, as in the
    load-balancing loss (router logits are (batch * seq, experts) per layer, batch-major).
    """
    if isinstance(router_logits, torch.Tensor):
        router_logits = (router_logits,)
    sq = [torch.logsumexp(r.float(), -1).pow(2) for r in router_logits]            # per layer: (tokens,)
    if attention_mask is None:
        w = torch.ones_like(sq[0])
    else:
        w = attention_mask.reshape(-1).to(sq[0].device, torch.float32)
        if w.numel() != sq[0].numel():
            raise ValueError(f"attention_mask has {w.numel()} positions but the router logits have "
                             f"{sq[0].numel()} tokens per layer")
    per = torch.stack([(v * w).sum() / w.sum().clamp_min(1e-9) for v in sq])      # (layers,)
    return per if per_layer else per.mean()


def router_losses(router_logits: tuple[torch.Tensor, ...], config, attention_mask=None,
                  convention: str = "hf", chosen: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """{"aux": load-balancing loss in `convention` (see CONVENTIONS), "z": z-loss}; `attention_mask` (batch,
    seq) leaves padding tokens out of both. Both assume a softmax top-k router (see check_trainable).
    `chosen`: the logits' top-k expert ids (layers, tokens, k) if already known (see load_balance_loss)."""
    n_exp = getattr(config, "num_local_experts", None) or config.num_experts
    if router_logits and router_logits[0].shape[-1] != n_exp:
        raise ValueError(f"router logits have {router_logits[0].shape[-1]} experts but the config says {n_exp}")
    aux = load_balance_loss(router_logits, config.num_experts_per_tok, convention, attention_mask, chosen=chosen)
    return {"aux": aux, "z": z_loss(router_logits, attention_mask=attention_mask)}


# --------------------------------------------------------------------------- hooks on the MoE blocks

@dataclass(frozen=True)
class MoeLayer:
    """One routed MoE block: its decoder-layer index, the block, and its router module.

    The router's forward returns (router logits, top-k gate weights, top-k expert ids), as every transformers 5
    MoE router does (Mixtral, Qwen2-MoE, OLMoE, DeepSeek-V2/V3, GraniteMoE, Jamba, gpt-oss).
    """
    layer: int
    block: torch.nn.Module
    router: torch.nn.Module
    name: str = ""


def _router_class(model):
    """The router class transformers records `router_logits` from (output index 0), or None."""
    rec = getattr(model, "_can_record_outputs", None) or {}
    r = rec.get("router_logits") if isinstance(rec, dict) else None
    cls = getattr(r, "target_class", None)
    return cls if isinstance(cls, type) and getattr(r, "index", 0) == 0 else None


def moe_layers(model) -> list[MoeLayer]:
    """Every routed MoE block of `model`, found layer by layer from its router modules (dense layers, e.g.
    DeepSeek's first layers or Jamba's alternate ones, are skipped; the indices are the decoder layers').

    Routers are the modules of the class transformers records router logits from; without one, modules named
    `gate`/`router` beside an `experts` module. Empty for a dense model.
    """
    cls = _router_class(model)
    found = []
    for name, mod in model.named_modules():
        parent_name, _, leaf = name.rpartition(".")
        if cls is not None:
            if not isinstance(mod, cls):
                continue
        elif leaf not in ("gate", "router") or not hasattr(model.get_submodule(parent_name), "experts"):
            continue
        digits = [int(part) for part in name.split(".") if part.isdigit()]
        found.append(MoeLayer(digits[0] if digits else len(found), model.get_submodule(parent_name), mod, name))
    return found


def moe_blocks(model) -> list[tuple[int, torch.nn.Module]]:
    """(decoder-layer index, MoE block) for every routed MoE block (see moe_layers)."""
    return [(m.layer, m.block) for m in moe_layers(model)]


def router_outputs(router, output) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, weights, expert ids) from a router's forward output; ValueError naming an unknown router."""
    if isinstance(output, (tuple, list)) and len(output) == 3 and all(isinstance(t, torch.Tensor) for t in output):
        logits, weights, index = output
        if not index.is_floating_point() and weights.shape == index.shape and logits.shape[:-1] == index.shape[:-1]:
            return logits, weights, index
    raise ValueError(f"unknown router {type(router).__name__}: its forward does not return (router logits, "
                     "top-k weights, top-k expert ids), so the chosen experts cannot be read from it")


SCORE_FUNCTIONS = {"softmax": lambda z: z.softmax(-1), "sigmoid": torch.sigmoid}


@dataclass(frozen=True)
class RouterRule:
    """How a router turns its logits into gate weights, read from its outputs on a probe input.

    score_fn: the name in SCORE_FUNCTIONS whose per-expert scores the gate weights are (the chosen experts'
    entries, up to one constant scale, renormalised over the top-k or not); "unknown" when none or several fit.
    plain_top_k: the chosen experts are the top-k of the logits (no expert groups, no bias correction).
    """
    router: str
    score_fn: str
    plain_top_k: bool

    @property
    def softmax_top_k(self) -> bool:
        """True for the Mixtral-family rule the load-balancing aux loss and z-loss are defined on."""
        return self.score_fn == "softmax" and self.plain_top_k


def _scores_fit(f, logits, weights, index) -> bool:
    s = f(logits).gather(-1, index)
    for base in (s, s / s.sum(-1, keepdim=True)):
        c = (weights * base).sum() / (base * base).sum().clamp_min(1e-30)
        if c > 0 and torch.allclose(weights, c * base, rtol=1e-4, atol=1e-6):
            return True
    return False


@torch.no_grad()
def router_rule(router, hidden_size: int | None = None, n_tokens: int = 64) -> RouterRule:
    """The RouterRule of `router`, from one forward of a float32 copy whose weight matrices are redrawn at random
    (so a router that starts at zero still shows its rule; buffers such as a bias correction are kept) on
    random inputs of `hidden_size` (default: the router weight's last dimension). A top-1 router is probed
    with top_k=2, since renormalised top-1 weights are all equal whatever the scores."""
    name = type(router).__name__
    weight = getattr(router, "weight", None)
    hidden = hidden_size or (weight.shape[-1] if isinstance(weight, torch.Tensor) else None)
    gen = torch.Generator().manual_seed(0)
    try:
        probe = copy.deepcopy(router).float().eval()
        for p in probe.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
        if getattr(probe, "top_k", None) == 1:
            probe.top_k = 2
        device = next(probe.parameters()).device
        x = torch.randn(n_tokens, hidden, generator=gen).to(device)
        logits, weights, index = router_outputs(router, type(probe).forward(probe, x))   # no hooks
    except Exception:
        return RouterRule(name, "unknown", False)
    logits, weights, index = logits.float().reshape(-1, logits.shape[-1]), weights.float(), index.long()
    weights, index = weights.reshape(logits.shape[0], -1), index.reshape(logits.shape[0], -1)
    fits = [n for n, f in SCORE_FUNCTIONS.items() if _scores_fit(f, logits, weights, index)]
    chosen = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, index, True)
    best = torch.zeros_like(chosen).scatter_(1, logits.topk(index.shape[1], dim=-1).indices, True)
    return RouterRule(name, fits[0] if len(fits) == 1 else "unknown", torch.equal(chosen, best))


def check_trainable(model) -> None:
    """ValueError naming the feature unless every MoE router of `model` is softmax top-k (see RouterRule): the
    load-balancing aux loss and z-loss added in training are defined on softmax router probabilities, and
    routers that score with a sigmoid (DeepSeek-V3 style) balance load with their own bias update."""
    if getattr(getattr(model, "config", None), "model_type", "") == "nllb-moe":
        return      # top-2 softmax routing with the library's own aux loss (see workbench.train.pairs)
    hidden = getattr(getattr(model, "config", None), "hidden_size", None)
    for m in moe_layers(model):
        rule = router_rule(m.router, hidden)
        if rule.softmax_top_k:
            continue
        arch = (getattr(model.config, "architectures", None) or [type(model).__name__])[0]
        if rule.score_fn == "sigmoid":
            what = ("scores experts with a sigmoid (a DeepSeek-V3-style sigmoid router): training DeepSeek-V3-style "
                    "sigmoid routers needs their own balancing (a bias update)")
        elif rule.score_fn == "softmax":
            what = ("picks experts within expert groups or with a bias correction, not as the top-k of its logits: "
                    "training grouped or bias-corrected routers needs their own balancing")
        else:
            what = ("scores experts with neither a softmax nor a sigmoid of its logits: training such routers needs "
                    "their own balancing")
        raise ValueError(f"cannot train {arch}: its router {rule.router} (MoE layer at decoder layer {m.layer}) "
                         f"{what}; the workbench's load-balancing aux loss and z-loss apply to softmax top-k routers "
                         "(Mixtral, Qwen2-MoE, OLMoE, GraniteMoE, Jamba, gpt-oss)")


def _expert_output_mask_hook(p: float):
    """Expert Output Masking (fairseq `--moe-eom`): in training, each (token, assigned expert) output is
    dropped with probability p, no 1/(1-p) rescaling. Implemented by zeroing that slot's gate weight,
    which is the same as zeroing the expert's output since y = sum_j w_j E_j(x)."""
    def hook(module, args, output):
        if not module.training:
            return None
        logits, weights, index = output
        keep = (torch.rand(weights.shape, device=weights.device) >= p).to(weights.dtype)  # (tokens, k)
        return logits, weights * keep, index
    return hook


def _gating_dropout_hook(p: float, n_experts: int, n_devices: int):
    """Emulated Gating Dropout (Liu et al., 2022) on one device. With probability p per forward of a layer
    (one draw, as fairseq's rank 0 broadcasts it), the all-to-all is "skipped": the flat token rows are split
    into `n_devices` contiguous shards (virtual devices, each owning E/D experts), and each token's expert e is
    replaced by the expert at the same local slot on its own device, d*(E/D) + e % (E/D). Gate weights are kept."""
    local = n_experts // n_devices

    def hook(module, args, output):
        if not module.training or torch.rand(()) >= p:
            return None
        logits, weights, index = output
        rows = index.shape[0]
        device_of_row = torch.arange(rows, device=index.device) * n_devices // max(rows, 1)   # (tokens,)
        return logits, weights, device_of_row[:, None] * local + index % local
    return hook


def prepare_for_training(model, expert_output_mask_p: float = 0.0, gating_dropout_p: float = 0.0,
                         gating_dropout_devices: int = 2) -> list:
    """Install training-only routing regularisers (Expert Output Masking, emulated Gating Dropout) as hooks.

    Returns the hook handles; the training loop removes them when it ends. No-op when both p are 0.
    Hooks act only while `model.training` is True.
    """
    for name, p in (("expert_output_mask_p", expert_output_mask_p), ("gating_dropout_p", gating_dropout_p)):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {p}")
    if not (expert_output_mask_p or gating_dropout_p):
        return []
    layers = moe_layers(model)
    if not layers:
        raise ValueError("expert output masking / gating dropout need an MoE model; this one has no MoE blocks")
    handles = []
    for m in layers:
        if gating_dropout_p:
            n_exp = m.router.weight.shape[0]
            if gating_dropout_devices < 1 or n_exp % gating_dropout_devices:
                raise ValueError(f"gating_dropout_devices={gating_dropout_devices} must divide the number of "
                                 f"experts {n_exp}")
            handles.append(m.router.register_forward_hook(
                _gating_dropout_hook(gating_dropout_p, n_exp, gating_dropout_devices)))
        if expert_output_mask_p:   # after gating dropout, so a rerouted slot can still be masked
            handles.append(m.router.register_forward_hook(_expert_output_mask_hook(expert_output_mask_p)))
    return handles


def finalize_for_inference(model, expert_output_mask_p: float = 0.0) -> None:
    """Make the saved weights behave at inference as EOM prescribes: routed expert outputs scaled by (1 - p).

    The scaling is baked into each routed expert's down projection (E_j is linear in it), so a plain
    `AutoModelForCausalLM.from_pretrained` reload behaves right. Idempotent: the config records it.
    Note: transformers' NLLB-MoE `moe_token_dropout` differs (element-wise nn.Dropout, rescaled by 1/(1-p)
    in training, and also multiplied by (1-p) at eval); this follows fairseq.
    """
    if not expert_output_mask_p:
        return
    if not 0.0 < expert_output_mask_p < 1.0:
        raise ValueError(f"expert_output_mask_p must be in (0, 1), got {expert_output_mask_p}")
    if getattr(model.config, "eom_inference_scale", None) is not None:
        warnings.warn("expert output masking scaling already applied to these weights; not applied twice")
        return
    blocks = moe_blocks(model)
    if not blocks:
        raise ValueError("finalize_for_inference needs an MoE model; this one has no MoE blocks")
    scale = 1.0 - expert_output_mask_p
    with torch.no_grad():
        for _, block in blocks:
            down = getattr(block.experts, "down_proj", None)
            if down is None:
                raise ValueError(f"{type(block.experts).__name__} has no down_proj: cannot bake the EOM scaling")
            down.mul_(scale)
    model.config.expert_output_mask_p = float(expert_output_mask_p)
    model.config.eom_inference_scale = scale
