"""The compression lab: the shipped table is what the code measures, the sliders ring the variants they name,
the live row prunes and measures on demand, and errors stay inline."""
import pandas as pd
import pytest

from workbench.compress import magnitude_prune
from workbench.compress.measure import val_loss
from workbench.compress.variants import DENSE_VARIANTS, MOE_VARIANTS, load_results, make_variant
from workbench.corpora import generate_corpus
from workbench.models import load_model
from workbench.plots.compress import pareto_chart
from workbench.widgets.compress import compress_lab


@pytest.fixture(scope="module")
def table():
    return load_results()


def test_the_shipped_table_covers_the_benchmarked_variants(table):
    for name in ("dense-4m", "dense-12m"):
        got = {(m, s.split(" (")[0]) for m, s in zip(table.loc[table.model == name, "method"],
                                                     table.loc[table.model == name, "setting"])}
        assert got >= {(m, s) for m, s in DENSE_VARIANTS if "+recover" not in m}
    moe = table[table.model.str.startswith("moe")]
    assert moe.empty or {m for m, _ in MOE_VARIANTS} <= set(moe["method"])
    assert (table.loc[table.method == "original", "latency_ratio_1t"] == 1).all()


def test_a_shipped_row_recomputes_to_the_stored_value(table):
    """The table cannot drift from the code: the validation loss of a pruned variant, again, here."""
    model, tok = load_model("dense-4m")
    row = table[(table.model == "dense-4m") & (table.method == "magnitude") & (table.setting == "0.3")].iloc[0]
    pruned, _ = magnitude_prune(model, 0.3)
    fresh = val_loss(pruned, tok, generate_corpus("mixed", 60, seed=0, split="eval").texts)
    assert fresh == pytest.approx(row["val_loss"], abs=2e-3)


def test_variants_refuse_what_they_cannot_build(tiny_dense, tiny_tok):
    with pytest.raises(ValueError, match="unknown compression method 'zip'; known: original, magnitude"):
        make_variant(tiny_dense, tiny_tok, "zip", "", [])
    with pytest.raises(ValueError, match="needs train_texts"):
        make_variant(tiny_dense, tiny_tok, "prune_mlp+recover", "0.5", ["Once upon a time."])


def test_the_chart_rings_the_chosen_variants(table):
    rows = table[table.model == "dense-4m"]
    fig = pareto_chart(rows, "disk_mb", "val_loss", highlight={("magnitude", "0.5"), ("quantize", "int8-weight")})
    sel = [t for t in fig.data if t.name == "selected"][0]
    want = rows[rows.method.isin(["magnitude", "quantize"]) & rows.setting.isin(["0.5", "int8-weight"])]
    assert sorted(sel.x) == sorted(want["disk_mb"]) and len(sel.x) == 2
    assert len(pareto_chart(rows).data) == len(fig.data)              # the ring trace is always there
    with pytest.raises(KeyError, match="no column 'nope'"):
        pareto_chart(rows, "nope")


def test_sliders_ring_and_list_without_running_a_model(table):
    lab = compress_lab(table, model="dense-4m")
    lab.refresh(sp="0.7", b="4")
    sel = [t for t in lab.figure.data if t.name == "selected"][0]
    rows = table[(table.model == "dense-4m") & table.method.isin(["magnitude", "quantize"])
                 & table.setting.isin(["0.7", "int4-weight"])]
    assert sorted(sel.x) == sorted(rows["disk_mb"])
    info = lab.children[4].value
    assert "0.7" in info and "int4-weight" in info and lab.children[2].value == ""
    lab.refresh(name="dense-12m", sp="0", b="32")
    assert "dense-12m" in lab.figure.layout.title.text and "original" in lab.children[4].value


def test_the_live_row_prunes_measures_and_shows_stories_side_by_side(table, tiny_dense, tiny_tok):
    lab = compress_lab(table, model="dense-4m", load=lambda name: (tiny_dense, tiny_tok))
    lab.run_live(0.4)
    live = [t for t in lab.figure.data if t.name == "live magnitude"]
    assert len(live) == 1 and list(live[0].text) == ["0.4"]
    assert "original" in lab.children[-1].value and "40% of the weights pruned" in lab.children[-1].value
    assert lab.children[2].value == ""
    broken = compress_lab(table, load=lambda name: (_ for _ in ()).throw(FileNotFoundError("no such model")))
    broken.run_live(0.5)                                 # the error is shown, nothing is raised
    assert "live pruning" in broken.children[2].value and "no such model" in broken.children[2].value


def test_a_table_without_the_needed_columns_gives_an_inline_error():
    box = compress_lab(pd.DataFrame({"model": ["m"], "method": ["original"], "setting": [""]}))
    assert "compression lab" in box.value
