"""Knowledge distillation: the loss is Hinton's, the trainer mixes it as configured, a student learns the
teacher's distribution, and a teacher that cannot teach this student is refused with the fix."""
import json

import pytest
import torch
import torch.nn.functional as F

from workbench.cli import main
from workbench.compress import compare_with_baseline, distill
from workbench.testing import TINY_DENSE
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
