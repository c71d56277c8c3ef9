"""The evaluation grid: models x tasks x prompt styles, one row per (model, task, style, instance).

`evaluate()` runs one model over tasks and styles and returns a tidy DataFrame with the columns of `COLUMNS`:
the aspect labels (task_type, domain, reasoning), the prompt length, the output (cut at the stop string),
whether it was cut by the token budget (`hit_max`) or the prompt by the context (`truncated`), and each metric
of `metrics.METRICS` in [0, 1]. `run_grid()` does it for several models; `load_results()` reads the table
shipped in `data/prompting/` so a notebook opens without generating anything.
Batches hold prompts of one (task, style), sorted by length so padding stays small; the result does not depend
on the batch size beyond float rounding (greedy argmax ties are the only way it could; see the tests).
Here: `COLUMNS`, `evaluate()`, `run_grid()`, `load_results()`, `save_results()`, `RESULTS`.
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from .generation import generate_batch
from .metrics import METRICS, score_output
from .styles import Style, render, style_registry
from .tasks import ASPECTS, GenTask

RESULTS = Path(__file__).resolve().parents[2] / "data" / "prompting" / "results.csv.gz"
COLUMNS = ("model", "task", *ASPECTS, "style", "instance", "prompt_tokens", "output", "hit_max", "truncated",
           *METRICS)


def _styles(task: GenTask, styles) -> list[Style]:
    registry = style_registry(task)
    if styles is None:
        return list(registry.values())
    out = []
    for s in styles:
        if isinstance(s, Style):
            out.append(s)
        elif s in registry:
            out.append(registry[s])
        else:
            raise ValueError(f"unknown prompt style {s!r}; valid: {', '.join(registry)}")
    return out


def evaluate(model, tokenizer, tasks, styles=None, model_name: str = "model", batch_size: int = 32,
             temperature: float = 0.0, seed: int = 0, limit: int | None = None, progress=None) -> pd.DataFrame:
    """Rows of COLUMNS for `model` on every task and style (all registry styles when `styles` is None).

    `limit`: the first `limit` instances of each task. `progress(done, total, label)` is called per batch.
    Greedy by default; `temperature > 0` samples (seeded). Raises StyleError for a style a task cannot render.
    """
    tasks = [tasks] if isinstance(tasks, GenTask) else list(tasks)
    jobs = [(t, s) for t in tasks for s in _styles(t, styles)]
    total = sum(len(t.instances[:limit]) for t, _ in jobs)
    rows, done = [], 0
    for task, style in jobs:
        items = [(inst, render(task, inst, style, seed)) for inst in task.instances[:limit]]
        items.sort(key=lambda it: len(it[1]))
        for b in range(0, len(items), batch_size):
            chunk = items[b:b + batch_size]
            gens = generate_batch(model, tokenizer, [p for _, p in chunk], task.stop, task.max_new_tokens,
                                  temperature, seed + b)
            for (inst, _), g in zip(chunk, gens):
                m = score_output(g.text.strip(), inst.references, inst.required, inst.forbidden)
                rows.append({"model": model_name, "task": task.name, **{a: inst.aspects.get(a, "") for a in ASPECTS},
                             "style": style.name, "instance": inst.id, "prompt_tokens": g.prompt_tokens,
                             "output": g.text.strip(), "hit_max": g.hit_max, "truncated": g.truncated, **m})
            done += len(chunk)
            if progress:
                progress(done, total, f"{task.name} / {style.name}")
    order = {inst.id: i for t in tasks for i, inst in enumerate(t.instances)}
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["_i"] = df["instance"].map(order)
    return df.sort_values(["task", "style", "_i"], kind="stable").drop(columns="_i").reset_index(drop=True)


def run_grid(models: dict, tasks, styles=None, batch_size: int = 32, limit: int | None = None,
             log=print) -> pd.DataFrame:
    """`evaluate()` for each name -> (model, tokenizer) or name -> loader() in `models`, concatenated.

    A loader is called only when its turn comes, so a large family does not sit in memory at once.
    """
    parts = []
    for name, entry in models.items():
        t0 = time.perf_counter()
        model, tok = entry() if callable(entry) else entry
        parts.append(evaluate(model, tok, tasks, styles, name, batch_size, limit=limit))
        if log:
            log(f"{name}: {len(parts[-1])} outputs in {time.perf_counter() - t0:.0f} s")
    return pd.concat(parts, ignore_index=True)


def save_results(df: pd.DataFrame, path: str | Path = RESULTS) -> Path:
    """Write the table (gzip CSV; column order COLUMNS) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df[list(COLUMNS)].to_csv(path, index=False, compression="gzip", float_format="%.4f")
    return path


def load_results(path: str | Path = RESULTS) -> pd.DataFrame:
    """The shipped (or a saved) results table; raises FileNotFoundError naming the command that makes it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; make it with `python bench/bench_prompting.py --table` "
                                f"(or evaluation.run_grid + save_results)")
    df = pd.read_csv(path, keep_default_na=False, dtype={"output": str})
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: columns {missing} missing; the table was written by another version, "
                         f"rebuild it with `python bench/bench_prompting.py --table`")
    for c in ("hit_max", "truncated"):
        df[c] = df[c].astype(str).str.lower().eq("true")
    return df
