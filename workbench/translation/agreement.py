"""How well MT metrics agree with the exact judgement, and whether one system beats another.

Segment level  Spearman rho and Kendall tau-b (scipy.stats.spearmanr / kendalltau) between each metric's
               sentence-level scores (sacrebleu sentence_score; BLEU/spBLEU with effective order) and the
               judgement of the same segments, pooled over all systems (N = systems x segments). CI: percentile
               bootstrap over segments (pairs resampled with replacement), as for NLLB's metric-vs-human table.
System level   the same coefficients between each system's corpus-level metric score and its mean judgement
               (S systems, S >= 3). CI: percentile bootstrap that resamples the test set's segments (the same
               indices for every system, since all systems translate the same sources) and recomputes corpus
               scores from sacrebleu's sufficient statistics (its `_extract_corpus_statistics` /
               `_compute_score_from_stats`, as its own significance module does).
               Resamples where a coefficient is undefined (constant scores) are left out of the interval.
Paired tests   sacrebleu's own implementation (`sacrebleu.significance.PairedTest`): paired bootstrap
               resampling (Koehn 2004; "bs", 1,000 resamples) or approximate randomisation (Riezler & Maxwell
               2005; "ar", 10,000 trials). p = (c + 1) / (trials + 1), c = trials whose |difference| under the
               null exceeds the observed one; sacrebleu fixes its seed to 12345 unless SACREBLEU_SEED says
               otherwise, and the seed is in the signature.
Here: `CorrelationResult`, `correlate()`, `segment_agreement()`, `system_agreement()`, `agreement_table()`,
`PairedResult`, `paired_significance()`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .judge import check_lang, judge_scores
from .metrics import METRICS, _check_name, check_pairs, corpus_score, sacrebleu_metric, sentence_scores

METHODS = ("spearman", "kendall")


@dataclass(frozen=True)
class CorrelationResult:
    metric: str                 # "BLEU" | "spBLEU" | "chrF++"
    level: str                  # "segment" | "system"
    method: str                 # "spearman" | "kendall" (tau-b)
    value: float                # the coefficient on the full sample, in [-1, 1]
    ci: tuple[float, float]     # percentile bootstrap interval (1 - alpha)
    p_value: float              # scipy's test of no association (two-sided)
    n: int                      # segments (segment level) or systems (system level)


def _coef(x: np.ndarray, y: np.ndarray, method: str) -> tuple[float, float]:
    from scipy import stats
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    r = stats.spearmanr(x, y) if method == "spearman" else stats.kendalltau(x, y)
    return float(r.statistic), float(r.pvalue)


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method={method!r}: use one of {', '.join(METHODS)}")
    return method


def correlate(x, y, method: str = "spearman", n_boot: int = 1000, alpha: float = 0.05,
              seed: int = 0) -> tuple[float, tuple[float, float], float]:
    """(coefficient, percentile bootstrap CI, p-value) of Spearman or Kendall tau-b between paired x and y.

    x, y: (N,) numbers, N >= 3. Pairs are resampled with replacement n_boot times.
    """
    _check_method(method)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError(f"x and y must be paired 1-D arrays of 3 or more values; got shapes {x.shape} and "
                         f"{y.shape}")
    value, p = _coef(x, y, method)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    boot = np.array([_coef(x[i], y[i], method)[0] for i in idx])
    return value, _interval(boot, alpha), p


def _interval(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    boot = boot[~np.isnan(boot)]
    if not len(boot):
        return float("nan"), float("nan")
    return float(np.quantile(boot, alpha / 2)), float(np.quantile(boot, 1 - alpha / 2))


def segment_agreement(metric_scores: Mapping[str, Sequence[float]], judgements: Sequence[float],
                      n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> list[CorrelationResult]:
    """Segment-level Spearman and Kendall of each metric's per-segment scores with the judgements.

    metric_scores: {metric name: (N,) sentence-level scores}; judgements: (N,) exact judgements in [0, 1].
    """
    y = np.asarray(judgements, dtype=float)
    out = []
    for name, scores in metric_scores.items():
        x = np.asarray(scores, dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"metric_scores[{name!r}] has {x.size} scores but judgements {y.size}: pass one "
                             f"score per judged segment")
        for method in METHODS:
            value, ci, p = correlate(x, y, method, n_boot, alpha, seed)
            out.append(CorrelationResult(name, "segment", method, value, ci, p, len(y)))
    return out


def system_agreement(systems: Mapping[str, Sequence[str]], references: Sequence[str],
                     judgements: Mapping[str, Sequence[float]], metrics=METRICS, n_boot: int = 1000,
                     alpha: float = 0.05, seed: int = 0) -> list[CorrelationResult]:
    """System-level Spearman and Kendall of corpus metric scores with mean judgements, with bootstrap CIs.

    systems: {name: (N,) hypotheses}, at least 3; references: (N,) one per segment; judgements: {name: (N,)
    segment judgements of that system}.
    """
    names = list(systems)
    if len(names) < 3:
        raise ValueError(f"systems has {len(names)} system(s): a system-level correlation needs at least 3")
    refs = None
    for name in names:
        _, refs = check_pairs(systems[name], references, names=(f"systems[{name!r}]", "references"))
        if name not in judgements or len(judgements[name]) != len(refs):
            raise ValueError(f"judgements[{name!r}] is missing or not one score per segment ({len(refs)}): judge "
                             f"every system's segments (judge_scores)")
    n = len(refs)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    J = np.stack([np.asarray(judgements[s], dtype=float) for s in names])            # (S, N)
    j_full, j_boot = J.mean(axis=1), J[:, idx].mean(axis=2)                            # (S,), (S, B)
    out = []
    for metric_name in metrics:
        metric = sacrebleu_metric(_check_name(metric_name))
        stats = [np.asarray(metric._extract_corpus_statistics(list(systems[s]), [refs]), dtype=float)
                 for s in names]                                                        # S x (N, k)
        full = np.array([metric._compute_score_from_stats(st.sum(0)).score for st in stats])
        boot = np.array([[metric._compute_score_from_stats(st[i].sum(0)).score for i in idx] for st in stats])
        for method in METHODS:
            value, p = _coef(full, j_full, method)
            b = np.array([_coef(boot[:, k], j_boot[:, k], method)[0] for k in range(n_boot)])
            out.append(CorrelationResult(metric_name, "system", method, value, _interval(b, alpha), p, len(names)))
    return out


def agreement_table(systems: Mapping[str, Sequence[str]], sources: Sequence[str], references: Sequence[str],
                    src_lang: str, tgt_lang: str, metrics=METRICS, n_boot: int = 1000, alpha: float = 0.05,
                    seed: int = 0):
    """The NLLB-style table, measured: one row per (level, metric, method) with value, CI, p and n.

    systems: {name: hypotheses in tgt_lang}, each one per source; sources in src_lang (story-grammar text, e.g.
    from translation_pairs); references: exact translations. Returns a pandas DataFrame whose
    `attrs["signatures"]` holds each metric's sacrebleu signature (corpus level) and `attrs["judgements"]`
    {system: (N,) judgements}.
    """
    import pandas as pd
    check_lang(src_lang, "src_lang"), check_lang(tgt_lang, "tgt_lang")
    if not systems:
        raise ValueError("systems is empty: pass {name: hypotheses} for at least 3 systems")
    for name in metrics:
        _check_name(name)
    judged = {s: judge_scores(sources, hyps, src_lang, tgt_lang) for s, hyps in systems.items()}
    seg_scores = {m: np.concatenate([sentence_scores(m, hyps, references) for hyps in systems.values()])
                  for m in metrics}
    rows = segment_agreement(seg_scores, np.concatenate(list(judged.values())), n_boot, alpha, seed)
    if len(systems) >= 3:
        rows += system_agreement(systems, references, judged, metrics, n_boot, alpha, seed)
    table = pd.DataFrame([{"level": r.level, "metric": r.metric, "method": r.method, "value": r.value,
                           "lo": r.ci[0], "hi": r.ci[1], "p_value": r.p_value, "n": r.n} for r in rows])
    first = next(iter(systems.values()))
    table.attrs["signatures"] = {m: corpus_score(m, first, references).signature for m in metrics}
    table.attrs["judgements"] = judged
    return table


@dataclass(frozen=True)
class PairedResult:
    metric: str
    score_a: float              # corpus score of system a (the baseline), 0-100
    score_b: float              # corpus score of system b
    p_value: float              # sacrebleu's p for "b differs from a"
    test: str                   # "bs" (paired bootstrap) | "ar" (approximate randomisation)
    signature: str              # sacrebleu signature with the test, its trials and seed
    ci_b: float | None = None   # half-width of b's 95% interval (bootstrap), when sacrebleu gives it

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def paired_significance(hypotheses_a, hypotheses_b, references, metrics=("BLEU", "chrF++"), test: str = "bs",
                        n_samples: int = 0) -> dict[str, PairedResult]:
    """Is system b's score different from system a's? sacrebleu's paired test per metric.

    hypotheses_a (baseline), hypotheses_b, references: lists of str of one length. test: "bs" or "ar".
    n_samples: resamples/trials (0: sacrebleu's defaults, 1,000 for bs and 10,000 for ar).
    Identical outputs get p = 1 (sacrebleu's formula would give 1 / (trials + 1) for them).
    """
    from sacrebleu.significance import PairedTest
    if test not in ("bs", "ar"):
        raise ValueError(f"test={test!r}: use 'bs' (paired bootstrap) or 'ar' (approximate randomisation)")
    a, refs = check_pairs(hypotheses_a, references, names=("hypotheses_a", "references"))
    b, _ = check_pairs(hypotheses_b, references, names=("hypotheses_b", "references"))
    out = {}
    for name in metrics:
        metric = sacrebleu_metric(_check_name(name))
        if a == b:      # sacrebleu's p is (0 + 1) / (trials + 1) here; identical outputs cannot differ
            score = metric.corpus_score(a, [refs]).score
            out[name] = PairedResult(name, float(score), float(score), 1.0, test, str(metric.get_signature()))
            continue
        pt = PairedTest([("a", a), ("b", b)], {name: metric}, [refs], test_type=test, n_samples=n_samples)
        sigs, scores = pt()
        key = next(k for k in scores if k != "System")
        base, other = scores[key]
        out[name] = PairedResult(name, float(base.score), float(other.score), float(other.p_value), test,
                                 str(sigs[key]), None if other.ci is None else float(other.ci))
    return out
