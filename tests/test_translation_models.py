"""Translation models: the NLLB-MoE expert dispatch, training-time routing (capacity, EOM, gating dropout), forced
target language, the routing record, and training on pairs end to end."""
import math
import warnings

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, NllbMoeConfig
from transformers.models.nllb_moe import modeling_nllb_moe as N

from workbench.train import train
from workbench.translation import models as M
from workbench.translation.data import Pair, lang_token, parallel_pairs, train_mt_tokenizer
from workbench.translation.decode import SourceTooLong, load_translation_model, translate
from workbench.translation.routing import capacity_overflow, translation_routing


@pytest.fixture(scope="module")
def pairs():
    return parallel_pairs(40, seed=5, low_resource={"tuu": 0.3})


@pytest.fixture(scope="module")
def mt_tok(pairs):
    return train_mt_tokenizer(pairs, vocab_size=400)


@pytest.fixture(scope="module")
def tiny_moe(mt_tok):
    return M.build_translation_model("mt-moe", mt_tok, seed=0, d_model=32, encoder_layers=2, decoder_layers=2,
                                     encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2,
                                     decoder_attention_heads=2, num_experts=4).eval()


def test_the_library_dispatch_is_checked_and_the_installed_one_runs_every_routed_expert():
    assert M.nllb_experts_dispatch_ok(M._LIBRARY_FORWARD) is False      # transformers 5.x: experts 0 and 1 only
    assert M.nllb_experts_dispatch_ok(M._dispatch_forward)
    assert N.NllbMoeExperts.forward is M._dispatch_forward
    cfg = NllbMoeConfig(d_model=16, num_experts=8, encoder_ffn_dim=32, decoder_ffn_dim=32, moe_token_dropout=0.0)
    torch.manual_seed(0)
    ex = N.NllbMoeExperts(cfg, 32)
    x = torch.randn(40, 16, requires_grad=True)
    probs = torch.rand(40, 8) * (torch.rand(40, 8) > 0.7)
    a, b = M._dispatch_forward(ex, x, None, probs), M._all_experts_forward(ex, x, probs)
    assert torch.allclose(a, b, atol=1e-6)
    ga = torch.autograd.grad(a.sum(), [x, *ex.parameters()])
    gb = torch.autograd.grad(b.sum(), [x, *ex.parameters()])
    assert all(torch.allclose(u, v, atol=1e-5) for u, v in zip(ga, gb))


def test_decoding_forces_the_target_language_token(tiny_moe, mt_tok):
    x = torch.tensor([[mt_tok.convert_tokens_to_ids(lang_token("en"))] + mt_tok("The cat sat.")["input_ids"]
                      + [mt_tok.eos_token_id]])
    for lang in ("vel", "kor"):
        out = tiny_moe.generate(input_ids=x, forced_bos_token_id=mt_tok.convert_tokens_to_ids(lang_token(lang)),
                                max_new_tokens=5, do_sample=False)
        assert out[0, 0] == tiny_moe.config.decoder_start_token_id
        assert out[0, 1] == mt_tok.convert_tokens_to_ids(lang_token(lang))
    text = translate(tiny_moe, mt_tok, "The cat sat.", "en", "kor", max_new_tokens=5)[0]
    assert "__kor__" not in text


def test_bad_input_names_the_problem(tiny_moe, mt_tok):
    with pytest.raises(ValueError, match="tgt_lang='xx'.*valid: en, vel, kor, tuu"):
        translate(tiny_moe, mt_tok, "Hi.", "en", "xx")
    with pytest.raises(ValueError, match="source sentence 1 is empty"):
        translate(tiny_moe, mt_tok, ["Hi.", "  "], "en", "vel")
    with pytest.warns(SourceTooLong, match="source 0 has .* cut to the first"):
        translate(tiny_moe, mt_tok, "the cat " * 100, "en", "vel", max_new_tokens=2)
    with pytest.raises(ValueError, match="unknown translation preset"):
        M.mt_config("mt-huge")


def test_the_routing_record_is_the_routers_own_output(tiny_moe, mt_tok, pairs):
    seen = []
    hooks = [r.register_forward_hook(lambda m, a, o: seen.append(o)) for _, r in M._routers(tiny_moe)]
    try:
        recs = translation_routing(tiny_moe, mt_tok, pairs[:6], batch_size=6)
    finally:
        for h in hooks:
            h.remove()
    enc, dec = recs["encoder"], recs["decoder"]
    assert enc.n_layers == dec.n_layers == 2 and enc.n_experts == 4 and enc.top_k == 2
    x_real = sum(len(mt_tok(p.src, add_special_tokens=False)["input_ids"]) + 2 for p in pairs[:6])
    assert enc.n_tokens == x_real and set(enc.groups["src_lang"]) <= {"en", "vel", "kor", "tuu"}
    top1, probs, logits = seen[0]                 # encoder layer 0, all rows (padding included)
    real = torch.from_numpy(enc.token_ids).numel()
    mask = logits.new_zeros(logits.shape[0], dtype=torch.bool)
    x_ids = torch.nn.utils.rnn.pad_sequence([torch.tensor(
        [mt_tok.convert_tokens_to_ids(lang_token(p.src_lang))] + mt_tok(p.src, add_special_tokens=False)["input_ids"]
        + [mt_tok.eos_token_id]) for p in pairs[:6]], batch_first=True, padding_value=mt_tok.pad_token_id)
    mask = (x_ids != mt_tok.pad_token_id).reshape(-1)
    assert mask.sum() == real
    assert torch.allclose(torch.from_numpy(enc.logits[0]), logits[mask].float(), atol=1e-6)
    assert (torch.from_numpy(enc.topk[0][:, 0]) == top1[mask].argmax(-1)).all()   # eval: nothing dropped
    assert ((probs[mask] > 0).sum(-1) == 2).all()


def _small(mt_tok, **kw):
    return M.build_translation_model("mt-moe", mt_tok, seed=1, d_model=32, encoder_layers=1, decoder_layers=1,
                                     encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2,
                                     decoder_attention_heads=2, num_experts=4, **kw)


def test_capacity_eom_and_gating_dropout_act_only_in_training(mt_tok):
    h = torch.randn(40, 32)
    capped = _small(mt_tok, capacity_factor=0.5)
    handles = M.routing_hooks(capped)
    router = M._routers(capped)[0][1]
    capped.train()
    top1, probs, _ = router(h)
    cap = math.ceil(0.5 * 2 * 40 / 4)
    assert router.expert_capacity == cap and ((probs > 0).sum(0) <= cap).all() and (probs > 0).sum() < 80
    capped.eval()
    assert ((router(h)[1] > 0).sum(-1) == 2).all()              # evaluation: nothing dropped
    for x in handles:
        x.remove()
    model = _small(mt_tok, expert_output_mask_p=0.5, gating_dropout_p=0.999, gd_devices=2)
    handles = M.routing_hooks(model)
    router = M._routers(model)[0][1]
    try:
        model.train()
        torch.manual_seed(0)
        top1, probs, _ = router(h)
        first, second = probs[:20] > 0, probs[20:] > 0        # two virtual devices of 20 rows, experts {0,1} {2,3}
        assert not first[:, 2:].any() and not second[:, :2].any()
        assert ((probs > 0).sum(-1) < 2).any()                  # EOM zeroed some gates
        model.eval()
        top1e, probse, _ = router(h)
        assert ((probse > 0).sum(-1) == 2).all() and (probse[20:, :2] > 0).any()   # no EOM, no moving
    finally:
        for x in handles:
            x.remove()
    fc2 = next(m for n, m in model.named_modules() if ".experts." in n and hasattr(m, "fc2")).fc2.weight.clone()
    M.finalize_eom(model)
    after = next(m for n, m in model.named_modules() if ".experts." in n and hasattr(m, "fc2")).fc2.weight
    assert torch.allclose(after, fc2 * 0.5) and model.config.eom_inference_scale == 0.5
    M.finalize_eom(model)                                       # idempotent
    assert torch.allclose(after, fc2 * 0.5)


def test_capacity_overflow_on_a_known_case(tiny_moe, mt_tok, pairs):
    recs = translation_routing(tiny_moe, mt_tok, pairs[:4])
    rec = recs["encoder"]
    n = rec.n_tokens
    fake = rec.logits.copy()
    fake[:] = 0
    fake[:, :, 0], fake[:, :, 1] = 2.0, 1.0                   # every token: top-1 expert 0, top-2 expert 1
    import dataclasses
    rec2 = dataclasses.replace(rec, logits=fake)
    over = capacity_overflow({"encoder": rec2}, 1.0, batch_tokens=n)
    cap = math.ceil(2 * n / 4)
    assert over.dropped_share.iloc[0] == pytest.approx((2 * n - 2 * min(cap, n)) / (2 * n))


def test_training_on_pairs_saves_a_plain_transformers_model(tmp_path, pairs, mt_tok):
    res = train("mt-moe", corpus=pairs, tokenizer=mt_tok, out_dir=tmp_path / "run", steps=4, batch_size=8, warmup=1,
                eval_every=0, d_model=32, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=32, decoder_ffn_dim=32,
                encoder_attention_heads=2, decoder_attention_heads=2, num_experts=4, expert_output_mask_p=0.1)
    h = res.history
    assert {"aux_loss", "z_loss", "expert_load"} <= set(h.columns) and len(h.expert_load.iloc[0]) == 2
    assert res.model.config.eom_inference_scale == pytest.approx(0.9)
    assert "->" in res.samples[4][0]
    plain = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "run", trust_remote_code=False).eval()
    x = torch.tensor([[5, 6, 7, mt_tok.eos_token_id]])
    d = torch.tensor([[mt_tok.eos_token_id, 8, 9]])
    with torch.no_grad():
        assert torch.allclose(plain(input_ids=x, decoder_input_ids=d).logits,
                              res.model.eval()(input_ids=x, decoder_input_ids=d).logits, atol=1e-5)


def test_translation_presets_refuse_plain_text():
    with pytest.raises(ValueError, match="give a parallel corpus"):
        train("mt-dense", corpus=["Once upon a time."] * 10, steps=1)


def test_the_shipped_models_reproduce_their_shipped_outputs():
    from workbench.translation.study import load_results, test_pairs_of
    systems = load_results()["systems"]
    for name in ("mt-dense", "mt-moe"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, tok = load_translation_model(name)
        rows = systems[systems.system == name].sort_values("i").head(24)
        got = [translate(model, tok, r.src, r.src_lang, r.tgt_lang)[0] for r in rows.itertuples()]
        same = sum(g == h for g, h in zip(got, rows.hyp))
        assert same >= 22, f"{name}: {same}/24 greedy outputs equal the shipped ones"
    pairs = test_pairs_of(systems)
    assert len(pairs) == 600 and len({(p.src_lang, p.tgt_lang) for p in pairs}) == 12


@pytest.mark.parametrize("preset", ["mt-moe", "mt-dense"])
def test_the_pair_loss_equals_the_librarys_own_loss(preset, pairs, mt_tok):
    from workbench.train.pairs import pair_loss
    from workbench.translation.data import prepare_pairs
    data = prepare_pairs(pairs, mt_tok, 128, 0.1, 0)
    x, y = data.batch(0, 0, 8, 1, 0)
    extra = {"num_experts": 4} if preset == "mt-moe" else {}
    m = M.build_translation_model(preset, mt_tok, seed=0, d_model=32, encoder_layers=1, decoder_layers=1,
                                  encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2,
                                  decoder_attention_heads=2, **extra).eval()
    labels = y.masked_fill(y == mt_tok.pad_token_id, -100)
    with torch.no_grad():
        ref = m(input_ids=x, attention_mask=(x != 0).long(), labels=labels,
                decoder_attention_mask=(labels != -100).long(), output_router_logits=preset == "mt-moe")
        mine = pair_loss(m, m, x, y, preset == "mt-moe")
    if preset == "mt-moe":      # the library adds aux_coef * (encoder aux + decoder aux); the workbench also z
        assert mine["aux_loss"] == pytest.approx(float(ref.encoder_aux_loss + ref.decoder_aux_loss), rel=1e-5)
        assert float(mine["lm_loss"] + m.config.router_aux_loss_coef * mine["aux_loss"]) == pytest.approx(
            float(ref.loss), rel=1e-5)
        assert mine["expert_load"].shape == (2, 4) and mine["z_loss"] > 0
    else:
        assert float(mine["loss"]) == pytest.approx(float(ref.loss), rel=1e-5)


def test_two_processes_train_translation_pairs_as_one(tmp_path, pairs, mt_tok):
    """DDP on pairs of different lengths: each rank's loss is weighted by its share of the batch's tokens, so the
    2-process run equals the 1-process run with the same global batch (dropout off: its masks differ by rank)."""
    kw = dict(tokenizer=mt_tok, steps=4, batch_size=8, warmup=1, eval_every=0, lr=1e-3, seed=0, dropout=0.0,
              d_model=32, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=32, decoder_ffn_dim=32,
              encoder_attention_heads=2, decoder_attention_heads=2)
    one = train("mt-dense", corpus=pairs, out_dir=tmp_path / "one", **kw)
    two = train("mt-dense", corpus=pairs, out_dir=tmp_path / "two", devices=2, **kw)
    assert two.history.lm_loss.tolist() == pytest.approx(one.history.lm_loss.tolist(), abs=1e-4)
    a, b = one.model.state_dict(), two.model.state_dict()
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-5
