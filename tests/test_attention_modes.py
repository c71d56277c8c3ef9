"""The model grid and the head view as modes of the client-side attention view, without a browser: they draw from the
payload already sent (nothing more travels), their controls are validated traits, the numbers they show agree with
the plotly builders kept for static export, and a saved file carries them (the browser half is
tests/e2e/test_attention_modes_browser.py)."""
import re

import numpy as np
import pytest

pytest.importorskip("anywidget")

from workbench.plots import attention as P  # noqa: E402
from workbench.probes.attention import AttentionRecord  # noqa: E402
from workbench.widgets.attention_view import VIEWS, AttentionView, attention_view  # noqa: E402
from workbench.widgets.canvas import esm  # noqa: E402
from workbench.widgets.standalone import read_state  # noqa: E402


def _record(n_layers=3, n_heads=4, n_tokens=9, seed=0):
    w = np.random.default_rng(seed).random((n_layers, n_heads, n_tokens, n_tokens)) ** 4   # a few strong weights
    w = np.tril(w)
    w /= w.sum(-1, keepdims=True)
    return AttentionRecord(tokens=tuple(f"t{i}" for i in range(n_tokens)), token_ids=np.arange(n_tokens),
                           weights=w.astype(np.float32), model_name="random")


@pytest.fixture(scope="module")
def rec():
    return _record()


def test_every_view_shares_one_payload(rec):
    v = attention_view(rec)
    sent = (v.weights, v.rollout, v.blocks)
    for view in VIEWS:                                    # switching the picture sends nothing new
        v.view = view
        assert (v.weights, v.rollout, v.blocks) == sent and v.title() in v.titles.values()
    assert v.payload_bytes() == 2 * rec.n_layers * (rec.n_heads + 1) * rec.n_tokens ** 2
    assert len(v.titles) == rec.n_layers * (2 * rec.n_heads + 3)
    assert v.heads == list(range(rec.n_heads)) and v.query == -1 and v.threshold == 0.05
    assert v.head_colors[:3] == list(P.HEAD_COLORS[:3])                     # the static figure's colours


def test_grid_shows_every_layer_and_head_like_the_static_grid(rec):
    v = attention_view(rec, view="grid", layer=2, head=1, norm="row max")
    assert v.shown() == "grid L2 H1" and v.title() == "all layers x heads, layer 2 head 1 outlined (random)"
    z = v.current_z()
    assert z.shape == (rec.n_layers, rec.n_heads, rec.n_tokens, rec.n_tokens)
    fig = v.static_figure()                                                 # plots.model_grid, same controls
    assert len(fig.data) == rec.n_layers * rec.n_heads and fig.layout.coloraxis.colorscale[0][1] == "#440154"
    np.testing.assert_allclose(np.asarray(fig.data[2 * rec.n_heads + 1].z, float), z[2, 1], atol=1e-9)
    assert np.nanmax(z[2, 1], -1) == pytest.approx(np.ones(rec.n_tokens))  # row max: every row peaks at 1


def test_head_view_lines_match_the_static_head_view(rec):
    v = attention_view(rec, view="head view", layer=1, heads=[2, 0], threshold=0.2)
    assert v.heads == [0, 2] and v.shown() == "head view L1 H0,2 all t20"
    assert v.title() == "head view, layer 1: query (left) -> key (right) (random)"
    lines = v.current_z()
    fig = v.static_figure()                                                 # plots.head_view, same controls
    drawn = sum(len([x for x in tr.x if x is not None]) // 2 for tr in fig.data if tr.mode == "lines")
    assert lines.shape == (2, rec.n_tokens, rec.n_tokens) and np.count_nonzero(lines) == drawn > 0
    v.query = rec.n_tokens - 1                                              # pin the last query
    assert v.shown() == f"head view L1 H0,2 q{rec.n_tokens - 1} t20"
    assert np.count_nonzero(v.current_z()[:, :-1]) == 0 and np.count_nonzero(v.current_z()[:, -1]) > 0
    with pytest.raises(ValueError, match="rollout_heatmap"):
        attention_view(rec, view="rollout").static_figure()


@pytest.mark.parametrize("name, bad, msg", [
    ("heads", [0, 9], r"heads \[9\] are out of range: this model has heads 0..3"),
    ("heads", [1, 1], "repeat a head"),
    ("threshold", 1.0, r"threshold 1.0 is out of range: use a weight in \[0, 1\)"),
    ("threshold", -0.1, "out of range"),
    ("query", 9, r"query 9 is out of range: use -1 \(every query\) or a token position 0..8"),
    ("view", "lines", "unknown view 'lines'; choose one of attention, rollout, grid, head view"),
])
def test_head_view_controls_name_the_fix(rec, name, bad, msg):
    v = attention_view(rec)
    with pytest.raises(Exception, match=msg):
        setattr(v, name, bad)


def test_a_new_record_keeps_the_head_view_controls_valid(rec):
    v = attention_view(_record(n_heads=6, n_tokens=20), view="head view", heads=[1, 5], query=19)
    v.set_record(rec)                                     # 4 heads, 9 tokens: head 5 and query 19 do not exist
    assert v.heads == [1] and v.query == -1 and v.view == "head view"
    v.heads = []
    v.set_record(rec)                                     # nothing selected: a new input shows every head again
    assert v.heads == list(range(rec.n_heads))


def test_on_demand_grid_holds_one_layer(rec):
    class OneLayerAtATime(AttentionView):
        max_tokens_full = 4
    v = OneLayerAtATime.from_record(rec, view="grid", layer=1)
    assert v.on_demand and v.blocks == [1] and v.current_z().shape == (1, rec.n_heads, rec.n_tokens, rec.n_tokens)
    v.layer = 2                                           # the kernel sends the next layer (one round trip)
    assert v.blocks == [2]


def test_saved_file_carries_the_modes_and_their_code(rec, tmp_path):
    v = attention_view(rec, view="head view", layer=2, heads=[3], threshold=0.3, query=4)
    text = v.to_html(tmp_path / "heads.html").read_text(encoding="utf-8")
    state = read_state(text)
    assert (state["view"], state["layer"], state["heads"], state["threshold"], state["query"]) == \
        ("head view", 2, [3], 0.3, 4)
    assert "function wbGrid(" in text and "function wbLines(" in text and not re.search("^export ", text, re.M)
    module = esm("heads", "attention")
    assert module.index("function wbHeatmap(") < module.index("function wbGrid(") < module.index("function render(")
    assert len(re.findall("^export default ", module, re.M)) == 1 and v._esm == module


def test_the_explorer_drives_the_same_modes(tiny_tok):
    from workbench.testing import tiny_model
    from workbench.widgets.attention import AttentionExplorer
    ex = AttentionExplorer(tiny_model("dense", tokenizer=tiny_tok), tiny_tok, "Once upon a time, Lily", name="tiny")
    ex.view.value, ex.threshold.value, ex.heads.value = "head view", 0.2, [3, 1]
    ex.query.value = ex.query.max
    assert ex.heat.shown() == f"head view L0 H1,3 q{ex.rec.n_tokens - 1} t20"
    assert ex.title() == "head view, layer 0: query (left) -> key (right) (tiny)"
    ex.text.value = "the cat sat"                         # a shorter text: the pinned query no longer exists
    ex.compute()
    assert ex.heat.query == -1 and ex.heat.heads == [1, 3] and ex.view.value == "head view"
