"""Summaries of the prompt-style grid on synthetic tables with known answers, and the plot builders."""
import numpy as np
import pandas as pd
import pytest

from workbench.evaluation.summary import (aspect_scores, best_style, bootstrap_mean, it_vs_base, paired_difference,
                                          style_cost)
from workbench.plots.prompting import difference_chart, style_heatmap, style_lines


def _table(rates: dict, n: int = 400, seed: int = 0) -> pd.DataFrame:
    """rates[(model, style)] = P(judge = 1); two task types, n instances each, independent draws."""
    rng = np.random.default_rng(seed)
    rows = []
    for (model, style), p in rates.items():
        for ttype in ("qa", "arith"):
            for i in range(n):
                v = float(rng.random() < p)
                rows.append(dict(model=model, task=ttype, task_type=ttype, domain="d", reasoning="r", style=style,
                                 instance=f"{ttype}-{i}", judge=v, exact_match=v, rouge_l=v, chrf=v))
    return pd.DataFrame(rows)


RATES = {("base", "plain"): 0.2, ("base", "qa"): 0.6, ("base-it", "plain"): 0.5, ("base-it", "qa"): 0.9}


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.random(50) < 0.3, rng.random(5000) < 0.3
    m, lo, hi = bootstrap_mean(small.astype(float))
    M, LO, HI = bootstrap_mean(large.astype(float))
    assert lo < m < hi and LO < M < HI and (HI - LO) < (hi - lo) / 5
    assert LO < 0.3 < HI


def test_aspect_scores_best_style_and_cost():
    df = _table(RATES)
    s = aspect_scores(df, "task_type", "judge", n_boot=200)
    assert len(s) == 8 and (s["low"] <= s["mean"]).all() and (s["mean"] <= s["high"]).all()
    row = s[(s.model == "base") & (s["style"] == "qa") & (s.task_type == "qa")].iloc[0]
    assert abs(row["mean"] - 0.6) < 0.07 and row["n"] == 400
    best = best_style(df, "task_type")
    assert set(best["best_style"]) == {"qa"} and (best["margin"] > 0.2).all()
    cost = style_cost(df, "task_type")
    assert (cost["qa"] == 0).all() and (cost["plain"] > 0.2).all()


def test_paired_difference_recovers_a_known_gap_and_pairs_by_instance():
    df = _table(RATES)
    d = paired_difference(df, "base", "base-it", aspect="task_type")
    for _, r in d.iterrows():
        assert r["low"] < r["diff"] < r["high"] and 0.2 < r["diff"] < 0.4     # truth: +0.3
        assert r["low"] > 0
    same = paired_difference(df, "base", "base")
    assert same["diff"].iloc[0] == 0 and same["low"].iloc[0] == 0 == same["high"].iloc[0]
    both = it_vs_base(df, aspect="task_type")
    assert set(both["tuned"]) == {"base-it"} and len(both) == 2
    with pytest.raises(ValueError, match="share no"):
        paired_difference(df, "base", "nobody")


def test_bad_aspect_or_metric_names_the_valid_ones():
    df = _table(RATES, n=5)
    with pytest.raises(ValueError, match="unknown aspect 'colour'; valid: task_type"):
        aspect_scores(df, "colour")
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        best_style(df, "task_type", "bleu")


def test_plot_builders_keep_one_trace_per_model_and_ring_the_selected_style():
    df = _table(RATES, n=30)
    s = aspect_scores(df[df.task_type == "qa"], "task_type", n_boot=50)
    fig = style_lines(s, ["plain", "qa"], ["base", "base-it", "absent"], selected="qa")
    assert [t.name for t in fig.data] == ["base", "base-it", "absent", "selected"]
    assert list(fig.data[-1].x) == ["qa", "qa"] and all(v is None or np.isnan(v) for v in fig.data[2].y)
    heat = style_heatmap(s, ["plain", "qa"], ["base", "base-it"])
    assert np.asarray(heat.data[0].z).shape == (2, 2)
    diff = difference_chart(it_vs_base(df, aspect="task_type"), "task_type")
    assert len(diff.data) == 1 and len(diff.data[0].x) == 2
