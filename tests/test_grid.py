"""The stored grid: save -> load gives the same arrays, tasks and predictions as the live computation."""
import numpy as np
import pytest

from workbench.scoring import predictions
from workbench.scoring.grid import ARRAYS, compute_grid, load_grid, save_grid
from workbench.testing import tiny_model


@pytest.fixture(scope="module")
def live(tiny_tok):
    models = {"a": (tiny_model("dense", seed=1, tokenizer=tiny_tok, max_position_embeddings=512).eval(), tiny_tok),
              "b": (tiny_model("moe", seed=2, tokenizer=tiny_tok, max_position_embeddings=512).eval(), tiny_tok)}
    return compute_grid(models, ("ending/1", "pronoun/1"), n=6, channel=True)


def test_round_trip_keeps_every_array_and_prediction(live, tmp_path):
    save_grid(live, tmp_path, meta={"note": "test"})
    back = load_grid(tmp_path)
    assert set(back) == set(live) == {(m, t) for m in "ab" for t in ("ending/1", "pronoun/1")}
    for key, r in live.items():
        b = back[key]
        for f in ARRAYS:
            np.testing.assert_array_equal(getattr(b, f), getattr(r, f), err_msg=f"{key} {f}")
        assert b.task.golds == r.task.golds and b.task.choices == r.task.choices
        for fn, p in predictions(r).items():
            np.testing.assert_array_equal(predictions(b)[fn], p)


def test_a_changed_task_or_missing_file_is_refused(live, tmp_path):
    save_grid(live, tmp_path)
    import json
    index = json.loads((tmp_path / "grid.json").read_text())
    index["cells"][0]["verbalizers"][0] = "something else"
    (tmp_path / "grid.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="recompute the grid"):
        load_grid(tmp_path)
    (tmp_path / "grid.npz").unlink()
    with pytest.raises(FileNotFoundError, match="grid.npz is missing"):
        load_grid(tmp_path)


def test_grid_frame_tests_ancova_and_size_plot(live):
    from workbench.plots.scoring import accuracy_vs_size
    from workbench.scoring.stats import ancova
    from workbench.scoring.study import function_tests, grid_frame
    meta = {"a": {"params_active": 1e5, "params_total": 1e5, "config": {"kind": "dense"}, "base": None},
            "b": {"params_active": 1e5, "params_total": 2e5, "config": {"kind": "moe"}, "base": None}}
    df = grid_frame(live, meta)
    assert set(df["arch"]) == {"dense", "moe"} and set(df["task"]) == {"ending/1", "pronoun/1"}
    assert "channel" in set(df["scoring"]) and len(df) == 2 * 2 * df["scoring"].nunique()
    row = df[(df.model == "a") & (df.task == "ending/1") & (df.scoring == "acc")].iloc[0]
    assert row["acc"] == pytest.approx((predictions(live[("a", "ending/1")])["acc"]
                                        == np.asarray(live[("a", "ending/1")].task.golds)).mean())
    tests = function_tests(live, n_boot=200)
    assert (tests["scoring"] != "acc").all() and tests["mcnemar_p"].between(0, 1).all()
    assert (tests["delta_lo"] <= tests["delta"] + 1e-12).all() and (tests["delta"] <= tests["delta_hi"] + 1e-12).all()
    table = ancova(df)
    assert {"C(arch)", "C(scoring)", "C(task)"} <= set(table.index)
    fig = accuracy_vs_size(df)
    assert len(fig.data) == df["scoring"].nunique() * 2
