"""The model family's recipe: which models, trained on what, for how long; one function trains any subset.

Every member is trained on the same corpus mixture (`mixed`, corpus generator version 2, training split) with
the same byte-level BPE tokenizer and the same token budget, so that size, architecture (dense, MoE,
encoder-decoder) and instruction tuning are the controlled variables of a study, not the data. The "-it"
members start from a base member and are fine-tuned on the `qa` corpus (questions and instructions about
other training stories), which no base member sees.

    python -m workbench.family --out data/models                 # all members (a GPU: about 20 minutes)
    python -m workbench.family --out runs/f --scale 0.01         # the same recipe, tiny budget (CPU smoke test)

Budgets were settled by the pilot in bench/results/family_pilot.md.
Here: `Member`, `FAMILY`, `family_corpus()`, `family_tokenizer()`, `train_member()`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

CORPUS_DOCS = 200_000        # `mixed` documents (about 30M tokens), generated in shards of SHARD_DOCS
SHARD_DOCS = 12_500
QA_DOCS = 20_000             # `qa` documents for instruction tuning
VOCAB = 4096
BATCH, SEQ_LEN = 64, 256     # 16,384 tokens per step
# The member that keeps light (bf16) checkpoints for routing-over-training studies, at log-spaced steps
# (routing settles early), plus the final weights at 1,500. The smallest MoE, bfloat16 with tied embeddings stored
# once (3.2 MB each); checkpoints of moe-4m (13.6 MB each) would not fit data/.
SERIES = "moe-1m"
SERIES_STEPS = (25, 50, 100, 200, 400, 700, 1000, 1300)


@dataclass(frozen=True)
class Member:
    """One model of the family: `preset` (workbench.config.PRESETS) trained for `steps`; an "-it" member
    fine-tunes `base` on the qa corpus instead."""
    name: str
    preset: str
    steps: int = 1500
    lr: float = 3e-3
    warmup: int = 150
    base: str | None = None

    @property
    def tokens(self) -> int:
        return self.steps * BATCH * SEQ_LEN


FAMILY: dict[str, Member] = {m.name: m for m in (
    Member("dense-1m", "dense-1m"), Member("dense-4m", "dense-4m"), Member("dense-12m", "dense-12m"),
    Member("moe-1m", "moe-1m"), Member("moe-4m", "moe-4m"), Member("moe-12m", "moe-12m"),
    # the decoder predicts about half of each window (the rest is the encoder's prefix): twice the steps give
    # encoder-decoders as many predicted tokens as the decoder-only members
    # encoder-decoders train with Adafactor (train's optimizer "auto" for T5), at nanoT5's learning rate
    Member("encdec-4m", "encdec-4m", steps=3000, lr=2e-2), Member("encdec-12m", "encdec-12m", steps=3000, lr=2e-2),
    Member("dense-4m-it", "dense-4m", steps=300, lr=1e-3, warmup=30, base="dense-4m"),
    Member("moe-4m-it", "moe-4m", steps=300, lr=1e-3, warmup=30, base="moe-4m"),
    Member("encdec-4m-it", "encdec-4m", steps=300, lr=7e-3, warmup=30, base="encdec-4m"),
)}


def _shard(args) -> list[str]:
    from workbench.corpora import generate_corpus
    kind, seed, n = args
    return [r["text"] for r in generate_corpus(kind, n, seed=seed).records]


def family_corpus(n_docs: int = CORPUS_DOCS, kind: str = "mixed", seed: int = 0, workers: int | None = None
                  ) -> list[str]:
    """The training texts: `n_docs` documents of `kind`, made in shards of SHARD_DOCS with seeds
    1000*(seed+1)+i (so any number of processes gives the same list, in the same order)."""
    shards = [(kind, 1000 * (seed + 1) + i, min(SHARD_DOCS, n_docs - i * SHARD_DOCS))
              for i in range(-(-n_docs // SHARD_DOCS))]
    workers = max(1, min(len(shards), workers or os.cpu_count() or 1))
    if workers == 1:
        parts = [_shard(s) for s in shards]
    else:
        with Pool(workers) as pool:
            parts = pool.map(_shard, shards)
    return [t for part in parts for t in part]


def family_tokenizer(texts: list[str], out_dir: Path):
    """The family's tokenizer: trained once on `texts` and kept in out_dir/tokenizer (reused when present)."""
    from workbench.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer
    where = out_dir / "tokenizer"
    if (where / "tokenizer.json").exists():
        return load_tokenizer(where)
    tok = train_tokenizer(texts, vocab_size=VOCAB)
    save_tokenizer(tok, where)
    return tok


def train_member(member: Member, texts: list[str], tok, out_dir: Path, scale: float = 1.0, device=None,
                 callbacks=()):
    """Train one member into out_dir/<name> (replacing an earlier run there); returns the TrainResult.

    `scale` multiplies the steps (0.01 for a smoke test). An "-it" member loads its base from out_dir/<base>.
    """
    from workbench.models import load_model
    from workbench.train import train
    steps = max(2, round(member.steps * scale))
    kw = dict(steps=steps, batch_size=BATCH if scale >= 1 else 8, seq_len=SEQ_LEN if scale >= 1 else 64,
              lr=member.lr, warmup=min(member.warmup, steps // 4), eval_every=max(1, steps // 6),
              sample_every=0, sample_prompts=("Once upon a time",), sample_n=2, sample_max_new_tokens=160,
              seed=0, device=device, log_every=max(1, min(50, steps // 10)), overwrite=True)
    if member.name == SERIES:
        kw.update(checkpoint_steps=tuple(sorted({max(1, round(s * scale)) for s in SERIES_STEPS} - {steps})),
                  keep_checkpoints=None, checkpoint_light=True)
    if member.base:
        model, _ = load_model(out_dir / member.base)
        return train(model.train(), texts, tokenizer=tok, out_dir=out_dir / member.name, callbacks=callbacks, **kw)
    return train(member.preset, texts, tokenizer=tok, out_dir=out_dir / member.name, callbacks=callbacks, **kw)
