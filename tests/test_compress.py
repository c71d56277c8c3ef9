"""Making models small: pruning really removes what it says, quantization stays close and reloads, one
measurement for every variant."""
import copy

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from workbench.compress import SCHEMES, magnitude_prune, prune_heads, prune_mlp, quantize, sparsity
from workbench.compress.measure import _memory_bytes, disk_bytes, measure, peak_memory_bytes, val_loss
from workbench.compress.quantize import load_quantized, save_quantized
from workbench.corpora import generate_corpus
from workbench.testing import tiny_model


@pytest.fixture(scope="module")
def model(tiny_tok):
    return tiny_model("dense", seed=5, tokenizer=tiny_tok, attn_implementation="sdpa")


@pytest.fixture(scope="module")
def texts():
    return generate_corpus("stories", 12, seed=3).texts


def _logits(m, tok, text="Once upon a time, there was a girl."):
    with torch.no_grad():
        return m(input_ids=torch.tensor([tok(text)["input_ids"]])).logits


def test_magnitude_pruning_zeros_the_smallest_weights_globally(model, tiny_tok):
    pruned, rec = magnitude_prune(model, 0.6)
    s = sparsity(pruned)
    assert abs(s["sparsity"] - 0.6) < 0.01 and rec.params_after == rec.params_before - s["zeros"]
    kept = torch.cat([p.abs().flatten() for n, p in pruned.named_parameters() if ".layers." in n and p.dim() == 2])
    orig = torch.cat([p.abs().flatten() for n, p in model.named_parameters() if ".layers." in n and p.dim() == 2])
    threshold = orig.kthvalue(int(0.6 * orig.numel())).values
    assert (kept[kept > 0] >= threshold - 1e-7).all()             # every survivor is above the global threshold
    assert sparsity(model)["sparsity"] < 0.01                     # the input model is untouched
    assert rec.detail["pruned_matrices_csr_bytes"] > 0


def test_structured_pruning_builds_smaller_plain_models(model, tiny_tok, texts, tmp_path):
    small, rec = prune_mlp(model, 0.5, texts, tiny_tok)
    assert small.config.intermediate_size == 32 and rec.params_after < rec.params_before
    assert small.model.layers[0].mlp.down_proj.weight.shape == (32, 32)
    fewer, rec2 = prune_heads(model, 0.5, texts, tiny_tok)
    assert fewer.config.num_attention_heads == 2 and fewer.model.layers[0].self_attn.q_proj.weight.shape[0] == 16
    for m, sub in ((small, "mlp"), (fewer, "heads")):
        m.save_pretrained(tmp_path / sub)
        back = AutoModelForCausalLM.from_pretrained(tmp_path / sub, trust_remote_code=False)   # no workbench code
        torch.testing.assert_close(_logits(back, tiny_tok), _logits(m, tiny_tok))


def test_pruning_nothing_changes_nothing_and_zero_heads_is_refused(model, tiny_tok, texts):
    same, _ = prune_mlp(model, 0.0, texts, tiny_tok)
    torch.testing.assert_close(_logits(same, tiny_tok), _logits(model, tiny_tok))
    same, _ = prune_heads(model, 0.0, texts, tiny_tok)
    torch.testing.assert_close(_logits(same, tiny_tok), _logits(model, tiny_tok))
    with pytest.raises(ValueError, match="remove all 4 heads"):
        prune_heads(model, 0.9, texts, tiny_tok)
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"in \[0, 1\)"):
            magnitude_prune(model, bad)
    with pytest.raises(ValueError, match="calibration texts"):
        prune_mlp(model, 0.5, [], tiny_tok)


@pytest.mark.parametrize("scheme,tol", [("int8-weight", 0.05), ("int8-dynamic", 0.2), ("int4-weight", 0.5)])
def test_quantized_logits_stay_close_and_reload(model, tiny_tok, tmp_path, scheme, tol):
    q, rec = quantize(model, scheme)
    ref, out = _logits(model, tiny_tok), _logits(q, tiny_tok)
    assert (out - ref).abs().max() < tol * ref.abs().max()
    assert rec.layers == 14 and rec.stored_bytes < rec.fp32_bytes / 3 and rec.packed_bytes <= rec.stored_bytes
    save_quantized(q, tmp_path / scheme)
    back = _logits(load_quantized(tmp_path / scheme, scheme), tiny_tok)
    assert (back - out).abs().max() < 0.02 * out.abs().max()            # embeddings and norms kept in float16


def test_bad_quantization_settings_name_the_supported_ones(model):
    with pytest.raises(ValueError, match="supported are int8-weight, int8-dynamic, int4-weight"):
        quantize(model, "int3")
    with pytest.raises(ValueError, match="does not divide"):
        quantize(model, "int4-weight", group_size=48)
    assert SCHEMES == ("int8-weight", "int8-dynamic", "int4-weight")


def test_one_measurement_row_for_every_variant(model, tiny_tok):
    q, _ = quantize(model, "int8-weight")
    pruned, _ = magnitude_prune(model, 0.5)
    rows = [measure(m, tiny_tok, "tiny", k, n_task=10, n_val=4, n_stories=2, gen_tokens=4, repeats=1, threads=(1,))
            for k, m in (("original", model), ("int8", q), ("magnitude", pruned))]
    assert all(set(r) == set(rows[0]) for r in rows)
    assert rows[1]["weights_mb"] < rows[0]["weights_mb"] and rows[2]["nonzero"] < rows[0]["nonzero"]
    assert rows[0]["disk_mb"] == pytest.approx(disk_bytes(model) / 1e6)
    assert rows[0]["val_ppl"] == pytest.approx(np.exp(rows[0]["val_loss"])) and rows[0]["ms_per_token_1t"] > 0
    assert 0 <= rows[0]["acc:feeling/1"] <= 1 and 0 <= rows[0]["well_formed"] <= 1
    assert all(r["peak_mb"] > 0 for r in rows)


def test_a_failing_measurement_stops_its_memory_process(model, tiny_tok):
    """measure() runs the peak-memory process beside its other measurements; an error in those stops it."""
    import psutil
    with pytest.raises(ValueError):
        measure(model, tiny_tok, "tiny", tasks=("no-such-task/1",), n_val=2, n_stories=1, gen_tokens=4, repeats=1,
                threads=(1,))
    assert psutil.Process().children() == []


def test_peak_memory_holds_the_weights_a_variant_keeps_resident(tiny_tok):
    """Measured in a fresh process: a 34 MB float32 model needs about 34 MB more than a tiny one while it
    generates, and its int8 copy (9 MB of weights, dequantized a matrix at a time) well under that."""
    small = tiny_model("dense", seed=2, tokenizer=tiny_tok)
    big = tiny_model("dense", seed=2, tokenizer=tiny_tok, hidden_size=512, intermediate_size=2048)
    q, _ = quantize(big, "int8-weight")
    w_small, w_big, w_q = (_memory_bytes(m) / 1e6 for m in (small, big, q))
    p_small, p_big, p_q = (peak_memory_bytes(m, tiny_tok, gen_tokens=4) / 1e6 for m in (small, big, q))
    assert w_big > 30 and p_big - p_small > 0.9 * (w_big - w_small)
    assert p_big - p_q > 0.5 * (w_big - w_q)
    from peft import LoraConfig, get_peft_model
    with pytest.raises(ValueError, match="unmerged LoRA adapters"):
        peak_memory_bytes(get_peft_model(copy.deepcopy(small), LoraConfig(r=2, target_modules=["q_proj"])), tiny_tok)


def test_val_loss_is_the_mean_token_cross_entropy(model, tiny_tok):
    text = "Once upon a time, there was a girl."
    ids = [tiny_tok.bos_token_id] + tiny_tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids[:-1]])).logits[0]
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:])).item()
    assert val_loss(model, tiny_tok, [text]) == pytest.approx(expected, rel=1e-5)


def test_pareto_front_keeps_only_undominated_rows():
    import pandas as pd

    from workbench.compress.measure import pareto_front
    from workbench.plots.compress import pareto_chart
    df = pd.DataFrame({"model": "m", "method": ["a", "b", "c", "d"], "setting": ["", "1", "2", "3"],
                       "disk_mb": [10.0, 5.0, 5.0, 2.0], "val_loss": [1.0, 1.2, 1.5, 3.0],
                       "well_formed": [0.9, 0.95, 0.5, 0.1]})
    assert list(pareto_front(df, "disk_mb", "val_loss")["method"]) == ["d", "b", "a"]     # c: b is as small, better
    assert list(pareto_front(df, "disk_mb", "well_formed")["method"]) == ["d", "b"]       # higher is better here
    fig = pareto_chart(df)
    assert [t.name for t in fig.data] == ["a", "b", "c", "d", "Pareto frontier", "selected"]
    assert list(fig.data[-2].x) == [2.0, 5.0, 10.0] and len(fig.data[-1].x) == 0     # the frontier; nothing ringed


def test_kept_heads_divide_the_hidden_size(tiny_tok, texts):
    m = tiny_model("dense", seed=1, tokenizer=tiny_tok, attn_implementation="sdpa")    # 4 heads, width 32
    fewer, rec = prune_heads(m, 0.25, texts, tiny_tok)                                  # 3 would not divide 32
    assert rec.detail["heads"] == [4, 2] and fewer.config.num_attention_heads == 2


def test_a_quantized_model_on_disk_is_smaller_than_its_float16_original(tiny_tok):
    """Tied embeddings are stored once, in float16, beside the int8 matrices."""
    m = tiny_model("dense", seed=2, tokenizer=tiny_tok, hidden_size=64, intermediate_size=256)
    q, _ = quantize(m, "int8-weight")
    assert disk_bytes(q) < 0.8 * disk_bytes(m)
