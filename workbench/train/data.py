"""Corpus -> token stream -> batches.

Each document becomes [BOS] + tokens + [EOS]; documents are concatenated into one flat stream and cut
into windows of seq_len + 1 tokens (input = window[:-1], target = window[1:]). A document longer than
the context window simply spans several windows: nothing is dropped. The training order is a pure
function of (seed, step), so an interrupted run resumes on exactly the batches it would have seen.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


def as_texts(corpus) -> list[str]:
    """Texts from a list of strings, a Corpus-like object (`.texts`), or a path `workbench.corpora` can read."""
    if isinstance(corpus, (str, Path)):
        from ..corpora import read_texts   # only needed for paths
        texts = read_texts(corpus)
    elif hasattr(corpus, "texts"):
        texts = corpus.texts
    else:
        texts = corpus
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("the corpus holds no non-empty text: give a list of strings, a Corpus or a corpus path")
    return list(texts)


def encode(texts: list[str], tokenizer) -> np.ndarray:
    """One int32 stream [BOS] doc1 [EOS] [BOS] doc2 [EOS] ... (BOS/EOS omitted where the tokenizer has none)."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    parts = []
    for doc in ids:
        parts.append(([bos] if bos is not None else []) + doc + ([eos] if eos is not None else []))
    return np.fromiter((t for p in parts for t in p), dtype=np.int32)


def split_documents(texts: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """A seeded split of whole documents into (train, val); at least one document goes to each side."""
    if len(texts) < 2:
        raise ValueError(f"need at least 2 documents to hold one out for validation, got {len(texts)}")
    order = np.random.default_rng(seed).permutation(len(texts))
    n_val = min(len(texts) - 1, max(1, round(len(texts) * val_fraction)))
    return [texts[i] for i in order[n_val:]], [texts[i] for i in order[:n_val]]


@dataclass
class TokenData:
    """Train and validation token streams plus the window size."""
    train: torch.Tensor     # (n_train_tokens,) int64
    val: torch.Tensor       # (n_val_tokens,) int64
    seq_len: int

    @property
    def n_windows(self) -> int:
        return (len(self.train) - 1) // self.seq_len

    def batch(self, step: int, micro: int, batch_size: int, grad_accum: int, seed: int,
              shard: tuple[int, int] = (0, 1)):
        """(x, y) of shape (batch_size, seq_len) for micro-batch `micro` of optimizer step `step`.

        Sample i = (step * grad_accum + micro) * batch_size + j indexes a per-epoch permutation of the
        non-overlapping windows, seeded by (seed, epoch): every window is seen once per epoch.
        `shard` = (rank, world): this rank's rows [rank*b, (rank+1)*b) of that global batch, b = batch_size /
        world (shape (b, seq_len)); the ranks' shards together are the single-process batch. ValueError when
        batch_size does not split evenly.
        """
        windows = batch_indices(self.n_windows, step, micro, batch_size, grad_accum, seed, shard)
        return self._gather(self.train, torch.from_numpy(windows) * self.seq_len)

    def val_batches(self, batch_size: int, max_batches: int):
        """Deterministic validation batches: consecutive windows from the start of the validation stream."""
        t = min(self.seq_len, len(self.val) - 1)
        n = (len(self.val) - 1) // t
        starts = torch.arange(min(n, batch_size * max_batches)) * t
        for i in range(0, len(starts), batch_size):
            yield self._gather(self.val, starts[i:i + batch_size], t)

    def _gather(self, stream: torch.Tensor, starts: torch.Tensor, t: int | None = None):
        t = t or self.seq_len
        idx = starts[:, None] + torch.arange(t + 1)
        w = stream[idx]
        return w[:, :-1], w[:, 1:]


def batch_indices(n: int, step: int, micro: int, batch_size: int, grad_accum: int, seed: int,
                  shard: tuple[int, int] = (0, 1)) -> np.ndarray:
    """(batch_size / world,) int64 indices into n training items for micro-batch `micro` of step `step`: sample
    i = (step * grad_accum + micro) * batch_size + j of a per-epoch permutation seeded by (seed, epoch), this rank's
    rows of it (TokenData windows, translation PairData pairs). ValueError when batch_size does not split evenly."""
    rank, world = shard
    if batch_size % world or not 0 <= rank < world:
        raise ValueError(f"batch_size={batch_size} must split evenly among {world} processes (rank {rank}): "
                         f"use a multiple of {world}")
    part = batch_size // world
    first = (step * grad_accum + micro) * batch_size + rank * part
    idx = np.arange(first, first + part)
    epochs, pos = idx // n, idx % n
    out = np.empty(part, dtype=np.int64)
    for e in np.unique(epochs):
        out[epochs == e] = _permutation(n, seed, int(e))[pos[epochs == e]]
    return out


_PERM_CACHE: dict = {}


def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    key = (n, seed, epoch)
    if key not in _PERM_CACHE:
        if len(_PERM_CACHE) > 8:
            _PERM_CACHE.clear()
        _PERM_CACHE[key] = np.random.default_rng([seed, epoch]).permutation(n)
    return _PERM_CACHE[key]


def prepare(texts: list[str], tokenizer, seq_len: int, batch_size: int, val_fraction: float, seed: int) -> TokenData:
    """Tokenise, split and check that the training stream holds at least one batch."""
    train_texts, val_texts = split_documents(texts, val_fraction, seed)
    train = torch.from_numpy(encode(train_texts, tokenizer).astype(np.int64))
    val = torch.from_numpy(encode(val_texts, tokenizer).astype(np.int64))
    need = batch_size * seq_len + 1
    if len(train) < need:
        raise ValueError(f"corpus too small for one batch: the training split has {len(train)} tokens but "
                         f"batch_size={batch_size} x seq_len={seq_len} needs {need}; use a larger corpus "
                         f"or a smaller batch_size/seq_len")
    if len(val) < 2:
        raise ValueError("the validation split has no tokens: use a larger corpus or a larger val_fraction")
    return TokenData(train, val, seq_len)
