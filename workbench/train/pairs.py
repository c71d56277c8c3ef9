"""Training on translation pairs: what the loop does differently when the corpus is parallel.

A parallel corpus (a list of `translation.data.Pair`, or a .jsonl of {src_lang, tgt_lang, src, tgt}) trains an
encoder-decoder (the translation presets `mt-dense` / `mt-moe`, or a T5 preset) on (source -> target) pairs in
NLLB's layout (see workbench.translation.data). The loss per batch (x: (B, S) encoder ids, y: (B, T) labels,
both right-padded):
    lm   = mean cross-entropy (nats) over the real label tokens (of every rank's shard under DDP: _token_share)
    loss = lm + router_aux_loss_coef * (aux_encoder + aux_decoder) + router_z_loss_coef * z     (NLLB-MoE)
aux is the library's Switch-Transformer load-balancing loss (`load_balancing_loss_func`, over the real tokens of
each side) and z the ST-MoE z-loss averaged over every MoE layer of both sides (the library computes no z-loss).
Routing statistics (expert_load, router_entropy) list the encoder's MoE layers, then the decoder's.
Here: `pair_setup()`, `pair_loss()`, `evaluate_pairs()`, `sample_pairs()`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import moe as wb_moe
from ..translation.data import PairData, prepare_pairs
from ..translation.models import MT_PRESETS, finalize_eom, is_translation_model, routing_hooks

__all__ = ["MT_PRESETS", "PairData", "prepare_pairs", "finalize_eom", "is_translation_model", "pair_setup", "pair_tokenizer",
           "pair_loss", "evaluate_pairs", "sample_pairs", "mt_routing"]


def mt_routing(model, cfg) -> list:
    """The NLLB-MoE training-time routing hooks (translation.models.routing_hooks); TrainConfig's
    expert_output_mask_p / gating_dropout_p, when set, are written into the model's config first."""
    for name in ("expert_output_mask_p", "gating_dropout_p"):
        if getattr(cfg, name, 0.0):
            if getattr(model.config, "model_type", "") != "nllb-moe":
                raise ValueError(f"{name} needs an MoE model; {model.config.model_type} is dense")
            setattr(model.config, name, float(getattr(cfg, name)))
    return routing_hooks(model)


def pair_setup(corpus, model_or_preset, tokenizer, cfg):
    """(pairs, texts) when `corpus` is parallel, else (None, None). ValueError when a translation preset is given a
    corpus of plain texts."""
    from ..translation.data import as_pairs, is_parallel
    from ..translation.models import MT_PRESETS
    if not is_parallel(corpus):
        if isinstance(model_or_preset, str) and model_or_preset in MT_PRESETS:
            raise ValueError(f"preset {model_or_preset!r} translates: give a parallel corpus (translation pairs, e.g. "
                             "workbench.translation.parallel_pairs(), or a .jsonl of {src_lang, tgt_lang, src, tgt})")
        return None, None
    pairs = as_pairs(corpus)
    return pairs, [s for p in pairs for s in (p.src, p.tgt)]


def pair_tokenizer(pairs, cfg):
    from ..translation.data import train_mt_tokenizer
    return train_mt_tokenizer(pairs, vocab_size=min(cfg.tokenizer_vocab_size, 2048))


def _masked(logits_per_layer, mask_flat):
    return tuple(r[mask_flat] for r in logits_per_layer)


def _token_share(dec_mask) -> torch.Tensor | float:
    """world * local tokens / all ranks' tokens under torch.distributed (1.0 otherwise): a rank's mean loss times
    this share, averaged over ranks as DDP averages gradients, is the mean over every rank's tokens, the loss of
    one process on the whole batch (pairs differ in length, so ranks hold different token counts)."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return 1.0
    n = dec_mask.sum().float()
    total = n.detach().clone()
    dist.all_reduce(total)
    return dist.get_world_size() * n / total.clamp_min(1.0)


def _decoder_inputs(model, labels):
    """Labels shifted right after the decoder's start token (-100 positions fed as PAD), as the models do."""
    c = model.config
    d = labels.new_full(labels.shape, c.pad_token_id)
    d[:, 1:] = labels[:, :-1].masked_fill(labels[:, :-1] == -100, c.pad_token_id)
    d[:, 0] = c.decoder_start_token_id
    return d


def pair_loss(step_fn, model, x, y, is_moe: bool) -> dict:
    """{"loss", "lm_loss"[, "aux_loss", "z_loss", "expert_load", "router_entropy"]} for one batch of pairs (see
    the module docstring); `step_fn` is the model or its DDP wrapper. The model is called without labels (its own
    loss would compute the cross-entropy a second time)."""
    from transformers.models.nllb_moe.modeling_nllb_moe import load_balancing_loss_func
    c = model.config
    pad = c.pad_token_id
    src_mask = (x != pad).long()
    labels = y.masked_fill(y == pad, -100)
    dec_mask = (labels != -100).long()
    kw = dict(input_ids=x, attention_mask=src_mask, decoder_input_ids=_decoder_inputs(model, labels),
              decoder_attention_mask=dec_mask)
    moe = is_moe and c.model_type == "nllb-moe"
    out = step_fn(**kw, output_router_logits=True) if moe else step_fn(**kw)
    lm = F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)
    lm = lm * _token_share(dec_mask)
    if not moe:
        return {"loss": lm, "lm_loss": lm}
    n_exp = c.num_experts
    aux = (load_balancing_loss_func(out.encoder_router_logits, n_exp, 2, src_mask)
           + load_balancing_loss_func(out.decoder_router_logits, n_exp, 2, dec_mask))
    enc = _masked(out.encoder_router_logits, src_mask.reshape(-1).bool())
    dec = _masked(out.decoder_router_logits, dec_mask.reshape(-1).bool())
    z = torch.stack([wb_moe.z_loss(r) for r in enc + dec]).mean()   # the sides hold different token counts
    from .losses import routing_stats
    (le, he), (ld, hd) = routing_stats(enc, 2), routing_stats(dec, 2)
    load, entropy = torch.cat([le, ld]), torch.cat([he, hd])
    loss = lm + float(c.router_aux_loss_coef) * aux + float(c.router_z_loss_coef) * z
    return {"loss": loss, "lm_loss": lm, "aux_loss": aux, "z_loss": z, "expert_load": load, "router_entropy": entropy}


@torch.no_grad()
def evaluate_pairs(model, data, batch_size: int, max_batches: int, device, amp=None) -> float:
    """Mean token cross-entropy (nats) of the validation pairs' labels given their sources (model in eval mode:
    no capacity limit, no EOM or gating dropout)."""
    import contextlib
    was = model.training
    model.eval()
    total, n = 0.0, 0
    for x, y in data.val_batches(batch_size, max_batches):
        x, y = x.to(device), y.to(device)
        labels = y.masked_fill(y == data.pad, -100)
        with amp or contextlib.nullcontext():
            logits = model(input_ids=x, attention_mask=(x != data.pad).long(), labels=labels,
                           decoder_attention_mask=(labels != -100).long()).logits
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100,
                                 reduction="sum").item()
        n += int((labels != -100).sum())
    model.train(was)
    return total / max(n, 1)


def sample_pairs(model, tok, data, n: int = 2) -> list[str]:
    """Greedy translations of the first `n` validation pairs, as "src_lang->tgt_lang: source => hypothesis"."""
    from ..translation.decode import translate
    out = []
    for p in data.val_pairs[:n]:
        hyp = translate(model, tok, [p.src], p.src_lang, p.tgt_lang)[0]
        out.append(f"{p.src_lang}->{p.tgt_lang}: {p.src} => {hyp}")
    return out
