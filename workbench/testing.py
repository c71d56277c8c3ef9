"""Hermetic tiny fixtures for tests and fast notebooks: a tokenizer and dense/MoE models built in < 1 s.

Nothing here downloads anything. Sizes are far too small to learn; use them to test plumbing.
"""
from __future__ import annotations

import functools

from .models import build_model
from .tokenizer import train_tokenizer

_SENTENCES = [
    "Once upon a time, there was a little girl named Lily.",
    "She liked to play with her red ball in the park.",
    "One day, her dog Max ran away with the ball.",
    '"Come back, Max!" said Lily. She was sad.',
    "Max came back and gave the ball to Lily. She was happy again.",
    "Tom had a big blue boat. He went to the lake with his mom.",
    "The sun was warm and the birds sang in the tall tree.",
    "2 + 3 = 5. 4 + 4 = 8. 7 - 2 = 5.",
    "def add(a, b): return a + b",
]


@functools.lru_cache(maxsize=None)
def _tokenizer(vocab_size: int):
    return train_tokenizer(_SENTENCES * 4, vocab_size=vocab_size, min_frequency=1)


def tiny_tokenizer(vocab_size: int = 300):
    """A byte-level BPE tokenizer with a few merges, trained on a handful of built-in sentences."""
    return _tokenizer(vocab_size)


def tiny_model(kind: str = "dense", seed: int = 0, tokenizer=None, attn_implementation: str = "eager", **overrides):
    """A 2-layer, width-32 dense or MoE (4 experts, top-2) causal LM in eval mode, for tests."""
    tok = tokenizer or tiny_tokenizer()
    preset = "moe-nano" if kind == "moe" else "dense-nano"
    cfg = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
               max_position_embeddings=128)
    cfg.update(overrides)
    return build_model(preset, tokenizer=tok, seed=seed, attn_implementation=attn_implementation, **cfg).eval()


WORDS = ["Lily", "Tom", "Max", "the", "red", "ball", "park", "sun", "dog", "boat", "happy", "sad", "ran", "saw"]
TINY_DENSE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  max_position_embeddings=64)    # model overrides for a training test that runs in a second


def word_stories(n: int = 40, seed: int = 0) -> list[str]:
    """`n` random-word "stories" of 30 words each (deterministic in `seed`), for training-loop tests."""
    import torch
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        words = [WORDS[int(i)] for i in torch.randint(len(WORDS), (30,), generator=g)]
        out.append(f"Once upon a time {' '.join(words[:10])}. Then {' '.join(words[10:])}. The end.")
    return out
