"""Statistics for scoring-function claims: accuracy, macro-F1, baselines, paired tests, ANCOVA, calibration.

Here: `accuracy`, `macro_f1` (as scikit-learn's average="macro"), `majority_baseline`, `confusion_matrix`,
`bootstrap_ci`, `paired_bootstrap`, `mcnemar`, `flip_matrix`, `summary_table`, `ancova` (statsmodels OLS +
type-II ANOVA), and calibration (`reliability`, `ece`, `brier`).
All take plain arrays of class indices / probabilities and return numbers, records or DataFrames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def accuracy(golds, preds) -> float:
    golds, preds = np.asarray(golds), np.asarray(preds)
    if golds.shape != preds.shape or golds.size == 0:
        raise ValueError(f"need as many predictions as gold labels (> 0); got {preds.shape} and {golds.shape}")
    return float((golds == preds).mean())


def macro_f1(golds, preds) -> float:
    """Unweighted mean over classes of F1 = 2PR/(P+R); classes = those in golds or preds; 0 when undefined
    (scikit-learn's f1_score(average='macro', zero_division=0))."""
    golds, preds = np.asarray(golds), np.asarray(preds)
    f1s = []
    for k in np.union1d(golds, preds):
        tp = np.sum((preds == k) & (golds == k))
        denom = np.sum(preds == k) + np.sum(golds == k)
        f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s))


def majority_baseline(golds) -> dict:
    """Accuracy and macro-F1 of always predicting the most frequent gold class."""
    golds = np.asarray(golds)
    k = np.bincount(golds).argmax()
    preds = np.full_like(golds, k)
    return {"class": int(k), "acc": accuracy(golds, preds), "macro_f1": macro_f1(golds, preds)}


def confusion_matrix(golds, preds, n_classes: int) -> np.ndarray:
    """(K, K) counts; rows = gold class, columns = predicted class."""
    m = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(m, (np.asarray(golds), np.asarray(preds)), 1)
    return m


def bootstrap_ci(correct, n: int = 2000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of the mean of a 0/1 (or any) per-example vector."""
    x = np.asarray(correct, dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n, len(x)))
    means = x[idx].mean(axis=1)
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


@dataclass(frozen=True)
class PairedBootstrap:
    diff: float               # metric(a) - metric(b) on the full sample
    ci: tuple[float, float]   # percentile interval of the resampled difference
    p_value: float            # two-sided: 2 * min(P(diff* <= 0), P(diff* >= 0)), capped at 1


def paired_bootstrap(golds, preds_a, preds_b, metric=accuracy, n: int = 2000, alpha: float = 0.05,
                     seed: int = 0) -> PairedBootstrap:
    """Resample examples (the same indices for both functions) and compare metric(a) - metric(b)."""
    golds, a, b = map(np.asarray, (golds, preds_a, preds_b))
    rng = np.random.default_rng(seed)
    diffs = np.empty(n)
    for j in range(n):
        i = rng.integers(0, len(golds), len(golds))
        diffs[j] = metric(golds[i], a[i]) - metric(golds[i], b[i])
    p = min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean()))
    return PairedBootstrap(metric(golds, a) - metric(golds, b),
                           (float(np.quantile(diffs, alpha / 2)), float(np.quantile(diffs, 1 - alpha / 2))), p)


@dataclass(frozen=True)
class McNemar:
    b: int              # a right, b wrong
    c: int              # a wrong, b right
    statistic: float
    p_value: float
    exact: bool


def mcnemar(golds, preds_a, preds_b, exact: bool | None = None) -> McNemar:
    """McNemar's test on the discordant pairs. exact: two-sided binomial test of b ~ Bin(b+c, 1/2)
    (statistic = min(b, c)); otherwise chi2 = (|b - c| - 1)^2 / (b + c) with 1 d.o.f. (continuity-corrected).
    Default: exact when b + c < 25. Same numbers as statsmodels.stats.contingency_tables.mcnemar."""
    from scipy import stats as st
    golds, a, b_ = map(np.asarray, (golds, preds_a, preds_b))
    ra, rb = a == golds, b_ == golds
    b, c = int(np.sum(ra & ~rb)), int(np.sum(~ra & rb))
    exact = (b + c) < 25 if exact is None else exact
    if b + c == 0:
        return McNemar(b, c, 0.0, 1.0, exact)
    if exact:
        p = min(1.0, 2 * st.binom.cdf(min(b, c), b + c, 0.5))
        return McNemar(b, c, float(min(b, c)), float(p), True)
    stat = (abs(b - c) - 1) ** 2 / (b + c)
    return McNemar(b, c, float(stat), float(st.chi2.sf(stat, 1)), False)


def flip_matrix(preds: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """(names, M) with M[i, j] = number of examples whose prediction differs between functions i and j."""
    names = list(preds)
    P = np.stack([preds[n] for n in names])                 # (F, N)
    return names, (P[:, None, :] != P[None, :, :]).sum(axis=2)


def flipped_examples(golds, preds_a, preds_b) -> np.ndarray:
    """Indices of the examples whose prediction differs between two functions."""
    return np.flatnonzero(np.asarray(preds_a) != np.asarray(preds_b))


def summary_table(golds, preds: dict[str, np.ndarray], n_boot: int = 1000, seed: int = 0):
    """DataFrame: one row per scoring function with acc, its 95% bootstrap CI, and macro-F1."""
    import pandas as pd
    rows = []
    for name, p in preds.items():
        lo, hi = bootstrap_ci(np.asarray(p) == np.asarray(golds), n=n_boot, seed=seed)
        rows.append({"scoring": name, "acc": accuracy(golds, p), "acc_lo": lo, "acc_hi": hi,
                     "macro_f1": macro_f1(golds, p)})
    return pd.DataFrame(rows)


def ancova(df, response: str = "acc", formula: str | None = None):
    """Type-II ANOVA table of an OLS fit, as the seed paper's ANCOVA.

    Default model: response ~ log(params) + C(arch) + C(instruct) + C(scoring) + C(task), i.e. the effect of
    each factor with the others held fixed. Factors with a single level in `df` (or absent) are dropped (they
    cannot be estimated).
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf
    if formula is None:
        terms = ["np.log(params)"] if df["params"].nunique() > 1 else []
        terms += [f"C({c})" for c in ("arch", "instruct", "scoring", "task") if c in df and df[c].nunique() > 1]
        if not terms:
            raise ValueError("ANCOVA needs at least one factor with two or more levels")
        formula = f"{response} ~ " + " + ".join(terms)
    fit = smf.ols(formula, data=df).fit()
    table = sm.stats.anova_lm(fit, typ=2)
    table.attrs["formula"], table.attrs["r2"] = formula, float(fit.rsquared)
    return table


# ---- calibration -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reliability:
    edges: np.ndarray        # (B+1,) confidence bin edges
    confidence: np.ndarray   # (B,) mean confidence of the top class per bin (NaN if empty)
    accuracy: np.ndarray     # (B,) accuracy per bin (NaN if empty)
    counts: np.ndarray       # (B,)
    ece: float
    brier: float


def softmax(scores: np.ndarray) -> np.ndarray:
    """(N, K) class scores -> probabilities (row softmax)."""
    z = np.exp(scores - scores.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def brier(probs, golds) -> float:
    """mean_i sum_k (p_ik - 1[k = y_i])^2 (multi-class Brier, lm-eval's brier_score)."""
    probs = np.asarray(probs)
    onehot = np.eye(probs.shape[1])[np.asarray(golds)]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def reliability(probs, golds, n_bins: int = 10) -> Reliability:
    """Reliability-diagram data and ECE = sum_b (n_b / N) |acc_b - conf_b| over equal-width confidence bins."""
    probs, golds = np.asarray(probs), np.asarray(golds)
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    edges = np.linspace(0, 1, n_bins + 1)
    b = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    counts = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        c = np.bincount(b, weights=conf, minlength=n_bins) / counts
        a = np.bincount(b, weights=(pred == golds).astype(float), minlength=n_bins) / counts
    e = float(np.nansum(counts / len(conf) * np.abs(a - c)))
    return Reliability(edges, c, a, counts, e, brier(probs, golds))


def ece(probs, golds, n_bins: int = 10) -> float:
    return reliability(probs, golds, n_bins).ece
