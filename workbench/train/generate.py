"""Sampling text from any causal LM: `generate(model, tokenizer, prompt, n, temperature, max_new_tokens)`.

Prompts start with BOS when the tokenizer has one, as every training document does, so the model
continues a story rather than a mid-document fragment. temperature 0 means greedy decoding.
"""
from __future__ import annotations

import torch


@torch.no_grad()
def generate(model, tokenizer, prompt: str = "", n: int = 1, temperature: float = 0.8, max_new_tokens: int = 64,
             top_k: int | None = None, seed: int | None = None) -> list[str]:
    """`n` samples (prompt + continuation, special tokens removed), stopping at EOS."""
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
    ctx = int(getattr(model.config, "max_position_embeddings", 0) or 1 << 30)
    max_new_tokens = max(1, min(max_new_tokens, ctx - len(ids)))
    x = torch.tensor([ids] * n, device=device)
    if seed is not None:
        torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    kw = dict(do_sample=temperature > 0, max_new_tokens=max_new_tokens, top_k=top_k or 0,
              pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
              eos_token_id=tokenizer.eos_token_id)
    if temperature > 0:
        kw["temperature"] = temperature
    out = model.generate(x, attention_mask=torch.ones_like(x), **kw)
    model.train(was_training)
    return [tokenizer.decode(o, skip_special_tokens=True) for o in out]
