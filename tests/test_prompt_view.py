"""The prompt-style grid's browser-side view: the numbers it sends are the summary functions', its controls are
checked, the best-style table is summary.best_style's on the ticked subset, and it saves as one HTML file."""
import numpy as np
import pandas as pd
import pytest
import traitlets

from workbench.evaluation.summary import aspect_scores, best_style
from workbench.widgets.prompting_view import PromptView, aspect_values, grid_payload


@pytest.fixture(scope="module")
def table():
    """A small results table: 3 models x 3 styles x 2 tasks x 5 instances, known scores."""
    rng = np.random.default_rng(0)
    rows = []
    for m in ("a-1m", "b-4m", "b-4m-it"):
        for s in ("plain", "qa", "few"):
            for task, ttype, dom in (("sum", "arithmetic", "math"), ("story", "qa", "stories")):
                for i in range(5):
                    j = float(rng.random() < 0.3 + 0.2 * ("b" in m) + 0.1 * (s == "qa"))
                    rows.append({"model": m, "style": s, "task": task, "task_type": ttype, "domain": dom,
                                 "instance": i, "judge": j, "exact_match": j * (i % 2), "rouge_l": j / 2,
                                 "chrf": j / 3})
    return pd.DataFrame(rows)


@pytest.fixture()
def view(table):
    v = PromptView()
    v.set_table(table, ticked_models=["a-1m", "b-4m"])
    return v


def test_payload_is_aspect_scores_per_cell(table, view):
    d = view.data
    assert d["aspects"] == [["task type", "task_type"], ["domain", "domain"], ["task", "task"]]
    assert d["values"]["domain"] == ["math", "stories"] and d["metrics"] == ["exact_match", "rouge_l", "chrf", "judge"]
    ref = aspect_scores(table, "domain", "judge", n_boot=200).set_index(["model", "style", "domain"])
    cell = d["cells"]["domain"]["stories"]["judge"]
    i, j = d["models"].index("b-4m-it"), d["styles"].index("qa")
    r = ref.loc[("b-4m-it", "qa", "stories")]
    assert [cell[k][i][j] for k in ("mean", "low", "high")] == [round(r["mean"], 4), round(r["low"], 4),
                                                                 round(r["high"], 4)]
    assert view.models == ["a-1m", "b-4m"] and view.styles == ["plain", "qa", "few"]
    assert d["colors"]["b-4m-it"] == d["colors"]["b-4m"] != d["colors"]["a-1m"]   # "-it" takes its base's colour
    assert 1000 < view.payload_bytes() < 40_000


def test_best_table_is_best_style_on_the_ticked_subset(table, view):
    view.aspect, view.metric, view.styles = "task", "judge", ["plain", "few"]
    assert view.entity == "sum"                                          # the aspect's first value
    sub = table[(table["task"] == "sum") & table["model"].isin(["a-1m", "b-4m"]) & table["style"].isin(["plain", "few"])]
    ref = best_style(sub, "task", "judge")
    got = view.best()
    assert list(got["model"]) == list(ref["model"]) and list(got["best_style"]) == list(ref["best_style"])
    assert np.allclose(got["score"], ref["score"], atol=1e-4) and np.allclose(got["margin"], ref["margin"], atol=1e-4)


def test_figures_follow_the_controls(view):
    view.aspect, view.entity, view.metric, view.selected = "domain", "stories", "rouge_l", "qa"
    figs = view.figures()
    assert figs["lines"].layout.title.text == "domain = stories: rouge_l across prompt styles"
    assert [t.name for t in figs["lines"].data] == ["a-1m", "b-4m", "selected"]
    assert set(figs["lines"].data[-1].x) == {"qa"}                       # the ringed style
    assert np.array(figs["heatmap"].data[0].z).shape == (2, 3)


def test_controls_are_checked(view):
    with pytest.raises(traitlets.TraitError, match="is not in the results"):
        view.metric = "bleu"
    with pytest.raises(traitlets.TraitError, match="value of task_type"):
        view.entity = "stories"                                          # a domain, not a task type
    with pytest.raises(traitlets.TraitError, match="models"):
        view.models = ["a-1m", "c-9m"]
    with view.hold_trait_notifications():                                # as a page message sets both at once
        view.aspect, view.entity = "domain", "stories"
    assert (view.aspect, view.entity) == ("domain", "stories")


def test_saved_html_holds_the_grid(view, tmp_path):
    from workbench.widgets.standalone import read_state
    path = view.to_html(tmp_path / "grid")
    state = read_state(path.read_text(encoding="utf-8"))
    assert state["data"]["cells"] == view.data["cells"] and state["models"] == ["a-1m", "b-4m"]


def test_values_follow_the_suite_order_and_bad_tables_say_what_is_missing(table):
    assert aspect_values(table, "task", ["story", "sum"]) == ["story", "sum"]
    with pytest.raises(KeyError, match="no column"):
        grid_payload(table.drop(columns="style"))


def test_aspect_scores_in_one_pass_equal_one_bootstrap_per_group(table):
    from workbench.evaluation.summary import aspect_scores_many, bootstrap_mean
    many = aspect_scores_many(table, "domain", ["judge", "chrf"], n_boot=300, seed=2)
    one = aspect_scores(table, "domain", "chrf", n_boot=300, seed=2)
    pd.testing.assert_frame_equal(many["chrf"], one)
    g = table[(table["model"] == "b-4m") & (table["style"] == "few") & (table["domain"] == "math")]
    per_instance = g.groupby(["task", "instance"], sort=False)["judge"].mean().to_numpy()
    row = many["judge"].set_index(["model", "style", "domain"]).loc[("b-4m", "few", "math")]
    assert (row["mean"], row["low"], row["high"]) == bootstrap_mean(per_instance, 300, seed=2)
    with pytest.raises(ValueError, match="empty"):
        aspect_scores(table.iloc[:0], "domain")
