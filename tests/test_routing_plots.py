"""Routing figures and widgets: shapes and meaning of what is drawn, slider callbacks, errors shown inline."""
import numpy as np
import pytest

from workbench.plots import routing as P
from workbench.probes import routing as R
from workbench.widgets import routing as W

TEXTS = ["Once upon a time, there was a little girl named Lily.", "def add(a, b): return a + b",
         "2 + 3 = 5. 4 + 4 = 8.", "Tom had a big blue boat."]


@pytest.fixture(scope="module")
def rec(tiny_moe, tiny_tok):
    return R.routing_record(tiny_moe, tiny_tok, TEXTS, groups={"domain": ["story", "code", "arith", "story"]})


def test_token_experts_colours_cells_by_chosen_expert(rec):
    fig = P.token_experts(rec, layer=1, top="1", width=8)
    z = np.asarray(fig.data[0].z, float)
    assert z.shape == (-(-rec.n_tokens // 8), 8)
    np.testing.assert_array_equal(z.ravel()[:rec.n_tokens], rec.topk[1, :, 0])
    assert "E0:" in fig.data[0].hovertext[0][0]                    # hover shows the router distribution
    zk = np.asarray(P.token_experts(rec, layer=1, top="k", width=8).data[0].z, float)
    assert zk.shape[0] == rec.top_k * z.shape[0]
    np.testing.assert_array_equal(zk[1, :8], rec.topk[1, :8, 1])   # second row of a token band = rank 2


def test_other_figures(rec, tiny_moe, tiny_tok):
    assert np.asarray(P.token_layer_map(rec).data[0].z).shape == (rec.n_layers, min(rec.n_tokens, 128))
    load = R.expert_load(rec)
    load[0, 3] = 0.0
    fig = P.expert_load_bars(load)
    assert [t.name for t in fig.data][-1] == "dead expert" and list(fig.data[-1].x) == ["E3"]
    names, sims, order = ["a", "b", "c"], np.array([[1, .2, .9], [.2, 1, .1], [.9, .1, 1]]), [0, 2, 1]
    fig = P.group_similarity_heatmap(names, sims, 0, order=order)
    assert list(fig.data[0].y) == ["a", "c", "b"] and np.asarray(fig.data[0].z)[0, 1] == .9
    assert np.asarray(P.coactivation_heatmap(R.coactivation(rec, 0), 0).data[0].z).shape == (4, 4)
    n, share, base = R.domain_specialization(rec, "domain", 0)
    fig = P.specialization_chart(n, share, base, 0)
    assert len(fig.data) == len(n) and fig.layout.shapes[0].y0 == base
    assert len(P.consecutive_bars(R.consecutive_same_expert(rec)).data) == 4
    assert len(P.loss_bars(R.loss_table(rec)).data) == 5
    ab = R.expert_ablation(tiny_moe, tiny_tok, TEXTS[0], 0)
    assert np.asarray(P.ablation_heatmap(ab).data[0].z).shape == ab["delta"].shape
    sat = R.saturation_over_checkpoints([(0, rec), (5, rec)])
    assert len(P.saturation_lines(sat).data) == rec.n_layers
    with pytest.raises(ValueError, match="unknown layer"):
        P.token_experts(rec, layer=rec.n_layers)


def test_explorer_layer_control_changes_the_view(rec):
    box = W.routing_explorer(rec)
    view = box.view
    np.testing.assert_array_equal(view.current_experts()[:, 0], rec.topk[0, :, 0])
    box.refresh(layer=1)                                           # what the browser's layer slider sets
    assert view.layer == 1 and view.title().startswith("layer 1")
    np.testing.assert_array_equal(view.current_experts()[:, 0], rec.topk[1, :, 0])
    box.refresh(top="k")
    assert view.current_experts().shape == (rec.n_tokens, rec.top_k) and "top-2 experts" in view.title()
    box.refresh(layer=99)                                          # bad layer: error inline, view kept
    assert "unknown layer" in box.children[1].value and view.layer == 1


def test_group_explorer_and_replay(rec):
    box = W.group_explorer(rec, "domain")
    assert np.asarray(box.view.current_frame()["z"]).shape == (3, 3)
    box.refresh(view="group × expert")
    assert np.asarray(box.view.current_frame()["z"]).shape == (3, rec.n_experts)
    replay = W.checkpoint_replay([(0, rec), (7, rec)])
    assert "saturation vs final 100%" in replay.view.title()
    replay.refresh(ckpt=0, layer=1)
    assert replay.view.title().startswith("step 0, layer 1")


def test_widgets_show_bad_input_inline(tiny_dense, tiny_tok, rec):
    assert "not a mixture-of-experts" in W.routing_explorer(tiny_dense, tiny_tok, "hello there").value
    assert "no token labelling" in W.group_explorer(rec, "lang").value
    assert "no checkpoint records" in W.checkpoint_replay([]).value


def test_widget_state_is_strict_json(rec):
    """Jupyter rejects NaN in widget messages: every view's state must be strict JSON (bytes go as buffers)."""
    import json

    from ipywidgets.widgets.widget import _remove_buffers
    for box in (W.routing_explorer(rec, width=7), W.group_explorer(rec, "domain"),
                W.checkpoint_replay([(0, rec), (7, rec)])):
        state, _, _ = _remove_buffers(box.view.get_state())
        json.dumps(state, allow_nan=False, default=str)
