"""The shipped translation study, read back: tables of data/translation/results and the metric-agreement study over
the systems in it.

`python -m workbench.translation.build` writes the results (see that module); here they are read and combined:
- `load_results()`: {"directions", "groups", "separation", "overflow", "load", "systems", "runs"};
- `judge_systems(systems)`: the exact judgement of every system's every segment (judged per direction);
- `agreement(systems)`: NLLB-200's table 38 measured here: segment-level Spearman and Kendall of BLEU, spBLEU and
  chrF++ sentence scores with the exact judgement (all systems' segments pooled), and system-level correlations of
  corpus scores with mean judgements across systems, with bootstrap CIs (translation.agreement);
- `ablation_table(results)`: the regulariser ablation: BLEU / chrF++ / judge on high- and low-resource directions
  with CIs, validation loss, and the mean share of assignments over capacity per side.
Here: `RESULTS_DIR`, `load_results()`, `judge_systems()`, `agreement()`, `ablation_table()`, `test_pairs_of()`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DATA_DIR
from .agreement import segment_agreement, system_agreement
from .data import Pair
from .judge import judge_scores
from .metrics import METRICS, sentence_scores

RESULTS_DIR = DATA_DIR / "translation" / "results"
TABLES = ("directions", "groups", "separation", "overflow", "load")


def load_results(path: str | Path = RESULTS_DIR) -> dict:
    """The study's tables as DataFrames (plus "runs": the build record, a dict). FileNotFoundError names a
    missing file and how to make it."""
    path = Path(path)
    out = {}
    for name in TABLES:
        f = path / f"{name}.csv"
        if not f.is_file():
            raise FileNotFoundError(f"{f} is missing: run `python -m workbench.translation.build --out "
                                    f"{path.parent}` to rebuild the study")
        out[name] = pd.read_csv(f)
    out["systems"] = pd.read_csv(path / "systems.csv.gz", keep_default_na=False)
    out["runs"] = json.loads((path / "runs.json").read_text())
    return out


def test_pairs_of(systems: pd.DataFrame) -> list[Pair]:
    """The test pairs of a systems table (the rows of its first system, in order)."""
    first = systems[systems.system == systems.system.iloc[0]].sort_values("i")
    return [Pair(r.src_lang, r.tgt_lang, r.src, r.ref) for r in first.itertuples()]


def judge_systems(systems: pd.DataFrame) -> pd.DataFrame:
    """`systems` with a `judge` column: the exact judgement (0-1) of each row's hypothesis against its source."""
    out = systems.copy()
    out["judge"] = np.nan
    for (a, b), idx in out.groupby(["src_lang", "tgt_lang"]).groups.items():
        rows = out.loc[idx]
        out.loc[idx, "judge"] = judge_scores(rows.src.tolist(), rows.hyp.tolist(), a, b)
    return out


def agreement(systems: pd.DataFrame, metrics=METRICS, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (level, metric, method): value, 95 % bootstrap interval, p-value, n (segments or systems).

    `systems`: a systems table (columns system, i, src_lang, tgt_lang, src, ref, hyp[, judge]); every system must
    cover the same segments. Segment level pools every system's segments; system level needs >= 3 systems."""
    judged = systems if "judge" in systems else judge_systems(systems)
    names = list(dict.fromkeys(judged.system))
    by = {s: judged[judged.system == s].sort_values("i") for s in names}
    refs = by[names[0]].ref.tolist()
    for s in names:
        if by[s].i.tolist() != by[names[0]].i.tolist():
            raise ValueError(f"system {s!r} covers other segments than {names[0]!r}: every system must translate "
                             "the same test set")
    seg = {m: np.concatenate([sentence_scores(m, by[s].hyp.tolist(), refs) for s in names]) for m in metrics}
    rows = segment_agreement(seg, np.concatenate([by[s].judge.to_numpy() for s in names]), n_boot, seed=seed)
    if len(names) >= 3:
        rows += system_agreement({s: by[s].hyp.tolist() for s in names}, refs,
                                 {s: by[s].judge.to_numpy() for s in names}, metrics, n_boot, seed=seed)
    return pd.DataFrame([{"level": r.level, "metric": r.metric, "method": r.method, "value": r.value, "lo": r.ci[0],
                          "hi": r.ci[1], "p_value": r.p_value, "n": r.n} for r in rows])


def ablation_table(results: dict, metrics=("BLEU", "chrF++", "judge")) -> pd.DataFrame:
    """One row per MoE run (and the dense twin): per group (high-/low-resource) each metric as "score [lo, hi]"
    columns score/lo/hi, the final validation loss, and the mean dropped share at capacity factor 1.0 per side."""
    g = results["groups"]
    runs = {r["name"]: r for r in results["runs"]["runs"]}
    over = results["overflow"]
    rows = []
    for name in dict.fromkeys(g.system):
        row = {"system": name, "settings": ", ".join(f"{k}={v}" for k, v in runs[name]["settings"].items()) or "-",
               "val_loss": runs[name]["val_loss"]}
        for _, r in g[(g.system == name) & g.metric.isin(metrics)].iterrows():
            key = f"{r.metric} {r.group}"
            row[key], row[key + " lo"], row[key + " hi"] = r.score, r.lo, r.hi
        o = over[(over.system == name) & (over.capacity_factor == 1.0)]
        for side in ("encoder", "decoder"):
            row[f"dropped {side}"] = float(o[o.side == side].dropped_share.mean()) if len(o) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
