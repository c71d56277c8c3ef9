"""The training losses: next-token cross-entropy, the encoder-decoder prefix-LM loss, and for MoE models the
router's load-balancing and z-losses (`workbench.moe.router_losses`) with per-layer routing statistics.

    lm   = mean token cross-entropy (nats)
    loss = lm + router_aux_loss_coef * aux + router_z_loss_coef * z          (MoE; softmax top-k routers)
Here: `compute_loss()`, `distillation_loss()`, `prefix_lm_loss()`, `routing_stats()`.
"""
from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

from .. import moe as wb_moe
from .config import TrainConfig

_ROUTER_TAKES_CONVENTION = "convention" in inspect.signature(wb_moe.router_losses).parameters


def compute_loss(step_fn, model, x, y, is_moe: bool, cfg: TrainConfig | None = None, teacher=None) -> dict:
    """{"loss": optimised loss, "lm_loss", with a teacher "kd_loss", and for MoE "aux_loss", "z_loss",
    "expert_load", "router_entropy"}.

    lm = mean token cross-entropy; MoE: loss = lm + aux_coef * aux + z_coef * z (softmax top-k routers only:
    train() refuses others, see moe.check_trainable). With a `teacher` (a causal LM over the same vocabulary),
    the lm term becomes (1 - alpha) * lm + alpha * kd, kd = `distillation_loss` at cfg.distill_temperature.
    `step_fn`: a model called as model(input_ids=...), or a lean forward f(x, output_router_logits, targets).
    """
    if getattr(model.config, "is_encoder_decoder", False):
        lm = prefix_lm_loss(step_fn, x, y, eos_id=getattr(model.config, "eos_token_id", None))   # step_fn: maybe DDP
        return {"loss": lm, "lm_loss": lm}
    if isinstance(step_fn, torch.nn.Module):
        out = step_fn(input_ids=x, output_router_logits=True) if is_moe else step_fn(input_ids=x)
        logits, router_logits = out.logits, getattr(out, "router_logits", None)
        lm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
    elif teacher is not None:                                 # the lean forward, returning logits
        logits, router_logits = step_fn(x, is_moe)
        lm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
    else:
        lm, router_logits = step_fn(x, is_moe, targets=y)
    out = {"lm_loss": lm}
    if teacher is not None:
        with torch.no_grad():
            t_logits = teacher(input_ids=x).logits
        out["kd_loss"] = distillation_loss(logits, t_logits, cfg.distill_temperature)
        out["loss"] = (1 - cfg.distill_alpha) * lm + cfg.distill_alpha * out["kd_loss"]
    else:
        out["loss"] = lm
    if not is_moe:
        return out
    c = model.config
    kw = {"convention": cfg.aux_loss_convention} if cfg is not None and _ROUTER_TAKES_CONVENTION else {}
    logits = torch.stack([r.float() for r in router_logits])            # (layers, tokens, experts)
    chosen = logits.topk(c.num_experts_per_tok, dim=-1).indices         # one top-k for the aux loss and the stats
    r = wb_moe.router_losses(router_logits, c, chosen=chosen, **kw)
    aux_coef, z_coef = float(getattr(c, "router_aux_loss_coef", 0.0)), float(getattr(c, "router_z_loss_coef", 0.0))
    load, entropy = routing_stats(logits, c.num_experts_per_tok, chosen)
    return out | {"loss": out["loss"] + aux_coef * r["aux"] + z_coef * r["z"], "aux_loss": r["aux"], "z_loss": r["z"],
                  "expert_load": load, "router_entropy": entropy}


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0
                      ) -> torch.Tensor:
    """Hinton et al. (2015) logit distillation: T^2 * mean over tokens of KL(p_T || q_T), where p_T and q_T are
    the teacher's and the student's softmax at temperature T. Logits (..., V), the same V (the same tokenizer);
    the result is a scalar in nats (the T^2 factor keeps gradient sizes comparable across temperatures).
    Raises ValueError when the vocabularies differ."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ: distillation needs the same tokenizer")
    v = student_logits.shape[-1]
    s = F.log_softmax(student_logits.reshape(-1, v).float() / temperature, -1)
    t = F.log_softmax(teacher_logits.reshape(-1, v).float() / temperature, -1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature ** 2


def prefix_lm_loss(model, x, y, split: int | None = None, eos_id: int | None = None) -> torch.Tensor:
    """Encoder-decoder prefix language modelling (T5's LM adaptation, Raffel et al. 2020; Lester et al. 2021):
    the window w = x + the last target (B, T+1) is cut at `split` (drawn uniformly from [T/4, 3T/4] when None);
    the encoder reads w[:, :split] followed by EOS (T5's end of input, which the training tokenizer's
    `with_eos` adds to every prompt as well), the decoder predicts w[:, split:] from the start token.

    As in T5, an encoder input is one document ending with its only EOS: tokens up to the last EOS before
    the split (earlier documents packed into the window) are masked out of the encoder. Otherwise a document
    boundary's EOS looks like the end of the input, and the decoder cannot find where to continue (measured:
    first-token loss 6.3 nats against 1.4 for later tokens). Returns the mean token cross-entropy (nats)
    over the predicted part."""
    w = torch.cat([x, y[:, -1:]], dim=1)
    t = w.shape[1]
    if split is None:
        split = int(torch.randint(t // 4, 3 * t // 4 + 1, ()).item())
    labels = w[:, split:].contiguous()
    eos = getattr(getattr(model, "config", None), "eos_token_id", None) if eos_id is None else eos_id
    if eos is None:
        return _ce(model(input_ids=w[:, :split], labels=labels).logits, labels)
    prefix = w[:, :split]
    pos = torch.arange(split, device=w.device)
    last = torch.where(prefix == eos, pos, -1).max(dim=1).values                  # (B,) last boundary, or -1
    mask = torch.cat([(pos[None, :] > last[:, None]), torch.ones_like(prefix[:, :1], dtype=torch.bool)], dim=1)
    enc = torch.cat([prefix, w.new_full((w.shape[0], 1), eos)], dim=1)
    return _ce(model(input_ids=enc, attention_mask=mask.long(), labels=labels).logits, labels)


def _ce(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1))


@torch.no_grad()
def routing_stats(router_logits, top_k: int, chosen: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per layer: load (layers, experts) = share of top-k assignments per expert; router entropy (layers,)
    = mean over tokens of -sum_e p_e log p_e with p = softmax(router logits). `router_logits`: a tuple over
    layers of (tokens, experts), or them stacked; `chosen`: their top-k expert ids (layers, tokens, k) if known."""
    logits = (router_logits.float() if isinstance(router_logits, torch.Tensor)     # stacked by the caller already
              else torch.stack([r.float() for r in router_logits]))              # (layers, tokens, experts)
    n_exp = logits.shape[-1]
    idx = logits.topk(top_k, dim=-1).indices if chosen is None else chosen   # (layers, tokens, k)
    counts = F.one_hot(idx, n_exp).sum(dim=(1, 2)).float()               # (layers, experts)
    load = counts / counts.sum(-1, keepdim=True)
    logp = logits.log_softmax(-1)
    entropy = -(logp.exp() * logp).sum(-1).mean(-1)                      # (layers,)
    return load, entropy
