"""Batched generation for evaluation: greedy by default, stop strings, a token budget, results as plain records.

The procedure is lm-evaluation-harness's `generate_until` (HFLM), so the outputs can be compared with it:
prompts are encoded without special tokens, with BOS in front (every training document starts with it; lm-eval
gets the same ids when the prompt text starts with the BOS token's text), left-truncated to
`context - max_new_tokens`, left-padded, decoded greedily (`do_sample=False`) for at most `max_new_tokens`, and
each continuation is cut at the first occurrence of any stop string. An encoder-decoder gets the prompt on its
encoder side, ending with EOS as T5's inputs (and the family's training inputs) do.
A continuation that met no stop string and no end-of-text was cut by the budget: its record says `hit_max`.
Sampling (`temperature > 0`) is seeded per batch, so it is repeatable too.
Here: `Generation`, `generate_batch()`, `cut_at_stop()`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import StoppingCriteria, StoppingCriteriaList


@dataclass(frozen=True)
class Generation:
    """One output: `text` (cut at the first stop string), `raw` (before cutting), prompt length in tokens."""
    text: str
    raw: str
    prompt_tokens: int
    new_tokens: int
    hit_max: bool
    truncated: bool


def cut_at_stop(text: str, stop) -> tuple[str, bool]:
    """`text` up to the first occurrence of any stop string, and whether one occurred.

    Example: cut_at_stop(" Bella. She", ["\\n", "."]) == (" Bella", True)
    """
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text, False) if cut < 0 else (text[:cut], True)


class _StopOnStrings(StoppingCriteria):
    """Stop a batch once every row's new text holds a stop string (or ended); rows are cut afterwards."""

    def __init__(self, tokenizer, stop, start: int):
        self.tok, self.stop, self.start = tokenizer, tuple(stop), start

    def __call__(self, input_ids, scores, **kw):
        texts = self.tok.batch_decode(input_ids[:, self.start:], skip_special_tokens=False)
        eos = self.tok.eos_token
        done = [any(s in t for s in self.stop) or (eos is not None and eos in t) for t in texts]
        return torch.tensor(done, device=input_ids.device)


def _context(model) -> int:
    if getattr(model.config, "is_encoder_decoder", False):
        return 1 << 30
    return int(getattr(model.config, "max_position_embeddings", 0) or 1 << 30)


@torch.no_grad()
def generate_batch(model, tokenizer, prompts: list[str], stop=("\n",), max_new_tokens: int = 16,
                   temperature: float = 0.0, seed: int = 0, add_bos: bool = True) -> list[Generation]:
    """One `Generation` per prompt, all in one padded batch (see the module docstring for the procedure).

    Raises ValueError for an empty prompt list, max_new_tokens < 1 or a negative temperature.
    """
    if not prompts:
        raise ValueError("prompts is empty")
    if max_new_tokens < 1 or temperature < 0:
        raise ValueError(f"max_new_tokens must be >= 1 and temperature >= 0, got {max_new_tokens}, {temperature}")
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    bos = tokenizer.bos_token_id if add_bos else None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    keep = _context(model) - (0 if seq2seq else max_new_tokens)
    rows, truncated = [], []
    for p in prompts:
        ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        ids = ([bos] if bos is not None else []) + ids
        if seq2seq and tokenizer.eos_token_id is not None:
            ids = ids + [tokenizer.eos_token_id]           # T5's end of input, as in the family's training
        truncated.append(len(ids) > keep)
        rows.append(ids[-keep:])
    width = max(map(len, rows))
    device = next(model.parameters()).device
    x = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(x)
    for i, ids in enumerate(rows):                         # left padding, as lm-eval does for decoders
        x[i, width - len(ids):] = torch.tensor(ids)
        mask[i, width - len(ids):] = 1
    x, mask = x.to(device), mask.to(device)
    start = 1 if seq2seq else width                       # decoder outputs start with the start token
    kw = dict(max_new_tokens=max_new_tokens, do_sample=temperature > 0, pad_token_id=pad,
              eos_token_id=tokenizer.eos_token_id,
              stopping_criteria=StoppingCriteriaList([_StopOnStrings(tokenizer, stop, start)]))
    if temperature > 0:
        kw.update(temperature=temperature, top_k=0)
        torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    out = model.generate(x, attention_mask=mask, **kw)
    model.train(was_training)
    result = []
    for i, row in enumerate(out[:, start:].tolist()):
        n_new = len(row)
        if tokenizer.eos_token_id in row:
            n_new = row.index(tokenizer.eos_token_id)
            ended = True
        else:
            while n_new and row[n_new - 1] == pad and pad != tokenizer.eos_token_id:
                n_new -= 1
            ended = False
        raw = tokenizer.decode(row[:n_new], skip_special_tokens=True)
        text, stopped = cut_at_stop(raw, stop)
        result.append(Generation(text, raw, len(rows[i]), n_new, not (stopped or ended), truncated[i]))
    return result
