"""Sampling text from a causal LM or an encoder-decoder (the prompt goes to the encoder, the decoder continues
it): `generate(model, tokenizer, prompt, n, temperature, max_new_tokens)`.

Prompts start with BOS when the tokenizer has one, as every training document does, so the model
continues a story rather than a mid-document fragment. temperature 0 means greedy decoding.
Context window (max_position_embeddings): a prompt that leaves no room for a new token is cut from the left
(BOS kept) to leave min(max_new_tokens, context // 2) positions for generation; a continuation that the
context cuts below max_new_tokens is shortened. Both emit a ContextWarning.
"""
from __future__ import annotations

import warnings

import torch


class ContextWarning(UserWarning):
    """The prompt or the continuation was cut to fit the model's context window."""


@torch.no_grad()
def generate(model, tokenizer, prompt: str = "", n: int = 1, temperature: float = 0.8, max_new_tokens: int = 64,
             top_k: int | None = None, seed: int | None = None) -> list[str]:
    """`n` samples (prompt + continuation, special tokens removed), stopping at EOS; see the module docstring
    for prompts and continuations that do not fit the context (ContextWarning)."""
    if n < 1 or max_new_tokens < 1:
        raise ValueError(f"n and max_new_tokens must be positive, got n={n}, max_new_tokens={max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    ids = tokenizer(prompt, add_special_tokens=True)["input_ids"] if prompt else []
    bos = tokenizer.bos_token_id
    if bos is not None and (not ids or ids[0] != bos):
        ids = [bos] + ids
    if not ids:
        raise ValueError("empty prompt and the tokenizer has no BOS token: give a prompt")
    device = next(model.parameters()).device
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))   # prompt -> encoder, continuation <- decoder
    ctx = int(getattr(model.config, "max_position_embeddings", 0) or 1 << 30) if not seq2seq else 1 << 30
    if len(ids) >= ctx:
        keep = ctx - min(max_new_tokens, ctx // 2)
        head = ids[:1] if bos is not None and ids[0] == bos else []
        warnings.warn(f"the prompt has {len(ids)} tokens but the model's context holds {ctx}: kept its last "
                      f"{keep - len(head)} tokens{' after BOS' if head else ''}, leaving room for "
                      f"{ctx - keep} new tokens", ContextWarning, stacklevel=3)
        ids = head + ids[len(ids) - (keep - len(head)):]
    if len(ids) + max_new_tokens > ctx:
        warnings.warn(f"max_new_tokens={max_new_tokens} does not fit: the model's context holds {ctx} tokens "
                      f"and the prompt takes {len(ids)}, so samples stop after {ctx - len(ids)} new tokens",
                      ContextWarning, stacklevel=3)
        max_new_tokens = ctx - len(ids)
    x = torch.tensor([ids] * n, device=device)
    if seed is not None:
        torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    kw = dict(do_sample=temperature > 0, max_new_tokens=max_new_tokens,
              pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
              eos_token_id=tokenizer.eos_token_id)
    if temperature > 0:                  # sampling flags only when sampling; top_k 0 = the full distribution
        kw.update(temperature=temperature, top_k=top_k or 0)
    out = model.generate(x, attention_mask=torch.ones_like(x), **kw)
    model.train(was_training)
    head = tokenizer.decode(ids, skip_special_tokens=True) if seq2seq else ""
    return [head + tokenizer.decode(o, skip_special_tokens=True) for o in out]
