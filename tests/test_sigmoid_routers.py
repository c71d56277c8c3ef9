"""Routers that score experts with a sigmoid (DeepSeek-V3: sigmoid scores, grouped top-k, bias correction):
the routing record's scores are the router's own, statistics that need a distribution say what they normalise
or refuse, and training refuses a router its aux loss does not apply to.

The tiny random models are those of test_architectures (the DeepSeek-V3 router has random directions and a
random bias correction). References are computed independently from the gate's weights.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers

from test_architectures import ARCHS, IDS, MOES, TEXT, _loaded, _plain, saved  # noqa: F401  (saved: a fixture)
from workbench import moe
from workbench.plots import routing as rplots
from workbench.probes import routing as R

SCORE = {"softmax": lambda z: z.softmax(-1), "sigmoid": torch.sigmoid}


def _routed(path, arch, tok):
    """Per MoE layer of a plain model on TEXT: (the router's input, its own (logits, weights, ids), the router)."""
    plain = _plain(path)
    seen, hooks = {}, []
    for i in arch.moe:
        r = plain.get_submodule(f"model.layers.{i}.{arch.router}")
        hooks.append(r.register_forward_hook(lambda m, a, out, i=i: seen.setdefault(i, (a[0], out, m)) and None))
    with torch.no_grad():
        plain(input_ids=torch.tensor([tok(TEXT, add_special_tokens=False)["input_ids"]]))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", MOES)
def test_probs_are_the_routers_own_scores_of_logits_from_the_gate_weights(name, saved):
    arch, path = ARCHS[name], saved(name)
    model, tok = _loaded(path)
    rec = R.routing_record(model, tok, TEXT)
    want_fn = "sigmoid" if name == "deepseek_v3" else "softmax"
    assert rec.score_fn == want_fn
    seen = _routed(path, arch, tok)
    for pos, i in enumerate(arch.moe):
        h, _, router = seen[i]
        bias = getattr(router, "bias", None)
        with torch.no_grad():                                                 # the gate, computed here
            z = F.linear(h.reshape(-1, h.shape[-1]).float(), router.weight.float(),
                         None if bias is None else bias.float())
        np.testing.assert_allclose(rec.logits[pos], z.numpy(), atol=1e-5)
        np.testing.assert_allclose(rec.probs[pos], SCORE[want_fn](z).numpy(), atol=1e-6)
        p = SCORE[want_fn](z)
        np.testing.assert_allclose(rec.score_shares[pos], (p / p.sum(-1, keepdim=True)).numpy(), atol=1e-6)
    if want_fn == "softmax":
        np.testing.assert_allclose(rec.probs.sum(-1), 1.0, atol=1e-5)


def _deepseek_v3_choice(z, router):
    """DeepSeek-V3's rule written out: sigmoid scores, bias-corrected choice within the best groups (each group
    scored by its two best corrected scores), weights = chosen scores renormalised, times the scaling factor."""
    c = router
    s = z.sigmoid()
    corrected = s + c.e_score_correction_bias
    groups = corrected.view(len(z), c.num_group, -1)
    best_groups = groups.topk(2, dim=-1).values.sum(-1).topk(c.topk_group, dim=-1).indices
    keep = torch.zeros(len(z), c.num_group, dtype=torch.bool).scatter_(1, best_groups, True)
    keep = keep[:, :, None].expand_as(groups).reshape(len(z), -1)
    idx = corrected.masked_fill(~keep, float("-inf")).topk(c.top_k, dim=-1).indices
    w = s.gather(1, idx)
    w = w / w.sum(-1, keepdim=True) * c.routed_scaling_factor
    order = torch.sort(w, dim=-1, descending=True, stable=True).indices
    return idx.gather(1, order), w.gather(1, order)


def test_deepseek_v3_record_is_the_routers_choice_and_differs_from_softmax_top_k(saved):
    arch, path = ARCHS["deepseek_v3"], saved("deepseek_v3")
    model, tok = _loaded(path)
    rec = R.routing_record(model, tok, TEXT)
    (h, (logits, weights, index), router), = _routed(path, arch, tok).values()
    with torch.no_grad():
        want_idx, want_w = _deepseek_v3_choice(F.linear(h.reshape(-1, h.shape[-1]).float(), router.weight), router)
    np.testing.assert_array_equal(rec.topk[0], want_idx.numpy())                  # the rule, written out
    np.testing.assert_allclose(rec.weights[0], want_w.numpy(), atol=1e-6)
    assert (np.sort(rec.topk[0], -1) == np.sort(index.numpy(), -1)).all()          # the router's own output
    naive = np.sort(np.argsort(-rec.probs[0], -1)[:, :2], -1)                       # top-2 of the scores alone
    assert (naive != np.sort(rec.topk[0], -1)).any(-1).mean() > 0.2
    assert not rec.renormalised and np.allclose(rec.weights.sum(-1), router.routed_scaling_factor, atol=1e-5)


def test_statistics_of_a_sigmoid_router_normalise_explicitly_or_refuse(saved):
    model, tok = _loaded(saved("deepseek_v3"))
    texts = ["Once upon a time, there was a little girl.", "Tom had a big blue boat and a red ball."]
    rec = R.routing_record(model, tok, texts, groups={"story": ["a", "b"]})
    s = 1.0 / (1.0 + np.exp(-rec.logits.astype(np.float64)))
    assert not np.allclose(s.sum(-1), 1.0)                                         # not a distribution
    q = s / s.sum(-1, keepdims=True)
    want = -(q * np.log(q)).sum(-1).mean(-1) / np.log(rec.n_experts)
    np.testing.assert_allclose(R.router_entropy(rec), want, atol=1e-5)
    assert R.load_summary(rec)["entropy"].tolist() == pytest.approx(want.tolist(), abs=1e-5)
    names, dist = R.group_expert(rec, "story", 0)
    np.testing.assert_allclose(dist, [q[0, rec.groups["story"] == g].mean(0) for g in names], atol=1e-5)
    np.testing.assert_allclose(dist.sum(-1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="defined on softmax router probabilities.*score_fn='sigmoid'"):
        R.loss_table(rec)
    fig = rplots.token_layer_map(rec)
    assert "sigmoid=" in fig.data[0].hovertemplate
    top = np.take_along_axis(s, rec.topk[..., :1], -1)[..., 0]
    np.testing.assert_allclose(np.asarray(fig.data[0].customdata, float), top[:, :128], atol=1e-5)
    assert "router sigmoid" in rplots.token_experts(rec, 0).data[0].hovertext[0][0]
    assert rec.select(rec.doc == 0).score_fn == "sigmoid"


def test_a_router_scored_otherwise_is_recorded_as_unknown_and_its_scores_refused():
    class ScaledRouter(torch.nn.Module):                 # weights = softmax x a per-expert scale (Gemma-4-like)
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(4, 8))
            self.scale = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0, 4.0]))
            self.top_k = 2

        def forward(self, x):
            z = F.linear(x, self.weight)
            w, i = z.softmax(-1).topk(self.top_k, -1)
            return z, w * self.scale[i], i

    rule = moe.router_rule(ScaledRouter())
    assert rule.score_fn == "unknown" and not rule.softmax_top_k
    rec = R.RoutingRecord(tokens=["a", "b"], token_ids=np.arange(2), pred_ids=np.arange(2), doc=np.zeros(2, int),
                          logits=np.zeros((1, 2, 4), np.float32), topk=np.array([[[0, 1], [2, 3]]]),
                          weights=np.ones((1, 2, 2), np.float32), layers=(0,), top_k=2, renormalised=False,
                          score_fn="unknown")
    for f in (lambda: rec.probs, lambda: R.router_entropy(rec), lambda: R.loss_table(rec)):
        with pytest.raises(ValueError, match="neither a softmax nor a sigmoid|score_fn='unknown'"):
            f()
    np.testing.assert_allclose(R.expert_load(rec), [[0.25] * 4])                   # the choice still counts
    assert "E" in rplots.token_layer_map(rec).data[0].hovertemplate


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("score_fn", ["softmax", "sigmoid"])
@pytest.mark.parametrize("renormalise", [True, False])
def test_router_rule_reads_the_score_function_from_the_router(score_fn, renormalise, k):
    class Router(torch.nn.Module):                       # zero weights: the probe redraws them
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(6, 8))
            self.top_k = k

        def forward(self, x):
            z = F.linear(x, self.weight)
            w, i = SCORE[score_fn](z).topk(self.top_k, -1)
            return z, (w / w.sum(-1, keepdim=True) if renormalise else w) * 2.5, i

    assert moe.router_rule(Router()) == moe.RouterRule("Router", score_fn, True)


def test_training_refuses_sigmoid_and_grouped_routers_before_any_work(saved, texts, tmp_path):
    from workbench.train import train
    model, tok = _loaded(saved("deepseek_v3"))
    with pytest.raises(ValueError, match="DeepSeek-V3-style sigmoid router.*aux loss and z-loss apply to softmax"):
        train(model, texts[:4], tokenizer=tok, out_dir=tmp_path / "run", steps=1)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    config = transformers.DeepseekV2Config(**IDS, **{**ARCHS["deepseek_v2"].kw, "topk_method": "group_limited_greedy",
                                                     "n_group": 2, "topk_group": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grouped = transformers.AutoModelForCausalLM.from_config(config)
    assert moe.router_rule(moe.moe_layers(grouped)[0].router) == moe.RouterRule("DeepseekV2TopkRouter", "softmax",
                                                                                 False)
    with pytest.raises(ValueError, match="within expert groups or with a bias correction"):
        moe.check_trainable(grouped)
    plain_v2, _ = _loaded(saved("deepseek_v2"))
    moe.check_trainable(plain_v2)                         # greedy top-k of softmax scores: trainable
