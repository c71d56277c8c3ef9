"""Routing probes: records match the model's own routing; statistics equal their definitions; bad input is refused."""
import warnings
from math import comb

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

from workbench.models import hf_config
from workbench.config import get_preset
from workbench.moe import moe_blocks
from workbench.probes import routing as R
from workbench.testing import tiny_model

TEXTS = ["Once upon a time, there was a little girl named Lily.", "def add(a, b): return a + b",
         "2 + 3 = 5. 4 + 4 = 8.", "Tom had a big blue boat."]


def _qwen(tok, norm):
    cfg = hf_config(get_preset("moe-nano", hidden_size=32, num_hidden_layers=2, intermediate_size=32,
                               shared_expert_intermediate_size=32), tokenizer=tok)
    cfg.norm_topk_prob = norm
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg).eval()
    for _, block in moe_blocks(model):            # Qwen2-MoE routers start at zero: give them a direction
        torch.nn.init.normal_(block.gate.weight, std=0.5)
    return model


def _models(tok):
    return {"mixtral": tiny_model("moe", tokenizer=tok), "qwen2moe-norm": _qwen(tok, True),
            "qwen2moe-raw": _qwen(tok, False)}


@pytest.fixture(scope="module")
def models(tiny_tok):
    return _models(tiny_tok)


@pytest.mark.parametrize("name", ["mixtral", "qwen2moe-norm", "qwen2moe-raw"])
def test_record_matches_the_models_own_routing(models, tiny_tok, name):
    model = models[name]
    seen = []
    hooks = [b.gate.register_forward_hook(lambda m, a, out: seen.append(out)) for _, b in moe_blocks(model)]
    try:
        ids = tiny_tok(TEXTS[0], add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            model(ids)
    finally:
        for h in hooks:
            h.remove()
    rec = R.routing_record(model, tiny_tok, TEXTS[0])
    assert rec.renormalised == (name != "qwen2moe-raw")
    for layer, (logits, weights, index) in enumerate(seen):
        np.testing.assert_allclose(rec.logits[layer], logits.float().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(rec.topk[layer], index.numpy())
        np.testing.assert_allclose(rec.weights[layer], weights.float().numpy(), rtol=1e-5, atol=1e-6)


def test_batching_and_padding_do_not_change_routing(models, tiny_tok):
    model = models["mixtral"]
    together = R.routing_record(model, tiny_tok, TEXTS, batch_size=3)
    alone = [R.routing_record(model, tiny_tok, t) for t in TEXTS]
    np.testing.assert_allclose(together.logits, np.concatenate([r.logits for r in alone], 1), atol=1e-5)
    assert together.tokens == sum((r.tokens for r in alone), [])
    assert together.doc.tolist() == sum(([i] * r.n_tokens for i, r in enumerate(alone)), [])


def test_loss_table_hf_row_equals_transformers(models, tiny_tok):
    rec = R.routing_record(models["mixtral"], tiny_tok, TEXTS)
    table = R.loss_table(rec)
    hf = table[(table.convention == "hf") & (table.layer == "pooled")].iloc[0]
    ref = load_balancing_loss_func(tuple(torch.from_numpy(x) for x in rec.logits), rec.n_experts, rec.top_k)
    assert hf.value == pytest.approx(float(ref), rel=1e-5)
    assert hf.uniform == rec.top_k
    np.testing.assert_allclose(sorted(set(table[table.convention != "hf"].uniform.round(6))),
                               [1.0, round(np.log(4) ** 2, 6)])
    assert len(table) == 5 * (rec.n_layers + 1)


def _hand_record(topk, n_experts=4, groups=None, tokens=None, doc=None):
    """A RoutingRecord from chosen experts (L, T, k); logits put mass on the chosen ones."""
    topk = np.asarray(topk)
    L, T, k = topk.shape
    logits = np.zeros((L, T, n_experts), np.float32)
    for j in range(k):
        np.put_along_axis(logits, topk[..., j:j + 1], 5.0 - j, axis=-1)
    ids = np.arange(T) if tokens is None else np.asarray(tokens)
    return R.RoutingRecord(tokens=[f"t{i}" for i in ids], token_ids=ids, pred_ids=ids, doc=np.zeros(T, int)
                           if doc is None else np.asarray(doc), logits=logits, topk=topk,
                           weights=np.full(topk.shape, 1 / k, np.float32), layers=tuple(range(L)), top_k=k,
                           renormalised=True, groups=groups or {}, architecture="hand")


def test_expert_load_dead_and_entropy():
    rec = _hand_record([[[0, 1], [0, 2], [1, 0], [0, 1]]])
    np.testing.assert_allclose(R.expert_load(rec), [[4 / 8, 3 / 8, 1 / 8, 0]])
    np.testing.assert_allclose(R.expert_load(rec, top=1), [[3 / 4, 1 / 4, 0, 0]])
    d = R.dead_experts(rec, starved_below=0.6)
    assert d == {"dead": [[3]], "starved": [[2]]}
    flat = R.RoutingRecord(**{**rec.__dict__, "logits": np.zeros_like(rec.logits)})
    assert R.router_entropy(flat)[0] == pytest.approx(1.0)


def test_group_distributions_and_similarity():
    labels = np.array(["a", "a", "b", "b", "c", "c"], dtype=object)
    rec = _hand_record([[[0, 1], [0, 1], [2, 3], [2, 3], [0, 1], [1, 0]]], groups={"lang": labels})
    names, hard = R.group_expert(rec, "lang", 0, hard=True)
    assert names == ["a", "b", "c"]
    np.testing.assert_allclose(hard, [[.5, .5, 0, 0], [0, 0, .5, .5], [.5, .5, 0, 0]])
    for hard_ in (False, True):
        _, dist = R.group_expert(rec, "lang", 0, hard=hard_)
        np.testing.assert_allclose(dist.sum(1), 1, rtol=1e-6)
        for metric in ("cosine", "js"):
            s = R.group_similarity(dist, metric)
            np.testing.assert_allclose(s, s.T)
            np.testing.assert_allclose(np.diag(s), 1)
    s = R.group_similarity(hard, "js")
    assert s[0, 1] == pytest.approx(0.0) and s[0, 2] == pytest.approx(1.0)     # disjoint / identical
    assert R.group_similarity(hard, "cosine")[0, 1] == pytest.approx(0.0)
    order = R.cluster_order(R.group_similarity(hard))
    assert abs(list(order).index(0) - list(order).index(2)) == 1                # a and c cluster together
    assert R.separation_score(np.eye(3)) == 1.0 and R.separation_score(np.ones((3, 3))) == 0.0


def test_saturation_coactivation_specialization_consecutive():
    a = _hand_record([[[0, 1], [2, 3], [0, 2]]])
    b = _hand_record([[[1, 0], [2, 1], [3, 1]]])
    np.testing.assert_allclose(R.router_saturation(a, a), [1.0])
    np.testing.assert_allclose(R.router_saturation(a, b), [(1 + .5 + 0) / 3])
    np.testing.assert_allclose(R.router_saturation(a, b, top=1), [1 / 3])
    rec = _hand_record([[[0, 1, 2], [0, 1, 3]]])
    co = R.coactivation(rec, 0)
    assert co[0, 1] == 100 and co[0, 2] == 50 and co[2, 3] == 0
    adj = R.coactivation(rec, 0, pairs="adjacent")                  # ranks (1,2),(2,3) only: 0-2 never counted
    assert adj[0, 1] == 100 and adj[0, 2] == 0 and adj[1, 2] == 50
    names, share, base = R.domain_specialization(
        _hand_record([[[0, 1], [0, 2]]], groups={"d": np.array(["x", "x"], dtype=object)}), "d", 0)
    np.testing.assert_allclose(share, [[1, .5, .5, 0]]) and base == 0.5
    cons = R.consecutive_same_expert(_hand_record([[[0, 1], [0, 2], [3, 1], [2, 3]]], n_experts=8,
                                                  doc=[0, 0, 0, 1]))
    assert cons.same_first[0] == pytest.approx(1 / 2)               # pairs (0,1): same; (1,2): differ; 2->3 other doc
    assert cons.overlap_topk[0] == pytest.approx(1 / 2)
    assert cons.random_overlap_topk[0] == pytest.approx(1 - comb(6, 2) / comb(8, 2))


def test_vocab_specialization():
    rec = _hand_record([[[0, 1], [0, 1], [1, 0], [2, 0], [2, 0]]], tokens=[7, 7, 7, 9, 9])
    mean, table = R.vocab_specialization(rec, 0)
    assert mean == pytest.approx((2 / 3 + 1) / 2)
    assert table.set_index("id").loc[7, "expert"] == 0 and table.set_index("id").loc[9, "share"] == 1
    with pytest.raises(ValueError, match="min_count"):
        R.vocab_specialization(rec, 0, min_count=10)


def test_expert_ablation_only_changes_tokens_downstream_of_the_expert(models, tiny_tok):
    model = models["mixtral"]
    text = TEXTS[0]
    rec = R.routing_record(model, tiny_tok, text)
    for mode in ("drop", "reroute"):
        ab = R.expert_ablation(model, tiny_tok, text, layer=1, mode=mode)
        delta = ab["delta"]                                          # (T-1, E)
        assert delta.shape == (rec.n_tokens - 1, rec.n_experts)
        for t in range(delta.shape[0]):
            for e in range(rec.n_experts):
                if e not in rec.topk[1, :t + 1]:                    # no position <= t used e: nothing changes
                    assert abs(delta[t, e]) < 1e-5
        assert np.abs(delta).max() > 0


def test_checkpoint_saturation_and_replay(models, tiny_tok, tmp_path):
    m0 = tiny_model("moe", seed=1, tokenizer=tiny_tok)
    m1 = models["mixtral"]
    recs = R.checkpoint_records([(0, m0), (10, m1)], tiny_tok, TEXTS)
    df = R.saturation_over_checkpoints(recs)
    assert (df[df.step == 10].saturation == 1).all() and (df[df.step == 0].saturation < 1).all()
    m1.save_pretrained(tmp_path / "checkpoints" / "step-000010")
    m0.save_pretrained(tmp_path / "checkpoints" / "step-000002")
    assert [s for s, _ in R.find_checkpoints(tmp_path)] == [2, 10]
    m1.save_pretrained(tmp_path)                                    # the final model beside checkpoints/
    (tmp_path / "train_config.json").write_text('{"steps": 12}')
    assert [s for s, _ in R.find_checkpoints(tmp_path)] == [2, 10, 12]
    assert [s for s, _ in R.find_checkpoints(tmp_path, include_final=False)] == [2, 10]


def test_bad_inputs(models, tiny_tok, tiny_dense):
    with pytest.raises(ValueError, match="not a mixture-of-experts"):
        R.routing_record(tiny_dense, tiny_tok, "hello there")
    with pytest.raises(ValueError, match="top-k"):
        R.routing_record(models["mixtral"], tiny_tok, "a")
    rec = R.routing_record(models["mixtral"], tiny_tok, TEXTS, groups={"lang": ["en", "en", "xx", None]})
    with pytest.raises(ValueError, match="no tokens"):
        R.group_expert(rec, "lang", 0, groups=["en", "zz"])
    with pytest.raises(ValueError, match="no token labelling"):
        R.group_expert(rec, "domain", 0)
    with pytest.raises(ValueError, match="unknown layer"):
        R.group_expert(rec, "lang", 7)
    with pytest.raises(ValueError, match="unknown layer"):
        R.expert_ablation(models["mixtral"], tiny_tok, TEXTS[0], layer=9)
    eight = tiny_model("moe", tokenizer=tiny_tok, num_local_experts=8)
    with pytest.raises(ValueError, match="same MoE architecture"):
        R.checkpoint_records([(0, eight), (1, models["mixtral"])], tiny_tok, TEXTS)
    with pytest.raises(ValueError, match="different tokens"):
        R.router_saturation(rec, R.routing_record(models["mixtral"], tiny_tok, TEXTS[:2]))


def test_corpus_routing_labels_tokens_from_tags_and_spans(models, tiny_tok):
    text = "the cat sat. le chat assis."
    records = [{"text": "Once upon a time.", "lang": "en", "domain": "story"},
               {"text": text, "spans": [[0, 12, "en"], [13, len(text), "fr"]], "pair_id": 0, "domain": "story"}]
    rec = R.corpus_routing(models["mixtral"], tiny_tok, records)
    first = R.routing_record(models["mixtral"], tiny_tok, records[0]["text"]).n_tokens
    assert set(rec.groups) == {"lang", "domain"}
    langs = rec.groups["lang"][first:]
    assert list(langs[:2]) == ["en", "en"] and langs[-1] == "fr"
    assert (rec.groups["lang"][:first] == "en").all()


def test_self_checks_warn():
    probs = (torch.softmax(torch.randn(5, 4), -1),)
    with pytest.warns(UserWarning, match="double-softmax"):
        assert R.check_routing(router_logits=probs)
    with pytest.warns(UserWarning, match="not being optimised"):
        assert R.check_routing(train_loss=2.5, lm_loss=2.5, aux_coef=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert R.check_routing(router_logits=(torch.randn(5, 4),), train_loss=2.52, lm_loss=2.5, aux_coef=0.01) == []


def test_fast_experts_implementation_routes_the_same(models, tiny_tok):
    model = models["mixtral"]
    records = [{"text": t, "domain": "x"} for t in TEXTS]
    fast = R.corpus_routing(model, tiny_tok, records)                       # grouped_mm for the pass
    plain = R.corpus_routing(model, tiny_tok, records, experts_implementation=None)
    np.testing.assert_allclose(fast.logits, plain.logits, rtol=1e-4, atol=1e-5)
    assert (fast.topk == plain.topk).mean() > 0.99
    assert model.config._experts_implementation == "eager"                  # restored
