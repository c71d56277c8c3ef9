"""Training figures and the live panel: built from a real (tiny) MoE run."""
import base64
import json

import numpy as np
import pytest

from workbench.plots import training as tp
from workbench.testing import tiny_tokenizer
from workbench.train import train
from workbench.train.history import dead_experts

TEXTS = [f"Once upon a time Lily saw {i} red balls. Max ran to the park. The end." for i in range(40)]
KW = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
          max_position_embeddings=64, steps=12, batch_size=4, seq_len=32, eval_every=6, log_every=2, warmup=2)


@pytest.fixture(scope="module")
def moe_run():
    return train("moe-nano", TEXTS, tokenizer=tiny_tokenizer(), **KW)


def test_figures_carry_the_history(moe_run):
    fig = tp.loss_figure(moe_run)
    assert list(fig.data[0].y) == pytest.approx(moe_run.history["lm_loss"].tolist())
    assert list(fig.data[2].x) == moe_run.evals["step"].tolist()
    heat = tp.expert_load_figure(moe_run)
    assert len(heat.data) == 2 and np.asarray(heat.data[0].z).shape == (4, 12)   # experts x steps
    assert len(tp.router_figure(moe_run).data) == 4                              # 2 layers + aux + z


def test_dead_experts_flags_an_expert_without_load(moe_run):
    h = moe_run.history.copy()
    h["expert_load"] = [[[0.5, 0.5, 0.0, 0.0], [0.25] * 4] for _ in range(len(h))]
    d = dead_experts(h)
    assert d[d["dead"]][["layer", "expert"]].values.tolist() == [[0, 2], [0, 3]]
    with pytest.raises(ValueError, match="needs an MoE run"):
        dead_experts(h.drop(columns="expert_load"))


def test_live_panel_updates_and_stop_button_ends_cleanly():
    from workbench.train import Callback
    from workbench.widgets.training import TrainingPanel
    panel = TrainingPanel(display_now=False, min_interval_s=0)

    class Click(Callback):                       # presses Stop after step 2, as a user would
        def on_log(self, state, rows):
            if state.step == 2:
                panel.stop_button.click()
    r = panel.run("moe-nano", TEXTS, tokenizer=tiny_tokenizer(), callbacks=[Click()], **KW)
    assert r.stopped_early and "Stop button" in r.stop_reason and len(r.history) == 4
    assert list(panel.loss_fig.data[0].x) == [1, 2, 3, 4] and panel.bar.value == 4
    assert "stopped" in panel.status.value and panel.stop_button.disabled


def test_live_panel_keeps_its_figures_synced_state():
    """A view created after the run (a Voila page, a reloaded tab) draws from the panel's widget state: each figure
    is an Output whose state is the plotly bundle last drawn, holding the curves and titles the panel shows, and
    no widget of the panel carries plotly.js itself (a FigureWidget's state does: about 5 MB each)."""
    import ipywidgets
    from workbench.widgets.figure_output import PLOTLY_MIME
    from workbench.widgets.training import TrainingPanel

    def shown(out):                                       # the figure a new view of this Output draws
        (bundle,) = out.get_state()["outputs"]
        return bundle["data"][PLOTLY_MIME]

    def state_bytes(w):
        own = len(json.dumps(w.get_state(), default=str))
        return own + sum(state_bytes(c) for c in getattr(w, "children", ()))

    panel = TrainingPanel("moe", display_now=False, min_interval_s=0)
    assert shown(panel.loss_out)["layout"]["title"]["text"] == "moe: loss"          # before any step
    r = panel.run("moe-nano", TEXTS, tokenizer=tiny_tokenizer(), **KW)
    data = shown(panel.loss_out)["data"]
    assert list(data[0]["x"]) == r.history["step"].tolist()
    assert list(data[0]["y"]) == pytest.approx(r.history["lm_loss"].tolist())
    assert list(data[1]["x"]) == r.evals["step"].tolist()
    heat, lines = (shown(o) for o in panel._moe_outs)
    z = heat["data"][0]["z"]                          # plotly's JSON sends arrays as base64 typed arrays
    if "bdata" in z:
        z = np.frombuffer(base64.b64decode(z["bdata"]), z["dtype"]).reshape([int(v) for v in z["shape"].split(",")])
    assert np.asarray(z).shape == (2, 4)                                           # layers x experts
    assert len(lines["data"]) == 4 and len(lines["data"][0]["x"]) == len(r.history)
    assert lines["layout"]["title"]["text"].startswith("router entropy")
    assert not any(isinstance(w, ipywidgets.DOMWidget) and "_esm" in w.trait_names() and "plotly" in str(type(w))
                   for w in [panel.widget, *panel.widget.children])
    assert state_bytes(panel.widget) < 200_000, state_bytes(panel.widget)
