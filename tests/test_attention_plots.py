"""Attention plot builders (checked without a browser) and static export (needs kaleido + Chromium)."""
import shutil

import numpy as np
import pytest

from workbench.plots import attention as P
from workbench.probes.attention import AttentionRecord
from workbench.probes.attribution import AttributionRecord
from workbench.probes.heads import summarize
from workbench.probes.rollout import rollout_record


@pytest.fixture(scope="module")
def rec():
    t = 5
    w = np.random.default_rng(0).random((2, 3, t, t)) * np.tril(np.ones((t, t)))
    return AttentionRecord(tokens=("<bos>", "a", "a", "b", "."), token_ids=np.arange(t),
                           weights=(w / w.sum(-1, keepdims=True)).astype(np.float32), n_prompt=4)


@pytest.fixture(scope="module")
def attr():
    return AttributionRecord(method="feature_ablation", input_tokens=("<bos>", "a", "b"), target_tokens=("c",),
                             token_attr=np.array([[0.0, 0.5, -0.2]]), target_logprob=np.array([-1.0]))


def test_heatmap_shows_the_head_with_unique_labels_and_mask(rec):
    fig = P.attention_heatmap(rec, layer=1, head=2)
    z = np.asarray(fig.data[0].z, dtype=float)
    np.testing.assert_allclose(np.tril(z), np.tril(rec.weights[1, 2]), atol=1e-6)
    assert np.isnan(z[np.triu_indices(5, 1)]).all()
    assert len(set(fig.data[0].x)) == 5                       # repeated token "a" stays two columns
    assert fig.layout.title.text == "layer 1 head 2"
    assert len(fig.layout.shapes) == 2                        # prompt/generated separators (1 generated token)


def test_normalisations(rec):
    m = rec.weights[0, 0]
    np.testing.assert_allclose(np.nanmax(P.normalize_map(m, "row max"), -1), 1.0)
    dropped = P.normalize_map(m, "drop first")
    assert np.all(dropped[1:, 0] == 0) and np.allclose(np.nansum(dropped[1:], -1), 1.0)
    with pytest.raises(ValueError, match="normalisation"):
        P.normalize_map(m, "softmax")
    np.testing.assert_allclose(P.heatmap_z(rec, 0, None)[4], rec.weights[0, :, 4].mean(0), atol=1e-6)


def test_grid_head_view_summary_rollout(rec):
    assert len(P.model_grid(rec).data) == rec.n_layers * rec.n_heads
    hv = P.head_view(rec, layer=0, threshold=0.1)
    drawn = sum(len([x for x in tr.x if x is not None]) // 2 for tr in hv.data if tr.mode == "lines")
    assert drawn == np.count_nonzero(rec.weights[0] >= 0.1)          # one line per weight above threshold
    with pytest.raises(IndexError):
        P.head_view(rec, layer=0, heads=[7])
    fig = P.head_summary_chart(summarize(rec.weights))
    assert len(fig.data) == 5
    rr = rollout_record(rec, flow=True)
    np.testing.assert_allclose(np.tril(P.rollout_heatmap(rr).data[0].z), rr.rollout[-1], atol=1e-9)
    assert P.rollout_heatmap(rr, "flow").layout.title.text.startswith("attention flow")


def test_attribution_figures(attr):
    txt = P.attribution_text(attr, per_line=2)
    assert np.asarray(txt.data[0].z, dtype=float).shape == (2, 2)
    bars = P.attribution_bars(attr)
    np.testing.assert_allclose(bars.data[0].y, [0.0, 0.5, -0.2])
    vs = P.attention_vs_attribution(np.array([0.5, 0.25, 0.25]), attr)
    np.testing.assert_allclose(vs.data[1].x, np.array([0, 0.5, 0.2]) / 0.7)


def test_figures_are_deterministic(rec):
    assert P.attention_heatmap(rec).to_json() == P.attention_heatmap(rec).to_json()


@pytest.mark.slow
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<svg")])
def test_static_export(rec, tmp_path, suffix, magic):
    pytest.importorskip("kaleido", reason="static export needs kaleido (pip install 'kaleido>=1.0')")
    from workbench.plots import export
    try:
        export.find_browser()
    except export.ExportUnavailable as e:
        pytest.skip(f"no Chrome/Chromium for kaleido: {e}")
    out = export.export_figure(P.attention_heatmap(rec), tmp_path / f"heat{suffix}", scale=1)
    assert out.read_bytes()[:64].lstrip().startswith(magic) or magic in out.read_bytes()[:200]


def test_export_errors_name_the_fix(rec, tmp_path, monkeypatch):
    from workbench.plots import export
    with pytest.raises(ValueError, match=r"\.png"):
        export.export_figure(P.attention_heatmap(rec), tmp_path / "x.bmp")
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "missing-chrome"))
    with pytest.raises(export.ExportUnavailable, match="BROWSER_PATH"):
        export.find_browser()
    monkeypatch.delenv("BROWSER_PATH")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(export.ExportUnavailable, match="apt-get install chromium"):
        export.find_browser()
