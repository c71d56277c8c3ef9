"""Adapting to a labelled task: LoRA through peft against full fine-tuning, merged back to a plain model."""
import numpy as np
import pytest
import torch

from workbench.compress.lora import adapt, label_examples, merge
from workbench.scoring import label_logprobs, predictions
from workbench.scoring.builtin import builtin_task
from workbench.testing import tiny_model


@pytest.fixture(scope="module")
def task():
    return builtin_task("pronoun", 1, n=16, split="train")


def test_label_examples_end_with_the_gold_label(tiny_tok, task):
    ex = label_examples(tiny_tok, task)
    seq, n = ex[0]
    label = task.target_delimiter + task.verbalizers[task.golds[0]][0]
    assert tiny_tok.decode(seq[-n:]) == label and len(ex) == len(task.golds)


def test_lora_trains_few_parameters_and_merges_to_identical_outputs(tiny_tok, task, tmp_path):
    base = tiny_model("dense", seed=0, tokenizer=tiny_tok, attn_implementation="sdpa", max_position_embeddings=512)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    lora, rec = adapt(base, tiny_tok, task, "lora", rank=4, steps=30, batch_size=8, lr=3e-2)
    full, rec_full = adapt(base, tiny_tok, task, "full", steps=30, batch_size=4)
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())       # the input is untouched
    assert 0 < rec.trainable < 0.2 * rec_full.trainable and rec.adapter_bytes < rec_full.adapter_bytes
    assert rec.final_loss < rec.first_loss - 0.2 and rec.steps == 30
    x = torch.tensor([tiny_tok(task.prompt(0))["input_ids"]])
    with torch.no_grad():
        adapted = lora(input_ids=x).logits
        plain = merge(lora)
        assert type(plain).__name__ == type(base).__name__
        torch.testing.assert_close(plain(input_ids=x).logits, adapted, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(plain(input_ids=x).logits, base(input_ids=x).logits)   # it learned something
    plain.save_pretrained(tmp_path)
    from transformers import AutoModelForCausalLM
    back = AutoModelForCausalLM.from_pretrained(tmp_path, trust_remote_code=False)
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=x).logits, adapted, atol=1e-4, rtol=1e-4)


def test_fine_tuning_raises_accuracy_on_the_labels_it_was_trained_on(tiny_tok, task):
    base = tiny_model("dense", seed=0, tokenizer=tiny_tok, attn_implementation="sdpa", max_position_embeddings=512)
    tuned, _ = adapt(base, tiny_tok, task, "full", steps=60, batch_size=8, lr=3e-3)

    def acc(m):
        rec = label_logprobs(m, tiny_tok, task, channel=False)
        return float((predictions(rec, ["acc"])["acc"] == np.asarray(task.golds)).mean())
    assert acc(tuned) > acc(base) or acc(tuned) == 1.0


def test_bad_settings_are_refused(tiny_tok, task):
    base = tiny_model("dense", tokenizer=tiny_tok)
    with pytest.raises(ValueError, match="use 'lora' or 'full'"):
        adapt(base, tiny_tok, task, "qlora")
    with pytest.raises(ValueError, match="rank must be >= 1"):
        adapt(base, tiny_tok, task, "lora", rank=0)


def test_lora_reaches_the_fused_experts_of_a_moe_and_merges_to_plain_mixtral(tiny_tok, task, tmp_path):
    from transformers import AutoModelForCausalLM
    base = tiny_model("moe", seed=0, tokenizer=tiny_tok, attn_implementation="sdpa", max_position_embeddings=512)
    lora, rec = adapt(base, tiny_tok, task, "lora", rank=4, steps=30, batch_size=8, lr=3e-2)
    adapted = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert any(".mlp.experts." in n and "lora_A" in n for n in adapted)      # the experts are adapted too
    assert any("q_proj.lora_A" in n for n in adapted) and rec.final_loss < rec.first_loss
    ids = torch.tensor([tiny_tok("Once upon a time, Mia saw her friend.")["input_ids"]])
    with torch.no_grad():
        expected = lora(input_ids=ids).logits
    plain = merge(lora)
    plain.save_pretrained(tmp_path)
    back = AutoModelForCausalLM.from_pretrained(tmp_path, trust_remote_code=False).eval()
    assert type(back).__name__ == "MixtralForCausalLM"
    with torch.no_grad():
        assert torch.allclose(back(input_ids=ids).logits, expected, atol=1e-4)
        assert not torch.allclose(back(input_ids=ids).logits, base(input_ids=ids).logits, atol=1e-4)


def test_lora_on_t5_adapts_encoder_and_decoder_and_merges_to_plain_t5(tiny_tok, task, tmp_path):
    """The encoder-decoder member: the prompt goes in the encoder, the label is learned by the decoder; merged,
    it is a plain T5ForConditionalGeneration whose logits equal the adapted model's to float32 rounding (atol and
    rtol 1e-4, as for the decoder-only members: W x + B A x and (W + B A) x round differently; the largest
    difference seen was 7e-5, on logits up to ~7 that the adapter moved by up to ~8) and it reloads with
    transformers."""
    from transformers import AutoModelForSeq2SeqLM

    from workbench.models import build_model
    base = build_model("encdec-4m", tokenizer=tiny_tok, seed=0, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64).eval()
    lora, rec = adapt(base, tiny_tok, task, "lora", rank=4, steps=30, batch_size=8, lr=3e-2)
    adapted = {n for n, p in lora.named_parameters() if p.requires_grad}
    for where in ("encoder.block.0.layer.0.SelfAttention.q.lora_A", "decoder.block.0.layer.1.EncDecAttention.v.lora_A",
                  "decoder.block.1.layer.2.DenseReluDense.wo.lora_B"):
        assert any(where in n for n in adapted), where
    assert all("lora_" in n for n in adapted) and rec.final_loss < rec.first_loss - 0.2
    full, rec_full = adapt(base, tiny_tok, task, "full", steps=2, batch_size=4)
    assert rec.trainable < 0.2 * rec_full.trainable and rec.adapter_bytes < rec_full.adapter_bytes
    enc = torch.tensor([tiny_tok(task.prompt(0))["input_ids"]])
    dec = torch.tensor([[base.config.decoder_start_token_id, 5, 9, 11]])
    with torch.no_grad():
        expected = lora(input_ids=enc, decoder_input_ids=dec).logits
        plain = merge(lora)
        assert type(plain).__name__ == "T5ForConditionalGeneration"
        assert not any("lora" in n for n, _ in plain.named_parameters())
        torch.testing.assert_close(plain(input_ids=enc, decoder_input_ids=dec).logits, expected, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(plain(input_ids=enc, decoder_input_ids=dec).logits,
                                  base(input_ids=enc, decoder_input_ids=dec).logits, atol=1e-3)
    plain.save_pretrained(tmp_path)
    back = AutoModelForSeq2SeqLM.from_pretrained(tmp_path, trust_remote_code=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=enc, decoder_input_ids=dec).logits, expected, atol=1e-4, rtol=1e-4)


def test_lora_on_t5_learns_the_labels_as_the_scorer_reads_them(tiny_tok, task):
    """Trained with the prompt in the encoder and the label in the decoder, the adapted T5 gives the gold labels
    a higher log-likelihood under the workbench's own seq2seq scorer (the layout it scores), and its training
    batches hold exactly the prompt and the label tokens."""
    from workbench.compress.lora import _seq2seq_batches
    from workbench.models import build_model
    base = build_model("encdec-4m", tokenizer=tiny_tok, seed=0, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64, max_position_embeddings=1024).eval()
    ex = label_examples(tiny_tok, task)
    ids, mask, labels = next(_seq2seq_batches(ex[:1], 1, 1, 0, 0))
    assert ids[0].tolist() == ex[0][0][:-ex[0][1]] and labels[0].tolist() == ex[0][0][-ex[0][1]:]
    tuned, _ = adapt(base, tiny_tok, task, "lora", rank=8, steps=60, batch_size=8, lr=3e-2)

    def gold_logprob(m):
        rec = label_logprobs(m.eval(), tiny_tok, task, channel=False)
        assert not rec.truncated.any()
        return float(rec.cond[np.arange(len(task.golds)), task.golds].mean())
    assert gold_logprob(merge(tuned)) > gold_logprob(base) + 5.0          # measured: -17.4 -> -5.7 nats


def test_targets_that_name_no_layer_are_refused(tiny_tok, task):
    with pytest.raises(ValueError, match="no linear layer of LlamaForCausalLM is named one of query"):
        adapt(tiny_model("dense", tokenizer=tiny_tok), tiny_tok, task, "lora", targets=("query",))


def test_the_seed_fixes_loras_initial_matrices_too(tiny_tok, task):
    """The same seed gives the same adapter whatever the global random state (peft draws A at random)."""
    base = tiny_model("dense", seed=0, tokenizer=tiny_tok)
    runs = []
    for noise in (1, 2):
        torch.manual_seed(noise)
        lora, _ = adapt(base, tiny_tok, task, "lora", rank=2, steps=2, batch_size=2, seed=7)
        runs.append({n: p.detach().clone() for n, p in lora.named_parameters() if "lora_A" in n})
    assert runs[0].keys() == runs[1].keys() and all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


@pytest.mark.parametrize("kind", ["dense", "moe"])
def test_the_first_loss_is_the_cross_entropy_of_the_label_tokens_over_all_logits(tiny_tok, task, kind):
    """adapt() asks the model for the logits before label tokens only (`logits_to_keep`); its first loss equals
    the cross-entropy of the label tokens computed from every position's logits."""
    import torch.nn.functional as F
    from workbench.compress.lora import _batches
    base = tiny_model(kind, seed=0, tokenizer=tiny_tok, attn_implementation="sdpa", max_position_embeddings=512)
    _, rec = adapt(base, tiny_tok, task, "full", steps=1, batch_size=8, seed=3)
    ids, mask, target = next(_batches(label_examples(tiny_tok, task), 8, 1, 3, tiny_tok.pad_token_id))
    with torch.no_grad():
        logits = base.float()(input_ids=ids, attention_mask=mask).logits[:, :-1]
    want = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target[:, 1:].reshape(-1), ignore_index=-100)
    assert (target != -100).sum() > 8 and rec.first_loss == pytest.approx(want.item(), rel=1e-5)
