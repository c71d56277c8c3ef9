"""Model presets, building, saving and loading (workbench.config, workbench.models)."""
import subprocess
import sys

import pytest
import torch

from workbench.config import PRESETS, ModelConfig, get_preset
from workbench.models import build_model, count_params, load_model, save_model, use_attention


@pytest.mark.parametrize("changes, match", [
    (dict(hidden_size=100, num_attention_heads=3), "must divide hidden_size"),
    (dict(kind="moe", num_local_experts=4, num_experts_per_tok=5), "top-k"),
    (dict(num_key_value_heads=3), "num_key_value_heads=3 must divide"),
    (dict(hidden_size=0), "hidden_size must be positive"),
    (dict(kind="moe", router_aux_loss_coef=-1.0), "router_aux_loss_coef must be >= 0"),
    (dict(kind="sparse"), "kind must be"),
])
def test_invalid_configs_raise_naming_the_setting(changes, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**changes)


def test_unknown_preset_and_setting_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid presets: .*dense-tiny.*moe-tiny"):
        get_preset("dense-huge")
    with pytest.raises(ValueError, match="unknown model setting.*valid:.*hidden_size"):
        get_preset("dense-nano", zzz=3)


def test_typos_get_a_did_you_mean():
    from workbench.train.config import TrainConfig, split_overrides
    with pytest.raises(ValueError, match="unknown preset 'dense-tiy'; did you mean 'dense-tiny'?"):
        get_preset("dense-tiy")
    want = r"unknown {}setting 'hiden_size'; did you mean 'hidden_size'\? \(all settings: `workbench train --help`\)$"
    with pytest.raises(ValueError, match=want.format("model ")):
        get_preset("dense-nano", hiden_size=3)
    with pytest.raises(ValueError, match=want.format("")):
        split_overrides({"hiden_size": 3})
    with pytest.raises(ValueError, match=r"unknown training setting 'warmpu'; did you mean 'warmup'\?"):
        TrainConfig().override(warmpu=3)


def test_count_params_total_and_active(tiny_tok):
    dense = build_model("dense-nano", tokenizer=tiny_tok)
    total, active = count_params(dense)
    assert total == active == sum(p.numel() for p in dense.parameters())
    moe = build_model("moe-nano", tokenizer=tiny_tok)
    total, active = count_params(moe)
    c = moe.config
    per_expert = 3 * c.hidden_size * c.intermediate_size
    assert total == sum(p.numel() for p in moe.parameters())
    assert total - active == (c.num_local_experts - c.num_experts_per_tok) * per_expert * c.num_hidden_layers


def test_presets_build_with_their_kind_and_size():
    for name, cfg in PRESETS.items():
        with torch.device("meta"):
            m = build_model(cfg, vocab_size=4096)
        is_moe = bool(getattr(m.config, "num_local_experts", None) or getattr(m.config, "num_experts", None))
        assert is_moe == (cfg.kind == "moe"), name
        assert m.config.hidden_size == cfg.hidden_size and m.config.num_hidden_layers == cfg.num_hidden_layers


@pytest.mark.parametrize("preset, residual", [("dense-tiny", ["o_proj.weight", "down_proj.weight"]),
                                               ("moe-tiny", ["o_proj.weight", "experts.down_proj"])])
def test_residual_projections_start_scaled_by_depth(preset, residual):
    model = build_model(preset, vocab_size=512, seed=0)
    c = model.config
    std = {n: p.std().item() for n, p in model.named_parameters() if n.startswith("model.layers.0.")}
    for name in residual:
        scaled = std[f"model.layers.0.{'self_attn' if name.startswith('o_') else 'mlp'}.{name}"]
        assert scaled == pytest.approx(c.initializer_range / (2 * c.num_hidden_layers) ** 0.5, rel=0.05), name
    assert std["model.layers.0.self_attn.q_proj.weight"] == pytest.approx(c.initializer_range, rel=0.05)
    plain = build_model(preset, vocab_size=512, seed=0, scaled_residual_init=False)
    assert plain.model.layers[0].self_attn.o_proj.weight.std().item() == pytest.approx(c.initializer_range, rel=0.05)


def test_use_attention_switches_without_touching_weights(tiny_dense, tiny_tok):
    x = torch.tensor([tiny_tok("Lily saw Max.")["input_ids"]])
    before = {k: v.clone() for k, v in tiny_dense.state_dict().items()}
    ids = {k: v.data_ptr() for k, v in tiny_dense.state_dict().items()}
    sdpa_impl = tiny_dense.config._attn_implementation
    with use_attention(tiny_dense, "eager") as m:
        assert m.config._attn_implementation == "eager"
        out = m(x, output_attentions=True)
        assert out.attentions[0].shape[-1] == x.shape[1]
        eager_logits = out.logits
    assert tiny_dense.config._attn_implementation == sdpa_impl
    with use_attention(tiny_dense, "sdpa"):
        sdpa_logits = tiny_dense(x).logits
    assert torch.allclose(eager_logits, sdpa_logits, atol=1e-5)
    assert all(torch.equal(before[k], v) and ids[k] == v.data_ptr() for k, v in tiny_dense.state_dict().items())


@pytest.mark.slow
def test_saved_models_reload_with_plain_transformers(tmp_path, tiny_dense, tiny_moe, tiny_tok):
    x = torch.tensor([tiny_tok("Once upon a time")["input_ids"]])
    for name, model in [("dense", tiny_dense), ("moe", tiny_moe)]:
        save_model(model, tiny_tok, tmp_path / name)
        assert (tmp_path / name / "model.safetensors").exists()
        torch.save(model(x).logits, tmp_path / f"{name}.pt")
    code = ("import sys, torch\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
            "for d in sys.argv[1:]:\n"
            "    m = AutoModelForCausalLM.from_pretrained(d).eval(); t = AutoTokenizer.from_pretrained(d)\n"
            "    ids = torch.tensor([t('Once upon a time')['input_ids']])\n"
            "    with torch.no_grad():\n"
            "        assert torch.allclose(m(ids).logits, torch.load(d + '.pt'), atol=1e-5), d\n"
            "assert not any(k.startswith('workbench') for k in sys.modules)\nprint('reloaded', len(sys.argv) - 1)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "dense"), str(tmp_path / "moe")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "reloaded 2" in out.stdout
    model, tok = load_model(tmp_path / "moe")
    assert len(tok) == len(tiny_tok) and not model.training


def test_load_model_checks_the_tokenizer_fits_the_model(tmp_path, tiny_tok):
    n = len(tiny_tok)
    save_model(build_model("dense-nano", vocab_size=n - 8), tiny_tok, tmp_path / "small")
    with pytest.raises(ValueError, match=f"small.*{n} tokens.*{n - 8} embedding rows"):
        load_model(tmp_path / "small")
    save_model(build_model("dense-nano", vocab_size=n + 64), tiny_tok, tmp_path / "padded")
    with pytest.warns(UserWarning, match=f"{n} tokens, the model {n + 64} embedding rows"):
        load_model(tmp_path / "padded")


def test_load_model_missing_directory_says_what_is_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        load_model(tmp_path / "empty")


def test_models_cli_prints_one_line_per_preset_name_first(capsys):
    from workbench.cli import main
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    firsts = [line.split()[0] for line in lines]
    for name in PRESETS:
        assert firsts.count(name) == 1, name
    rows = [line for line in lines if line.split()[0] in PRESETS]
    assert len(rows) == len(PRESETS)
    assert all(line.rstrip().endswith("M") for line in rows)   # total and active parameter counts
