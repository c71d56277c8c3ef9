"""Translation models from transformers' own classes: NLLB-MoE (`NllbMoeForConditionalGeneration`) and its dense
twin, the architecture of NLLB-200's dense models (`M2M100ForConditionalGeneration`).

Presets (`MT_PRESETS`, counts with the 2,052-token translation vocabulary): the MoE has top-2 gating over
`num_experts` experts in every `*_sparse_step`-th layer (NLLB-200 used every 4th layer; here every layer, so the
layer-wise routing analyses have a point per layer); its active parameters per token match the dense twin's (two
experts of half the dense FFN width).

Routing in training, around the library's router (`NllbMoeTop2Router`), as forward hooks (`routing_hooks`):
- expert capacity: each expert takes at most C = ceil(capacity_factor * 2 * N / E) of the N token rows of a
  forward (GShard / NLLB-200; first come first served, as the library routes); at evaluation the library's
  `moe_eval_capacity_token_fraction` = 1.0 drops nothing. (The library keeps the capacity of its last call as
  state, so the hook sets it before every training forward.)
- Expert Output Masking (NLLB-200 section 6.2.2): each (token, expert) gate is zeroed with probability p, no
  rescaling; `finalize_eom` then scales every expert's output by (1 - p) in the saved weights. The library's
  `moe_token_dropout` is not used (kept 0): it is element-wise dropout rescaled by 1/(1-p) in training and
  multiplied again by (1-p) at evaluation, which neither masks whole token outputs nor keeps the scale.
- Gating Dropout (Liu et al. 2022), emulated on one device: with probability p per layer forward the token rows
  are split into `gd_devices` contiguous shards (virtual devices owning E/D experts each) and every assignment
  is moved to the expert at the same local slot of the token's own shard (no all-to-all), gate weights kept.
The library's expert dispatch is checked at import (`nllb_experts_dispatch_ok`): transformers 5.x (at least up
to 5.24) passes the top-1 one-hot mask where `NllbMoeExperts.forward` expects expert indices, so only experts 0
and 1 ever run. `patch_nllb_moe_experts()` installs the dispatch of transformers 4.x (every expert with a
non-zero combine weight runs on its tokens) when, and only when, the probe finds the library's wrong.
Here: `MT_PRESETS`, `mt_config()`, `build_translation_model()`, `routing_hooks()`, `finalize_eom()`,
`nllb_experts_dispatch_ok()`, `patch_nllb_moe_experts()`, `is_translation_model()`.
"""
from __future__ import annotations

import logging
import math

import torch
from transformers import (M2M100Config, M2M100ForConditionalGeneration, NllbMoeConfig,
                          NllbMoeForConditionalGeneration)
from transformers.models.nllb_moe import modeling_nllb_moe as _nllb

from .data import check_mt_tokenizer

MT_TYPES = ("m2m_100", "nllb-moe")
# name -> (architecture, settings); NllbMoeConfig / M2M100Config field names
MT_PRESETS: dict[str, tuple[str, dict]] = {
    "mt-dense": ("m2m_100", dict(d_model=128, encoder_layers=3, decoder_layers=3, encoder_attention_heads=4,
                                 decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256)),
    "mt-moe": ("nllb-moe", dict(d_model=128, encoder_layers=3, decoder_layers=3, encoder_attention_heads=4,
                                decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, num_experts=8,
                                encoder_sparse_step=1, decoder_sparse_step=1, router_aux_loss_coef=0.01,
                                router_z_loss_coef=0.001)),
}
MT_DEFAULTS = dict(max_position_embeddings=128, dropout=0.1, attention_dropout=0.0, activation_dropout=0.0,
                   encoder_layerdrop=0.0, decoder_layerdrop=0.0, scale_embedding=True, activation_function="relu")
MOE_DEFAULTS = dict(moe_token_dropout=0.0, moe_eval_capacity_token_fraction=1.0,
                    router_ignore_padding_tokens=False, second_expert_policy="all",
                    normalize_router_prob_before_dropping=False, batch_prioritized_routing=False)
# workbench settings saved in config.json beside the library's (read by routing_hooks, ignored by transformers)
ROUTING_SETTINGS = dict(capacity_factor=1.0, expert_output_mask_p=0.0, gating_dropout_p=0.0, gd_devices=2)


def is_translation_model(model_or_config) -> bool:
    c = getattr(model_or_config, "config", model_or_config)
    return getattr(c, "model_type", "") in MT_TYPES


def mt_config(preset: str = "mt-moe", tokenizer=None, **overrides):
    """The transformers config of translation preset `preset` with `overrides` (config field names, plus the
    ROUTING_SETTINGS for the MoE). Special token ids come from `tokenizer` (a train_mt_tokenizer one); the decoder
    starts from EOS as NLLB's does. ValueError names an unknown preset or setting."""
    if preset not in MT_PRESETS:
        raise ValueError(f"unknown translation preset {preset!r}; valid: {', '.join(MT_PRESETS)}")
    arch, base = MT_PRESETS[preset]
    kw = {**MT_DEFAULTS, **base, **(dict(MOE_DEFAULTS, **ROUTING_SETTINGS) if arch == "nllb-moe" else {})}
    cls = NllbMoeConfig if arch == "nllb-moe" else M2M100Config
    unknown = sorted(set(overrides) - set(kw) - set(cls().to_dict()))
    if unknown:
        from ..config import did_you_mean
        valid = set(kw) | set(cls().to_dict())
        raise ValueError(did_you_mean("setting", unknown, valid) or
                         f"unknown setting(s) {unknown} for {preset} ({cls.__name__}); the preset's: {sorted(kw)}")
    kw.update(overrides)
    if tokenizer is not None:
        check_mt_tokenizer(tokenizer)
        kw.update(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                  eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id)
    for name in ("expert_output_mask_p", "gating_dropout_p"):
        if not 0.0 <= kw.get(name, 0.0) < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {kw[name]}")
    if arch == "nllb-moe" and kw["num_experts"] % kw["gd_devices"]:
        raise ValueError(f"gd_devices={kw['gd_devices']} must divide num_experts={kw['num_experts']}")
    return cls(**kw)


def build_translation_model(preset: str = "mt-moe", tokenizer=None, seed: int | None = None, **overrides):
    """A randomly initialised translation model of `preset` (eager attention: NLLB-MoE has no SDPA path)."""
    if seed is not None:
        torch.manual_seed(seed)
    config = mt_config(preset, tokenizer, **overrides)
    cls = NllbMoeForConditionalGeneration if config.model_type == "nllb-moe" else M2M100ForConditionalGeneration
    model = cls(config)
    model.config._attn_implementation = "eager"
    model.generation_config.decoder_start_token_id = config.decoder_start_token_id
    model.generation_config.max_length = config.max_position_embeddings   # plain generate() stops within context
    return model


# ----------------------------------------------------------------------------- routing in training

def _routers(model) -> list[tuple[str, torch.nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _nllb.NllbMoeTop2Router)]


def _capacity_pre_hook(factor: float):
    def hook(router, args):
        if router.training:
            n = args[0].reshape(-1, args[0].shape[-1]).shape[0]
            router.expert_capacity = max(1, math.ceil(factor * 2 * n / router.num_experts))
    return hook


def _eom_hook(p: float):
    def hook(router, args, output):
        if not router.training:
            return None
        top1, probs, logits = output
        keep = (torch.rand(probs.shape[0], probs.shape[1], device=probs.device) >= p).to(probs.dtype)
        return top1, probs * keep, logits
    return hook


def _gating_dropout_hook(p: float, devices: int):
    def hook(router, args, output):
        if not router.training or torch.rand(()) >= p:
            return None
        top1, probs, logits = output
        rows, n_exp = probs.shape
        local = n_exp // devices
        shard = torch.arange(rows, device=probs.device) * devices // max(rows, 1)               # (rows,)
        col = shard[:, None] * local + torch.arange(n_exp, device=probs.device)[None, :] % local  # (rows, E)
        moved = torch.zeros_like(probs).scatter_add_(1, col, probs)
        moved_top1 = torch.zeros_like(top1).scatter_add_(1, col, top1)
        return moved_top1, moved, logits
    return hook


def routing_hooks(model) -> list:
    """Install the training-time routing of the module docstring (capacity, EOM, gating dropout) from the model
    config's ROUTING_SETTINGS; returns the hook handles (remove them when training ends). [] for a dense model."""
    if getattr(model.config, "model_type", "") != "nllb-moe":
        return []
    c = model.config
    handles = []
    for _, router in _routers(model):
        handles.append(router.register_forward_pre_hook(_capacity_pre_hook(getattr(c, "capacity_factor", 1.0))))
        if getattr(c, "gating_dropout_p", 0.0):
            handles.append(router.register_forward_hook(_gating_dropout_hook(c.gating_dropout_p, c.gd_devices)))
        if getattr(c, "expert_output_mask_p", 0.0):        # after gating dropout: a moved slot can still be masked
            handles.append(router.register_forward_hook(_eom_hook(c.expert_output_mask_p)))
    return handles


@torch.no_grad()
def finalize_eom(model) -> None:
    """Scale every expert's output by (1 - p) in the weights (fc2 weight and bias) so inference matches EOM's
    expectation in training; records `eom_inference_scale` in the config. Idempotent; no-op when p is 0."""
    c = model.config
    p = float(getattr(c, "expert_output_mask_p", 0.0) or 0.0)
    if getattr(c, "model_type", "") != "nllb-moe" or not p:
        return
    if getattr(c, "eom_inference_scale", None) is not None:
        return
    for name, mod in model.named_modules():
        if isinstance(mod, _nllb.NllbMoeDenseActDense) and ".experts." in name:
            mod.fc2.weight.mul_(1 - p)
            mod.fc2.bias.mul_(1 - p)
    c.eom_inference_scale = 1 - p


# ----------------------------------------------------------------------------- the library's expert dispatch

_LIBRARY_FORWARD = _nllb.NllbMoeExperts.forward


def _dispatch_forward(self, hidden_states: torch.Tensor, router_mask: torch.Tensor, router_probs: torch.Tensor):
    """transformers 4.x NLLB-MoE dispatch: expert e runs on the tokens with a non-zero combine weight for e, and
    its output is added with that weight. hidden_states (N, d); router_probs (N, E) combine weights after
    capacity; router_mask (the top-1 one-hot) is not needed. moe_token_dropout kept as the library applies it."""
    if hidden_states.is_cuda and not self.moe_token_dropout:
        return _all_experts_forward(self, hidden_states, router_probs)
    out = torch.zeros_like(hidden_states)
    dispatch = router_probs > 0
    for e in dispatch.any(0).nonzero().flatten().tolist():
        rows = dispatch[:, e].nonzero().flatten()
        y = self[f"expert_{e}"](hidden_states[rows]) * router_probs[rows, e, None]
        if self.moe_token_dropout > 0:
            y = self.token_dropout(y) if self.training else y * (1 - self.moe_token_dropout)
        out.index_add_(0, rows, y.to(out.dtype))
    return out


def _all_experts_forward(self, hidden_states: torch.Tensor, router_probs: torch.Tensor) -> torch.Tensor:
    """The same sum as `_dispatch_forward`, sum_e w_e(x) E_e(x), computed for every expert on every token with
    batched matrix products (experts with weight 0 add 0, and get no gradient from that token): no
    data-dependent indexing, so no host syncs. Used on CUDA, where small experts are launch-bound."""
    experts = [self[f"expert_{e}"] for e in range(self.num_experts)]
    w1 = torch.stack([e.fc1.weight for e in experts])                    # (E, f, d)
    b1 = torch.stack([e.fc1.bias for e in experts])                      # (E, f)
    w2 = torch.stack([e.fc2.weight for e in experts])                    # (E, d, f)
    b2 = torch.stack([e.fc2.bias for e in experts])                      # (E, d)
    x = hidden_states.to(w1.dtype)
    h = experts[0].act(torch.einsum("nd,efd->enf", x, w1) + b1[:, None, :])
    y = torch.einsum("enf,edf->end", h, w2) + b2[:, None, :]             # (E, N, d)
    return torch.einsum("end,ne->nd", y, router_probs.to(y.dtype)).to(hidden_states.dtype)


@torch.no_grad()
def nllb_experts_dispatch_ok(forward=None) -> bool:
    """True when `forward` (default: the library's NllbMoeExperts.forward) runs each token on the experts its
    combine weights name: 4 experts, 4 tokens each routed to one distinct expert, compared with running the
    experts by hand."""
    cfg = NllbMoeConfig(d_model=8, num_experts=4, encoder_ffn_dim=16, decoder_ffn_dim=16, moe_token_dropout=0.0)
    torch.manual_seed(0)
    experts = _nllb.NllbMoeExperts(cfg, 16).eval()
    x = torch.randn(4, 8)
    probs = torch.eye(4)
    top1 = torch.eye(4, dtype=torch.long)
    got = (forward or _LIBRARY_FORWARD)(experts, x, top1, probs)
    want = torch.stack([experts[f"expert_{i}"](x[i:i + 1])[0] for i in range(4)])
    return bool(torch.allclose(got, want, atol=1e-6))


def patch_nllb_moe_experts() -> bool:
    """Install `_dispatch_forward` on NllbMoeExperts when the library's dispatch is wrong (see the module
    docstring); returns True when the patch is in place. Importing workbench.translation (or workbench.train, or
    loading an NLLB-MoE with workbench.models.load_model) calls it; code outside the workbench that loads an
    NLLB-MoE with plain transformers must call it first (the model cards say so)."""
    if _nllb.NllbMoeExperts.forward is _dispatch_forward:
        return True
    if nllb_experts_dispatch_ok():
        return False
    _nllb.NllbMoeExperts.forward = _dispatch_forward
    logging.getLogger(__name__).info("transformers' NllbMoeExperts runs only experts 0 and 1 in this version: "
                                     "installed the transformers 4.x expert dispatch")
    return True


patch_nllb_moe_experts()
