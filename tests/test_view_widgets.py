"""Client-side views without a browser: the payload the browser gets decodes to the probe's numbers, big inputs
switch to on-demand mode, controls are validated traits (the browser half is tests/e2e/test_view_browser.py)."""
import json

import numpy as np
import pytest

pytest.importorskip("anywidget")

from workbench.probes.attention import AttentionRecord, attention_record  # noqa: E402
from workbench.probes.rollout import attention_rollout  # noqa: E402
from workbench.probes.routing import routing_record  # noqa: E402
from workbench.testing import tiny_model  # noqa: E402
from workbench.widgets import routing as W  # noqa: E402
from workbench.widgets.attention_view import AttentionView, attention_view  # noqa: E402
from workbench.widgets.canvas import TraitControl, f16, from_f16  # noqa: E402
from workbench.widgets.routing_view import TokenExpertView, frame_key  # noqa: E402

TEXT = "Once upon a time, there was a little girl named Lily."
F16_TOL = 1e-3        # float16 keeps 11 significant bits: |error| <= 5e-4 on values in [0, 1]


def _strict_json(widget):
    from ipywidgets.widgets.widget import _remove_buffers
    state, _, buffers = _remove_buffers(widget.get_state())
    json.dumps(state, allow_nan=False)
    return buffers


@pytest.fixture(scope="module")
def rec(tiny_tok):
    return attention_record(tiny_model("dense", tokenizer=tiny_tok), tiny_tok, TEXT)


@pytest.fixture(scope="module")
def rrec(tiny_tok):
    return routing_record(tiny_model("moe", tokenizer=tiny_tok), tiny_tok, [TEXT, "def add(a, b): return a + b"],
                          groups={"domain": ["story", "code"]})


def _random_record(n_layers=2, n_heads=2, n_tokens=8, seed=0):
    w = np.random.default_rng(seed).random((n_layers, n_heads, n_tokens, n_tokens)).astype(np.float32)
    w = np.tril(w)
    w /= w.sum(-1, keepdims=True)
    return AttentionRecord(tokens=tuple(f"t{i}" for i in range(n_tokens)), token_ids=np.arange(n_tokens),
                           weights=w, model_name="random")


def test_attention_payload_is_every_layer_and_head(rec):
    v = attention_view(rec)
    L, H, T = rec.n_layers, rec.n_heads, rec.n_tokens
    assert not v.on_demand and v.blocks == list(range(L)) and (v.n_layers, v.n_heads, v.n_tokens) == (L, H, T)
    np.testing.assert_allclose(from_f16(v.weights, (L, H, T, T)), rec.weights, atol=F16_TOL)
    np.testing.assert_allclose(from_f16(v.rollout, (L, T, T)), attention_rollout(rec.weights), atol=F16_TOL)
    assert v.payload_bytes() == v.full_payload_bytes() == 2 * L * (H + 1) * T * T
    assert len(v.titles) == L * (2 * H + 3) and v.title() == f"layer 0 head 0 ({rec.model_name})"
    assert v.tokens == list(rec.tokens)
    assert len(b"".join(bytes(b) for b in _strict_json(v))) == v.payload_bytes()     # bytes travel as buffers


def test_attention_controls_are_validated_traits(rec):
    v = attention_view(rec, layer=1, head=2, norm="row max")
    assert v.shown() == "attention L1 H2" and v.title().startswith("layer 1 head 2")
    np.testing.assert_allclose(v.current_z()[3, :4], rec.weights[1, 2, 3, :4] / rec.weights[1, 2, 3].max(), atol=1e-6)
    for name, bad, msg in (("layer", rec.n_layers, "out of range"), ("head", -1, "out of range"),
                           ("norm", "sqrt", "unknown norm"), ("colorscale", "Jet", "unknown colorscale")):
        with pytest.raises(Exception, match=msg):
            setattr(v, name, bad)
    seen = []
    control = TraitControl(v, "layer", lambda: v.n_layers - 1)
    control.observe(lambda change: seen.append((change["name"], change["new"])))
    control.value = 0
    assert seen == [("value", 0)] and control.max == rec.n_layers - 1


def test_a_smaller_record_keeps_the_controls_in_range(rec):
    v = attention_view(_random_record(n_layers=4, n_heads=4), layer=3, head=3)
    v.set_record(rec)
    assert (v.layer, v.head) == (min(3, rec.n_layers - 1), min(3, rec.n_heads - 1))
    assert len(v.weights) == 2 * rec.n_layers * rec.n_heads * rec.n_tokens ** 2


def test_long_input_switches_to_on_demand_layers():
    big = _random_record(n_layers=3, n_heads=2, n_tokens=AttentionView.max_tokens_full + 8)
    v = attention_view(big)
    T = big.n_tokens
    assert v.on_demand and v.blocks == [0] and len(v.weights) == 2 * big.n_heads * T * T
    v.layer = 2                                                   # the slider moved: Python sends that layer
    assert v.blocks == [2]
    np.testing.assert_allclose(from_f16(v.weights, (1, big.n_heads, T, T))[0], big.weights[2], atol=F16_TOL)
    np.testing.assert_allclose(from_f16(v.rollout, (1, T, T))[0], attention_rollout(big.weights)[2], atol=F16_TOL)


def test_too_many_bytes_also_means_on_demand(monkeypatch):
    rec = _random_record(n_layers=3, n_heads=2, n_tokens=16)
    monkeypatch.setattr(AttentionView, "max_bytes_full", 2 * 3 * 3 * 16 * 16 - 1)   # one byte short of all layers
    assert attention_view(rec).on_demand
    monkeypatch.setattr(AttentionView, "max_bytes_full", 2 * 3 * 3 * 16 * 16)
    assert not attention_view(rec).on_demand


def test_f16_round_trip_and_errors():
    a = np.array([[0.0, 1e-7, 0.3333, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(from_f16(f16(a), a.shape), a, atol=5e-4)
    with pytest.raises(ValueError, match="needs 8"):
        from_f16(f16(a), (2, 4))


def test_token_view_payload_matches_the_record(rrec):
    v = TokenExpertView.from_records([rrec])
    L, T_, k, E = rrec.n_layers, rrec.n_tokens, rrec.top_k, rrec.n_experts
    assert v.blocks == list(range(L)) and v.n_tokens == T_ and v.score_name == "p"
    np.testing.assert_array_equal(np.frombuffer(v.topk, np.uint8).reshape(L, T_, k), rrec.topk)
    np.testing.assert_allclose(from_f16(v.gates, (L, T_, k)), rrec.weights, atol=F16_TOL)
    np.testing.assert_allclose(from_f16(v.scores, (L, T_, E)), rrec.probs, atol=F16_TOL)
    assert v.payload_bytes() == L * T_ * (3 * k + 2 * E)
    _strict_json(v)
    short = TokenExpertView.from_records([rrec], max_tokens=10)
    assert short.n_tokens == 10 and f"(first 10 of {T_} tokens)" in short.title()


def test_token_view_on_demand(rrec, monkeypatch):
    monkeypatch.setattr(TokenExpertView, "max_bytes_full", 100)
    box = W.checkpoint_replay([(0, rrec), (5, rrec), (9, rrec)])
    v = box.view
    L = rrec.n_layers
    assert v.on_demand and v.blocks == [2 * L + 0]                 # last checkpoint, layer 0
    box.refresh(ckpt=1, layer=1)
    assert v.blocks == [1 * L + 1] and v.title().startswith("step 5, layer 1")
    np.testing.assert_array_equal(np.frombuffer(v.topk, np.uint8).reshape(rrec.n_tokens, rrec.top_k), rrec.topk[1])


def test_group_frames_cover_every_control_combination(rrec):
    box = W.group_explorer(rrec, "domain")
    v = box.view
    assert len(v.frames) == rrec.n_layers * 2 * 2 * 2
    f = v.current_frame()
    assert f["title"].startswith(f"layer {rrec.n_layers - 1}: routing similarity")
    assert np.asarray(f["z"]).shape == (2, 2) and f["zmax"] == 1
    key = frame_key(v.controls, {"layer": 0, "view": "group × expert", "counts": True, "metric": "js"})
    assert json.loads(key) == [0, "group × expert", True, "js"] and key in v.frames   # as JSON.stringify writes it
    box.refresh(layer=7)
    assert "unknown layer" in box.children[1].value
    with pytest.raises(ValueError, match="nothing to show"):
        v.set_values(metric="euclid")
    _strict_json(v)


def test_a_view_repr_does_not_print_its_payload():
    v = AttentionView()
    v.weights = bytes(1 << 20)            # ipywidgets' own repr prints every non-default trait, payload included
    data, _metadata = v._repr_mimebundle_()           # anywidget's (data, metadata)
    assert "AttentionView object at" in data["text/plain"]
    assert len(repr(v)) < 200 and "weights" not in repr(v)
