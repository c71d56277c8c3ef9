"""Attention views that outlive the kernel: the explorer saves its canvas view (default) or a plotly figure with
a slider over every layer and head (kind="plotly") as one self-contained HTML file (the canvas file itself is
tested in test_standalone_views.py; the browser half, moving a slider with no server, is in tests/e2e)."""
import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from workbench.plots.attention import attention_slider, heatmap_z  # noqa: E402
from workbench.plots.export import save_html  # noqa: E402
from workbench.probes.attention import attention_record  # noqa: E402
from workbench.testing import tiny_model  # noqa: E402
from workbench.widgets.attention import AttentionExplorer  # noqa: E402

TEXT = "Once upon a time, there was a little girl named Lily."


@pytest.fixture(scope="module")
def rec(tiny_tok):
    return attention_record(tiny_model("dense", tokenizer=tiny_tok), tiny_tok, TEXT)


def test_slider_holds_every_layer_and_head(rec):
    fig = attention_slider(rec, title_suffix=" (tiny)")
    steps = fig.layout.sliders[0].steps
    assert len(steps) == rec.n_layers * (rec.n_heads + 1)
    assert [s.label for s in steps[:rec.n_heads + 1]] == [f"L0 H{h}" for h in range(rec.n_heads)] + ["L0 mean"]
    last = steps[-1].args
    assert last[1]["title.text"] == f"layer {rec.n_layers - 1} mean of heads (tiny)"
    np.testing.assert_allclose(np.array(last[0]["z"][0]), heatmap_z(rec, rec.n_layers - 1, None), atol=1e-4)
    np.testing.assert_allclose(np.array(fig.data[0].z), heatmap_z(rec, 0, 0), atol=1e-6)


def test_saved_file_is_self_contained(rec, tmp_path):
    path = save_html(attention_slider(rec), tmp_path / "view")
    html = path.read_text()
    assert path.suffix == ".html" and "sliders" in html
    assert "<script src=" not in html and "plotly.js" in html        # plotly.js inline, nothing to fetch
    assert len(html) > 1_000_000


def test_explorer_saves_its_current_record(tiny_tok, tmp_path):
    from workbench.widgets.canvas import from_f16
    from workbench.widgets.standalone import read_state
    ex = AttentionExplorer(tiny_model("dense", tokenizer=tiny_tok), tiny_tok, TEXT, name="tiny")
    ex.layer.value, ex.norm.value = 1, "row max"
    canvas = ex.to_html(tmp_path / "explorer.html")                  # the view, every layer and head, controls
    state = read_state(canvas.read_text())
    L, H, T = ex.rec.n_layers, ex.rec.n_heads, ex.rec.n_tokens
    np.testing.assert_allclose(from_f16(state["weights"], (L, H, T, T)), ex.rec.weights, atol=1e-3)
    assert (state["layer"], state["norm"]) == (1, "row max") and state["titles"]["attention L0 H0"] == \
        "layer 0 head 0 (tiny)"
    assert "Plotly.newPlot" not in canvas.read_text() and canvas.stat().st_size < 200_000   # no plotly.js
    fig = ex.to_html(tmp_path / "explorer_plotly", kind="plotly")    # the older plotly slider figure
    assert fig.suffix == ".html" and "layer 0 head 0 (tiny)" in fig.read_text() and "sliders" in fig.read_text()
    with pytest.raises(ValueError, match="unknown kind 'svg'"):
        ex.to_html(tmp_path / "x", kind="svg")
