"""The model family's recipe and checks (the real training runs on a GPU: `make models`)."""
import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from workbench.family import FAMILY
from workbench.family.__main__ import main
from workbench.family.checks import dead_experts, expert_shares
from workbench.family.recipe import family_corpus
from workbench.models import build_model, count_params
from workbench.testing import tiny_model


def test_twins_match_active_parameters_and_share_one_budget():
    with torch.device("meta"):
        counts = {n: count_params(build_model(m.preset, vocab_size=4096)) for n, m in FAMILY.items()}
    for size in ("1m", "4m", "12m"):
        dense, moe = counts[f"dense-{size}"], counts[f"moe-{size}"]
        assert abs(moe[1] - dense[1]) / dense[1] < 0.01 and moe[0] > moe[1]
    assert abs(counts["encdec-4m"][0] - counts["dense-4m"][0]) / counts["dense-4m"][0] < 0.05
    assert abs(counts["encdec-12m"][0] - counts["dense-12m"][0]) / counts["dense-12m"][0] < 0.05
    decoders = [m for m in FAMILY.values() if not m.base and not m.preset.startswith("encdec")]
    assert len({m.tokens for m in decoders}) == 1                    # one budget of seen tokens ...
    assert {m.tokens for m in FAMILY.values() if m.preset.startswith("encdec") and not m.base} == \
        {2 * decoders[0].tokens}                                     # ... and of predicted tokens for T5
    assert {m.base for m in FAMILY.values() if m.base} == {"dense-4m", "moe-4m", "encdec-4m"}


def test_every_member_is_a_default_model_name():
    from workbench.config import DEFAULT_MODELS, FAMILY_NAMES
    assert tuple(FAMILY) == FAMILY_NAMES and all(n in DEFAULT_MODELS for n in FAMILY)


def test_corpus_is_the_same_whatever_the_number_of_workers():
    assert family_corpus(300, workers=1) == family_corpus(300, workers=2)


def test_expert_shares_count_the_routers_own_choices(tiny_tok):
    model = tiny_model("moe", seed=0, tokenizer=tiny_tok)
    texts = ["Once upon a time, there was a little girl named Lily.", "2 + 3 = 5. 4 + 4 = 8."]
    chosen = {0: [], 1: []}
    hooks = [layer.mlp.gate.register_forward_hook(lambda m, i, out, k=k: chosen[k].append(out[2].reshape(-1)))
             for k, layer in enumerate(model.model.layers)]
    with torch.no_grad():                         # each text alone, no padding: the router's own choices
        for t in texts:
            model(input_ids=torch.tensor([tiny_tok(t, add_special_tokens=False)["input_ids"]]))
    for h in hooks:
        h.remove()
    shares = expert_shares(model, tiny_tok, texts)          # batched and padded: padding must not count
    for k in (0, 1):
        counts = np.bincount(torch.cat(chosen[k]).numpy(), minlength=4)
        np.testing.assert_allclose(shares[k], counts / counts.sum())


def test_dead_experts_are_those_under_a_tenth_of_uniform():
    shares = np.array([[0.25, 0.25, 0.25, 0.25], [0.50, 0.26, 0.23, 0.01], [0.40, 0.3, 0.275, 0.025]])
    assert [(layer, e) for layer, e, _ in dead_experts(shares)] == [(1, 3)]     # 0.025 = 0.1 x 1/4 is alive


def test_one_member_end_to_end_at_a_tiny_budget(tmp_path):
    assert main(["--out", str(tmp_path), "--members", "dense-1m", "--scale", "0.003", "--device", "cpu"]) == 0
    rec = json.loads((tmp_path / "family.json").read_text())["dense-1m"]
    assert rec["params_total"] == pytest.approx(1.18e6, rel=0.02) and rec["steps"] == 4
    assert {r["task"] for r in rec["zero_shot"]} == {"feeling/1", "topic/1", "ending/1", "language/2",
                                                      "domain/1", "pronoun/1"}
    card = (tmp_path / "dense-1m" / "README.md").read_text()
    assert "1.18M total" in card and "Held-out zero-shot accuracy" in card
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "dense-1m").num_parameters() > 1e6
    assert (tmp_path / "tokenizer" / "tokenizer.json").exists() and "dense-1m" in (tmp_path / "family.md").read_text()


def test_half_weights_halve_the_file_and_load_as_float32(tmp_path, tiny_tok):
    from workbench.family.build import half_weights
    model = tiny_model("dense", seed=3, tokenizer=tiny_tok)
    model.save_pretrained(tmp_path, safe_serialization=True)
    before = (tmp_path / "model.safetensors").stat().st_size
    half_weights(tmp_path)
    assert (tmp_path / "model.safetensors").stat().st_size < 0.55 * before
    back = AutoModelForCausalLM.from_pretrained(tmp_path, trust_remote_code=False)     # plain transformers
    assert back.dtype == torch.float32
    for (name, p), q in zip(model.named_parameters(), back.parameters()):
        torch.testing.assert_close(q, p.detach().half().float(), rtol=0, atol=0, msg=name)
    with pytest.raises(FileNotFoundError, match="train the member first"):
        half_weights(tmp_path / "nothing")


def test_two_members_at_once_in_spawned_processes(tmp_path):
    """--jobs 2: each member in its own process; the index, cards and merged grid hold both."""
    from workbench.scoring.grid import load_grid
    assert main(["--out", str(tmp_path), "--members", "dense-1m", "moe-1m", "--scale", "0.003", "--device", "cpu",
                 "--jobs", "2", "--grid", str(tmp_path / "grid")]) == 0
    index = json.loads((tmp_path / "family.json").read_text())
    assert set(index) == {"dense-1m", "moe-1m"} and all(r["concurrent_jobs"] == 2 for r in index.values())
    assert index["moe-1m"]["expert_min_ratio"] >= 0 and len(index["moe-1m"]["expert_shares"]) == 4
    grid = load_grid(tmp_path / "grid")
    assert {m for m, _ in grid} == {"dense-1m", "moe-1m"} and len(grid) == 12
    ckpts = sorted(p.name for p in (tmp_path / "moe-1m" / "checkpoints").iterdir())
    assert len(ckpts) >= 2 and all(c.startswith("step-") for c in ckpts)    # the series member's light checkpoints
    assert not list((tmp_path / "moe-1m" / "checkpoints").glob("*/trainer_state.pt"))    # nothing to resume from
    assert not (tmp_path / "dense-1m" / "checkpoints").exists()              # no resume state is shipped
    meta = json.loads((tmp_path / "grid" / "grid.json").read_text())["meta"]
    assert meta["models"]["moe-1m"]["config"]["kind"] == "moe" and set(meta["seconds"]) == set(index)
