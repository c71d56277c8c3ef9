"""The attention explorer without a browser: cached compute, slider re-render, inline errors and warnings."""
import json

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


def _z(ex):
    return np.nan_to_num(np.array(ex.heat.data[0].z, dtype=float))


def test_slider_updates_the_heatmap_from_the_cache(ex, monkeypatch):
    before = _z(ex)
    calls = []
    monkeypatch.setattr(ex, "_compute", lambda: calls.append(1))      # no forward pass on slider moves
    ex.layer.value = 1
    assert ex.heat.layout.title.text.startswith("layer 1 head 0")
    assert not np.allclose(before, _z(ex))
    np.testing.assert_allclose(_z(ex), np.nan_to_num(np.tril(ex.rec.weights[1, 0])), atol=1e-6)
    ex.mean.value = True
    np.testing.assert_allclose(np.diag(_z(ex))[-1], ex.rec.weights[1, :, -1, -1].mean(), atol=1e-6)
    ex.mean.value, ex.layer.value = False, 0
    assert calls == []
    json.dumps(np.asarray(ex.heat.data[0].z).tolist(), allow_nan=False)   # the widget channel rejects NaN
    assert ex.heat.layout.shapes[0].type == "path"                         # ... so a shape masks future keys


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
    assert ex.last_attribution.token_attr.shape == (1, 3)
    ex.generate.value, ex.n_new.value = True, 3
    ex.compute()
    assert ex.rec.n_generated == 3
    ex.generate.value = False
    ex.compute()


def test_rollout_view(ex):
    ex.view.value = "rollout"
    ex.layer.value = 1
    assert "rollout through layer 1" in ex.heat.layout.title.text
    np.testing.assert_allclose(np.nansum(np.array(ex.heat.data[0].z, dtype=float), -1), 1.0, atol=1e-6)
    ex.view.value = "attention"
