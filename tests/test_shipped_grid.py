"""The shipped scoring grid (data/grid) cannot drift from the shipped models: random cells, random examples,
recomputed on this machine, must give the stored log-likelihoods."""
import json
import random

import numpy as np
import pytest

from workbench.config import DATA_DIR, DEFAULT_MODELS
from workbench.models import load_model
from workbench.scoring import predictions
from workbench.scoring.grid import GRID_TASKS, grid_meta, load_grid, max_difference, recompute_rows

GRID = DATA_DIR / "grid"
TOL = 2e-3          # nats: the grid was computed in float32 on a GPU, the test runs in float32 on a CPU


@pytest.fixture(scope="module")
def grid():
    return load_grid(GRID), grid_meta(GRID)


def test_the_grid_covers_every_shipped_family_member_and_task(grid):
    records, meta = grid
    family = json.loads((DATA_DIR / "models" / "family.json").read_text())
    assert set(meta["models"]) == set(family) and len(family) >= 3
    assert {(m, t) for m in family for t in GRID_TASKS} == set(records)
    for name, m in meta["models"].items():
        assert (DEFAULT_MODELS[name] / "model.safetensors").exists(), f"{name} is in the grid but not shipped"
        assert m["params_total"] == family[name]["params_total"]
    assert all(len(r.task.golds) == 600 for r in records.values())


def test_random_cells_recompute_to_the_stored_numbers(grid):
    records, _ = grid
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    for key in rng.sample(sorted(records), 3):
        stored = records[key]
        rows = sorted(rng.sample(range(len(stored.task.golds)), 5))
        model, tok = load_model(key[0])
        fresh = recompute_rows(stored, model, tok, rows)
        diff = max_difference(stored, fresh, rows)
        assert max(diff.values()) < TOL, f"cell {key}, rows {rows} (seed {seed}): {diff}"
        margin = np.sort(stored.cond[rows], axis=1)
        clear = (margin[:, -1] - margin[:, -2]) > 10 * TOL                       # no near-tie to flip
        for fn, p in predictions(fresh, ["acc", "acc_norm", "dcpmi"]).items():
            np.testing.assert_array_equal(p[clear], predictions(stored, [fn])[fn][rows][clear], err_msg=f"{key} {fn}")
