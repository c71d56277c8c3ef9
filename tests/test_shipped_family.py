"""The model family as shipped in data/models: every member loads with plain transformers, its card and
family.json say what the files hold, no MoE member has a dead expert on held-out text, and the
routing-over-training series is there."""
import json

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from workbench.config import ALIASES, FAMILY_NAMES, MODELS_DIR
from workbench.family.checks import DEAD_RATIO, dead_experts, eval_texts, expert_shares
from workbench.family.recipe import SERIES, SERIES_STEPS

INDEX = json.loads((MODELS_DIR / "family.json").read_text())


def test_every_family_member_ships_with_a_card_and_a_record():
    assert sorted(INDEX) == sorted(FAMILY_NAMES)
    for name in FAMILY_NAMES:
        card = (MODELS_DIR / name / "README.md").read_text()
        rec = INDEX[name]
        assert card.startswith(f"# {name}\n") and f"{rec['val_loss']:.4f}" in card
        assert f"{rec['params_total'] / 1e6:.2f}M total" in card
    for alias, name in ALIASES.items():
        assert name in FAMILY_NAMES and not (MODELS_DIR / alias).exists()


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_members_load_with_plain_transformers_and_count_their_parameters(name):
    where = MODELS_DIR / name
    cfg = AutoConfig.from_pretrained(where, trust_remote_code=False)
    auto = AutoModelForSeq2SeqLM if cfg.is_encoder_decoder else AutoModelForCausalLM
    model = auto.from_pretrained(where, trust_remote_code=False).eval()
    tok = AutoTokenizer.from_pretrained(where, trust_remote_code=False)
    assert model.dtype == torch.float32                  # float16 files, float32 models
    assert sum(p.numel() for p in model.parameters()) == INDEX[name]["params_total"]
    ids = tok("Once upon a time, there was a", return_tensors="pt").input_ids
    with torch.no_grad():
        out = model(input_ids=ids, decoder_input_ids=ids) if cfg.is_encoder_decoder else model(input_ids=ids)
    assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("name", [n for n in FAMILY_NAMES if INDEX[n]["config"]["kind"] == "moe"])
def test_no_moe_member_has_a_dead_expert_on_held_out_text(name):
    model = AutoModelForCausalLM.from_pretrained(MODELS_DIR / name, trust_remote_code=False).eval()
    tok = AutoTokenizer.from_pretrained(MODELS_DIR / name, trust_remote_code=False)
    shares = expert_shares(model, tok, eval_texts(40))
    assert np.allclose(shares.sum(1), 1.0)
    assert dead_experts(shares) == [], f"{name}: experts under {DEAD_RATIO} x uniform"
    assert not INDEX[name]["dead_experts"]               # the build's own check, on 300 texts


def test_the_checkpoint_series_covers_training_log_spaced():
    ckpts = sorted((MODELS_DIR / SERIES / "checkpoints").iterdir())
    assert [int(p.name.split("-")[1]) for p in ckpts] == list(SERIES_STEPS) and len(ckpts) >= 8
    final = AutoModelForCausalLM.from_pretrained(MODELS_DIR / SERIES, trust_remote_code=False)
    first = AutoModelForCausalLM.from_pretrained(ckpts[0], trust_remote_code=False)
    assert sum(p.numel() for p in first.parameters()) == sum(p.numel() for p in final.parameters())
    assert not torch.equal(first.model.embed_tokens.weight, final.model.embed_tokens.weight)
