"""Knowledge distillation: the loss is Hinton's, the trainer mixes it as configured, a student learns the
teacher's distribution, and a teacher that cannot teach this student is refused with the fix."""
import json

import pytest
import torch
import torch.nn.functional as F

from workbench.cli import main
from workbench.compress import compare_with_baseline, distill
from workbench.compress.distill import distill_hidden, distillation_terms, hidden_state_loss, layer_map
from workbench.testing import TINY_DENSE, tiny_model
from workbench.train import train
from workbench.train.losses import distillation_loss

FAST = dict(batch_size=4, seq_len=32, warmup=0, lr=1e-2, eval_every=0, log_every=1, sample_n=1,
            sample_max_new_tokens=4)


def test_distillation_loss_is_t_squared_kl_of_tempered_softmaxes():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 5, 11, generator=g), 3 * torch.randn(2, 5, 11, generator=g)
    for temp in (1.0, 2.0, 4.0):
        p, q = F.softmax(t / temp, -1), F.softmax(s / temp, -1)
        kl = (p * (p.log() - q.log())).sum(-1).mean()            # KL(teacher || student) per token, mean
        assert distillation_loss(s, t, temp).item() == pytest.approx(temp ** 2 * kl.item(), rel=1e-5)
    assert distillation_loss(t + 7.0, t).item() == pytest.approx(0.0, abs=1e-5)   # a shift changes nothing
    with pytest.raises(ValueError, match="same tokenizer"):
        distillation_loss(s, t[..., :10])


@pytest.fixture(scope="module")
def teacher(tok, texts, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    train("dense-nano", texts, tokenizer=tok, out_dir=out, steps=40, seed=3, **TINY_DENSE, **FAST)
    return out


def _kl_to(teacher_dir, model, tok, texts):
    from transformers import AutoModelForCausalLM
    t = AutoModelForCausalLM.from_pretrained(teacher_dir, trust_remote_code=False).eval()
    ids = torch.tensor([tok(texts[0])["input_ids"][:32]])
    with torch.no_grad():
        return distillation_loss(model.eval()(input_ids=ids).logits, t(input_ids=ids).logits, 1.0).item()


def test_a_student_learns_the_teachers_distribution(teacher, tok, texts):
    kw = dict(tokenizer=tok, steps=30, seed=1, **TINY_DENSE, **FAST)
    start = train("dense-nano", texts, **{**kw, "steps": 1, "lr": 1e-9})
    alone = train("dense-nano", texts, **kw)
    taught, rec = distill(teacher, "dense-nano", texts, alpha=1.0, temperature=1.0, **kw)
    kl_start, kl_alone, kl_taught = (_kl_to(teacher, r.model, tok, texts) for r in (start, alone, taught))
    assert kl_taught < 0.5 * kl_start and kl_taught < kl_alone     # it learned the teacher, not only the data
    assert rec.alpha == 1.0 and rec.steps == 30 and rec.tokens == 30 * 4 * 32 and rec.kd_loss > 0
    h = taught.history
    assert torch.allclose(torch.tensor(h["loss"].values), torch.tensor(h["kd_loss"].values))   # alpha 1: KD only


def test_the_trainer_mixes_cross_entropy_and_the_teacher_term(teacher, tok, texts):
    r = train("dense-nano", texts, tokenizer=tok, teacher=str(teacher), distill_alpha=0.25, steps=3,
              **TINY_DENSE, **FAST)
    h = r.history
    mixed = 0.75 * h["lm_loss"] + 0.25 * h["kd_loss"]
    assert (mixed - h["loss"]).abs().max() < 1e-4 and (h["kd_loss"] > 0).all()


def test_teachers_that_cannot_teach_are_refused_with_the_fix(tok, texts):
    with pytest.raises(ValueError, match="another vocabulary.*tokenizer="):
        train("dense-nano", texts, tokenizer=tok, teacher="dense-1m", steps=2, **TINY_DENSE, **FAST)
    with pytest.raises(ValueError, match="encoder-decoder"):
        train("dense-nano", texts, tokenizer=tok, teacher="encdec-4m", steps=2, **TINY_DENSE, **FAST)
    with pytest.raises(ValueError, match="distill_alpha must be in"):
        train("dense-nano", texts, tokenizer=tok, teacher="dense-1m", distill_alpha=1.5, steps=2)


def test_the_cli_trains_a_student_and_records_its_teacher(teacher, texts, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join(texts))
    out = tmp_path / "student"
    sets = [f"{k}={v}" for k, v in TINY_DENSE.items()]
    assert main(["train", "--preset", "dense-nano", "--corpus", str(corpus), "--out", str(out), "--tokenizer",
                 str(teacher), "--teacher", str(teacher), "--distill-temperature", "1.5", "--steps", "2",
                 "--batch-size", "4", "--seq-len", "32", "--eval-every", "0", "--set", *sets]) == 0
    cfg = json.loads((out / "train_config.json").read_text())
    assert cfg["teacher"] == str(teacher) and cfg["distill_temperature"] == 1.5
    assert "kd_loss" in json.loads((out / "history.jsonl").read_text().splitlines()[0])


def test_compare_with_baseline_knows_which_direction_is_better():
    t = compare_with_baseline({"val_loss": 0.70, "acc:ending/1": 0.9}, {"val_loss": 0.72, "acc:ending/1": 0.5,
                                                                        "other": 1})
    assert list(t["better"]) == ["distilled", "distilled"] and t["difference"].iloc[0] == pytest.approx(-0.02)
    with pytest.raises(ValueError, match="share no measure"):
        compare_with_baseline({"a": 1}, {"b": 2})


# ---- hidden-state distillation ----------------------------------------------------------------------------------

def test_hidden_state_loss_by_hand():
    """One token: student state (1, 2), projection rows (1, 0), (0, 1), (1, 1) -> (1, 2, 3); teacher (3, 0, 1):
    squared errors 4, 4, 4, mean 4. Cosine: parallel states cost 0, orthogonal ones 1."""
    proj = torch.nn.Linear(2, 3, bias=False)
    proj.weight.data = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    s, t = [None, torch.tensor([[[1.0, 2.0]]])], [None, None, torch.tensor([[[3.0, 0.0, 1.0]]])]
    assert hidden_state_loss(s, t, [(1, 2)], proj).item() == pytest.approx(4.0)
    a, b = torch.tensor([[[1.0, 2.0], [1.0, 0.0]]]), torch.tensor([[[2.0, 4.0], [0.0, 1.0]]])
    assert hidden_state_loss([a], [b], [(0, 0)], kind="cosine").item() == pytest.approx(0.5)     # (0 + 1) / 2
    assert layer_map(2, 4) == [(1, 2), (2, 4)] and layer_map(2, 6) == [(1, 3), (2, 6)]


def test_the_combined_loss_is_logit_kd_plus_the_weighted_hidden_term(tok):
    """On tiny models: loss = (1 - a) CE + a T^2 KL + w * mean over pairs of MSE(h_s W, h_t), by hand."""
    student = tiny_model("dense", seed=0, tokenizer=tok)                                     # width 32, 2 blocks
    teacher = tiny_model("dense", seed=1, tokenizer=tok, hidden_size=48, num_hidden_layers=4, intermediate_size=96)
    x = torch.tensor([tok("Once upon a time, Tom saw the red ball.")["input_ids"]])
    inp, y = x[:, :-1], x[:, 1:]
    s_out, t_out = (m(input_ids=inp, output_hidden_states=True) for m in (student, teacher))
    proj = torch.nn.Linear(32, 48, bias=False)
    got = distillation_terms(s_out, t_out, y, 0.3, 2.0, 0.7, layer_map(2, 4), proj)
    ce = F.cross_entropy(s_out.logits[0], y[0])
    p, q = F.softmax(t_out.logits / 2, -1), F.softmax(s_out.logits / 2, -1)
    kl = 4 * (p * (p.log() - q.log())).sum(-1).mean()
    W = proj.weight
    hid = sum(((s_out.hidden_states[i] @ W.T - t_out.hidden_states[j]) ** 2).mean() for i, j in [(1, 2), (2, 4)]) / 2
    assert got["hidden_loss"].item() == pytest.approx(hid.item(), rel=1e-5)
    assert got["loss"].item() == pytest.approx((0.7 * ce + 0.3 * kl + 0.7 * hid).item(), rel=1e-5)


def test_training_with_the_hidden_term_reduces_it(tok, texts):
    """A 2-block width-32 student of a 4-block width-64 teacher: with hidden_weight 1 the hidden-state loss falls
    (measured: 0.49 -> 0.21 over 40 steps); without it (same seed, same projection) it does not (0.68 -> 1.11)."""
    teacher = tiny_model("dense", seed=3, tokenizer=tok, hidden_size=64, num_hidden_layers=4, intermediate_size=128)
    kw = dict(tokenizer=tok, steps=40, batch_size=4, seq_len=32, lr=1e-2, seed=1, **TINY_DENSE)
    student, proj, h, rec = distill_hidden(teacher, "dense-nano", texts, hidden_weight=1.0, **kw)
    assert proj.weight.shape == (64, 32) and list(h.columns) == ["step", "loss", "lm_loss", "kd_loss", "hidden_loss"]
    assert h["hidden_loss"].tail(5).mean() < 0.6 * h["hidden_loss"].head(5).mean()
    assert rec.hidden_weight == 1.0 and rec.steps == 40 and rec.tokens == 40 * 4 * 32 and rec.val_loss > 0
    mixed = 0.5 * h["lm_loss"] + 0.5 * h["kd_loss"] + h["hidden_loss"]
    assert (mixed - h["loss"]).abs().max() < 1e-4
    _, _, h0, rec0 = distill_hidden(teacher, "dense-nano", texts, hidden_weight=0.0, **kw)
    assert rec.hidden_loss < 0.5 * rec0.hidden_loss and torch.allclose(
        torch.tensor(h0["loss"].values), torch.tensor((0.5 * h0["lm_loss"] + 0.5 * h0["kd_loss"]).values), atol=1e-5)


def test_hidden_distillation_refuses_what_it_cannot_do(tok, texts):
    teacher = tiny_model("dense", seed=3, tokenizer=tok)
    with pytest.raises(ValueError, match="teacher dense-1m and student dense-nano use different vocabularies"):
        distill_hidden("dense-1m", "dense-nano", texts, tokenizer=tok, steps=1, **TINY_DENSE)
    with pytest.raises(ValueError, match="use 'mse' or 'cosine'"):
        distill_hidden(teacher, "dense-nano", texts, tokenizer=tok, steps=1, hidden_loss="l1", **TINY_DENSE)
    with pytest.raises(ValueError, match=r"layer pair \(3, 1\) out of range"):
        distill_hidden(teacher, "dense-nano", texts, tokenizer=tok, steps=1, hidden_layers=[(3, 1)], **TINY_DENSE)
    with pytest.raises(ValueError, match="encoder-decoder"):
        distill_hidden("encdec-4m", "dense-nano", texts, steps=1, **TINY_DENSE)
