"""Rollout and flow (Abnar & Zuidema 2020) against hand computations and networkx."""
import numpy as np
import pytest

from workbench.probes import rollout as R

# two layers, one head, two tokens (causal): computed by hand below
A1 = np.array([[1.0, 0.0], [0.5, 0.5]])
A2 = np.array([[1.0, 0.0], [0.2, 0.8]])
W = np.stack([A1[None], A2[None]])          # (layer, head, q, k)


def test_rollout_on_hand_built_two_layer_example():
    # Ã1 = 0.5 A1 + 0.5 I = [[1, 0], [.25, .75]];  Ã2 = [[1, 0], [.1, .9]]
    # R2 = Ã2 Ã1 = [[1, 0], [.1 + .9 * .25, .9 * .75]] = [[1, 0], [.325, .675]]
    r = R.attention_rollout(W)
    np.testing.assert_allclose(r[0], [[1, 0], [0.25, 0.75]])
    np.testing.assert_allclose(r[1], [[1, 0], [0.325, 0.675]])


def test_flow_on_hand_built_two_layer_example():
    # to output 1: from input 0 via (L1,0): min(1, .1) = .1, via (L1,1): min(.25, .9) = .25 -> .35
    #              from input 1 only via (L1,1): min(.75, .9) = .75
    f = R.attention_flow(W, normalize=False)
    np.testing.assert_allclose(f, [[1, 0], [0.35, 0.75]], atol=1e-5)
    np.testing.assert_allclose(R.attention_flow(W)[1], [0.35 / 1.1, 0.75 / 1.1], atol=1e-5)


def _random_causal(layers=3, heads=2, t=6, seed=0):
    w = np.random.default_rng(seed).random((layers, heads, t, t)) * np.tril(np.ones((t, t)))
    return w / w.sum(-1, keepdims=True)


def test_flow_equals_networkx_max_flow():
    nx = pytest.importorskip("networkx")
    w = _random_causal()
    a = R.residual_attention(w)
    n_l, t = a.shape[0], a.shape[-1]
    g = nx.DiGraph()
    for layer in range(n_l):
        for q in range(t):
            for k in range(q + 1):
                g.add_edge((layer, k), (layer + 1, q), capacity=a[layer, q, k])
    q = t - 1
    want = [nx.maximum_flow_value(g, (0, k), (n_l, q)) for k in range(t)]
    np.testing.assert_allclose(R.attention_flow(w, query=q, normalize=False), want, atol=1e-4)


def test_rollout_and_flow_stay_causal_and_row_stochastic():
    w = _random_causal()
    r = R.attention_rollout(w)
    f = R.attention_flow(w)
    for m in (*r, f):
        np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-6)
        assert np.allclose(np.triu(m, 1), 0)


def test_head_aggregation_variants_and_errors():
    w = _random_causal()
    assert not np.allclose(R.residual_attention(w, "max"), R.residual_attention(w, "mean"))
    with pytest.raises(ValueError, match="head_agg"):
        R.attention_rollout(w, head_agg="median")
    with pytest.raises(IndexError, match="out of range"):
        R.attention_flow(w, query=99)


def test_rollout_record_on_model(tiny_dense, tiny_tok):
    from workbench.probes.attention import attention_record
    rec = attention_record(tiny_dense, tiny_tok, "Lily gave Max the ball.")
    rr = R.rollout_record(rec, flow=True)
    assert rr.rollout.shape == (rec.n_layers, rec.n_tokens, rec.n_tokens) and rr.flow.shape == (rec.n_tokens,) * 2
    assert R.rollout_record(rec, max_flow_tokens=2).flow is None
