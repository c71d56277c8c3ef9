"""MoE routing probes: a `RoutingRecord` built from the model's own router logits, for a text or a labelled corpus.

Here: `RoutingRecord`, `routing_record()` (one or many texts, batched), `corpus_routing()` (corpus records with
group tags such as lang/domain, char spans for parallel records), `check_routing()` (self-checks).
Statistics live in `routing_stats` (load, losses, group distributions, similarity) and `routing_analyses`
(OLMoE/Mixtral analyses, expert ablation); both are re-exported here.
The record is read from each MoE layer's router module (found by `workbench.moe.moe_layers`): its own
logits, chosen experts and gate weights, so any routing rule (softmax, sigmoid, grouped, bias-corrected) is
recorded as the model applies it; `RoutingRecord.probs` are the router's own per-expert scores (softmax or
sigmoid, as `score_fn` says).
Not here: plotting (`workbench.plots.routing`), training-time losses (`workbench.moe`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class RoutingRecord:
    """Router outputs of every MoE layer for a pool of tokens (documents concatenated along the token axis)."""
    tokens: list[str]            # (T,) token strings
    token_ids: np.ndarray        # (T,) input token ids
    pred_ids: np.ndarray         # (T,) the model's argmax prediction for the next token
    doc: np.ndarray              # (T,) index of the text each token came from
    logits: np.ndarray           # (L, T, E) router logits, float32
    topk: np.ndarray             # (L, T, k) chosen experts, best first
    weights: np.ndarray          # (L, T, k) gate weights as the model applies them (renormalised, scaled or not)
    layers: tuple[int, ...]      # decoder-layer index of each MoE layer
    top_k: int
    renormalised: bool           # True when every token's top-k gate weights sum to 1 (Mixtral, not OLMoE)
    groups: dict = field(default_factory=dict)   # label name -> (T,) array of str ("" = unlabelled)
    model_name: str = ""
    architecture: str = ""       # e.g. "MixtralForCausalLM"; checked before comparing checkpoints
    score_fn: str = "softmax"    # how the router scores experts: "softmax", "sigmoid" or "unknown" (RouterRule)

    @property
    def probs(self) -> np.ndarray:
        """(L, T, E) the router's own per-expert scores, computed on demand: softmax(logits) (each row sums to 1)
        or, for a sigmoid router, sigmoid(logits) (independent scores in (0, 1); rows do not sum to 1).
        ValueError for a router scored otherwise (score_fn "unknown")."""
        return self.scores_of(self.logits)

    @property
    def score_shares(self) -> np.ndarray:
        """(L, T, E) `probs` normalised to sum to 1 per token: the softmax probabilities themselves, or for a
        sigmoid router each expert's share of the token's total score (DeepSeek-V3's normalised affinity)."""
        return self.scores_of(self.logits, normalised=True)

    def layer_shares(self, layer: int) -> np.ndarray:
        """(T, E) `score_shares` of one MoE layer (0..n_layers-1)."""
        return self.scores_of(self.logits[self.layer_pos(layer)], normalised=True)

    def scores_of(self, z: np.ndarray, normalised: bool = False) -> np.ndarray:
        """The router's scores of logits `z` (..., E) by `score_fn` (see probs), normalised to sum to 1 if asked."""
        if self.score_fn == "softmax":
            e = np.exp(z - z.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)
        if self.score_fn == "sigmoid":
            p = np.exp(-np.logaddexp(0.0, -z))
            return p / p.sum(-1, keepdims=True) if normalised else p
        raise ValueError(f"the router of {self.architecture or 'this model'} turns its logits into gate weights by "
                         f"neither a softmax nor a sigmoid (score_fn={self.score_fn!r}), so its per-expert scores "
                         "are unknown: router probabilities, router entropy, soft group distributions and the loss "
                         "table are unavailable; statistics of the chosen experts (expert_load, dead_experts, "
                         "hard=True group distributions) use the router's own choice and work")

    @property
    def n_layers(self) -> int:
        return self.logits.shape[0]

    @property
    def n_tokens(self) -> int:
        return self.logits.shape[1]

    @property
    def n_experts(self) -> int:
        return self.logits.shape[2]

    def layer_pos(self, layer: int) -> int:
        """Position in the record of MoE layer `layer` (an index 0..n_layers-1); clear error when out of range."""
        if not isinstance(layer, (int, np.integer)) or not 0 <= layer < self.n_layers:
            raise ValueError(f"unknown layer {layer!r}: this record has MoE layers 0..{self.n_layers - 1} "
                             f"(decoder layers {list(self.layers)})")
        return int(layer)

    def select(self, mask: np.ndarray) -> "RoutingRecord":
        """A record with only the tokens where `mask` (T,) is True."""
        mask = np.asarray(mask, bool)
        return RoutingRecord(tokens=[t for t, m in zip(self.tokens, mask) if m], token_ids=self.token_ids[mask],
                             pred_ids=self.pred_ids[mask], doc=self.doc[mask], logits=self.logits[:, mask],
                             topk=self.topk[:, mask], weights=self.weights[:, mask], layers=self.layers,
                             top_k=self.top_k, renormalised=self.renormalised,
                             groups={k: v[mask] for k, v in self.groups.items()}, model_name=self.model_name,
                             architecture=self.architecture, score_fn=self.score_fn)


def moe_info(model) -> dict:
    """{"n_experts", "top_k", "renormalised", "layers", "routers", "score_fn"} of an HF MoE model; clear error
    for a dense one.

    `layers` are the decoder-layer indices of the MoE blocks (see workbench.moe.moe_layers); "renormalised"
    is the config's rule (the record reads it from the weights the router returns); "score_fn" is how the
    router scores experts ("softmax", "sigmoid" or "unknown"; workbench.moe.router_rule).
    """
    from ..moe import moe_layers, router_rule
    c = model.config
    layers = moe_layers(model)
    if not layers:
        if any(getattr(c, k, None) for k in ("num_local_experts", "num_experts", "n_routed_experts")):
            raise ValueError(f"{type(model).__name__} declares experts but no router module was found (a router "
                             "class transformers records router logits from, or a `gate`/`router` beside `experts`)"
                             ": this MoE layout is not supported by the routing probes")
        raise ValueError(f"{type(model).__name__} is not a mixture-of-experts model (no router modules): the "
                         "routing explorer needs an MoE model such as workbench.models.load_model('tiny-moe') or "
                         "testing.tiny_model('moe')")
    router = layers[0].router
    weight = getattr(router, "weight", None)
    n_exp = getattr(router, "num_experts", None) or (weight.shape[0] if isinstance(weight, torch.Tensor) else None) \
        or getattr(c, "num_local_experts", None) or getattr(c, "num_experts", None)
    top_k = getattr(router, "top_k", None) or c.num_experts_per_tok
    renorm = getattr(c, "norm_topk_prob", None)
    renorm = True if renorm is None and hasattr(c, "num_local_experts") else bool(renorm)
    return {"n_experts": int(n_exp), "top_k": int(top_k), "renormalised": renorm,
            "layers": tuple(m.layer for m in layers), "routers": tuple(m.router for m in layers),
            "score_fn": router_rule(router, getattr(c, "hidden_size", None)).score_fn}


def _chunks(ids: list[int], size: int):
    return [ids[i:i + size] for i in range(0, max(len(ids), 1), size)] if ids else []


@torch.no_grad()
def _run(model, batch_ids: list[list[int]], pad_id: int, routers):
    """Forward a right-padded batch; return per MoE layer the router's (logits, weights, expert ids) of the real
    tokens, each (L, n_real, .), and the pred ids (n_real,)."""
    from ..moe import router_outputs
    width = max(len(x) for x in batch_ids)
    ids = torch.full((len(batch_ids), width), pad_id, dtype=torch.long)
    att = torch.zeros_like(ids)
    for i, x in enumerate(batch_ids):
        ids[i, :len(x)] = torch.tensor(x)
        att[i, :len(x)] = 1
    seen: dict = {}

    def hook(module, args, output):
        seen.setdefault(id(module), router_outputs(module, output))
    handles = [r.register_forward_hook(hook) for r in routers]
    try:
        # no attention_mask: padding is on the right and attention is causal, so real tokens never see pads, and
        # skipping the mask keeps the fast causal attention path (an explicit mask is several times slower on CPU)
        out = model(input_ids=ids.to(next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    missing = [i for i, r in enumerate(routers) if id(r) not in seen]
    if missing:
        raise ValueError(f"MoE layers {missing} did not run their router during the forward pass")
    keep = att.reshape(-1).bool()                                             # (B*S,)
    parts = []
    for j in range(3):
        rows = [seen[id(r)][j].cpu() for r in routers]
        if any(x.shape[0] != keep.numel() for x in rows):
            raise ValueError(f"unknown router layout: {type(routers[0]).__name__} returns {rows[0].shape[0]} rows "
                             f"for {keep.numel()} tokens")
        parts.append(torch.stack([x.reshape(keep.numel(), -1)[keep] for x in rows]))
    logits, weights, index = parts[0].float(), parts[1].float(), parts[2].long()
    order = weights.argsort(dim=-1, descending=True, stable=True)              # best first (DeepSeek: unsorted)
    pred = out.logits.argmax(-1).reshape(-1).cpu()[keep]                      # (n,)
    return logits, weights.gather(-1, order), index.gather(-1, order), pred


def routing_record(model, tokenizer, texts: str | list[str], groups: dict | None = None, batch_size: int = 32,
                   max_length: int | None = None, token_groups: dict | None = None,
                   experts_implementation: str | None = None) -> RoutingRecord:
    """Route one text or a list of texts through `model`; every token of every MoE layer in one record.

    groups: optional {label name: one label per text} (e.g. {"lang": ["en", "xx"]}) spread to its tokens.
    token_groups: optional {label name: one label per token of the concatenated texts} (overrides groups).
    Long texts are cut into windows of `max_length` tokens (default: the model's context).
    Logits, chosen experts and gate weights are the router modules' own outputs (slots sorted best first);
    `score_fn` records how the router scores experts, which `probs` applies.
    experts_implementation: run the experts with this transformers implementation for the pass (e.g.
    "grouped_mm", about 2x faster than "eager" on CPU for large batches; equal up to float rounding).
    """
    info = moe_info(model)
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    if not texts:
        raise ValueError("no texts given")
    max_length = max_length or getattr(model.config, "max_position_embeddings", 512)
    windows, owner = [], []
    for d, text in enumerate(texts):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        for w in _chunks(ids, max_length):
            windows.append(w)
            owner.append(d)
    n_tok = sum(len(w) for w in windows)
    if n_tok == 0:
        raise ValueError("the text(s) produced no tokens")
    if single and n_tok < info["top_k"]:
        raise ValueError(f"the text has {n_tok} token(s), fewer than the top-k={info['top_k']} experts each "
                         "token is routed to: give a longer text (at least top-k tokens)")
    order = sorted(range(len(windows)), key=lambda i: len(windows[i]))        # similar lengths batch together
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    before = getattr(model.config, "_experts_implementation", None)
    if experts_implementation and before and experts_implementation != before:
        model.set_experts_implementation(experts_implementation)
    model.eval()
    try:
        pieces = {}
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            logits, weights, topk, pred = _run(model, [windows[i] for i in idx], pad, info["routers"])
            off = 0
            for i in idx:
                n = len(windows[i])
                pieces[i] = (logits[:, off:off + n], weights[:, off:off + n], topk[:, off:off + n], pred[off:off + n])
                off += n
    finally:
        model.train(was_training)
        if experts_implementation and before and experts_implementation != before:
            model.set_experts_implementation(before)
    logits, weights, topk = (torch.cat([pieces[i][j] for i in range(len(windows))], dim=1) for j in range(3))
    pred = torch.cat([pieces[i][3] for i in range(len(windows))])                # (L, T, .) in text order
    token_ids = np.concatenate([np.asarray(w, np.int64) for w in windows])
    doc = np.concatenate([np.full(len(w), owner[i], np.int64) for i, w in enumerate(windows)])
    renormalised = bool(torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-4))
    labels = {}
    for name, per_text in (groups or {}).items():
        if len(per_text) != len(texts):
            raise ValueError(f"groups[{name!r}] has {len(per_text)} labels for {len(texts)} texts")
        labels[name] = np.asarray(["" if v is None else str(v) for v in per_text], dtype=object)[doc]
    for name, per_token in (token_groups or {}).items():
        if len(per_token) != len(token_ids):
            raise ValueError(f"token_groups[{name!r}] has {len(per_token)} labels for {len(token_ids)} tokens")
        labels[name] = np.asarray(["" if v is None else str(v) for v in per_token], dtype=object)
    return RoutingRecord(tokens=tokenizer.convert_ids_to_tokens(token_ids.tolist()), token_ids=token_ids,
                         pred_ids=pred.numpy().astype(np.int64), doc=doc, logits=logits.numpy(),
                         topk=topk.numpy(), weights=weights.numpy(), layers=info["layers"], top_k=topk.shape[-1],
                         renormalised=renormalised, groups=labels,
                         model_name=str(getattr(model.config, "_name_or_path", "")),
                         architecture=(model.config.architectures or [type(model).__name__])[0],
                         score_fn=info["score_fn"])


def gate_from_logits(logits: torch.Tensor, top_k: int, renormalise: bool):
    """(top-k expert ids, gate weights) from router logits (..., E) under Mixtral's rule: softmax -> top-k
    [-> renormalise]. Other routers differ (records read the router's own choice instead)."""
    probs = torch.as_tensor(logits).float().softmax(-1)
    w, idx = probs.topk(top_k, dim=-1)
    if renormalise:
        w = w / w.sum(-1, keepdim=True)
    return idx, w


GROUP_KEYS = ("lang", "domain", "feeling", "topic", "ending")


def corpus_routing(model, tokenizer, records, keys=GROUP_KEYS, limit_tokens: int | None = None,
                   batch_size: int = 32, experts_implementation: str | None = "grouped_mm") -> RoutingRecord:
    """RoutingRecord for corpus records (dicts with "text" and tags such as lang/domain); each tag in `keys`
    becomes a per-token group. Parallel records with "spans" [[start, end, lang], ...] label each token by
    the span holding its first character. `limit_tokens` stops adding records once that many tokens are in.
    The experts run as "grouped_mm" for speed (None keeps the model's own implementation)."""
    records = list(getattr(records, "records", records))
    if not records:
        raise ValueError("no corpus records given")
    texts, token_labels, total = [], {k: [] for k in keys if any(k in r for r in records)}, 0
    for r in records:
        enc = tokenizer(r["text"], add_special_tokens=False, return_offsets_mapping=True)
        starts = [a for a, _ in enc["offset_mapping"]]
        texts.append(r["text"])
        for k in token_labels:
            if k == "lang" and r.get("spans"):
                token_labels[k] += [_span_label(r["spans"], s, "") for s in starts]
            else:
                token_labels[k] += [r.get(k)] * len(starts)
        total += len(starts)
        if limit_tokens and total >= limit_tokens:
            break
    max_length = getattr(model.config, "max_position_embeddings", 512)
    rec = routing_record(model, tokenizer, texts, token_groups=token_labels, batch_size=batch_size,
                         max_length=max_length, experts_implementation=experts_implementation)
    if limit_tokens and rec.n_tokens > limit_tokens:
        rec = rec.select(np.arange(rec.n_tokens) < limit_tokens)
    return rec


def _span_label(spans, start: int, default):
    for a, b, lang in spans:
        if a <= start < b:
            return lang
    return default


def check_routing(model=None, router_logits=None, train_loss: float | None = None, lm_loss: float | None = None,
                  aux_coef: float | None = None, tol: float = 1e-3) -> list[str]:
    """Self-checks; returns warnings (also emitted with `warnings.warn`).

    - "router logits" whose rows already sum to 1 are probabilities (double-softmax bug, transformers #45120):
      softmax of them is nearly uniform, so P in the aux loss is ~1/E and balancing does nothing.
    - train_loss ~= lm_loss although aux_coef > 0: the aux loss is not in the training loss (transformers only
      adds it when output_router_logits=True; #44242).
    """
    found = []
    if router_logits is not None:
        for i, r in enumerate(router_logits):
            r = torch.as_tensor(r).float()
            if r.numel() and (r >= 0).all() and torch.allclose(r.sum(-1), torch.ones(r.shape[:-1]), atol=1e-4):
                found.append(f"layer {i}: router logits already sum to 1 per token: they are probabilities, and a "
                             "second softmax flattens them (double-softmax bug); use the pre-softmax logits")
                break
    coef = aux_coef if aux_coef is not None else getattr(getattr(model, "config", None), "router_aux_loss_coef", 0)
    if train_loss is not None and lm_loss is not None and coef and abs(train_loss - lm_loss) <= tol * max(1, lm_loss):
        found.append(f"training loss {train_loss:.4f} equals the language-model loss although router_aux_loss_coef"
                     f"={coef}: the aux loss is not being optimised; pass output_router_logits=True or add "
                     "workbench.moe.router_losses() to the loss")
    for msg in found:
        warnings.warn(msg)
    return found


from .routing_stats import *          # noqa: E402,F401,F403  (re-export the statistics)
from .routing_analyses import *       # noqa: E402,F401,F403
