"""Every public path on tiny random models of many architectures gives the numbers plain `transformers` gives,
or refuses with a message naming the unsupported feature.

Models are built from configs (2 layers, width 32, the tiny tokenizer's vocabulary plus room), saved, and
loaded back through `workbench.load_model`; nothing is downloaded. The references are independent: one plain
forward per example for scoring, `output_attentions` of a plain eager model for attention, the router
module's own outputs for routing, a plain cross-entropy of the first batch for training.
"""
from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers

from workbench.models import load_model, save_model, supported_attention
from workbench.probes import routing as R
from workbench.probes.attention import AttentionUnavailable, attention_record, generation_record
from workbench.probes.attribution import feature_ablation, integrated_gradients, target_logprobs
from workbench.probes.rollout import rollout_record
from workbench.scoring.functions import SCORING_FUNCTIONS, scores
from workbench.scoring.loglik import ContextScorer, label_logprobs
from workbench.scoring.tasks import Task

V = 320          # the tiny tokenizer's 300 tokens plus room (Qwen2's tokenizer class adds <|endoftext|>)
IDS = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0, vocab_size=V)
D = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
TEXT = "Once upon a time, there was a little girl named Lily. She liked to play with her red ball."


@dataclass(frozen=True)
class Arch:
    config: str                      # transformers config class
    kw: dict
    kv: int                          # key/value heads the attention really has
    moe: tuple[int, ...] = ()        # decoder layers holding a routed MoE block
    router: str = ""                 # the router's path inside a decoder layer
    packs: bool = True               # scoring may use the batched paths (else the exact path, with a reason)
    refused: dict = field(default_factory=dict)   # path -> words the refusal must contain


MOE = dict(num_experts_per_tok=2)
ARCHS = {
    "gpt2": Arch("GPT2Config", dict(n_embd=32, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
                                    attn_pdrop=0.0), kv=4),
    "gpt_neox": Arch("GPTNeoXConfig", dict(D), kv=4),
    "llama": Arch("LlamaConfig", dict(D, num_key_value_heads=2), kv=2),
    "qwen2": Arch("Qwen2Config", dict(D, num_key_value_heads=2), kv=2),
    "qwen3": Arch("Qwen3Config", dict(D, num_key_value_heads=2, head_dim=8), kv=2),
    "phi": Arch("PhiConfig", dict(D), kv=4),
    "phi3": Arch("Phi3Config", dict(D), kv=4),
    "gemma": Arch("GemmaConfig", dict(D, num_key_value_heads=2, head_dim=8), kv=2),
    "gemma2": Arch("Gemma2Config", dict(D, num_key_value_heads=2, head_dim=8, sliding_window=8), kv=2),
    "gemma3": Arch("Gemma3TextConfig", dict(D, num_key_value_heads=2, head_dim=8, sliding_window=8,
                                            sliding_window_pattern=2), kv=2),
    "mistral": Arch("MistralConfig", dict(D, num_key_value_heads=2, sliding_window=8), kv=2),
    "opt": Arch("OPTConfig", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
                                  word_embed_proj_dim=32, max_position_embeddings=64, dropout=0.0), kv=4),
    "bloom": Arch("BloomConfig", dict(hidden_size=32, n_layer=2, n_head=4), kv=4, packs=False),
    "falcon": Arch("FalconConfig", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4), kv=1,
                   refused={"attention (sdpa load)": "cannot switch its attention to 'eager'"}),
    "falcon_alibi": Arch("FalconConfig", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, alibi=True),
                         kv=1, packs=False,
                         refused={"attention (sdpa load)": "cannot switch its attention to 'eager'"}),
    "gptj": Arch("GPTJConfig", dict(n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_positions=64), kv=4),
    "mpt": Arch("MptConfig", dict(d_model=32, n_heads=4, n_layers=2, max_seq_len=64, expansion_ratio=2), kv=4,
                packs=False),
    "mixtral": Arch("MixtralConfig", dict(D, num_key_value_heads=2, num_local_experts=4, **MOE), kv=2, moe=(0, 1),
                    router="mlp.gate"),
    "qwen2_moe": Arch("Qwen2MoeConfig", dict(D, num_key_value_heads=2, num_experts=4, moe_intermediate_size=32,
                                             shared_expert_intermediate_size=32, norm_topk_prob=False,
                                             mlp_only_layers=[0], **MOE), kv=2, moe=(1,), router="mlp.gate"),
    "olmoe": Arch("OlmoeConfig", dict(D, num_experts=4, **MOE), kv=4, moe=(0, 1), router="mlp.gate"),
    "deepseek_v2": Arch("DeepseekV2Config", dict(D, num_key_value_heads=4, n_routed_experts=4, moe_intermediate_size=32,
                                                 first_k_dense_replace=1, n_shared_experts=1, kv_lora_rank=16,
                                                 q_lora_rank=None, qk_rope_head_dim=4, qk_nope_head_dim=4,
                                                 v_head_dim=8, n_group=1, topk_group=1, **MOE),
                        kv=4, moe=(1,), router="mlp.gate"),
    "deepseek_v3": Arch("DeepseekV3Config", dict(D, num_key_value_heads=4, n_routed_experts=8, moe_intermediate_size=32,
                                                 first_k_dense_replace=1, n_shared_experts=1, kv_lora_rank=16,
                                                 q_lora_rank=16, qk_rope_head_dim=4, qk_nope_head_dim=4,
                                                 v_head_dim=8, n_group=2, topk_group=1, **MOE),
                        kv=4, moe=(1,), router="mlp.gate",
                        refused={"expert ablation (reroute)": "mode='reroute' needs a router",
                                 "training": "DeepSeek-V3-style sigmoid router"}),
    "granitemoe": Arch("GraniteMoeConfig", dict(D, num_local_experts=4, **MOE), kv=4, moe=(0, 1),
                       router="block_sparse_moe.router"),
    "gpt_oss": Arch("GptOssConfig", dict(D, num_key_value_heads=2, head_dim=8, num_local_experts=4, sliding_window=8,
                                         **MOE), kv=2, moe=(0, 1), router="mlp.router"),
    "jamba": Arch("JambaConfig", dict(D, num_key_value_heads=2, num_experts=4, attn_layer_period=2, attn_layer_offset=1,
                                      expert_layer_period=2, expert_layer_offset=1, mamba_d_state=4, mamba_d_conv=2,
                                      mamba_expand=2, mamba_dt_rank=4, **MOE),
                  kv=2, moe=(1,), router="feed_forward.router", packs=False),
    "t5": Arch("T5Config", dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, decoder_start_token_id=0,
                                n_positions=64, dropout_rate=0.0), kv=4,
               refused={"attribution": "is an encoder-decoder"}),
    "bart": Arch("BartConfig", dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                                    decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                                    max_position_embeddings=64, decoder_start_token_id=2, forced_bos_token_id=None,
                                    dropout=0.0), kv=4,
                 refused={"attribution": "is an encoder-decoder"}),
}


def _params(names=None):
    out = []
    for name in names or ARCHS:
        cls = ARCHS[name].config
        missing = not hasattr(transformers, cls)
        out.append(pytest.param(name, id=name, marks=pytest.mark.skipif(
            missing, reason=f"{cls} is not in the installed transformers {transformers.__version__}")))
    return out


ALL = _params()
CAUSAL = _params([n for n in ARCHS if n not in ("t5", "bart")])
MOES = _params([n for n, a in ARCHS.items() if a.moe])


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_tok):
    """name -> directory of the saved tiny random model (built on first use)."""
    root = tmp_path_factory.mktemp("archs")

    @functools.lru_cache(maxsize=None)
    def build(name):
        a = ARCHS[name]
        config = getattr(transformers, a.config)(**IDS, **a.kw)
        torch.manual_seed(0)
        cls = transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder else transformers.AutoModelForCausalLM
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cls.from_config(config)
        with torch.no_grad():
            for n, w in model.named_parameters():   # Jamba: a recurrent state strong enough to show packing errors
                if ".mamba." in n and w.dim() == 2:
                    w.normal_(0, 0.3)
            for i in a.moe:            # routers may start at zero: give them directions (and DeepSeek-V3 a bias)
                router = model.get_submodule(f"model.layers.{i}.{a.router}")
                router.weight.normal_(0, 0.5)
                if hasattr(router, "e_score_correction_bias"):
                    router.e_score_correction_bias.normal_(0, 0.2)
        return save_model(model, tiny_tok, root / name)
    return build


@functools.lru_cache(maxsize=None)
def _loaded(path, impl="sdpa"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model(path, attn_implementation=impl, local_only=True)


def _plain(path, **kw):
    """The model as plain transformers loads it (its default attention unless `kw` says otherwise)."""
    config = transformers.AutoConfig.from_pretrained(path)
    cls = transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder else transformers.AutoModelForCausalLM
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls.from_pretrained(path, **kw).eval()


def _ids(tok, text=TEXT):
    return [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]


# ----------------------------------------------------------------------------- load and generate

@pytest.mark.parametrize("name", ALL)
def test_load_matches_plain_transformers(name, saved):
    path = saved(name)
    model, tok = _loaded(path)
    plain = _plain(path)
    assert type(model) is type(plain)
    assert model.config._attn_implementation == supported_attention(model.config, "sdpa")
    x = torch.tensor([_ids(tok)])
    kw = {"decoder_input_ids": x[:, :5]} if model.config.is_encoder_decoder else {}
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=x, **kw).logits, plain(input_ids=x, **kw).logits,
                                   atol=1e-5, rtol=1e-4)


def test_load_refuses_an_encoder_only_model(tmp_path, tiny_tok):
    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, vocab_size=V)
    save_model(transformers.BertForMaskedLM(config), tiny_tok, tmp_path / "bert")
    with pytest.raises(ValueError, match="encoder-only model"):
        load_model(tmp_path / "bert", local_only=True)


@pytest.mark.parametrize("name", ALL)
def test_generate_matches_plain_greedy_decoding(name, saved):
    from workbench.train import generate
    path = saved(name)
    model, tok = _loaded(path)
    got = generate(model, tok, "Tom had a big", n=1, temperature=0, max_new_tokens=6)[0]
    plain = _plain(path)
    ids = _ids(tok, "Tom had a big")
    with torch.no_grad():
        out = plain.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             do_sample=False, max_new_tokens=6, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)[0]
    head = tok.decode(ids, skip_special_tokens=True) if plain.config.is_encoder_decoder else ""
    assert got == head + tok.decode(out, skip_special_tokens=True)


# ----------------------------------------------------------------------------- attention

def _stack(attentions) -> np.ndarray:
    return torch.stack([a[0] for a in attentions]).numpy()         # (layer, head, query, key)


def _check_record(rec, want: np.ndarray, kv: int, causal: bool):
    assert rec.weights.shape == want.shape
    np.testing.assert_allclose(rec.weights, want, atol=1e-5)
    assert rec.n_kv_heads == kv and rec.causal is causal
    rr = rollout_record(rec, flow=True)
    np.testing.assert_allclose(rr.rollout.sum(-1), 1.0, atol=1e-6)
    upper, flow_up = np.triu(rr.rollout[-1], 1), np.triu(rr.flow, 1)
    assert (np.abs(upper).max() < 1e-9 and flow_up.max() == 0) if causal else (upper.max() > 0 and flow_up.max() > 0)
    assert rr.causal is causal


@pytest.mark.parametrize("name", CAUSAL)
def test_attention_record_matches_output_attentions(name, saved):
    from workbench.plots.attention import heatmap_z
    arch, path = ARCHS[name], saved(name)
    ref = _plain(path, attn_implementation="eager")
    model, tok = _loaded(path, "eager")
    ids = _ids(tok)
    with torch.no_grad():
        want = _stack(ref(input_ids=torch.tensor([ids]), output_attentions=True).attentions)
    rec = attention_record(model, tok, TEXT)
    _check_record(rec, want, arch.kv, causal=True)
    assert np.isnan(heatmap_z(rec, 0, 0)[0, 1])                    # the causal overlay: nothing above the diagonal
    sdpa, _ = _loaded(path)                                        # the in-place switch from SDPA, where it exists
    if "attention (sdpa load)" in arch.refused:
        with pytest.raises(AttentionUnavailable, match=arch.refused["attention (sdpa load)"]):
            attention_record(sdpa, tok, TEXT)
    else:
        np.testing.assert_allclose(attention_record(sdpa, tok, TEXT).weights, want, atol=1e-5)
        assert sdpa.config._attn_implementation == supported_attention(sdpa.config)   # switched back
    gen = generation_record(model, tok, "Tom had a big", max_new_tokens=3)
    with torch.no_grad():
        x = torch.tensor([_ids(tok, "Tom had a big")])
        greedy = ref.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=3,
                              pad_token_id=tok.pad_token_id)[0]
    assert gen.token_ids.tolist() == greedy.tolist() and gen.n_prompt == x.shape[1]


@pytest.mark.parametrize("name", _params(["t5", "bart"]))
def test_encoder_decoder_attention_parts(name, saved):
    from workbench.plots.attention import heatmap_z
    path = saved(name)
    model, tok = _loaded(path)
    ref = _plain(path, attn_implementation="eager")
    src, tgt = _ids(tok), tok("She was happy", add_special_tokens=False)["input_ids"]
    start = ref.config.decoder_start_token_id
    with torch.no_grad():
        out = ref(input_ids=torch.tensor([src]), decoder_input_ids=torch.tensor([[start] + tgt]),
                  output_attentions=True)
    enc = attention_record(model, tok, TEXT)                       # default: the encoder's self-attention
    assert not enc.causal and enc.meta["part"] == "encoder"
    assert not np.isnan(heatmap_z(enc, 0, 0)).any()                # no causal overlay on bidirectional attention
    _check_record(enc, _stack(out.encoder_attentions), ARCHS[name].kv, causal=False)
    dec = attention_record(model, tok, TEXT, part="decoder", target="She was happy")
    _check_record(dec, _stack(out.decoder_attentions), ARCHS[name].kv, causal=True)
    np.testing.assert_allclose(dec.meta["cross_attention"], _stack(out.cross_attentions), atol=1e-5)
    with pytest.raises(ValueError, match="needs target tokens"):
        attention_record(model, tok, TEXT, part="decoder")


def test_attention_is_refused_when_eager_attention_computes_other_outputs(saved):
    """Falcon with ALiBi: transformers' eager attention adds the ALiBi bias twice, SDPA once, so eager weights
    would not describe the SDPA model; the check after a switch compares the logits of both passes."""
    from workbench.probes.attention import _same_outputs
    path = saved("falcon_alibi")
    sdpa, tok = _loaded(path)
    eager, _ = _loaded(path, "eager")
    kw = {"input_ids": torch.tensor([_ids(tok)])}
    with torch.no_grad():
        _same_outputs(sdpa, kw, sdpa(**kw))
        with pytest.raises(AttentionUnavailable, match="eager attention computes different outputs"):
            _same_outputs(sdpa, kw, eager(**kw, output_attentions=True))


def test_bidirectional_encoder_attention_is_not_drawn_causal(tiny_tok):
    from workbench.plots.attention import heatmap_z
    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, vocab_size=V, attn_implementation="eager")
    torch.manual_seed(0)
    model = transformers.BertForMaskedLM(config).eval()
    rec = attention_record(model, tiny_tok, TEXT)
    with torch.no_grad():
        out = model(input_ids=torch.tensor([_ids(tiny_tok)]), output_attentions=True)
    _check_record(rec, _stack(out.attentions), 4, causal=False)
    assert not np.isnan(heatmap_z(rec, 0, 0)).any()
    with pytest.raises(ValueError, match="encoder-only"):
        generation_record(model, tiny_tok, "Tom had")


# ----------------------------------------------------------------------------- attribution

@pytest.mark.parametrize("name", ALL)
def test_attribution(name, saved):
    arch, path = ARCHS[name], saved(name)
    model, tok = _loaded(path)
    if "attribution" in arch.refused:
        with pytest.raises(ValueError, match=arch.refused["attribution"]):
            integrated_gradients(model, tok, "Tom had a big", target=" boat")
        return
    ig = integrated_gradients(model, tok, "Tom had a big", target=" boat", n_steps=32)
    plain = _plain(path)
    ids, tgt = _ids(tok, "Tom had a big"), tok(" boat", add_special_tokens=False)["input_ids"]
    np.testing.assert_allclose(ig.target_logprob, target_logprobs(plain, ids, tgt), atol=1e-5)
    total, diff = ig.completeness()
    assert ig.delta == pytest.approx(total - diff, abs=1e-3)
    if not arch.moe:                      # top-k routing makes f jump along the path: no completeness for MoE
        assert abs(ig.delta) < 0.02 * abs(diff) + 2e-3
    fa = feature_ablation(model, tok, "Tom had a big", target=" boat")
    base = float(target_logprobs(plain, ids, tgt).sum())
    for i in range(1, len(ids)):          # attr_i = f(x) - f(x with token i replaced by the baseline token)
        cut = list(ids)
        cut[i] = fa.meta["baseline_token"]
        assert fa.token_attr[:, i].sum() == pytest.approx(base - float(target_logprobs(plain, cut, tgt).sum()),
                                                          abs=1e-4)


def test_integrated_gradients_avoids_a_zero_embedding_baseline(saved):
    model, tok = _loaded(saved("llama"))
    assert not model.get_input_embeddings().weight[tok.pad_token_id].any()     # PAD's row is zero (padding_idx)
    rec = integrated_gradients(model, tok, "Tom had a big", target=" boat", n_steps=16)
    assert rec.meta["baseline_token"] == tok.eos_token_id
    assert any("all zeros" in w and "EOS" in w for w in rec.warnings)
    forced = integrated_gradients(model, tok, "Tom had a big", target=" boat", n_steps=16, baseline=tok.pad_token_id)
    assert forced.meta["baseline_token"] == tok.pad_token_id
    assert any("pass a token with a non-zero embedding" in w for w in forced.warnings)


# ----------------------------------------------------------------------------- routing

@pytest.mark.parametrize("name", MOES)
def test_routing_record_is_the_routers_own_choice(name, saved):
    arch, path = ARCHS[name], saved(name)
    model, tok = _loaded(path)
    plain = _plain(path)
    seen = {}
    routers = {i: plain.get_submodule(f"model.layers.{i}.{arch.router}") for i in arch.moe}
    hooks = [r.register_forward_hook(lambda m, a, out, i=i: seen.setdefault(i, out)) for i, r in routers.items()]
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = plain(input_ids=torch.tensor([ids]), output_router_logits=True)
    for h in hooks:
        h.remove()
    rec = R.routing_record(model, tok, TEXT)
    assert rec.layers == arch.moe and rec.n_layers == len(arch.moe)
    assert rec.n_experts == routers[arch.moe[0]].weight.shape[0] and rec.top_k == 2
    for pos, i in enumerate(arch.moe):
        logits, weights, index = seen[i]
        np.testing.assert_allclose(rec.logits[pos], logits.float().numpy(), atol=1e-5)
        order = weights.float().argsort(dim=-1, descending=True, stable=True)
        np.testing.assert_array_equal(rec.topk[pos], index.gather(-1, order).numpy())
        np.testing.assert_allclose(rec.weights[pos], weights.float().gather(-1, order).numpy(), atol=1e-6)
    renorm = np.allclose(np.concatenate([seen[i][1].float().sum(-1).numpy() for i in arch.moe]), 1, atol=1e-4)
    assert rec.renormalised == renorm
    if name == "deepseek_v3":             # sigmoid, grouped, bias-corrected: softmax -> top-k picks other experts
        soft = torch.stack([torch.as_tensor(r).float() for r in out.router_logits]).topk(2, -1).indices.sort(-1)
        assert (np.sort(rec.topk, -1) != soft.values.numpy()).any(-1).mean() > 0.2


@pytest.mark.parametrize("name", MOES)
def test_expert_ablation_is_exactly_zero_where_the_expert_was_not_chosen(name, saved):
    arch, path = ARCHS[name], saved(name)
    model, tok = _loaded(path)
    rec = R.routing_record(model, tok, TEXT)
    for mode in ("drop", "reroute"):
        key = f"expert ablation ({mode})"
        if key in arch.refused:
            with pytest.raises(ValueError, match=arch.refused[key]):
                R.expert_ablation(model, tok, TEXT, 0, mode)
            continue
        ab = R.expert_ablation(model, tok, TEXT, 0, mode)
        assert ab["decoder_layer"] == arch.moe[0]
        delta = ab["delta"]
        assert np.abs(delta).max() > 0
        for t in range(delta.shape[0]):
            for e in range(rec.n_experts):
                if e not in rec.topk[0, :t + 1]:     # no position <= t chose e: the output is unchanged, exactly
                    assert delta[t, e] == 0.0, (mode, t, e)
    with pytest.raises(ValueError, match=re.escape(f"decoder layers {list(arch.moe)}")):
        R.expert_ablation(model, tok, TEXT, len(arch.moe))


def test_dense_models_have_no_routing(saved):
    model, tok = _loaded(saved("llama"))
    with pytest.raises(ValueError, match="not a mixture-of-experts"):
        R.routing_record(model, tok, TEXT)


# ----------------------------------------------------------------------------- scoring

def _plain_ll(model, ctx, cont) -> float:
    """log p(cont | ctx) from one plain forward of this example alone."""
    with torch.no_grad():
        if model.config.is_encoder_decoder:
            dec = torch.tensor([[model.config.decoder_start_token_id] + cont[:-1]])
            lp = model(input_ids=torch.tensor([ctx]), decoder_input_ids=dec).logits[0].float().log_softmax(-1)
            return float(lp[torch.arange(len(cont)), torch.tensor(cont)].sum())
        lp = model(input_ids=torch.tensor([ctx + cont])).logits[0].float().log_softmax(-1)
        return float(lp[torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1), torch.tensor(cont)].sum())


TASK = Task("t", ("Lily saw the red ball in the park and the sun was warm, so she ran to the tall tree",
                  "Tom had a big blue boat", "Max"), (0, 1, 0), ("happy", "sad"),
            template="{text}. She was", content_free=("N/A", ""))


@pytest.mark.parametrize("name", ALL)
def test_scoring_matches_one_plain_forward_per_example(name, saved):
    arch, path = ARCHS[name], saved(name)
    model, tok = _loaded(path)
    sc = ContextScorer(model, tok)
    assert (sc.exact_reason == "") is arch.packs, sc.exact_reason
    plain = _plain(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lp = label_logprobs(model, tok, TASK)
    d, vs = TASK.target_delimiter, [v for _, v in TASK.choices]

    def ll(ctx, cont):
        (c, x), = sc.encode_pairs([(ctx, cont)])
        return _plain_ll(plain, c, x)
    want = replace(
        lp, cond=np.array([[ll(TASK.prompt(i), d + v) for v in vs] for i in range(len(TASK.texts))]),
        uncond=np.array([ll("", d + v) for v in vs]),
        generic=np.array([ll(TASK.generic_premise, d + v) for v in vs]),
        domain=np.array([ll(TASK.domain_premise, d + v) for v in vs]),
        content_free=np.array([[ll(TASK.template.format(text=cf), d + v) for v in vs] for cf in TASK.content_free]),
        channel=np.array([[ll(TASK.channel_template.format(label=v), d + t) for v in vs] for t in TASK.texts]))
    for f in ("cond", "uncond", "generic", "domain", "content_free", "channel"):
        np.testing.assert_allclose(getattr(lp, f), getattr(want, f), atol=2e-4, err_msg=f)
    for fn in SCORING_FUNCTIONS:
        np.testing.assert_allclose(scores(lp, fn), scores(want, fn), atol=5e-4, err_msg=fn)
    if not arch.packs:
        assert any(w in sc.exact_reason for w in ("ALiBi", "recurrent"))


@pytest.mark.parametrize("name", _params(["mistral", "gemma2", "gpt_oss"]))
def test_sliding_window_models_pack_only_within_the_window(name, saved):
    model, tok = _loaded(saved(name))
    sc = ContextScorer(model, tok)
    assert sc.window == 8 and not sc.exact_reason
    short = [([1, 40, 41, 42, 43], [50, 51, 52, 53]), ([1, 40, 41, 42, 44], [60, 61, 62, 64])]   # 5 + 3 = 8
    assert sc._can_pack([(c, [(0, tuple(x))]) for c, x in short[:1]])
    assert not sc._can_pack([([1] * 9, [(0, (5, 6))])])
    plain = _plain(saved(name))
    got = [r.total for r in sc.score_tokens(short)]
    np.testing.assert_allclose(got, [_plain_ll(plain, c, x) for c, x in short], atol=1e-5)


# ----------------------------------------------------------------------------- training

@pytest.mark.parametrize("name", ALL)
def test_a_few_training_steps(name, saved, texts):
    from workbench.train import train
    from workbench.train.data import prepare
    path = saved(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, tok = load_model(path, local_only=True)
    if "training" in ARCHS[name].refused:           # before any corpus or tokenizer work
        with pytest.raises(ValueError, match=ARCHS[name].refused["training"]):
            train(model, texts[:12], tokenizer=tok, steps=2, batch_size=2, seq_len=16, device="cpu")
        return
    plain = _plain(path).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = train(model, texts[:12], tokenizer=tok, steps=2, batch_size=2, seq_len=16, warmup=1, eval_every=0,
                eval_batches=1, sample_n=1, sample_max_new_tokens=2, log_every=1, device="cpu", val_fraction=0.2)
    hist = res.history
    assert len(hist) == 2 and np.isfinite(hist["loss"]).all()
    changed = [k for k, v in res.model.state_dict().items() if not torch.equal(before[k], v)]
    assert len(changed) >= len(before) - 2          # all parameters move (buffers such as a bias correction don't)
    if ARCHS[name].moe:
        assert np.isfinite(hist["aux_loss"]).all()
    if not plain.config.is_encoder_decoder:         # (encoder-decoders train by prefix LM with a random split)
        data = prepare(texts[:12], res.tokenizer, 16, 2, 0.2, 0)
        x, y = data.batch(0, 0, 2, 1, 0)
        with torch.no_grad():
            logits = plain(input_ids=x).logits
        want = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
        assert hist["lm_loss"].iloc[0] == pytest.approx(float(want), abs=1e-4)
