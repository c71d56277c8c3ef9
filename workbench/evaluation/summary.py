"""Summaries of the grid table: scores per aspect with intervals, the best style, the cost of another style,
and pre-trained vs instruction-tuned ("-it") differences with paired intervals.

All intervals are percentile bootstraps over *instances* (Efron & Tibshirani 1993): an instance's scores under
several styles or tasks are averaged first, then instances are resampled, so correlated rows of one instance
are not counted as independent evidence. 95 % by default, seeded; 2,000 resamples for paired differences,
1,000 for the per-cell scores of `aspect_scores` (a widget redraws them; pass n_boot for more).
Input: the tidy table of `grid.evaluate` (one row per model, task, style, instance; metrics in [0, 1]).
Here: `ASPECT_NAMES`, `aspect_scores()`, `best_style()`, `style_cost()`, `paired_difference()`, `it_vs_base()`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

ASPECT_NAMES = {"task_type": "task type", "domain": "domain", "reasoning": "reasoning type", "task": "task"}


def _check(df: pd.DataFrame, aspect: str, metric: str) -> None:
    if aspect not in ASPECT_NAMES:
        raise ValueError(f"unknown aspect {aspect!r}; valid: {', '.join(ASPECT_NAMES)}")
    if metric not in df.columns:
        raise ValueError(f"unknown metric {metric!r}; the table has: "
                         f"{', '.join(c for c in ('exact_match', 'rouge_l', 'chrf', 'judge') if c in df.columns)}")
    if df.empty:
        raise ValueError("the results table is empty (no rows for this selection)")


def bootstrap_mean(values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
                   ) -> tuple[float, float, float]:
    """(mean, low, high) of `values` (one number per instance) by the percentile bootstrap."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (n_boot, values.size))].mean(axis=1)
    a = (1 - level) / 2
    return float(values.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def aspect_scores(df: pd.DataFrame, aspect: str = "task_type", metric: str = "judge",
                  by=("model", "style"), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean `metric` per (by..., aspect value) with a bootstrap interval over instances.

    Columns: *by, aspect, mean, low, high, n (instances). Units: the metric's, in [0, 1]. Each group's interval is
    `bootstrap_mean(values, n_boot, seed=seed)` of its per-instance means; computed here in one pass (groups of the
    same size share the resampling indices, as separate calls with the same seed would draw them).
    """
    return aspect_scores_many(df, aspect, [metric], by, n_boot, seed)[metric]


def aspect_scores_many(df: pd.DataFrame, aspect: str, metrics, by=("model", "style"), n_boot: int = 1000,
                       seed: int = 0) -> dict[str, pd.DataFrame]:
    """{metric: aspect_scores(df, aspect, metric, by, n_boot, seed)} for several metrics, grouping the table once."""
    for m in metrics:
        _check(df, aspect, m)
    keys = [*by, aspect]
    inner = list(dict.fromkeys([*keys, "task", "instance"]))          # aspect may be "task" itself
    per_inst = df.groupby(inner, sort=False)[list(metrics)].mean().reset_index()
    columns = [*keys, "mean", "low", "high", "n"]
    if per_inst.empty:
        return {m: pd.DataFrame(columns=columns) for m in metrics}
    codes = per_inst.groupby(keys, sort=False).ngroup().to_numpy()    # groups in order of first appearance
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    bounds = list(zip(starts, [*starts[1:], len(order)]))
    first = per_inst.iloc[order[starts]][keys].to_dict("records")
    draws: dict[int, np.ndarray] = {}
    q = (1 - 0.95) / 2
    out = {}
    for metric in metrics:
        values = per_inst[metric].to_numpy(dtype=np.float64)[order]
        boot = np.empty((len(bounds), n_boot))
        for g, (a, b) in enumerate(bounds):
            n = b - a
            if n not in draws:
                draws[n] = np.random.default_rng(seed).integers(0, n, (n_boot, n))
            boot[g] = values[a:b][draws[n]].mean(axis=1)
        low, high = np.quantile(boot, q, axis=1), np.quantile(boot, 1 - q, axis=1)
        rows = [{**k, "mean": float(values[a:b].mean()), "low": float(low[g]), "high": float(high[g]),
                 "n": int(b - a)} for g, (k, (a, b)) in enumerate(zip(first, bounds))]
        out[metric] = pd.DataFrame(rows, columns=columns)
    return out


def best_style(df: pd.DataFrame, aspect: str = "task_type", metric: str = "judge") -> pd.DataFrame:
    """Per model and aspect value: the best style, its score, the runner-up and the margin between them.

    Columns: model, aspect, best_style, score, runner_up, runner_up_score, margin. Ties go to the style
    listed first in the table; a cell where every style scores 0 says "(none: all 0)".
    """
    _check(df, aspect, metric)
    means = df.groupby(["model", aspect, "style"], sort=False)[metric].mean().reset_index()
    rows = []
    for (model, value), g in means.groupby(["model", aspect], sort=False):
        g = g.sort_values(metric, ascending=False, kind="stable")
        first, second = g.iloc[0], g.iloc[1] if len(g) > 1 else g.iloc[0]
        name = first["style"] if first[metric] > 0 else "(none: all 0)"
        rows.append({"model": model, aspect: value, "best_style": name, "score": first[metric],
                     "runner_up": second["style"], "runner_up_score": second[metric],
                     "margin": first[metric] - second[metric]})
    return pd.DataFrame(rows)


def style_cost(df: pd.DataFrame, aspect: str = "task_type", metric: str = "judge") -> pd.DataFrame:
    """The cost of using another style: best style's score minus each style's, per model and aspect value.

    Returns a wide table: index (model, aspect value), one column per style, values >= 0 (0 = the best).
    """
    _check(df, aspect, metric)
    wide = df.pivot_table(index=["model", aspect], columns="style", values=metric, aggfunc="mean", sort=False)
    return (wide.max(axis=1).to_numpy()[:, None] - wide).round(4) + 0.0      # + 0.0: no "-0.0" cells


def paired_difference(df: pd.DataFrame, a: str, b: str, metric: str = "judge", aspect: str | None = None,
                      styles=None, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Model `b` minus model `a` on the same instances (and styles), per aspect value, with bootstrap intervals.

    Pairs rows by (task, style, instance); averages each instance's differences over styles; resamples
    instances. Columns: aspect (or "all"), diff, low, high, n, a_mean, b_mean.
    Raises ValueError when the two models share no rows.
    """
    sel = df if styles is None else df[df["style"].isin(list(styles))]
    key = ["task", "style", "instance"]
    left = sel[sel["model"] == a].set_index(key)
    right = sel[sel["model"] == b].set_index(key)
    both = left.join(right[[metric]], rsuffix="_b", how="inner")
    if both.empty:
        raise ValueError(f"models {a!r} and {b!r} share no (task, style, instance) rows")
    both["d"] = both[f"{metric}_b"] - both[metric]
    both = both.reset_index()
    groups = [("all", both)] if aspect is None else list(both.groupby(aspect, sort=False))
    rows = []
    for value, g in groups:
        per = g.groupby(["task", "instance"])[["d", metric, f"{metric}_b"]].mean()
        m, lo, hi = bootstrap_mean(per["d"].to_numpy(), n_boot, seed=seed)
        rows.append({aspect or "aspect": value, "diff": m, "low": lo, "high": hi, "n": len(per),
                     "a_mean": per[metric].mean(), "b_mean": per[f"{metric}_b"].mean()})
    return pd.DataFrame(rows)


def it_vs_base(df: pd.DataFrame, metric: str = "judge", aspect: str = "task_type", styles=None,
               n_boot: int = 2000) -> pd.DataFrame:
    """Every "<base>-it" model in the table against its base: `paired_difference(base, base-it)` stacked.

    Columns: base, tuned, then those of paired_difference. Empty when the table has no such pair.
    """
    models = set(df["model"])
    parts = []
    for tuned in sorted(m for m in models if m.endswith("-it") and m[:-3] in models):
        d = paired_difference(df, tuned[:-3], tuned, metric, aspect, styles, n_boot)
        parts.append(d.assign(base=tuned[:-3], tuned=tuned))
    if not parts:
        return pd.DataFrame(columns=["base", "tuned", aspect, "diff", "low", "high", "n", "a_mean", "b_mean"])
    out = pd.concat(parts, ignore_index=True)
    return out[["base", "tuned", *[c for c in out.columns if c not in ("base", "tuned")]]]
