"""Attention scoring functions, from scratch, compared on one small task (d2l's "attention scoring functions").

Here: the five scores a(q, k) (`SCORERS`), a one-layer causal attention model `TinyAttention` whose score is
selectable, the copy task it learns (`copy_batch`), and `compare_scorers()` which trains one model per score on
the *same* batches from the *same* seed and returns `ScorerRun` records (loss curve, accuracy, mean map).
Attention weights: alpha(q, k_i) = softmax_i a(q, k_i) over the keys i <= the query position.
Not here: the attention of real transformers models (`workbench.probes.attention`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

FORMULAS = {
    "dot": "a(q, k) = q·k",
    "scaled_dot": "a(q, k) = q·k / √d",
    "additive": "a(q, k) = wᵀ tanh(W_q q + W_k k)   (Bahdanau)",
    "general": "a(q, k) = qᵀ W k   (Luong, bilinear)",
    "cosine": "a(q, k) = s · q·k / (‖q‖ ‖k‖), s learned   (bounded scores need a scale)",
}


class Score(nn.Module):
    """a(q, k) for all query/key pairs: (batch, T, d), (batch, T, d) -> (batch, T, T)."""

    def __init__(self, kind: str, d: int, hidden: int = 32):
        super().__init__()
        if kind not in FORMULAS:
            raise ValueError(f"unknown score {kind!r}; choose one of {', '.join(FORMULAS)}")
        self.kind, self.d = kind, d
        if kind == "additive":
            self.w_q, self.w_k = nn.Linear(d, hidden, bias=False), nn.Linear(d, hidden, bias=False)
            self.w_v = nn.Linear(hidden, 1, bias=False)
        elif kind == "general":
            self.w = nn.Linear(d, d, bias=False)
        elif kind == "cosine":
            self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        if self.kind == "dot":
            return q @ k.transpose(1, 2)
        if self.kind == "scaled_dot":
            return q @ k.transpose(1, 2) / math.sqrt(self.d)
        if self.kind == "general":
            return q @ self.w(k).transpose(1, 2)
        if self.kind == "cosine":
            qn, kn = nn.functional.normalize(q, dim=-1), nn.functional.normalize(k, dim=-1)
            return self.log_scale.exp() * qn @ kn.transpose(1, 2)
        feats = torch.tanh(self.w_q(q)[:, :, None, :] + self.w_k(k)[:, None, :, :])   # (batch, Tq, Tk, hidden)
        return self.w_v(feats).squeeze(-1)                                          # (batch, Tq, Tk)


SCORERS = tuple(FORMULAS)


class TinyAttention(nn.Module):
    """Token + position embeddings -> one causal attention layer with a selectable score -> logits."""

    def __init__(self, score: str, vocab: int, seq_len: int, d: int = 32):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq_len, d)
        self.q, self.k, self.v = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.score = Score(score, d)
        self.out = nn.Linear(2 * d, vocab)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (batch, T) -> logits (batch, T, vocab), attention (batch, T, T)."""
        t = x.shape[1]
        h = self.tok(x) + self.pos(torch.arange(t, device=x.device))          # (batch, T, d)
        s = self.score(self.q(h), self.k(h))                                  # (batch, T, T)
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
        alpha = s.softmax(-1)
        return self.out(torch.cat([alpha @ self.v(h), h], -1)), alpha


def copy_batch(gen: torch.Generator, batch: int, n: int, vocab: int) -> torch.Tensor:
    """Sequences x_1..x_n SEP x_1..x_n (SEP = vocab - 1); predicting the repeat needs attention n tokens back."""
    x = torch.randint(0, vocab - 1, (batch, n), generator=gen)
    sep = torch.full((batch, 1), vocab - 1)
    return torch.cat([x, sep, x], 1)                                           # (batch, 2n + 1)


def _loss(logits: torch.Tensor, x: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy and accuracy on the repeat only: position p = n + j predicts x[p + 1]."""
    pred, tgt = logits[:, n:-1], x[:, n + 1:]
    loss = nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), tgt.reshape(-1))
    return loss, (pred.argmax(-1) == tgt).float().mean()


@dataclass(frozen=True, eq=False)
class ScorerRun:
    """One trained scorer: its loss curve, held-out accuracy on the repeat, and its mean attention map."""
    name: str
    formula: str
    losses: np.ndarray        # (steps,) training loss per step
    accuracy: float           # held-out next-token accuracy on the repeated half
    attention: np.ndarray     # (T, T) attention averaged over held-out sequences
    tokens: tuple[str, ...]   # position labels: x1..xn, SEP, x1..xn
    seconds: float


def train_scorer(name: str, steps: int = 200, n: int = 8, vocab: int = 16, d: int = 32, batch: int = 64,
                 lr: float = 3e-3, seed: int = 0) -> ScorerRun:
    """Train TinyAttention with score `name` on the copy task; same seed -> same init and same batches."""
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)         # tiny matrices: extra threads only add overhead (and spin on busy CPUs)
    try:
        return _train(name, steps, n, vocab, d, batch, lr, seed, start)
    finally:
        torch.set_num_threads(threads)


def _train(name, steps, n, vocab, d, batch, lr, seed, start) -> ScorerRun:
    torch.manual_seed(seed)
    model = TinyAttention(name, vocab, 2 * n + 1, d)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        loss, _ = _loss(model(x := copy_batch(gen, batch, n, vocab))[0], x, n)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        x = copy_batch(torch.Generator().manual_seed(seed + 1), 256, n, vocab)
        logits, alpha = model(x)
        _, acc = _loss(logits, x, n)
    labels = [f"x{i + 1}" for i in range(n)] + ["SEP"] + [f"x{i + 1}'" for i in range(n)]
    return ScorerRun(name, FORMULAS[name], np.array(losses), float(acc), alpha.mean(0).numpy(), tuple(labels),
                     time.perf_counter() - start)


def compare_scorers(names=SCORERS, steps: int = 200, seed: int = 0, **kw) -> dict[str, ScorerRun]:
    """One ScorerRun per score name, all on identical data and initial embeddings (see train_scorer)."""
    return {name: train_scorer(name, steps=steps, seed=seed, **kw) for name in names}


def copy_offset_mass(run: ScorerRun) -> float:
    """Mean attention that repeat queries put on the right source (n tokens back): 1 = solved by attention."""
    n = (len(run.tokens) - 1) // 2
    q = np.arange(n, 2 * n)
    return float(run.attention[q, q - n].mean())
