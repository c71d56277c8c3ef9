"""Parallel data for many-to-many translation among English and the three constructed languages.

Every story sentence of the corpora is one meaning rendered by rule in each language, so one story sentence gives
a tuple of four translations (en, vel, kor, tuu) and up to 12 directed pairs. As NLLB-200 does, the source is
prefixed with its language token and the target starts with the target-language token, which decoding forces
(`forced_bos_token_id`):
    encoder input  = [__src__] source tokens [EOS]
    decoder labels = [__tgt__] target tokens [EOS]      (decoder input = labels shifted right after the start token)
One language can be made deliberately low-resource (`low_resource={"tuu": 0.05}`: it is present in only 5 % of
the training tuples), the setting NLLB's regularisers (Expert Output Masking, Gating Dropout) address.

Held out: test sentences come from evaluation-split stories (`corpora.stories.text_split`, a property of the
story text) and every test sentence whose English text also occurs in the training tuples is dropped, so no test
source or reference was seen in training.
Here: `MT_LANGS`, `lang_token()`, `Pair`, `sentence_tuples()`, `parallel_pairs()`, `test_pairs()`,
`train_mt_tokenizer()`, `encode_pair()`, `PairData`, `prepare_pairs()`, `as_pairs()`.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..corpora.languages import LANGUAGES

MT_LANGS = ("en",) + tuple(LANGUAGES)          # en, vel, kor, tuu


def lang_token(code: str) -> str:
    """The language token of `code` ("vel" -> "__vel__", M2M-100's spelling). ValueError lists the valid codes."""
    if code not in MT_LANGS:
        raise ValueError(f"unknown language code {code!r}; valid: {', '.join(MT_LANGS)}")
    return f"__{code}__"


@dataclass(frozen=True)
class Pair:
    """One directed translation example (plain text in both languages)."""
    src_lang: str
    tgt_lang: str
    src: str
    tgt: str


def sentence_tuples(n_stories: int, seed: int = 0, split: str = "train") -> list[dict[str, str]]:
    """{lang: sentence} for every sentence of `n_stories` stories of `split` (each dict holds all MT_LANGS)."""
    from ..corpora.corpus import _sentence
    from ..corpora.stories import generate_stories
    return [{lang: _sentence(story, i, lang) for lang in MT_LANGS}
            for story in generate_stories(n_stories, seed=seed, split=split) for i in range(len(story.plan))]


def _check_low_resource(low_resource: dict) -> dict:
    for lang, share in low_resource.items():
        lang_token(lang)
        if not 0.0 < share <= 1.0:
            raise ValueError(f"low_resource[{lang!r}]={share}: give the share of training tuples in (0, 1]")
    return dict(low_resource)


def parallel_pairs(n_stories: int = 2000, seed: int = 0, low_resource: dict | None = None,
                   directions_per_tuple: int = 4) -> list[Pair]:
    """Training pairs: for each sentence tuple of `n_stories` training stories, `directions_per_tuple` distinct
    directions drawn at random among those its languages allow. A low-resource language (low_resource={lang:
    share}) is kept in only `share` of the tuples (seeded), so every direction into or out of it is rare.
    Duplicate (direction, source) pairs are dropped. Deterministic in `seed`."""
    low = _check_low_resource(low_resource or {})
    rng = random.Random(f"mt-{seed}")
    pairs, seen = [], set()
    for tup in sentence_tuples(n_stories, seed=seed, split="train"):
        langs = [lang for lang in MT_LANGS if lang not in low or rng.random() < low[lang]]
        dirs = [(a, b) for a in langs for b in langs if a != b]
        for a, b in rng.sample(dirs, min(directions_per_tuple, len(dirs))):
            if (a, b, tup[a]) not in seen:
                seen.add((a, b, tup[a]))
                pairs.append(Pair(a, b, tup[a], tup[b]))
    return pairs


def test_pairs(train_pairs: list[Pair], n_per_direction: int = 100, seed: int = 0,
               directions: list[tuple[str, str]] | None = None) -> list[Pair]:
    """Held-out pairs, `n_per_direction` per direction (all 12 by default), from evaluation-split stories; a
    sentence whose English, or whose source in any language, occurs in `train_pairs` is dropped."""
    seen = {p.src for p in train_pairs} | {p.tgt for p in train_pairs}
    dirs = directions or [(a, b) for a in MT_LANGS for b in MT_LANGS if a != b]
    tuples = [t for t in sentence_tuples(max(200, n_per_direction * 2), seed=seed + 1, split="eval")
              if not any(s in seen for s in t.values())]
    unique = list({t["en"]: t for t in tuples}.values())
    rng = random.Random(f"mt-test-{seed}")
    out = []
    for a, b in dirs:
        if len(unique) < n_per_direction:
            raise ValueError(f"only {len(unique)} unseen test sentences for {n_per_direction} per direction")
        out += [Pair(a, b, t[a], t[b]) for t in rng.sample(unique, n_per_direction)]
    return out


def train_mt_tokenizer(pairs: list[Pair], vocab_size: int = 2048):
    """A byte-level BPE (workbench.tokenizer) learnt on every sentence of `pairs`, plus the four language tokens as
    special tokens (after the learnt vocabulary). Saved, it loads with plain AutoTokenizer.from_pretrained."""
    from ..tokenizer import train_tokenizer
    texts = list(dict.fromkeys(s for p in pairs for s in (p.src, p.tgt)))
    tok = train_tokenizer(texts, vocab_size=vocab_size)
    tok.add_special_tokens({"additional_special_tokens": [lang_token(x) for x in MT_LANGS]})
    return tok


def check_mt_tokenizer(tok) -> None:
    """ValueError unless `tok` has EOS, PAD and every language token (a tokenizer from train_mt_tokenizer)."""
    missing = [lang_token(x) for x in MT_LANGS if tok.convert_tokens_to_ids(lang_token(x)) in (None, tok.unk_token_id)]
    if tok.eos_token_id is None or tok.pad_token_id is None or missing:
        raise ValueError(f"a translation tokenizer needs EOS, PAD and the language tokens; missing: "
                         f"{missing or 'EOS/PAD'}; build one with workbench.translation.data.train_mt_tokenizer")


def encode_pair(tok, pair: Pair, max_len: int | None = None) -> tuple[list[int], list[int]]:
    """(encoder ids, label ids) of `pair` in the NLLB layout above; each side cut to `max_len` tokens (its last
    token kept EOS) when longer."""
    src = [tok.convert_tokens_to_ids(lang_token(pair.src_lang))] + tok(pair.src, add_special_tokens=False)["input_ids"]
    tgt = [tok.convert_tokens_to_ids(lang_token(pair.tgt_lang))] + tok(pair.tgt, add_special_tokens=False)["input_ids"]
    if max_len:
        src, tgt = src[:max_len - 1], tgt[:max_len - 1]
    return src + [tok.eos_token_id], tgt + [tok.eos_token_id]


def _pad(rows: list[list[int]], pad: int) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r)
    return out


@dataclass
class PairData:
    """Encoded training and validation pairs; the same batch interface as train.data.TokenData.

    batch() returns (x, y): x (B, S) encoder ids and y (B, T) label ids, both right-padded with `pad`."""
    train: list[tuple[list[int], list[int]]]
    val: list[tuple[list[int], list[int]]]
    pad: int
    seq_len: int                 # the longest side allowed (tokens)
    val_pairs: list = field(default_factory=list)   # the validation pairs as text (for sample translations)

    @property
    def n_windows(self) -> int:
        return len(self.train)

    def _rows(self, rows):
        return _pad([r[0] for r in rows], self.pad), _pad([r[1] for r in rows], self.pad)

    def batch(self, step: int, micro: int, batch_size: int, grad_accum: int, seed: int,
              shard: tuple[int, int] = (0, 1)):
        """Micro-batch `micro` of step `step`: example i = (step * grad_accum + micro) * batch_size + j of a
        per-epoch permutation seeded by (seed, epoch), as TokenData; `shard` = (rank, world) takes this rank's rows."""
        from ..train.data import batch_indices
        idx = batch_indices(self.n_windows, step, micro, batch_size, grad_accum, seed, shard)
        return self._rows([self.train[int(i)] for i in idx])

    def val_batches(self, batch_size: int, max_batches: int):
        """Deterministic validation batches from the start of the validation pairs."""
        rows = self.val[:batch_size * max_batches]
        for i in range(0, len(rows), batch_size):
            yield self._rows(rows[i:i + batch_size])


def prepare_pairs(pairs: list[Pair], tok, seq_len: int, val_fraction: float, seed: int) -> PairData:
    """Encode and split `pairs` (a seeded split of pairs, at least one each side) into PairData."""
    check_mt_tokenizer(tok)
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 translation pairs to hold one out for validation, got {len(pairs)}")
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_val = min(len(pairs) - 1, max(1, round(len(pairs) * val_fraction)))
    enc = [encode_pair(tok, pairs[i], seq_len) for i in order]
    return PairData(train=enc[n_val:], val=enc[:n_val], pad=tok.pad_token_id, seq_len=seq_len,
                    val_pairs=[pairs[i] for i in order[:n_val]])


PAIR_FIELDS = ("src_lang", "tgt_lang", "src", "tgt")


def is_parallel(corpus) -> bool:
    """True for a list of Pair (or dicts with PAIR_FIELDS) or a .jsonl file whose first record has PAIR_FIELDS."""
    if isinstance(corpus, (str, Path)):
        p = Path(corpus)
        if p.suffix != ".jsonl" or not p.is_file():
            return False
        with p.open(encoding="utf-8") as f:
            first = f.readline()
        try:
            return all(k in json.loads(first) for k in PAIR_FIELDS)
        except (json.JSONDecodeError, TypeError):
            return False
    if isinstance(corpus, (list, tuple)) and corpus:
        x = corpus[0]
        return isinstance(x, Pair) or (isinstance(x, dict) and all(k in x for k in PAIR_FIELDS))
    return False


def as_pairs(corpus) -> list[Pair]:
    """Pairs from a list of Pair or dicts, or a .jsonl file of {src_lang, tgt_lang, src, tgt} records. ValueError
    names the file, the line and the field that is missing or not a language of the corpora."""
    where = str(corpus) if isinstance(corpus, (str, Path)) else "corpus"
    if isinstance(corpus, (str, Path)):
        lines = Path(corpus).read_text(encoding="utf-8").splitlines()
        items = []
        for i, line in enumerate(lines, 1):
            if line.strip():
                try:
                    items.append((i, json.loads(line)))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{where} line {i} is not JSON ({err.msg})") from None
    else:
        items = list(enumerate(corpus, 1))
    out = []
    for i, x in items:
        if isinstance(x, Pair):
            out.append(x)
            continue
        missing = [k for k in PAIR_FIELDS if not isinstance(x, dict) or not isinstance(x.get(k), str)]
        if missing:
            raise ValueError(f"{where} record {i}: field(s) {missing} missing or not text; each record needs "
                             f"{', '.join(PAIR_FIELDS)}")
        for k in ("src_lang", "tgt_lang"):
            if x[k] not in MT_LANGS:
                raise ValueError(f"{where} record {i}: {k}={x[k]!r} is not a language of the corpora; valid: "
                                 f"{', '.join(MT_LANGS)}")
        if not x["src"].strip() or not x["tgt"].strip():
            raise ValueError(f"{where} record {i}: empty src or tgt")
        out.append(Pair(x["src_lang"], x["tgt_lang"], x["src"], x["tgt"]))
    if not out:
        raise ValueError(f"{where} holds no translation pairs")
    return out
