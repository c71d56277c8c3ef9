"""Scoring a translation system on held-out pairs: BLEU, chrF++, spBLEU (with signatures) and the exact judgement,
per direction and for groups of directions, with bootstrap confidence intervals.

A corpus score's interval resamples segments (n_boot draws of N segment indices with replacement) and recomputes
the corpus score from sacrebleu's sufficient statistics of the drawn segments (Koehn 2004's bootstrap); the
percentile interval is reported. The judgement's interval is the same bootstrap of its segment mean.
Here: `score_directions()`, `corpus_interval()`, `group_scores()`, `evaluate_model()`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data import Pair
from .judge import judge_scores
from .metrics import METRICS, _check_name, check_pairs, corpus_score, sacrebleu_metric


def corpus_interval(name: str, hypotheses, references, n_boot: int = 1000, alpha: float = 0.05,
                    seed: int = 0) -> tuple[float, float, float]:
    """(score, lo, hi): corpus `name` (0-100) and its (1 - alpha) bootstrap percentile interval over segments."""
    hyps, refs = check_pairs(hypotheses, references)
    metric = sacrebleu_metric(_check_name(name))
    stats = np.asarray(metric._extract_corpus_statistics(hyps, [refs]), dtype=float)     # (N, k)
    score = metric._compute_score_from_stats(stats.sum(0)).score
    idx = np.random.default_rng(seed).integers(0, len(hyps), size=(n_boot, len(hyps)))
    boot = np.array([metric._compute_score_from_stats(stats[i].sum(0)).score for i in idx])
    return float(score), float(np.quantile(boot, alpha / 2)), float(np.quantile(boot, 1 - alpha / 2))


def _mean_interval(x: np.ndarray, n_boot: int, alpha: float, seed: int) -> tuple[float, float, float]:
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    boot = x[idx].mean(1)
    return float(x.mean()), float(np.quantile(boot, alpha / 2)), float(np.quantile(boot, 1 - alpha / 2))


def score_directions(pairs: list[Pair], hypotheses, metrics=METRICS) -> pd.DataFrame:
    """One row per direction (src_lang, tgt_lang, n, each metric 0-100, judge 0-1 = mean exact judgement), plus
    a `judge` column per segment in `attrs["segments"]` (a DataFrame: direction, metric sentence scores are not
    computed here). `attrs["signatures"]` holds each metric's sacrebleu signature. ValueError when the counts of
    pairs and hypotheses differ."""
    hyps, _ = check_pairs(hypotheses, [p.tgt for p in pairs], names=("hypotheses", "pairs"))
    rows, seg, sigs = [], [], {}
    order = list(dict.fromkeys((p.src_lang, p.tgt_lang) for p in pairs))
    for a, b in order:
        idx = [i for i, p in enumerate(pairs) if (p.src_lang, p.tgt_lang) == (a, b)]
        h, r = [hyps[i] for i in idx], [pairs[i].tgt for i in idx]
        j = judge_scores([pairs[i].src for i in idx], h, a, b)
        row = {"src_lang": a, "tgt_lang": b, "n": len(idx)}
        for m in metrics:
            res = corpus_score(m, h, r)
            row[m], sigs[m] = res.score, res.signature
        row["judge"] = float(j.mean())
        rows.append(row)
        seg += [{"i": i, "src_lang": a, "tgt_lang": b, "judge": float(v)} for i, v in zip(idx, j)]
    df = pd.DataFrame(rows)
    df.attrs["signatures"] = sigs
    df.attrs["segments"] = pd.DataFrame(seg).sort_values("i").reset_index(drop=True)
    return df


def group_scores(pairs: list[Pair], hypotheses, groups: dict[str, callable], metrics=METRICS, n_boot: int = 1000,
                 seed: int = 0, judgements=None) -> pd.DataFrame:
    """One row per (group, metric): score and 95 % bootstrap interval over the group's segments pooled (one
    corpus score over all its directions). groups: {name: predicate(Pair) -> bool}, e.g. high- vs low-resource
    directions. `judgements` (N,) reuses already computed exact judgements."""
    hyps, _ = check_pairs(hypotheses, [p.tgt for p in pairs], names=("hypotheses", "pairs"))
    if judgements is None:
        judgements = np.empty(len(pairs))
        for a, b in dict.fromkeys((p.src_lang, p.tgt_lang) for p in pairs):
            idx = [i for i, p in enumerate(pairs) if (p.src_lang, p.tgt_lang) == (a, b)]
            judgements[idx] = judge_scores([pairs[i].src for i in idx], [hyps[i] for i in idx], a, b)
    judgements = np.asarray(judgements, float)
    rows = []
    for g, keep in groups.items():
        idx = [i for i, p in enumerate(pairs) if keep(p)]
        if not idx:
            raise ValueError(f"group {g!r} holds no pairs")
        h, r = [hyps[i] for i in idx], [pairs[i].tgt for i in idx]
        for m in metrics:
            s, lo, hi = corpus_interval(m, h, r, n_boot, seed=seed)
            rows.append({"group": g, "metric": m, "score": s, "lo": lo, "hi": hi, "n": len(idx)})
        s, lo, hi = _mean_interval(judgements[idx], n_boot, 0.05, seed)
        rows.append({"group": g, "metric": "judge", "score": s, "lo": lo, "hi": hi, "n": len(idx)})
    return pd.DataFrame(rows)


def evaluate_model(model, tok, pairs: list[Pair], num_beams: int = 1, batch_size: int = 64):
    """(per-direction DataFrame of score_directions, hypotheses) of `model` on `pairs`."""
    from .decode import translate_pairs
    hyps = translate_pairs(model, tok, pairs, num_beams=num_beams, batch_size=batch_size)
    return score_directions(pairs, hyps), hyps
