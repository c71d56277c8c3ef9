"""The seed paper's design on the model family: size x architecture x instruction tuning x scoring function.

Lepagnol et al. (LREC-COLING 2024, "Small Language Models are Good Too") scored 72 models on 15 datasets with
several scoring functions and asked, with an ANCOVA, whether the function matters (it did not, markedly:
decoder-only p = 0.6693; encoder-decoder p = 0.0086). Here the models are the workbench's family
(`workbench.family`: dense, MoE and T5 models at three sizes, instruction-tuned variants, one corpus and one
tokenizer) and the tasks the held-out built-in ones; their log-likelihoods are stored once (`grid`).

Here: `family_grid()` (the stored grid, or recomputed), `grid_frame()` (one row per model x task x scoring
function, ready for `stats.ancova`), `function_tests()` (McNemar and paired bootstrap against `acc`),
`best_cells()`, `scoring_effect()`, `describe_ancova()`, `default_or_tiny()`.
"""
from __future__ import annotations

from .functions import predictions, resolve_names
from .stats import accuracy, macro_f1


def grid_frame(records: dict, meta: dict, names=None, how: str = "logsumexp", size: str = "params_active"):
    """Long DataFrame of a stored grid (`grid.load_grid` records, `meta` = grid.json's meta["models"]):
    model, params (`size`: "params_active" or "params_total"), arch (dense | moe | encdec), instruct (0/1),
    task, scoring, acc, macro_f1, majority, ceiling."""
    import numpy as np
    import pandas as pd
    rows = []
    for (mname, tname), rec in records.items():
        m = meta[mname]
        present = [n for n in resolve_names(names) if n != "channel" or not np.isnan(rec.channel).all()]
        for fn, p in predictions(rec, present, how).items():
            rows.append({"model": mname, "params": m[size], "arch": m["config"]["kind"],
                         "instruct": int(bool(m.get("base"))), "task": tname, "scoring": fn,
                         "acc": accuracy(rec.golds, p), "macro_f1": macro_f1(rec.golds, p),
                         "majority": rec.task.majority, "ceiling": rec.task.ceiling})
    return pd.DataFrame(rows)


def function_tests(records: dict, baseline: str = "acc", names=None, how: str = "logsumexp", n_boot: int = 2000):
    """Per (model, task, scoring function): accuracy, its difference from `baseline`'s with a paired-bootstrap
    95% CI, and McNemar's p-value on the same examples. DataFrame, one row per cell and function."""
    import numpy as np
    import pandas as pd
    from .stats import mcnemar, paired_bootstrap
    rows = []
    for (mname, tname), rec in records.items():
        present = [n for n in resolve_names(names) if n != "channel" or not np.isnan(rec.channel).all()]
        preds = predictions(rec, present, how)
        base = preds[baseline]
        for fn, p in preds.items():
            if fn == baseline:
                continue
            pb, mc = paired_bootstrap(rec.golds, p, base, n=n_boot), mcnemar(rec.golds, p, base)
            rows.append({"model": mname, "task": tname, "scoring": fn, "acc": accuracy(rec.golds, p),
                         "delta": pb.diff, "delta_lo": pb.ci[0], "delta_hi": pb.ci[1], "mcnemar_p": mc.p_value})
    return pd.DataFrame(rows)


def best_cells(records: dict, names=None, how: str = "logsumexp", n_boot: int = 2000, seed: int = 0):
    """Per (model, task): accuracy of `acc`, the best scoring function with its 95% bootstrap CI, the majority
    baseline, the ceiling, and `beats_majority` (the best function's CI lies above the majority baseline).
    The best of several functions picked on the same examples is optimistic: read it with its interval."""
    import numpy as np
    import pandas as pd
    from .stats import bootstrap_ci
    rows = []
    for (mname, tname), rec in sorted(records.items()):
        present = [n for n in resolve_names(names) if n != "channel" or not np.isnan(rec.channel).all()]
        correct = {fn: (p == rec.golds).astype(float) for fn, p in predictions(rec, present, how).items()}
        fn = max(correct, key=lambda f: correct[f].mean())
        lo, hi = bootstrap_ci(correct[fn], n=n_boot, seed=seed)
        rows.append({"model": mname, "task": tname, "acc": correct["acc"].mean(), "best": fn,
                     "best_acc": correct[fn].mean(), "ci_low": lo, "ci_high": hi, "majority": rec.task.majority,
                     "ceiling": rec.task.ceiling, "beats_majority": lo > rec.task.majority})
    return pd.DataFrame(rows)


def scoring_effect(df, exclude=(), **where) -> dict:
    """The scoring function's row of the ANCOVA on a subset of a `grid_frame`: `where` selects rows by column
    (e.g. arch=["encdec"]), `exclude` drops scoring functions. {"F", "p", "rows", "functions", "formula"};
    F and p are NaN when the subset leaves the function nothing to vary."""
    from .stats import ancova
    sub = df[~df["scoring"].isin(list(exclude))]
    for col, values in where.items():
        sub = sub[sub[col].isin(values if isinstance(values, (list, tuple, set)) else [values])]
    out = {"rows": len(sub), "functions": int(sub["scoring"].nunique()), "F": float("nan"), "p": float("nan"),
           "formula": ""}
    if out["functions"] < 2 or len(sub) <= out["functions"] + 2:
        return out
    table = ancova(sub)
    out.update(F=float(table.loc["C(scoring)", "F"]), p=float(table.loc["C(scoring)", "PR(>F)"]),
               formula=table.attrs["formula"])
    return out


def describe_ancova(table, alpha: float = 0.05) -> list[str]:
    """One plain sentence per factor of an `stats.ancova` table, read from its p-values."""
    names = {"np.log(params)": "model size (log parameters)", "C(arch)": "architecture",
             "C(instruct)": "instruction tuning", "C(scoring)": "scoring function", "C(task)": "task"}
    out = []
    for term, row in table.drop(index="Residual", errors="ignore").iterrows():
        p = row["PR(>F)"]
        verdict = "a significant effect" if p < alpha else "no significant effect"
        out.append(f"{names.get(term, term)}: F = {row['F']:.2f}, p = {p:.3g} -> {verdict} at alpha = {alpha}")
    return out


def default_or_tiny(name: str = "tiny-dense", seed: int = 0):
    """(model, tokenizer, note): a default trained model, or an untrained small one with a note saying so."""
    from workbench.models import build_model, load_model
    try:
        model, tok = load_model(name)
        return model, tok, f"{name}: the default trained model"
    except FileNotFoundError as err:
        from workbench.corpora import generate_corpus
        from workbench.tokenizer import train_tokenizer
        tok = train_tokenizer(generate_corpus("stories", 300, seed=seed).texts, vocab_size=512)
        kind = "moe" if "moe" in name else "dense"
        model = build_model(f"{kind}-nano", tokenizer=tok, seed=seed, max_position_embeddings=512).eval()
        return (model, tok, f"NOTE: {err}. Using an UNTRAINED {kind}-nano model instead: the scores below are "
                "noise, the plumbing is real.")


def family_grid(path=None, recompute: bool = False, n: int | None = None, progress=None):
    """(records, models meta) of the model family's scoring grid: read from `path` (default data/grid) in a
    second, or with `recompute=True` computed again from the shipped models (minutes on a GPU, much longer on
    a CPU; `n` examples per task, default the stored number). Raises FileNotFoundError naming the missing
    file and how to make it."""
    from workbench.config import DATA_DIR
    from workbench.models import load_model
    from .grid import compute_grid, grid_meta, load_grid
    path = DATA_DIR / "grid" if path is None else path
    records = load_grid(path)
    meta = grid_meta(path)["models"]
    if not recompute:
        return records, meta
    tasks = sorted({t for _, t in records})
    n = n or len(next(iter(records.values())).task.golds)
    models = {name: load_model(name) for name in meta}
    return compute_grid(models, tasks, n=n, progress=progress), meta
