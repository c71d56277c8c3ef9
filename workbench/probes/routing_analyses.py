"""OLMoE and Mixtral routing analyses on RoutingRecords, and expert ablation.

Here: `router_saturation()` / `saturation_over_checkpoints()` / `find_checkpoints()` (OLMoE), `coactivation()`
(all pairs, or OLMoE's adjacent pairs), `domain_specialization()` (k/E baseline), `vocab_specialization()`
(input and predicted tokens), `consecutive_same_expert()` (Mixtral §5, with random baselines),
`expert_ablation()` (token x expert change in log-prob when an expert is masked).
"""
from __future__ import annotations

import json
import re
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["check_compatible", "router_saturation", "find_checkpoints", "checkpoint_records",
           "saturation_over_checkpoints", "coactivation", "domain_specialization", "vocab_specialization",
           "consecutive_same_expert", "expert_ablation"]


def check_compatible(a, b) -> None:
    """Raise ValueError unless two records come from the same architecture and hold the same tokens."""
    for what in ("architecture", "n_layers", "n_experts", "top_k"):
        va, vb = getattr(a, what), getattr(b, what)
        if va != vb:
            raise ValueError(f"records differ in {what} ({va} vs {vb}): checkpoints must come from the same "
                             "MoE architecture to compare routing")
    if a.n_tokens != b.n_tokens or not np.array_equal(a.token_ids, b.token_ids):
        raise ValueError("records hold different tokens: route the same texts with the same tokenizer")


def router_saturation(rec, final, top: int | str = "k") -> np.ndarray:
    """(L,) OLMoE router saturation: mean_t |K_t ∩ K_t^final| / k on the same tokens (top=1: argmax agreement)."""
    check_compatible(rec, final)
    k = rec.top_k if top == "k" else int(top)
    a, b = rec.topk[:, :, :k], final.topk[:, :, :k]                            # (L, T, k)
    overlap = (a[..., :, None] == b[..., None, :]).any(-1).sum(-1)             # (L, T)
    return overlap.mean(-1) / k


def find_checkpoints(model_dir, include_final: bool = True) -> list[tuple[int, Path]]:
    """(step, dir) of the intermediate checkpoints saved under `model_dir` (any subfolder holding a config.json
    whose name ends in a step number, e.g. checkpoints/step-000200), sorted by step; with include_final, the
    model saved in `model_dir` itself is appended as the last step (its train_config.json "steps") unless a
    checkpoint already has that step."""
    model_dir = Path(model_dir)
    found = []
    for cfg in model_dir.glob("**/config.json"):
        m = re.search(r"(\d+)$", cfg.parent.name)
        if cfg.parent != model_dir and m and not cfg.parent.name.startswith("."):   # skip half-written temp dirs
            found.append((int(m.group(1)), cfg.parent))
    found.sort()
    if include_final and (model_dir / "config.json").exists():
        tc = model_dir / "train_config.json"
        step = json.loads(tc.read_text()).get("steps") if tc.exists() else None
        step = int(step) if step is not None else (found[-1][0] + 1 if found else 0)
        if not found or step > found[-1][0]:
            found.append((step, model_dir))
    return found


def checkpoint_records(checkpoints, tokenizer, texts, load=None, **kw) -> list[tuple[int, object]]:
    """[(step, RoutingRecord)] for each (step, dir or model) on the same texts; kw goes to routing_record."""
    from .routing import routing_record
    if load is None:
        from ..models import load_model

        def load(path):
            return load_model(path)[0]
    out = []
    for step, ckpt in checkpoints:
        model = load(ckpt) if isinstance(ckpt, (str, Path)) else ckpt
        out.append((int(step), routing_record(model, tokenizer, texts, **kw)))
    for step, rec in out[1:]:
        try:
            check_compatible(out[0][1], rec)
        except ValueError as e:
            raise ValueError(f"checkpoint at step {step}: {e}") from None
    return out


def saturation_over_checkpoints(records, top: int | str = "k") -> pd.DataFrame:
    """Router saturation of every (step, record) against the last one: columns step, layer, saturation."""
    if not records:
        raise ValueError("no checkpoint records given")
    final = records[-1][1]
    rows = [(step, layer, float(s)) for step, rec in records
            for layer, s in enumerate(router_saturation(rec, final, top))]
    return pd.DataFrame(rows, columns=["step", "layer", "saturation"])


def coactivation(rec, layer: int, pairs: str = "all") -> np.ndarray:
    """(E, E) co-activation P(j | i) * 100 = #{t: i, j both in K_t} / #{t: i in K_t} * 100 (diagonal 0).

    pairs="all" counts every pair of the k chosen experts. pairs="adjacent" copies OLMoE's script, which counts
    only neighbours in the rank-ordered top-k list (ranks r and r+1), so experts far apart in a token's
    ranking never co-activate there; with k=2 the two agree.
    """
    li = rec.layer_pos(layer)
    chosen = rec.topk[li]                                                        # (T, k)
    E = rec.n_experts
    single = np.bincount(chosen.ravel(), minlength=E).astype(float)
    if pairs == "all":
        hot = np.zeros((chosen.shape[0], E))
        np.put_along_axis(hot, chosen, 1.0, axis=1)
        joint = hot.T @ hot
        np.fill_diagonal(joint, 0.0)
    elif pairs == "adjacent":
        joint = np.zeros((E, E))
        a, b = chosen[:, :-1].ravel(), chosen[:, 1:].ravel()
        np.add.at(joint, (a, b), 1.0)
        np.add.at(joint, (b, a), 1.0)
    else:
        raise ValueError(f"pairs must be 'all' or 'adjacent', got {pairs!r}")
    return 100.0 * joint / np.maximum(single[:, None], 1.0)


def domain_specialization(rec, key: str, layer: int, groups=None) -> tuple[list[str], np.ndarray, float]:
    """(groups, (G, E) share of each group's tokens with expert e in their top-k, baseline k/E) (OLMoE)."""
    from .routing_stats import group_expert
    names, hard = group_expert(rec, key, layer, hard=True, groups=groups)
    return names, hard * rec.top_k, rec.top_k / rec.n_experts


def vocab_specialization(rec, layer: int, which: str = "input", min_count: int = 1) -> tuple[float, pd.DataFrame]:
    """OLMoE vocabulary specialization (top-1 expert): for token id x, max_e #{t: x_t=x, top1_t=e} / #{t: x_t=x}.

    which="input" uses the input token, "predicted" the model's argmax next-token prediction. Returns (mean
    over ids with >= min_count occurrences, table id/token/count/expert/share sorted by share). Ids seen once
    score 1 trivially: raise min_count (OLMoE lists use 10) before reading much into the mean; 1/E is the
    value for a token spread evenly over experts.
    """
    li = rec.layer_pos(layer)
    ids = {"input": rec.token_ids, "predicted": rec.pred_ids}.get(which)
    if ids is None:
        raise ValueError(f"which must be 'input' or 'predicted', got {which!r}")
    top1 = rec.topk[li, :, 0]
    E = rec.n_experts
    uniq, inv = np.unique(ids, return_inverse=True)
    counts = np.zeros((len(uniq), E))
    np.add.at(counts, (inv, top1), 1.0)
    total = counts.sum(1)
    keep = total >= min_count
    if not keep.any():
        raise ValueError(f"no token id occurs {min_count}+ times in this record; lower min_count or add text")
    share = counts.max(1) / np.maximum(total, 1)
    first = {i: t for i, t in zip(rec.token_ids.tolist(), rec.tokens)}
    table = pd.DataFrame({"id": uniq[keep], "token": [first.get(int(i), str(int(i))) for i in uniq[keep]],
                          "count": total[keep].astype(int), "expert": counts.argmax(1)[keep], "share": share[keep]})
    return float(share[keep].mean()), table.sort_values(["share", "count"], ascending=False, ignore_index=True)


def consecutive_same_expert(rec) -> pd.DataFrame:
    """Mixtral §5: share of consecutive tokens (same text) with the same first-choice expert, and with
    overlapping top-k sets, per layer; with the uniform random baselines 1/E and 1 - C(E-k, k)/C(E, k), and the
    load-aware baseline sum_e load_e^2 for the first choice."""
    same_doc = rec.doc[1:] == rec.doc[:-1]
    if not same_doc.any():
        raise ValueError("no consecutive token pairs: give texts of at least two tokens")
    E, k = rec.n_experts, rec.top_k
    rows = []
    for li in range(rec.n_layers):
        a, b = rec.topk[li, :-1][same_doc], rec.topk[li, 1:][same_doc]
        first = float((a[:, 0] == b[:, 0]).mean())
        overlap = float((a[:, :, None] == b[:, None, :]).any((1, 2)).mean())
        load = np.bincount(rec.topk[li, :, 0], minlength=E) / rec.n_tokens
        rows.append((li, first, 1.0 / E, float((load ** 2).sum()), overlap, 1.0 - comb(E - k, k) / comb(E, k)))
    return pd.DataFrame(rows, columns=["layer", "same_first", "random_first", "load_aware_first",
                                       "overlap_topk", "random_overlap_topk"])


REROUTE_RULES = ("softmax", "softmax, renormalised", "softmax of the top-k logits")


def reroute_rule(router, logits: torch.Tensor, weights: torch.Tensor, index: torch.Tensor) -> tuple[str, torch.Tensor]:
    """(rule, scale) that reproduces this router's (weights, index) from its logits, so a banned expert's tokens
    can take their next-best expert as the router itself would pick and weigh it. The choice must be the top-k
    of the logits and the weights `scale` x softmax (over all experts), x renormalised softmax, or softmax of the
    chosen logits; ValueError naming the router otherwise (e.g. DeepSeek-V3's sigmoid, grouped, bias-corrected)."""
    z = logits.float()
    k = index.shape[-1]
    w = weights.float()
    chosen = torch.zeros_like(z, dtype=torch.bool).scatter_(1, index, True)
    best = torch.zeros_like(chosen).scatter_(1, z.topk(k, dim=-1).indices, True)
    if torch.equal(chosen, best):
        p = z.softmax(-1).gather(1, index)
        for rule, base in zip(REROUTE_RULES, (p, p / p.sum(-1, keepdim=True), z.gather(1, index).softmax(-1))):
            scale = (w / base.clamp_min(1e-30)).mean()
            if torch.allclose(w, scale * base, rtol=1e-4, atol=1e-6):
                return rule, scale
    raise ValueError(f"mode='reroute' needs a router that picks the top-k of its logits with softmax gate weights; "
                     f"{type(router).__name__} routes otherwise (e.g. sigmoid scores, expert groups or a bias "
                     "correction), so its next-best expert is unknown: use mode='drop'")


def _reroute(logits, banned, k: int, rule: str, scale):
    """Next-best experts and their weights for rows whose expert `banned` is excluded from the choice only."""
    z = logits.float().clone()
    z[torch.arange(z.shape[0]), banned] = float("-inf")
    idx = z.topk(k, dim=-1).indices
    if rule == REROUTE_RULES[2]:
        w = logits.float().gather(1, idx).softmax(-1)
    else:
        w = logits.float().softmax(-1).gather(1, idx)           # the router's own probabilities, all experts
        if rule == REROUTE_RULES[1]:
            w = w / w.sum(-1, keepdim=True)
    return scale * w, idx


def _mask_hook(rows_per_copy: int, n_copies: int, mode: str):
    """Router hook for a batch of copies: copy b (rows b*S..) has expert b masked, the last copy none.

    Only the rows (tokens) that chose the masked expert change; every other row keeps the router's output.
    """
    from ..moe import router_outputs

    def hook(module, args, output):
        logits, weights, index = router_outputs(module, output)
        n = index.shape[0]
        banned = torch.arange(n, device=index.device) // rows_per_copy
        banned = torch.where(banned < n_copies - 1, banned, -1)                   # last copy: the unmasked base
        hit = index == banned[:, None]                                           # (n, k)
        rows = hit.any(-1)
        if not rows.any():
            return None
        if mode == "drop":                                  # zero that expert's output for the token
            return logits, weights.masked_fill(hit, 0), index
        rule, scale = reroute_rule(module, logits, weights, index)
        new_w, new_i = _reroute(logits[rows], banned[rows], index.shape[1], rule, scale)
        weights, index = weights.clone(), index.clone()
        weights[rows], index[rows] = new_w.to(weights.dtype), new_i
        return logits, weights, index
    return hook


@torch.no_grad()
def expert_ablation(model, tokenizer, text: str, layer: int, mode: str = "drop") -> dict:
    """Change in log p(next token) per token when each expert of MoE layer `layer` is masked: (T-1, E).

    `layer` is the MoE layer's position (0..n-1, as in RoutingRecord); "decoder_layer" in the result is its
    decoder-layer index. mode="drop" zeroes the expert's weighted output for the tokens that chose it;
    mode="reroute" bans it from those tokens' choice so they take their next-best expert, weighted by the
    router's own rule (refused for routers whose rule is not a softmax top-k, see reroute_rule).
    delta[t, e] = log p_masked(x_{t+1} | x_<=t) - log p(x_{t+1} | x_<=t); exactly 0 where e was not chosen upstream
    (the unmasked copy runs in the same batch, and tokens that did not choose e keep their routing).
    """
    from ..moe import moe_layers
    from .routing import moe_info
    info = moe_info(model)
    layers = moe_layers(model)
    if not isinstance(layer, (int, np.integer)) or not 0 <= layer < len(layers):
        raise ValueError(f"unknown layer {layer}: the model has MoE layers 0..{len(layers) - 1} "
                         f"(decoder layers {[m.layer for m in layers]})")
    if mode not in ("drop", "reroute"):
        raise ValueError(f"mode must be 'drop' or 'reroute', got {mode!r}")
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    if ids.shape[1] < 2:
        raise ValueError("expert ablation needs a text of at least two tokens (it scores next-token log-probs)")
    E, S = info["n_experts"], ids.shape[1]

    def logp(batch):
        lp = model(input_ids=batch).logits.float().log_softmax(-1)[:, :-1]          # (B, S-1, V)
        return lp.gather(-1, batch[:, 1:, None])[..., 0]                           # (B, S-1)
    was_training = model.training
    model.eval()
    handle = layers[layer].router.register_forward_hook(_mask_hook(S, E + 1, mode))
    try:
        out = logp(ids.repeat(E + 1, 1).to(next(model.parameters()).device)).cpu()   # (E + 1, S-1)
    finally:
        handle.remove()
        model.train(was_training)
    masked, base = out[:E], out[E]
    toks = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    return {"delta": (masked - base).T.numpy(), "base": base.numpy(), "targets": toks[1:], "context": toks[:-1],
            "layer": layer, "decoder_layer": layers[layer].layer, "mode": mode}
