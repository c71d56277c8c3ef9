"""NLLB-200's routing analyses on a translation NLLB-MoE: who routes where, per language, layer by layer.

`translation_routing(model, tok, pairs)` runs the model teacher-forced on translation pairs (the encoder reads the
source, the decoder the reference target) in evaluation mode and records every MoE router's output as two
`probes.routing.RoutingRecord`s, one per side, so every routing statistic and view of the workbench applies:
    encoder record: source tokens, groups "src_lang", "tgt_lang", "direction"
    decoder record: decoder input tokens (target language token first), the same groups
Language x expert heat maps (NLLB-200 figure 36) are `probes.routing_stats.group_expert(rec, "src_lang" /
"tgt_lang", layer)`; their group similarity matrices `group_similarity`, and the layer-wise language separation
1 - mean off-diagonal cosine similarity (`separation_score`), for which `separation_by_layer` makes the table.
NLLB-200 found languages separate most in the late decoder layers (grouped by target language) and little in the
encoder.
`capacity_overflow` routes the same tokens as training does at a capacity factor (the library's first-come
first-served top-2 routing with capacity C = ceil(cf * 2 * N / E) for N tokens of a batch) and returns the share
of top-2 assignments that do not fit, per layer.
Here: `translation_routing()`, `separation_by_layer()`, `capacity_overflow()`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..probes.routing import RoutingRecord
from ..probes.routing_stats import group_expert, group_similarity, separation_score
from .data import Pair, encode_pair
from .models import _routers


def _batches(tok, pairs: list[Pair], batch_size: int, pad: int):
    for b in range(0, len(pairs), batch_size):
        chunk = pairs[b:b + batch_size]
        enc = [encode_pair(tok, p) for p in chunk]
        width_s, width_t = max(len(s) for s, _ in enc), max(len(t) for _, t in enc)
        x = torch.full((len(enc), width_s), pad, dtype=torch.long)
        y = torch.full((len(enc), width_t), pad, dtype=torch.long)
        for i, (s, t) in enumerate(enc):
            x[i, :len(s)], y[i, :len(t)] = torch.tensor(s), torch.tensor(t)
        yield chunk, x, y


def _side_record(tok, logits, ids, doc, pairs, side, model) -> RoutingRecord:
    z = torch.cat(logits, dim=1).float()                                        # (L, T, E)
    probs = z.softmax(-1)
    top = probs.topk(2, dim=-1)
    w = top.values / top.values.sum(-1, keepdim=True)                           # NLLB normalises the top-2 gates
    ids = np.concatenate(ids)
    doc = np.concatenate(doc)
    groups = {"src_lang": np.array([pairs[d].src_lang for d in doc]), "tgt_lang": np.array([pairs[d].tgt_lang for d in doc]),
              "direction": np.array([f"{pairs[d].src_lang}-{pairs[d].tgt_lang}" for d in doc])}
    n_layers = z.shape[0]
    return RoutingRecord(tokens=tok.convert_ids_to_tokens(ids.tolist()), token_ids=ids, pred_ids=np.full_like(ids, -1),
                         doc=doc, logits=z.numpy(), topk=top.indices.numpy(), weights=w.numpy(),
                         layers=tuple(range(n_layers)), top_k=2, renormalised=True, groups=groups,
                         model_name=f"{getattr(model.config, 'name_or_path', '') or 'nllb-moe'} ({side})",
                         architecture=type(model).__name__, score_fn="softmax")


@torch.no_grad()
def translation_routing(model, tok, pairs: list[Pair], batch_size: int = 64) -> dict[str, RoutingRecord]:
    """{"encoder": RoutingRecord, "decoder": RoutingRecord} of `pairs` (see the module docstring). Padding is left
    out; layers are the MoE layers of that side in order. ValueError for a model without NLLB-MoE routers."""
    routers = _routers(model)
    if not routers:
        raise ValueError("translation_routing needs an NLLB-MoE model (NllbMoeForConditionalGeneration); this one "
                         "has no NllbMoeTop2Router")
    if not pairs:
        raise ValueError("no translation pairs given")
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    pad = tok.pad_token_id
    sides = {"encoder": ([], [], []), "decoder": ([], [], [])}
    n_done = 0
    for chunk, x, y in _batches(tok, pairs, batch_size, pad):
        labels = y.masked_fill(y == pad, -100)
        out = model(input_ids=x.to(device), attention_mask=(x != pad).long().to(device), labels=labels.to(device),
                    decoder_attention_mask=(labels != -100).long().to(device), output_router_logits=True)
        dec_in = torch.cat([torch.full_like(y[:, :1], model.config.decoder_start_token_id), y[:, :-1]], dim=1)
        for side, ids, mask, logits in (("encoder", x, x != pad, out.encoder_router_logits),
                                        ("decoder", dec_in, y != pad, out.decoder_router_logits)):
            flat = mask.reshape(-1)
            lg, tk, dc = sides[side]
            lg.append(torch.stack([r.detach().cpu()[flat] for r in logits]))
            tk.append(ids.reshape(-1)[flat].numpy())
            dc.append((np.arange(len(chunk))[:, None].repeat(ids.shape[1], 1).reshape(-1) + n_done)[flat.numpy()])
        n_done += len(chunk)
    model.train(was)
    return {side: _side_record(tok, lg, tk, dc, pairs, side, model) for side, (lg, tk, dc) in sides.items()}


def separation_by_layer(records: dict[str, RoutingRecord], metric: str = "cosine") -> pd.DataFrame:
    """One row per (side, layer): `separation` = 1 - mean off-diagonal similarity of the language x expert
    distributions (soft: mean router probabilities), grouped by source language in the encoder and by target
    language in the decoder; `depth` counts MoE layers from the bottom of the encoder (0) through the decoder."""
    rows, depth = [], 0
    for side, key in (("encoder", "src_lang"), ("decoder", "tgt_lang")):
        rec = records[side]
        for layer in range(rec.n_layers):
            names, dist = group_expert(rec, key, layer)
            rows.append({"side": side, "layer": layer, "depth": depth, "grouped_by": key,
                         "separation": separation_score(group_similarity(dist, metric))})
            depth += 1
    return pd.DataFrame(rows)


@torch.no_grad()
def capacity_overflow(records: dict[str, RoutingRecord], capacity_factor: float = 1.0,
                      batch_tokens: int = 2048) -> pd.DataFrame:
    """Share of top-2 assignments over capacity, per (side, layer): the recorded router logits are cut into batches
    of `batch_tokens` tokens and routed as the library routes in training (top-1 choices placed first, in token
    order, then top-2; capacity C = ceil(capacity_factor * 2 * N / E) per expert for a batch of N tokens)."""
    rows = []
    for side, rec in records.items():
        for layer in range(rec.n_layers):
            z = torch.from_numpy(rec.logits[layer])
            dropped = total = 0
            for b in range(0, z.shape[0], batch_tokens):
                zb = z[b:b + batch_tokens]
                n, n_exp = zb.shape
                cap = math.ceil(capacity_factor * 2 * n / n_exp)
                idx = zb.topk(2, dim=-1).indices
                m1 = torch.nn.functional.one_hot(idx[:, 0], n_exp)
                m2 = torch.nn.functional.one_hot(idx[:, 1], n_exp)
                loc1 = torch.cumsum(m1, 0) - 1
                loc2 = torch.cumsum(m2, 0) - 1 + m1.sum(0, keepdim=True)
                kept = int(((loc1 < cap) & m1.bool()).sum() + ((loc2 < cap) & m2.bool()).sum())
                dropped, total = dropped + 2 * n - kept, total + 2 * n
            rows.append({"side": side, "layer": layer, "capacity_factor": capacity_factor,
                         "dropped_share": dropped / max(total, 1)})
    return pd.DataFrame(rows)
