"""Router losses for MoE training, computed from the model's router logits.

Here: `router_losses()` -> {"aux": load-balancing loss, "z": router z-loss}; the training loss adds
`router_aux_loss_coef * aux + router_z_loss_coef * z` to the language-model loss itself, so the
aux loss is really optimised (transformers only adds it when router logits are requested).
"""
from __future__ import annotations

import torch
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func


def z_loss(router_logits: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """ST-MoE router z-loss: mean over tokens and layers of logsumexp(logits)^2."""
    logits = torch.cat([r.float() for r in router_logits], dim=0)   # (layers*tokens, experts)
    return torch.logsumexp(logits, dim=-1).pow(2).mean()


def router_losses(router_logits: tuple[torch.Tensor, ...], config, attention_mask=None) -> dict[str, torch.Tensor]:
    """{"aux": Hugging Face's pooled top-k load-balancing loss (k under uniform routing), "z": z-loss}."""
    n_exp = getattr(config, "num_local_experts", None) or config.num_experts
    aux = load_balancing_loss_func(router_logits, n_exp, config.num_experts_per_tok, attention_mask)
    return {"aux": aux, "z": z_loss(router_logits)}


def prepare_for_training(model, expert_output_mask_p: float = 0.0, gating_dropout_p: float = 0.0) -> list:
    """Install training-only routing regularisers (Expert Output Masking, emulated Gating Dropout) as hooks.

    Returns the hook handles; the training loop removes them when it ends. No-op when both p are 0.
    """
    if expert_output_mask_p or gating_dropout_p:
        raise NotImplementedError("expert output masking and gating dropout are not available yet")
    return []


def finalize_for_inference(model, expert_output_mask_p: float = 0.0) -> None:
    """Make the saved weights behave at inference as the regulariser prescribes (e.g. EOM's 1-p scaling)."""
    if expert_output_mask_p:
        raise NotImplementedError("expert output masking is not available yet")
