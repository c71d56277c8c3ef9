"""Encoder-decoder (T5) models: prefix-LM training, plain loading, generation, scoring, refusal of encoders."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, BertConfig, BertForMaskedLM

import workbench as wb
from workbench.corpora import generate_corpus
from workbench.models import build_model, count_params, is_encoder_decoder
from workbench.scoring import Task, label_logprobs
from workbench.train import train
from workbench.train.generate import generate
from workbench.train.loop import prefix_lm_loss

KW = dict(batch_size=8, seq_len=64, eval_every=20, tokenizer_vocab_size=512, threads=2, sample_prompts=(),
          hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("encdec") / "run"
    texts = generate_corpus("stories", 300, seed=0).texts
    return train("encdec-4m", texts, out_dir=out, steps=40, lr=2e-2, warmup=4, **KW), out, texts


def test_presets_build_t5_of_the_stated_sizes():
    with torch.device("meta"):
        small, big = build_model("encdec-4m", vocab_size=4096), build_model("encdec-12m", vocab_size=4096)
    assert type(small).__name__ == "T5ForConditionalGeneration" and is_encoder_decoder(small)
    assert 4.3e6 < count_params(small)[0] < 4.9e6 and 11.5e6 < count_params(big)[0] < 13e6
    assert small.config.feed_forward_proj == "gated-gelu" and small.config.decoder_start_token_id == 0


def test_prefix_lm_loss_is_t5s_own_loss_on_the_split():
    torch.manual_seed(0)
    model = build_model("encdec-4m", vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64).eval()
    w = torch.randint(3, 300, (2, 17))
    x, y = w[:, :-1], w[:, 1:]
    ours = prefix_lm_loss(model, x, y, split=7)
    eos = torch.full((2, 1), model.config.eos_token_id)
    theirs = model(input_ids=torch.cat([w[:, :7], eos], 1), labels=w[:, 7:].contiguous()).loss   # T5: input + EOS
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_prefix_lm_encoder_sees_only_the_current_document():
    """Packed windows: tokens up to the last EOS before the split are masked out of the encoder, so its input
    is one document ending with its only EOS (T5's convention) -- the same as that document alone."""
    torch.manual_seed(0)
    model = build_model("encdec-4m", vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64).eval()
    eos, bos = model.config.eos_token_id, 1
    doc = torch.randint(3, 300, (1, 12))
    earlier = torch.randint(3, 300, (1, 5))
    w = torch.cat([earlier, torch.tensor([[eos, bos]]), doc], 1)                  # (1, 19): doc starts at 6
    packed = prefix_lm_loss(model, w[:, :-1], w[:, 1:], split=13)
    alone = model(input_ids=torch.cat([w[:, 6:13], torch.tensor([[eos]])], 1), labels=w[:, 13:].contiguous()).loss
    assert torch.allclose(packed, alone, atol=1e-5)


def test_training_lowers_the_loss_and_saves_a_plain_t5(run):
    res, out, _ = run
    h = res.history["lm_loss"]
    assert h.tail(5).mean() < h.head(5).mean() - 1.0
    assert np.isfinite(res.final_val_loss)
    plain = AutoModelForSeq2SeqLM.from_pretrained(out)              # no workbench code needed
    tok = AutoTokenizer.from_pretrained(out)
    assert type(plain).__name__ == "T5ForConditionalGeneration" and len(tok) == 512
    for (name, a), (_, b) in zip(sorted(res.model.state_dict().items()), sorted(plain.state_dict().items())):
        assert torch.equal(a.float().cpu(), b.float()), name


def test_load_model_generate_and_resume(run):
    res, out, texts = run
    model, tok = wb.load_model(out)
    assert is_encoder_decoder(model) and not model.training
    samples = generate(model, tok, "Once upon a time", n=2, max_new_tokens=8, seed=0)
    assert all(s.startswith("Once upon a time") and len(s) > len("Once upon a time") for s in samples)
    more = train(None, texts, out_dir=out, resume=True, steps=50, **{k: v for k, v in KW.items()
                                                                     if k not in ("hidden_size", "num_hidden_layers",
                                                                                  "num_attention_heads",
                                                                                  "intermediate_size")})
    assert list(more.history["step"]) == list(range(1, 51))


def test_label_scoring_of_an_encoder_decoder_matches_plain_transformers(run):
    _, out, _ = run
    model, tok = wb.load_model(out)
    task = Task(name="t", texts=("Once upon a time, there was a little girl named Mia.",), golds=(0,),
                classes=("happy", "sad"), template="{text} In the end, Mia felt")
    rec = label_logprobs(model, tok, task, channel=False)
    ctx = tok(task.prompt(0), return_tensors="pt").input_ids
    assert ctx[0, -1].item() == tok.eos_token_id                      # a saved T5 tokenizer ends inputs with EOS
    for j, (_, verb) in enumerate(task.choices):
        cont = tok(" " + verb, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = model(input_ids=ctx, labels=cont).logits
        expected = -F.cross_entropy(logits[0].float(), cont[0], reduction="sum").item()
        assert rec.cond[0, j] == pytest.approx(expected, abs=1e-3)


def test_encoder_only_models_are_refused_by_name(tmp_path):
    cfg = BertConfig(vocab_size=120, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32)
    BertForMaskedLM(cfg).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="encoder-only model \\(bert\\)"):
        wb.load_model(tmp_path)
