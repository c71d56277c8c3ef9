"""The attention explorer without a browser: cached compute, controls as view traits, inline errors and warnings."""
import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from workbench.probes.attention import sharpen  # noqa: E402
from workbench.testing import tiny_model  # noqa: E402
from workbench.widgets.attention import AttentionExplorer  # noqa: E402


@pytest.fixture(scope="module")
def ex(tiny_tok):
    model = sharpen(tiny_model("dense", tokenizer=tiny_tok))
    return AttentionExplorer(model, tiny_tok, "Once upon a time, there was a little girl named Lily.", name="tiny")


def test_controls_pick_from_the_cache(ex, monkeypatch):
    calls = []
    monkeypatch.setattr(ex, "_compute", lambda: calls.append(1))      # no forward pass on control changes
    before = ex.current_z()
    ex.layer.value = 1
    assert ex.heat.layer == 1 and ex.title().startswith("layer 1 head 0")
    assert not np.allclose(np.nan_to_num(before), np.nan_to_num(ex.current_z()))
    np.testing.assert_allclose(np.nan_to_num(ex.current_z()), np.tril(ex.rec.weights[1, 0]), atol=1e-6)
    ex.mean.value = True
    assert ex.title().startswith("layer 1 mean of heads")
    np.testing.assert_allclose(np.diag(ex.current_z())[-1], ex.rec.weights[1, :, -1, -1].mean(), atol=1e-6)
    ex.mean.value, ex.layer.value = False, 0
    assert calls == []
    assert ex.layer.max == ex.rec.n_layers - 1 and ex.head.max == ex.rec.n_heads - 1
    with pytest.raises(Exception, match="out of range"):
        ex.head.value = ex.rec.n_heads


def test_bad_input_is_shown_inside_the_widget(ex):
    old = ex.text.value
    ex.text.value = ""
    ex.compute()
    assert "error" in ex.status.value and "empty" in ex.status.value
    ex.text.value = "Lily and Max " * 80
    ex.compute()
    assert "only the first 128" in ex.status.value and ex.rec.n_tokens == 128
    ex.text.value = old
    ex.model_dir.value = "no/such/model-dir"
    ex.compute()
    assert "error" in ex.status.value and "no/such/model-dir" in ex.status.value
    ex.model_dir.value = ""
    ex.compute()
    assert "error" not in ex.status.value


def test_attribution_and_generation(ex):
    ex.target.value = 3
    ex.explain.click()
    assert "completeness" in ex.status.value and len(ex.attr_fig.data) == 1
    assert "application/vnd.plotly.v1+json" in ex.attr_out.outputs[0]["data"]     # kept by the Output on reload
    assert ex.last_attribution.token_attr.shape == (1, 3)
    ex.generate.value, ex.n_new.value = True, 3
    ex.compute()
    assert ex.rec.n_generated == 3
    ex.generate.value = False
    ex.compute()


def test_rollout_view(ex):
    ex.view.value = "rollout"
    ex.layer.value = 1
    assert "rollout through layer 1" in ex.title() and ex.heat.shown() == "rollout L1"
    np.testing.assert_allclose(np.nansum(ex.current_z(), -1), 1.0, atol=1e-6)
    ex.view.value = "attention"
    with pytest.raises(Exception, match="unknown view"):
        ex.view.value = "flow"
