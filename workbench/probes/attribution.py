"""captum attributions of a next token or a continuation to the input tokens.

Here: `AttributionRecord`, `integrated_gradients()` (captum LayerIntegratedGradients on the input embeddings,
with the completeness check), `feature_ablation()` (captum FeatureAblation through LLMAttribution), and
`attribute_ids()` / `next_token_target()` for token-level use (the widget's target picker).
Target function: f(x) = sum_j log p(y_j | x, y_<j) over the target tokens y (teacher forcing).
The BOS token is held fixed in every method (it is never ablated nor interpolated), so its attribution is 0.
captum is imported inside the functions (captum.attr pulls in matplotlib).
Not here: attention-based views (`probes.attention`, `probes.rollout`), plots (`workbench.plots.attention`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .attention import context_window, encode, token_labels

METHODS = ("integrated_gradients", "feature_ablation")


@dataclass(frozen=True, eq=False)
class AttributionRecord:
    """Attribution of target log-probabilities to input tokens: `token_attr[j, i]` = input i's share for y_j."""
    method: str                      # "integrated_gradients" | "feature_ablation"
    input_tokens: tuple[str, ...]    # display text of the prompt tokens (BOS included)
    target_tokens: tuple[str, ...]   # display text of the attributed target tokens
    token_attr: np.ndarray           # (n_target, n_input)
    target_logprob: np.ndarray       # (n_target,) log p(y_j | x, y_<j) on the real input
    baseline_logprob: float = float("nan")   # IG: f(baseline), the total target log-prob with the baseline input
    delta: float = float("nan")      # IG completeness gap: sum(attr) - (f(x) - f(baseline))
    model_name: str = "model"
    warnings: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    @property
    def seq_attr(self) -> np.ndarray:
        """(n_input,) attribution of the whole target, f = sum_j log p(y_j): the sum of the token rows."""
        return self.token_attr.sum(0)

    def completeness(self) -> tuple[float, float]:
        """(sum of attributions, f(x) - f(baseline)); equal up to the IG discretisation error (`delta`)."""
        return float(self.token_attr.sum()), float(self.target_logprob.sum() - self.baseline_logprob)


# ----------------------------------------------------------------------------- targets

def next_token_target(model, ids: list[int]) -> list[int]:
    """The greedy next token after `ids`, as a one-token target."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], device=_device(model))).logits
    return [int(logits[0, -1].argmax())]


def _target_ids(model, tok, ids: list[int], target) -> list[int]:
    if target is None:
        return next_token_target(model, ids)
    if isinstance(target, int):
        return [target]
    if isinstance(target, str):
        if not target:
            raise ValueError("the target text is empty: give the continuation to explain, or None for the "
                             "model's own next token")
        return tok(target, add_special_tokens=False)["input_ids"]
    return [int(t) for t in target]


def _device(model):
    return next(model.parameters()).device


@torch.no_grad()
def target_logprobs(model, ids: list[int], target: list[int]) -> np.ndarray:
    """log p(y_j | x, y_<j) for each target token, one forward pass over prompt + target."""
    full = torch.tensor([ids + target], device=_device(model))
    lp = model(input_ids=full).logits[0].float().log_softmax(-1)      # (T, vocab)
    pos = torch.arange(len(ids) - 1, len(ids) - 1 + len(target))
    return lp[pos, torch.tensor(target)].cpu().numpy()


def check_causal_lm(model) -> None:
    """Refuse models whose targets do not follow their inputs in one sequence (encoder-decoders, encoders)."""
    from .attention import is_encoder_only
    if getattr(model.config, "is_encoder_decoder", False) or is_encoder_only(model):
        kind = "an encoder-decoder" if getattr(model.config, "is_encoder_decoder", False) else "an encoder-only model"
        raise ValueError(f"attribution explains a causal LM's next tokens by its input tokens; "
                         f"{type(model).__name__} is {kind}, whose outputs do not continue its input sequence: "
                         "not supported (use a decoder-only model)")


def _prepare(model, tok, text: str, target, add_bos: bool):
    check_causal_lm(model)
    n_max = context_window(model)
    ids, notes = encode(tok, text, add_bos=add_bos, model=model, max_tokens=n_max - 1)
    tgt = _target_ids(model, tok, ids, target)
    if len(ids) + len(tgt) > n_max:
        cut = n_max - len(tgt)
        if cut < 1:
            raise ValueError(f"the target has {len(tgt)} tokens, more than the {n_max}-token context window")
        notes.append(f"prompt cut to its first {cut} tokens to fit the target in the context window")
        ids = ids[:cut]
    return ids, tgt, notes


def _fixed_positions(tok, ids: list[int]) -> set[int]:
    bos = getattr(tok, "bos_token_id", None)
    return {0} if bos is not None and ids and ids[0] == bos else set()


def _baseline_id(tok, baseline) -> int:
    if baseline is not None:
        return int(baseline)
    for name in ("pad_token_id", "unk_token_id", "eos_token_id"):
        if getattr(tok, name, None) is not None:
            return int(getattr(tok, name))
    return 0


def ig_baseline(model, tok, baseline=None) -> tuple[int, list[str]]:
    """(baseline token id, notes) for integrated gradients.

    A token whose embedding row is zero (PAD in many models: `padding_idx`) is a degenerate baseline: the
    first normalisation layer divides by ~sqrt(eps) near a zero input, so the path integral has a spike at
    the baseline that a Riemann sum misses and completeness fails however many steps. The default (PAD) then
    moves to the first of UNK / EOS / BOS with a non-zero row; an explicit zero-row `baseline` is kept, with
    a note.
    """
    rows = model.get_input_embeddings().weight

    def zero(i: int) -> bool:
        return 0 <= i < rows.shape[0] and not bool(rows[i].detach().abs().sum())
    chosen = _baseline_id(tok, baseline)
    if not zero(chosen):
        return chosen, []
    why = (f"token {chosen}'s input embedding is all zeros, a degenerate integrated-gradients baseline (the "
           "first normalisation has an unbounded gradient at zero, so completeness fails however many steps)")
    if baseline is None:
        for name in ("unk_token_id", "eos_token_id", "bos_token_id"):
            other = getattr(tok, name, None)
            if other is not None and not zero(int(other)):
                return int(other), [f"{why}; used {name.replace('_token_id', '').upper()} (id {other}) instead"]
    return chosen, [f"{why}; pass a token with a non-zero embedding as `baseline`"]


# ----------------------------------------------------------------------------- methods

def _ig(model, tok, ids, tgt, n_steps: int, baseline) -> dict:
    """LayerIntegratedGradients on the embedding output, one target token at a time.

    attr_i = (e_i - e'_i) . integral_0^1 grad f(e' + a (e - e')) da, summed over the embedding dimension;
    completeness: sum_i attr_i = f(x) - f(x') up to the Riemann error (captum's convergence delta).
    """
    from captum.attr import LayerIntegratedGradients
    n_in, full = len(ids), ids + tgt
    x = torch.tensor([full], device=_device(model))
    base = x.clone()
    fixed = _fixed_positions(tok, ids)
    base_id, notes = ig_baseline(model, tok, baseline)
    base[0, [i for i in range(n_in) if i not in fixed]] = base_id

    def forward(inp, j):
        lp = model(input_ids=inp).logits.float().log_softmax(-1)   # (batch, T, vocab)
        return lp[:, n_in - 1 + j, full[n_in + j]]                  # (batch,)

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    rows, deltas = [], []
    for j in range(len(tgt)):
        attr, delta = lig.attribute(x, baselines=base, additional_forward_args=(j,), n_steps=n_steps,
                                    return_convergence_delta=True)
        rows.append(attr[0, :n_in].sum(-1).detach().float().cpu().numpy())   # (n_input,)
        deltas.append(float(delta.sum()))
    with torch.no_grad():
        base_lp = target_logprobs(model, base[0, :n_in].tolist(), tgt)
    return dict(token_attr=np.stack(rows), baseline_logprob=float(base_lp.sum()), delta=float(sum(deltas)),
                meta={"n_steps": n_steps, "baseline_token": base_id}, notes=notes)


def _ids_input(ids: list[int], tok, baseline: int, skip: set[int]):
    """captum TextTokenInput built from token ids (so BOS and truncation match the other probes)."""
    from captum.attr import TextTokenInput

    class IdsTokenInput(TextTokenInput):
        def __init__(self):   # same fields TextTokenInput.__init__ sets, without re-tokenising the text
            self.inp_tensor = torch.tensor([ids])
            mask = torch.tensor([[i not in skip for i in range(len(ids))]])
            self.itp_mask = mask if skip else None
            self.itp_tensor = self.inp_tensor[mask].unsqueeze(0) if skip else self.inp_tensor
            self.values = tok.convert_ids_to_tokens(self.itp_tensor[0].tolist())
            self.tokenizer, self.n_itp_features, self.baselines = tok, len(self.values), baseline
            self.skip_tokens = None
    return IdsTokenInput()


def _fa(model, tok, ids, tgt, baseline) -> dict:
    """FeatureAblation via LLMAttribution: attr_i = f(x) - f(x with token i replaced by the baseline token)."""
    from captum.attr import FeatureAblation, LLMAttribution
    fixed = _fixed_positions(tok, ids)
    inp = _ids_input(ids, tok, _baseline_id(tok, baseline), fixed)
    llm = LLMAttribution(FeatureAblation(model), tok)
    res = llm.attribute(inp, target=torch.tensor(tgt), forward_in_tokens=False)
    free = [i for i in range(len(ids)) if i not in fixed]
    token_attr = np.zeros((len(tgt), len(ids)))
    token_attr[:, free] = res.token_attr.detach().float().cpu().numpy()
    return dict(token_attr=token_attr, meta={"baseline_token": _baseline_id(tok, baseline)})


def attribute_ids(model, tok, ids: list[int], target: list[int], method: str = "integrated_gradients",
                  n_steps: int = 32, baseline: int | None = None, name: str | None = None,
                  notes=()) -> AttributionRecord:
    """AttributionRecord of target ids given prompt ids (see integrated_gradients / feature_ablation)."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    if not ids or not target:
        raise ValueError("attribution needs at least one prompt token and one target token")
    check_causal_lm(model)
    was_training = model.training
    model.eval()
    try:
        out = _ig(model, tok, ids, target, n_steps, baseline) if method == "integrated_gradients" \
            else _fa(model, tok, ids, target, baseline)
    finally:
        model.train(was_training)
    notes = tuple(notes) + tuple(out.pop("notes", ()))
    return AttributionRecord(method=method, input_tokens=tuple(token_labels(tok, ids)),
                             target_tokens=tuple(token_labels(tok, target)),
                             target_logprob=target_logprobs(model, ids, target), warnings=notes,
                             model_name=name or getattr(model.config, "name_or_path", "") or type(model).__name__,
                             **out)


def integrated_gradients(model, tok, text: str, target=None, n_steps: int = 32, baseline: int | None = None,
                         add_bos: bool = True, name: str | None = None) -> AttributionRecord:
    """Layer integrated gradients of the target's log-probability w.r.t. the input embeddings.

    target: None (the model's greedy next token), a token id, a continuation string, or a list of ids.
    baseline: token id that replaces every prompt token (BOS kept) on the straight-line path; default PAD, or
    UNK/EOS/BOS when PAD's embedding row is zero (a degenerate baseline; see ig_baseline, noted in warnings).
    `record.delta` is the completeness gap; raise `n_steps` when it is large. For MoE models top-k routing
    makes f jump along the path, so part of the gap is not a discretisation error and more steps won't close it.
    """
    ids, tgt, notes = _prepare(model, tok, text, target, add_bos)
    return attribute_ids(model, tok, ids, tgt, "integrated_gradients", n_steps, baseline, name, notes)


def feature_ablation(model, tok, text: str, target=None, baseline: int | None = None, add_bos: bool = True,
                     name: str | None = None) -> AttributionRecord:
    """Feature ablation through captum's LLMAttribution: drop in log p(target) when one token becomes `baseline`."""
    ids, tgt, notes = _prepare(model, tok, text, target, add_bos)
    return attribute_ids(model, tok, ids, tgt, "feature_ablation", baseline=baseline, name=name, notes=notes)
