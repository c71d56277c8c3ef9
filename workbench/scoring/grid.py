"""The replication grid, stored once: every log-likelihood of (model x task) that the scoring functions use.

Computing a grid of family models x built-in tasks x scoring functions takes minutes on a GPU and much longer
on a laptop; every scoring function is a cheap function of the same few arrays (`LabelLogprobs`). So the
arrays are computed once, written to one compressed `.npz` with a JSON index, and read back in a second:

    records = compute_grid({"dense-4m": (model, tok), ...}, GRID_TASKS)      # slow, once
    save_grid(records, "data/grid")                                          # grid.npz + grid.json
    records = load_grid("data/grid")                                         # {(model, task): LabelLogprobs}

A loaded record has the arrays and the task (rebuilt from its name, level, size and seed, and checked against
the stored gold labels), but not the per-token strings (`cont_tokens`, `ctx_tokens` are empty): recompute one
(model, task) with `label_logprobs` to inspect tokens. `tests/test_grid.py` recomputes a random subset from the
shipped models and asserts equality, so the stored table cannot drift from the models.
Here: `GRID_TASKS`, `compute_grid()`, `save_grid()`, `load_grid()`, `grid_meta()`, `recompute_rows()`,
`max_difference()`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .builtin import builtin_task
from .loglik import LabelLogprobs, label_logprobs
from .tasks import Task

# One level per task: the hardest level whose text still allows more than the majority baseline.
GRID_TASKS = ("feeling/1", "topic/1", "ending/1", "language/2", "domain/1", "pronoun/1")
ARRAYS = ("cond", "first", "n_tokens", "greedy", "uncond", "generic", "domain", "content_free", "channel",
          "channel_tokens", "truncated")
FORMAT = 1


def grid_task(spec: str, n: int = 600, seed: int = 0) -> Task:
    """The built-in task "name/level" with `n` examples (what a grid cell is scored on)."""
    name, _, level = spec.partition("/")
    return builtin_task(name, int(level or 0), n=n, seed=seed)


def compute_grid(models: dict, tasks=GRID_TASKS, n: int = 600, seed: int = 0, channel: bool = True,
                 batch_tokens: int = 8192, progress=None) -> dict[tuple[str, str], LabelLogprobs]:
    """{(model name, task spec): LabelLogprobs} for `models` = {name: (model, tokenizer)} and task specs
    ("feeling/1", ...). `progress(model, task)` is called before each cell."""
    out = {}
    for task_spec in tasks:
        task = grid_task(task_spec, n, seed)
        for name, (model, tok) in models.items():
            if progress:
                progress(name, task_spec)
            out[(name, task_spec)] = label_logprobs(model, tok, task, model_name=name, channel=channel,
                                                    batch_tokens=batch_tokens)
    return out


def save_grid(records: dict[tuple[str, str], LabelLogprobs], out_dir: str | Path, n: int | None = None,
              seed: int = 0, meta: dict | None = None) -> Path:
    """Write grid.npz (float64 log-likelihoods, compressed) and grid.json (index, task sizes, `meta`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays, cells = {}, []
    for i, ((model, task_spec), r) in enumerate(sorted(records.items())):
        for field in ARRAYS:
            arrays[f"c{i}_{field}"] = np.asarray(getattr(r, field))
        arrays[f"c{i}_golds"] = np.asarray(r.task.golds)
        cells.append({"id": i, "model": model, "task": task_spec, "n": len(r.task.golds),
                      "verbalizers": [v for _, v in r.task.choices]})
    tmp = out_dir / ".grid.npz.tmp"
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    tmp.replace(out_dir / "grid.npz")
    index = {"format": FORMAT, "seed": seed, "cells": cells, "meta": meta or {}}
    (out_dir / "grid.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return out_dir


def load_grid(path: str | Path) -> dict[tuple[str, str], LabelLogprobs]:
    """Read a grid written by `save_grid`; each task is rebuilt and its gold labels checked against the file.

    Raises FileNotFoundError naming the missing file, ValueError when the file's format is unknown or a
    rebuilt task disagrees with the stored labels (the generator changed: recompute the grid).
    """
    path = Path(path)
    for f in ("grid.json", "grid.npz"):
        if not (path / f).exists():
            raise FileNotFoundError(f"{path / f} is missing: compute the grid (workbench.scoring.grid.compute_grid "
                                    "and save_grid, or `make models`)")
    index = json.loads((path / "grid.json").read_text(encoding="utf-8"))
    if index.get("format") != FORMAT:
        raise ValueError(f"{path / 'grid.json'}: format {index.get('format')!r}, this version reads {FORMAT}")
    data = np.load(path / "grid.npz")
    tasks: dict[tuple[str, int], Task] = {}
    out = {}
    for cell in index["cells"]:
        key = (cell["task"], cell["n"])
        if key not in tasks:
            tasks[key] = grid_task(cell["task"], cell["n"], index.get("seed", 0))
        task, i = tasks[key], cell["id"]
        if list(task.golds) != data[f"c{i}_golds"].tolist() or [v for _, v in task.choices] != cell["verbalizers"]:
            raise ValueError(f"{path / 'grid.npz'}: task {cell['task']!r} no longer matches the stored one "
                             "(the corpus generator or the task changed): recompute the grid")
        arr = {f: data[f"c{i}_{f}"] for f in ARRAYS}
        out[(cell["model"], cell["task"])] = LabelLogprobs(task=task, model_name=cell["model"], cont_tokens=(),
                                                         cont_logprobs=(), ctx_tokens=(), **arr)
    return out


def grid_meta(path: str | Path) -> dict:
    """grid.json's meta: {"models": {name: params_total, params_active, config, base}, "seconds", "device"}."""
    return json.loads((Path(path) / "grid.json").read_text(encoding="utf-8")).get("meta", {})


def recompute_rows(stored: LabelLogprobs, model, tok, rows, channel: bool = True) -> LabelLogprobs:
    """The cell `stored` computed again from `model`, on the examples `rows` only (the premise terms, which
    do not depend on the examples, in full). Compare with `max_difference(stored, fresh, rows)`."""
    t = stored.task
    rows = [int(i) for i in rows]
    sub = t.with_(texts=tuple(t.texts[i] for i in rows), golds=tuple(t.golds[i] for i in rows),
                  reachable=tuple(t.reachable[i] for i in rows) if t.reachable else ())
    return label_logprobs(model, tok, sub, model_name=stored.model_name,
                          channel=channel and not np.isnan(stored.channel).all())


def max_difference(stored: LabelLogprobs, fresh: LabelLogprobs, rows) -> dict[str, float]:
    """{array: largest absolute difference} between a stored cell (its `rows`) and a recomputed one."""
    rows = np.asarray(rows, dtype=int)
    n = len(stored.task.golds)
    out = {}
    for f in ARRAYS:
        a, b = np.asarray(getattr(stored, f), dtype=float), np.asarray(getattr(fresh, f), dtype=float)
        if a.ndim and a.shape[0] == n and f not in ("uncond", "generic", "domain", "content_free"):
            a = a[rows]
        out[f] = float(np.nanmax(np.abs(a - b))) if a.size and not np.isnan(a).all() else 0.0
        if a.shape != b.shape or (np.isnan(a) != np.isnan(b)).any():
            out[f] = float("inf")
    return out
