"""The compression lab: the shipped table is what the code measures, the sliders ring the variants they name,
the live row prunes and measures on demand, and errors stay inline."""
import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.compress import magnitude_prune
from workbench.compress.measure import val_loss
from workbench.compress.variants import (DENSE_VARIANTS, MOE_VARIANTS, STUDENTS, load_lora_results, load_results,
                                         make_variant)
from workbench.corpora import generate_corpus
from workbench.models import load_model
from workbench.plots.compress import pareto_chart
from workbench.widgets.compress import compress_lab


@pytest.fixture(scope="module")
def table():
    return load_results()


@pytest.fixture(scope="module")
def lora_table():
    return load_lora_results()


LORA_BENCH = Path(__file__).resolve().parent.parent / "bench" / "results" / "lora.json"


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


def test_the_figure_state_follows_the_sliders(table):
    """A view built later (a Voila page, a reloaded tab) draws the chart's widget state: it must ring what the
    sliders say, not what the lab first showed, and carry no copy of plotly.js (a FigureWidget's does)."""
    from workbench.widgets.figure_output import PLOTLY_MIME
    lab = compress_lab(table, model="dense-4m")
    lab.sliders["sparsity"].value, lab.sliders["bits"].value = "0.5", "8"
    shown = [t for t in lab.figure.data if t.name == "selected"][0]
    (bundle,) = lab.chart.get_state()["outputs"]
    drawn = bundle["data"][PLOTLY_MIME]
    x = [t for t in drawn["data"] if t.get("name") == "selected"][0]["x"]
    if "bdata" in x:                                  # plotly's JSON sends arrays as base64 typed arrays
        x = np.frombuffer(base64.b64decode(x["bdata"]), x["dtype"])
    assert len(shown.x) == 2 and sorted(x) == sorted(shown.x)
    assert drawn["layout"]["title"]["text"] == lab.figure.layout.title.text
    assert len(json.dumps(lab.chart.get_state())) < 200_000


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


def test_every_shipped_row_has_its_peak_memory_and_the_smaller_members(table):
    assert (table["peak_mb"] > 0).all()
    d12 = table[table.model == "dense-12m"].set_index(["method", "setting"])["peak_mb"]
    assert d12[("quantize", "int8-weight")] < d12[("original", "")] - 20       # 49 MB of float32 weights -> int8
    for name, members in STUDENTS.items():
        rows = table[(table.model == name) & (table.method == "smaller member")]
        if name in set(table.model):
            assert sorted(rows.setting) == sorted(members)
            for m in set(members) & set(table.model):      # the member's own row, reused
                alone = table[(table.model == m) & (table.method == "original")]
                assert rows.set_index("setting").loc[m, "val_loss"] == alone["val_loss"].item()


def test_the_student_slider_rings_the_smaller_members(table):
    lab = compress_lab(table, model="dense-12m")
    student = lab.sliders["student"]
    assert student.options == ("none", "dense-1m", "dense-4m") and not student.disabled
    student.value = "dense-4m"
    sel = [t for t in lab.figure.data if t.name == "selected"][0]
    row = table[(table.model == "dense-12m") & (table.method == "smaller member") & (table.setting == "dense-4m")]
    assert row["disk_mb"].item() in list(sel.x) and "smaller member" in lab.children[4].value
    lab.children[0].children[0].value = "moe-4m"                       # another model: its own members
    assert lab.sliders["student"].options == ("none", "moe-1m") and lab.sliders["student"].value == "none"


def test_the_rank_slider_moves_to_adapter_size_and_accuracy_and_back(table, lora_table):
    lab = compress_lab(table, model="dense-4m")
    x, y = lab.children[0].children[1:]
    assert lab.sliders["rank"].options == ("none", "2", "8", "full")
    lab.sliders["rank"].value = "8"
    assert x.value == "adapter_kb" and y.value.startswith("acc:")
    task = y.value.removeprefix("acc:")
    row = lora_table[(lora_table.model == "dense-4m") & (lora_table.setting == "rank 8") & (lora_table.task == task)]
    sel = [t for t in lab.figure.data if t.name == "selected"][0]
    assert list(sel.x) == list(row["adapter_kb"]) and list(sel.y) == list(row[y.value])
    assert "rank 8" in lab.children[4].value and "ci_low" in lab.children[4].value
    lab.sliders["sparsity"].value = "0.5"                                # back to size and validation loss
    assert (x.value, y.value) == ("disk_mb", "val_loss")
    assert compress_lab(table, model="dense-12m").sliders["rank"].disabled     # no LoRA rows for dense-12m
    lab.children[0].children[0].value = "encdec-4m"                    # LoRA rows only: their axes at once
    assert x.value == "adapter_kb" and sum(len(t.x) for t in lab.figure.data if t.name == "LoRA") == 2


def test_the_shipped_lora_table_has_intervals_over_seeds(lora_table):
    from scipy import stats
    runs = pd.DataFrame(json.loads(LORA_BENCH.read_text())["runs"])
    for model in ("dense-4m", "encdec-4m"):
        g = lora_table[lora_table.model == model]
        assert {"zero-shot", "LoRA", "full fine-tuning"} <= set(g.method)
        trained = g[g.method != "zero-shot"]
        assert (trained.seeds >= 3).all()
        lora, full = trained[trained.method == "LoRA"], trained[trained.method == "full fine-tuning"]
        assert lora.trainable.max() < 0.1 * full.trainable.min() and lora.adapter_kb.max() < full.adapter_kb.min()
        r = lora[lora.setting == "rank 2"].iloc[0]                       # the interval is Student's t over seeds
        acc = runs[(runs.model == model) & (runs.task == r.task) & (runs["rank"] == 2)]["accuracy"].to_numpy()
        lo, hi = stats.t.interval(0.95, len(acc) - 1, loc=acc.mean(), scale=acc.std(ddof=1) / np.sqrt(len(acc)))
        assert (r[f"acc:{r.task}"], r.ci_low, r.ci_high) == pytest.approx((acc.mean(), lo, hi), abs=1e-5)


def test_a_shipped_lora_run_recomputes_to_its_stored_accuracy():
    """The benchmark cannot drift from the code: dense-4m, LoRA rank 2, seed 0 on topic/1, trained again here."""
    from workbench.compress import adapt, merge
    from workbench.scoring import label_logprobs, load_task, predictions
    from workbench.scoring.builtin import builtin_task
    data = json.loads(LORA_BENCH.read_text())
    cfg = data["settings"]
    stored = [r for r in data["runs"] if (r["model"], r["task"], r["rank"], r["seed"]) == ("dense-4m", "topic/1", 2, 0)]
    model, tok = load_model("dense-4m")
    tuned, _ = adapt(model, tok, builtin_task("topic", 1, n=cfg["train_n"], split="train"), "lora", rank=2,
                     steps=cfg["steps"], batch_size=cfg["batch_size"], seed=0)
    held = load_task("topic/1", n=cfg["eval_n"], seed=0)
    rec = label_logprobs(merge(tuned), tok, held, channel=False)
    acc = float((predictions(rec, ["acc"])["acc"] == np.asarray(held.golds)).mean())
    assert acc == pytest.approx(stored[0]["accuracy"], abs=1.5 / cfg["eval_n"])     # one example may flip
