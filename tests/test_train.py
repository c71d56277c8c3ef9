"""Training loop: learning, resume exactness, checkpoints, MoE losses, bad input."""
import json
import math
import subprocess
import sys

import pytest
import torch

from workbench.testing import TINY_DENSE, WORDS, tiny_model, tiny_tokenizer, word_stories
from workbench.train import CheckpointError, StopAfter, TrainConfig, generate, list_checkpoints, train, \
    validate_checkpoint
from workbench.train.data import TokenData, encode, prepare
from workbench.train.loop import compute_loss
from workbench.train.schedule import lr_at

TINY = TINY_DENSE
FAST = dict(batch_size=4, seq_len=32, warmup=2, lr=1e-2, eval_every=0, log_every=1)


stories = word_stories    # fixtures `tok` and `texts`: tests/conftest.py


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_loss_decreases_and_records_history(tok, texts, tmp_path):
    r = train("dense-nano", texts, tokenizer=tok, out_dir=tmp_path, steps=30, **TINY,
              **{**FAST, "log_every": 5, "eval_every": 10})
    h = r.history
    assert list(h["step"]) == list(range(1, 31))
    assert {"loss", "lm_loss", "lr", "tokens_per_s", "grad_norm"} <= set(h.columns)
    assert h["loss"].tail(5).mean() < h["loss"].head(3).mean() - 1.0
    assert r.evals["val_loss"].iloc[-1] < r.evals["val_loss"].iloc[0]
    assert math.isclose(r.evals["val_ppl"].iloc[-1], math.exp(r.evals["val_loss"].iloc[-1]), rel_tol=1e-6)
    assert 30 in r.samples and all(s.startswith("Once upon a time") for s in r.samples[30])
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "history.jsonl").exists()


def test_moe_history_has_router_losses_and_load(tok, texts):
    r = train("moe-nano", texts, tokenizer=tok, steps=4, **TINY, **FAST)
    row = r.history.iloc[-1]
    assert row["aux_loss"] > 0 and row["z_loss"] > 0
    load = torch.tensor(row["expert_load"])
    assert load.shape == (2, 4) and torch.allclose(load.sum(-1), torch.ones(2))
    assert len(row["router_entropy"]) == 2 and all(0 < e <= math.log(4) + 1e-5 for e in row["router_entropy"])
    assert torch.isclose(torch.tensor(row["loss"]), torch.tensor(
        row["lm_loss"] + 0.01 * row["aux_loss"] + 0.001 * row["z_loss"]), atol=1e-5)


@pytest.mark.parametrize("coef", [0.0, 1.0])
def test_aux_and_z_losses_are_in_the_optimised_loss(tok, coef):
    """The router weight's gradient equals autograd of lm + a*aux + z_coef*z, and changes with a."""
    from workbench import moe
    model = tiny_model("moe", tokenizer=tok).train()
    model.config.router_aux_loss_coef = coef
    x = torch.randint(3, len(tok), (2, 16), generator=torch.Generator().manual_seed(0))
    y = torch.roll(x, -1, 1)
    router = model.model.layers[0].mlp.gate.weight

    loss = compute_loss(model, model, x, y, True, TrainConfig())["loss"]
    got = torch.autograd.grad(loss, router)[0]
    out = model(input_ids=x, output_router_logits=True)
    lm = torch.nn.functional.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), y.reshape(-1))
    r = moe.router_losses(out.router_logits, model.config)
    want = torch.autograd.grad(lm + coef * r["aux"] + model.config.router_z_loss_coef * r["z"], router)[0]
    lm_only = torch.autograd.grad(lm, router, retain_graph=False)[0] if False else None
    assert torch.allclose(got, want, atol=1e-6)
    out2 = model(input_ids=x, output_router_logits=True)
    lm2 = torch.nn.functional.cross_entropy(out2.logits.reshape(-1, out2.logits.shape[-1]), y.reshape(-1))
    lm_grad = torch.autograd.grad(lm2, router)[0]
    assert not torch.allclose(got, lm_grad, atol=1e-7)   # the router losses really contribute
    del lm_only


@pytest.mark.parametrize("preset", ["dense-nano", "moe-nano"])
def test_interrupted_then_resumed_run_matches_uninterrupted(tok, texts, tmp_path, preset):
    kw = dict(tokenizer=tok, steps=8, checkpoint_every=4, **TINY, **FAST)
    full = train(preset, texts, out_dir=tmp_path / "full", **kw)
    part = train(preset, texts, out_dir=tmp_path / "part", callbacks=[StopAfter(3)], **kw)
    assert part.stopped_early and "step 3" in part.stop_reason
    assert [p.name for p in part.checkpoints] == ["step-000003"]
    resumed = train(preset, texts, out_dir=tmp_path / "part", resume=True, **kw)
    assert not resumed.stopped_early
    a, b = weights(full.model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert list(resumed.history["step"]) == list(range(1, 9))
    assert resumed.history["loss"].tolist() == pytest.approx(full.history["loss"].tolist(), abs=1e-6)


@pytest.mark.slow
def test_checkpoints_are_kept_pruned_and_load_without_workbench(tok, texts, tmp_path):
    r = train("moe-nano", texts, tokenizer=tok, out_dir=tmp_path, steps=8, checkpoint_every=2,
              keep_checkpoints=2, **TINY, **FAST)
    names = [p.name for p in r.checkpoints]
    assert names == ["step-000004", "step-000006", "step-000008"]   # 2 intermediate + the final one
    code = ("import sys, torch\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
            "for d in sys.argv[1:]:\n"
            "    m = AutoModelForCausalLM.from_pretrained(d); t = AutoTokenizer.from_pretrained(d)\n"
            "    ids = t('Once upon a time', return_tensors='pt').input_ids\n"
            "    assert torch.isfinite(m(ids).logits).all()\n"
            "assert not any(k.startswith('workbench') for k in sys.modules)\nprint('ok', len(sys.argv) - 1)")
    dirs = [str(p) for p in r.checkpoints] + [str(tmp_path)]
    out = subprocess.run([sys.executable, "-c", code, *dirs], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == f"ok {len(dirs)}"


def test_light_checkpoints_are_bf16_loadable_and_not_resumable(tok, texts, tmp_path):
    from safetensors import safe_open
    r = train("dense-nano", texts, tokenizer=tok, out_dir=tmp_path, steps=4, checkpoint_every=2,
              checkpoint_light=True, **TINY, **FAST)
    (light,) = r.checkpoints
    with safe_open(light / "model.safetensors", "pt") as f:
        assert f.get_tensor("model.norm.weight").dtype == torch.bfloat16
        keys = set(f.keys())
    assert "lm_head.weight" not in keys                # tied to the embeddings: stored once
    from transformers import AutoModelForCausalLM
    back = AutoModelForCausalLM.from_pretrained(light, trust_remote_code=False).eval()
    assert back.dtype == torch.float32 and back.lm_head.weight.data_ptr() == back.model.embed_tokens.weight.data_ptr()
    validate_checkpoint(light, need_state=False)
    with pytest.raises(CheckpointError, match="trainer_state.pt"):
        validate_checkpoint(light)


def test_checkpoint_steps_add_log_spaced_checkpoints(tok, texts, tmp_path):
    r = train("dense-nano", texts, tokenizer=tok, out_dir=tmp_path, steps=9, checkpoint_steps=(1, 2, 4, 9),
              checkpoint_every=6, keep_checkpoints=None, checkpoint_light=True, **TINY, **FAST)
    assert [p.name for p in r.checkpoints] == ["step-000001", "step-000002", "step-000004", "step-000006"]
    from workbench.train.config import validate
    with pytest.raises(ValueError, match="checkpoint_steps must be positive"):
        validate(TrainConfig(checkpoint_steps=(0, 5)))


def test_t5_trains_with_adafactor_and_others_with_adamw(tok):
    from transformers.optimization import Adafactor

    from workbench.models import build_model
    from workbench.train.setup import make_optimizer
    t5 = build_model("encdec-4m", tokenizer=tok, hidden_size=32, intermediate_size=64, num_hidden_layers=1)
    dense = tiny_model("dense", tokenizer=tok)
    assert isinstance(make_optimizer(t5, TrainConfig(), "cpu"), Adafactor)
    assert isinstance(make_optimizer(dense, TrainConfig(), "cpu"), torch.optim.AdamW)
    assert isinstance(make_optimizer(t5, TrainConfig(optimizer="adamw"), "cpu"), torch.optim.AdamW)
    with pytest.raises(ValueError, match="adafactor"):
        train("dense-nano", ["a b c"] * 50, tokenizer=tok, steps=2, optimizer="adafactr", **TINY, **FAST)


def test_crash_mid_save_keeps_previous_checkpoint(tok, texts, tmp_path, monkeypatch):
    kw = dict(tokenizer=tok, steps=4, checkpoint_every=2, **TINY, **FAST)
    train("dense-nano", texts, out_dir=tmp_path, callbacks=[StopAfter(2)], **kw)
    before = (tmp_path / "checkpoints/step-000002/model.safetensors").read_bytes()

    def crash(*a, **k):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr("workbench.train.checkpoint.torch.save", crash)
    with pytest.raises(OSError, match="simulated"):
        train("dense-nano", texts, out_dir=tmp_path, resume=True, **kw)
    monkeypatch.undo()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000002"]
    assert (tmp_path / "checkpoints/step-000002/model.safetensors").read_bytes() == before
    validate_checkpoint(tmp_path / "checkpoints/step-000002")
    assert train("dense-nano", texts, out_dir=tmp_path, resume=True, **kw).history["step"].iloc[-1] == 4


def test_broken_checkpoints_name_what_is_wrong(tok, texts, tmp_path):
    r = train("dense-nano", texts, tokenizer=tok, out_dir=tmp_path, steps=2, **TINY, **FAST)
    ck = r.checkpoints[-1]
    with pytest.raises(CheckpointError, match="does not exist"):
        validate_checkpoint(tmp_path / "nope")
    w = ck / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="model.safetensors is corrupted"):
        validate_checkpoint(ck)
    (ck / "trainer_state.pt").write_bytes(b"garbage")
    (ck / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json is missing.*trainer_state.pt is corrupted"):
        train("dense-nano", texts, tokenizer=tok, out_dir=tmp_path, resume=True, steps=4, **TINY, **FAST)


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tok, texts, tmp_path):
    model = tiny_model("dense", tokenizer=tok, max_position_embeddings=64).train()
    calls = {"n": 0}

    def poison(module, args, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 5 else output   # 5th forward = step 5 (no evals)
    model.model.norm.register_forward_hook(poison)
    with pytest.warns(RuntimeWarning, match="step 5"):
        r = train(model, texts, tokenizer=tok, out_dir=tmp_path, steps=10, checkpoint_every=2, **FAST)
    assert r.stopped_early and "non-finite loss at step 5" in r.stop_reason   # the 5th step diverged
    assert [p.name for p in r.checkpoints] == ["step-000002", "step-000004"]
    assert all(torch.isfinite(p).all() for p in r.model.parameters())
    assert len(r.history) == 4


def test_keyboard_interrupt_ends_cleanly_with_checkpoint(tok, texts, tmp_path):
    class Interrupt(StopAfter):
        def on_log(self, state, rows):
            if state.step >= self.step:
                raise KeyboardInterrupt
    r = train("dense-nano", texts, tokenizer=tok, out_dir=tmp_path, steps=10, callbacks=[Interrupt(3)], **TINY, **FAST)
    assert r.stopped_early and "interrupted after step 3" in r.stop_reason
    assert r.checkpoints[-1].name == "step-000003"
    validate_checkpoint(r.checkpoints[-1])


def test_data_order_is_a_function_of_seed_and_step(tok, texts):
    a = prepare(texts, tok, 16, 4, 0.1, seed=0)
    b = prepare(texts, tok, 16, 4, 0.1, seed=0)
    for step in (0, 7, 1000):     # 1000 wraps around several epochs
        assert torch.equal(a.batch(step, 0, 4, 1, 0)[0], b.batch(step, 0, 4, 1, 0)[0])
    assert not torch.equal(a.batch(3, 0, 4, 1, 0)[0], a.batch(3, 0, 4, 1, 1)[0])
    x, y = a.batch(0, 0, 4, 1, 0)
    assert x.shape == (4, 16) and torch.equal(x[:, 1:], y[:, :-1])


def test_long_texts_are_chunked_not_dropped(tok):
    long = " ".join(stories(20))          # one document far longer than the window
    stream = encode([long], tok)
    n = len(tok(long, add_special_tokens=False)["input_ids"])
    assert len(stream) == n + 2 and stream[0] == tok.bos_token_id and stream[-1] == tok.eos_token_id
    data = TokenData(torch.from_numpy(stream).long(), torch.zeros(4, dtype=torch.long), 16)
    seen = torch.cat([data.batch(s, 0, 1, 1, 0)[0].flatten() for s in range(data.n_windows)])
    assert seen.numel() == data.n_windows * 16 >= len(stream) - 17


def test_lr_schedule_warms_up_then_decays_to_floor():
    assert lr_at(0, 1.0, 10, 100) == pytest.approx(0.1)
    assert lr_at(9, 1.0, 10, 100) == pytest.approx(1.0)
    assert lr_at(99, 1.0, 10, 100, 0.1) == pytest.approx(0.1, abs=1e-3)
    assert lr_at(55, 1.0, 10, 100, 0.0) == pytest.approx(0.5, abs=1e-2)


@pytest.mark.parametrize("bad, match", [
    (dict(lr=0), "lr must be positive"), (dict(steps=0), "steps must be a positive"),
    (dict(batch_size=-1), "batch_size must be a positive"), (dict(no_such=1), "unknown setting"),
    (dict(seq_len=500), "exceeds the model's context window"),
    (dict(num_attention_heads=5), "must divide hidden_size"),
])
def test_bad_settings_raise_clear_errors(tok, texts, bad, match):
    kw = {**TINY, **FAST, **bad}
    with pytest.raises(ValueError, match=match):
        train("dense-nano", texts, tokenizer=tok, steps=kw.pop("steps", 2), **kw)


def test_a_warmup_not_below_steps_warns_once(tok, texts):
    import warnings
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        train("dense-nano", texts, tokenizer=tok, steps=3, **{**TINY, **FAST, "warmup": 5})
    said = [str(w.message) for w in got if "warmup" in str(w.message)]
    assert len(said) == 1 and "warmup 5 >= steps 3: the learning rate never reaches its peak" in said[0]
    assert "--warmup" in said[0]
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        train("dense-nano", texts, tokenizer=tok, steps=3, **{**TINY, **FAST, "warmup": 2})
    assert not [w for w in got if "warmup" in str(w.message)]


def test_corpus_smaller_than_one_batch_and_vocab_mismatch(tok, texts):
    with pytest.raises(ValueError, match="corpus too small for one batch"):
        train("dense-nano", texts[:2], tokenizer=tok, steps=2, **TINY, **{**FAST, "batch_size": 64})
    from workbench.models import build_model
    small = build_model("dense-nano", vocab_size=100, **TINY)
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        train(small, texts, tokenizer=tok, steps=2, **FAST)
    with pytest.raises(ValueError, match="unknown preset"):
        train("dense-huge", texts, tokenizer=tok, steps=2)


def test_generate_returns_n_prompted_samples(tok):
    model = tiny_model("dense", tokenizer=tok)
    out = generate(model, tok, "Once upon a time", n=3, temperature=0.8, max_new_tokens=5, seed=0)
    assert len(out) == 3 and all(s.startswith("Once upon a time") for s in out)
    assert generate(model, tok, "Lily", n=2, temperature=0, max_new_tokens=5) == \
        generate(model, tok, "Lily", n=2, temperature=0, max_new_tokens=5)[:1] * 2


def test_cli_train_json_and_generate(tok, texts, tmp_path, capsys):
    from workbench.cli import main
    from workbench.tokenizer import save_tokenizer
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(texts))
    save_tokenizer(tok, tmp_path / "tok")
    rc = main(["train", "--preset", "dense-nano", "--corpus", str(corpus), "--out", str(tmp_path / "run"),
               "--tokenizer", str(tmp_path / "tok"), "--steps", "3", "--batch-size", "2", "--seq-len", "16",
               "--set", "hidden_size=32", "intermediate_size=64", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 3 and summary["final_val_loss"] > 0 and summary["out_dir"] == str(tmp_path / "run")
    assert main(["generate", "--model", str(tmp_path / "run"), "--n", "2", "--max-new-tokens", "4",
                 "--prompt", "Tom"]) == 0
    assert capsys.readouterr().out.count("--- sample") == 2
