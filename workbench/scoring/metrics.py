"""Generation metrics with their sacreBLEU signatures: BLEU, chrF++ and spBLEU (local SentencePiece model only).

Here: `bleu()`, `chrf_pp()`, `spbleu()`; each returns a `Score(name, score, signature)`.
References are given per hypothesis (`refs[i]` = list of references of hypothesis i) and transposed here into
sacreBLEU's reference *streams*, the most common silent bug. spBLEU never downloads its model: pass the path
of a SentencePiece model (and optionally its SHA-256, checked before use).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Score:
    name: str
    score: float
    signature: str


def _streams(hyps: list[str], refs: list) -> list[list[str]]:
    """refs[i] (a string or a list of strings) per hypothesis -> sacreBLEU reference streams."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference entries: give refs[i] per hypothesis")
    per = [[r] if isinstance(r, str) else list(r) for r in refs]
    n = {len(r) for r in per}
    if len(n) != 1 or 0 in n:
        raise ValueError("every hypothesis needs the same number (>= 1) of references")
    return [list(s) for s in zip(*per)]


def bleu(hyps: list[str], refs: list, **kw) -> Score:
    """Corpus BLEU (sacreBLEU defaults: 13a tokenizer, exp smoothing, 4-grams)."""
    from sacrebleu.metrics import BLEU
    m = BLEU(**kw)
    return Score("BLEU", float(m.corpus_score(hyps, _streams(hyps, refs)).score), str(m.get_signature()))


def chrf_pp(hyps: list[str], refs: list) -> Score:
    """Corpus chrF++ = CHRF(word_order=2): character 6-grams + word 2-grams, beta = 2."""
    from sacrebleu.metrics import CHRF
    m = CHRF(word_order=2)
    return Score("chrF++", float(m.corpus_score(hyps, _streams(hyps, refs)).score), str(m.get_signature()))


def spbleu(hyps: list[str], refs: list, spm_model: str | Path, sha256: str | None = None) -> Score:
    """BLEU on SentencePiece pieces of a *local* model (as FLORES spBLEU); nothing is downloaded."""
    path = Path(spm_model)
    if not path.is_file():
        raise FileNotFoundError(f"spBLEU needs a local SentencePiece model; {path} does not exist. Download the "
                                "FLORES-200 SPM model yourself and pass its path (the workbench never downloads it)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha256 and digest != sha256.lower():
        raise ValueError(f"{path} has SHA-256 {digest}, expected {sha256}: wrong SentencePiece model")
    try:
        import sentencepiece as spm
    except ImportError:
        raise ImportError("spBLEU needs the `sentencepiece` package: pip install sentencepiece") from None
    sp = spm.SentencePieceProcessor(model_file=str(path))
    piece = lambda s: " ".join(sp.encode(s, out_type=str))   # noqa: E731
    from sacrebleu.metrics import BLEU
    m = BLEU(tokenize="none")
    streams = [[piece(r) for r in s] for s in _streams(hyps, refs)]
    res = m.corpus_score([piece(h) for h in hyps], streams)
    sig = str(m.get_signature()).replace("tok:none", f"tok:spm-{digest[:12]}")
    return Score("spBLEU", float(res.score), sig)
