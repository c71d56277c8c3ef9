"""Build, save and load real `transformers` causal LMs.

Here: `build_model()` (ModelConfig -> LlamaConfig | MixtralConfig | Qwen2MoeConfig -> randomly initialised
model), `load_model()` (a workbench default, a local directory or a Hub name), `save_model()` (safetensors,
atomic), `supported_attention()` (an attention implementation the architecture has), `use_attention()`
(switch eager/sdpa without reloading weights, refused when the model does not switch), `count_params()`.
A saved model loads with plain `AutoModelForCausalLM.from_pretrained(dir)`: nothing here is custom code.
Not here: training (`workbench.train`), routing losses (`workbench.moe`).
"""
from __future__ import annotations

import contextlib
import difflib
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import (AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, LlamaConfig, MixtralConfig,
                          PreTrainedModel, Qwen2MoeConfig, T5Config)

from .config import ALIASES, DEFAULT_MODELS, FAMILY_NAMES, MOE_ONLY, ModelConfig, get_preset
from .errors import disk_full_guard
from .loading import from_pretrained

ENCODER_ONLY = {"bert", "roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2", "xlm-roberta",
                "modernbert", "camembert", "mpnet"}
EXPERTS_IMPLEMENTATION = "eager"   # fastest on CPU for tiny experts; never "batched_mm" (far slower on CPU)


def hf_config(cfg: ModelConfig, vocab_size: int | None = None, tokenizer=None):
    """ModelConfig -> the matching transformers config (Llama dense, Mixtral MoE, Qwen2-MoE with a shared expert)."""
    if tokenizer is not None:
        vocab_size = len(tokenizer)
    if cfg.kind == "encdec":
        return t5_config(cfg, vocab_size, tokenizer)
    kw = {k: v for k, v in cfg.to_dict().items()
          if k not in MOE_ONLY and k not in ("kind", "rope_theta", "scaled_residual_init")}
    kw["vocab_size"] = int(vocab_size or cfg.vocab_size)
    kw["num_key_value_heads"] = cfg.num_key_value_heads or cfg.num_attention_heads
    kw["rope_parameters"] = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if tokenizer is not None:
        kw.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id)
    else:
        kw.update(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if cfg.kind == "dense":
        return LlamaConfig(**kw)
    moe = dict(num_experts_per_tok=cfg.num_experts_per_tok, router_aux_loss_coef=cfg.router_aux_loss_coef)
    if cfg.shared_expert_intermediate_size > 0:
        c = Qwen2MoeConfig(**kw, **moe, num_experts=cfg.num_local_experts, moe_intermediate_size=cfg.intermediate_size,
                           shared_expert_intermediate_size=cfg.shared_expert_intermediate_size, norm_topk_prob=True,
                           decoder_sparse_step=1, mlp_only_layers=[])
    else:
        c = MixtralConfig(**kw, **moe, num_local_experts=cfg.num_local_experts,
                          router_jitter_noise=cfg.router_jitter_noise)
    c.router_z_loss_coef = cfg.router_z_loss_coef   # saved in config.json; read by the training loss
    return c


def build_model(preset: str | ModelConfig = "dense-tiny", vocab_size: int | None = None, tokenizer=None,
                seed: int | None = None, attn_implementation: str = "sdpa", **overrides) -> PreTrainedModel:
    """A randomly initialised causal LM for a preset name or ModelConfig, with `overrides` applied.

    `tokenizer` (or `vocab_size`) sets the vocabulary size and the special token ids. The residual projections
    start scaled down (scale_residual_init) unless `scaled_residual_init=False`.
    """
    cfg = get_preset(preset, **overrides) if isinstance(preset, str) else preset.override(**overrides)
    if seed is not None:
        torch.manual_seed(seed)
    kw = {"attn_implementation": attn_implementation}
    if cfg.kind == "moe":
        kw["experts_implementation"] = EXPERTS_IMPLEMENTATION
    if cfg.kind == "encdec":      # T5 initialises by its own rule (std scaled by width and head size)
        return AutoModelForSeq2SeqLM.from_config(hf_config(cfg, vocab_size, tokenizer), attn_implementation="eager",
                                                 trust_remote_code=False)
    model = AutoModelForCausalLM.from_config(hf_config(cfg, vocab_size, tokenizer), trust_remote_code=False, **kw)
    if cfg.scaled_residual_init:
        scale_residual_init(model)
    return model


RESIDUAL_OUTPUTS = ("o_proj.weight", "down_proj.weight", "experts.down_proj")


@torch.no_grad()
def scale_residual_init(model: PreTrainedModel) -> None:
    """GPT-2's initialisation of the matrices that write into the residual stream (attention output, MLP and
    expert down projections): normal with std = initializer_range / sqrt(2 * layers), so the stream's variance
    does not grow with depth at the start. The workbench's Llama models learn faster early with it (at the
    nanoGPT-sized benchmark, the same validation loss in about 3/4 of the steps: bench/results/train.md)."""
    std = model.config.initializer_range / math.sqrt(2 * model.config.num_hidden_layers)
    for name, p in model.named_parameters():
        if name.endswith(RESIDUAL_OUTPUTS):
            p.normal_(0.0, std)


def model_config(model: PreTrainedModel) -> ModelConfig:
    """Recover the workbench ModelConfig of a Llama/Mixtral/Qwen2-MoE or workbench T5 model (checks, summaries)."""
    c = model.config
    if getattr(c, "model_type", "") == "t5":
        return ModelConfig(kind="encdec", hidden_size=c.d_model, num_hidden_layers=c.num_layers,
                           num_attention_heads=c.num_heads, intermediate_size=c.d_ff,
                           max_position_embeddings=int(getattr(c, "n_positions", 512) or 512),
                           vocab_size=c.vocab_size, tie_word_embeddings=bool(c.tie_word_embeddings))
    moe = getattr(c, "num_local_experts", None) or getattr(c, "num_experts", None)
    return ModelConfig(
        kind="moe" if moe else "dense", hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads, num_key_value_heads=c.num_key_value_heads,
        intermediate_size=getattr(c, "moe_intermediate_size", None) or c.intermediate_size,
        max_position_embeddings=c.max_position_embeddings, vocab_size=c.vocab_size,
        tie_word_embeddings=bool(c.tie_word_embeddings),
        num_local_experts=moe or 8, num_experts_per_tok=getattr(c, "num_experts_per_tok", 2) if moe else 2,
        router_aux_loss_coef=getattr(c, "router_aux_loss_coef", 0.01) if moe else 0.01,
        router_z_loss_coef=getattr(c, "router_z_loss_coef", 0.0) if moe else 0.001,
        router_jitter_noise=getattr(c, "router_jitter_noise", 0.0) if moe else 0.0,
        shared_expert_intermediate_size=getattr(c, "shared_expert_intermediate_size", 0) if moe else 0)


def t5_config(cfg: ModelConfig, vocab_size: int | None = None, tokenizer=None) -> T5Config:
    """ModelConfig (kind "encdec") -> T5Config: T5 v1.1's gated-GELU MLP, relative position buckets, no dropout,
    `num_hidden_layers` encoder and as many decoder layers, tied embeddings; the decoder starts from PAD."""
    pad, bos, eos = ((tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) if tokenizer is not None
                     else (0, 1, 2))
    return T5Config(vocab_size=int(vocab_size or cfg.vocab_size), d_model=cfg.hidden_size,
                    d_kv=cfg.hidden_size // cfg.num_attention_heads, d_ff=cfg.intermediate_size,
                    num_layers=cfg.num_hidden_layers, num_decoder_layers=cfg.num_hidden_layers,
                    num_heads=cfg.num_attention_heads, relative_attention_num_buckets=32,
                    relative_attention_max_distance=cfg.max_position_embeddings // 2, dropout_rate=0.0,
                    feed_forward_proj="gated-gelu", tie_word_embeddings=cfg.tie_word_embeddings,
                    pad_token_id=pad, eos_token_id=eos, bos_token_id=bos, decoder_start_token_id=pad,
                    n_positions=cfg.max_position_embeddings)


def is_encoder_decoder(model_or_config) -> bool:
    """True for encoder-decoder models (T5, BART, NLLB, ...) and their configs."""
    c = getattr(model_or_config, "config", model_or_config)
    return bool(getattr(c, "is_encoder_decoder", False))


def auto_class(config):
    """AutoModelForSeq2SeqLM for an encoder-decoder config, else AutoModelForCausalLM."""
    return AutoModelForSeq2SeqLM if is_encoder_decoder(config) else AutoModelForCausalLM


def count_params(model: PreTrainedModel) -> tuple[int, int]:
    """(total, active per token) parameters; tied embeddings counted once.

    active = total - (E - k) * params_per_expert * n_moe_layers for an MoE (only k of E experts run per token).
    """
    total = sum(p.numel() for p in model.parameters())   # parameters() yields a tied weight once
    c = model.config
    n_exp = getattr(c, "num_local_experts", None) or getattr(c, "num_experts", None)
    if not n_exp:
        return total, total
    k = c.num_experts_per_tok
    width = getattr(c, "moe_intermediate_size", None) or c.intermediate_size
    per_expert = 3 * c.hidden_size * width          # gate, up and down projections
    return total, total - (n_exp - k) * per_expert * c.num_hidden_layers


class AttentionSwitchRefused(ValueError):
    """The model did not take the requested attention implementation in place."""


@contextlib.contextmanager
def use_attention(model: PreTrainedModel, implementation: str = "eager"):
    """Temporarily switch the attention implementation (weights untouched), e.g. to read attention maps.

    Raises AttentionSwitchRefused when the model keeps its old implementation (Falcon always stays on SDPA).
    """
    before = model.config._attn_implementation
    model.set_attn_implementation(implementation)
    if model.config._attn_implementation != implementation:
        model.set_attn_implementation(before)
        raise AttentionSwitchRefused(
            f"{type(model).__name__} cannot switch its attention to {implementation!r} in place (it stays "
            f"{model.config._attn_implementation!r}); load it with attn_implementation={implementation!r}, e.g. "
            f"workbench.load_model(..., attn_implementation={implementation!r})")
    try:
        yield model
    finally:
        model.set_attn_implementation(before)


def save_model(model: PreTrainedModel, tokenizer, out_dir: str | Path) -> Path:
    """Write config + safetensors weights + tokenizer to `out_dir` atomically (temp dir, then rename); a full
    disk raises DiskFull and leaves an existing `out_dir` as it was."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with disk_full_guard(out_dir.parent, f"the model {out_dir.name}",
                             f"{out_dir} is unchanged" if out_dir.exists() else ""):
            tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
            model.save_pretrained(tmp, safe_serialization=True)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            replace_dir(tmp, out_dir)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def replace_dir(src: Path, dst: Path) -> None:
    """Move `src` to `dst`, replacing it; `dst` is never half-written (old copy kept until the rename)."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set: the Hub must not be contacted."""
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _in_hub_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:          # noqa: BLE001 - an unusable cache holds nothing
        return False


def resolve(name_or_dir: str | Path) -> str:
    """A workbench default name ('dense-4m', 'tiny-moe', ...), a local directory, or a Hub model id (as is).

    Never waits on the network to report a bad name: FileNotFoundError at once, suggesting the closest
    defaults, for a name that is no local folder and either is a near miss of a default ('tiny-dens'), cannot
    be a Hub id (a path), or is not in the local Hub cache while HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set.
    """
    present = [n for n, p in DEFAULT_MODELS.items() if (p / "config.json").exists()]
    have = f"the defaults present: {', '.join(present)}" if present else "no default model is present"
    if str(name_or_dir) in DEFAULT_MODELS:
        path = DEFAULT_MODELS[str(name_or_dir)]
        if not (path / "config.json").exists():
            member = ALIASES.get(str(name_or_dir), str(name_or_dir))
            how = (f"it is the model family's {member!r}, trained by `make models` (needs a GPU), or restore "
                   f"data/models/{member} from the repository")
            raise FileNotFoundError(f"default model {name_or_dir!r} is missing from {path}: {how}; {have}")
        return str(path)
    path = Path(name_or_dir).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} holds no model: config.json is missing")
        return str(path)
    name = str(name_or_dir)
    close = difflib.get_close_matches(name, list(DEFAULT_MODELS), n=2, cutoff=0.75)
    hub_like = bool(HUB_ID.fullmatch(name)) and ".." not in name and "--" not in name
    typo = hub_like and "/" not in name and bool(close)
    offline_miss = hub_like and not typo and hub_offline() and not _in_hub_cache(name)
    if hub_like and not typo and not offline_miss:
        return name
    why = "it is not a workbench default and no local folder"
    if offline_miss:
        why += (", and not a Hub model in the local cache while offline (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE "
                "is set)")
    near = [n for n in close if n in present]
    hint = f"Did you mean {' or '.join(map(repr, near))}? " if near else ""
    absent = [n for n in close if n not in present and n in FAMILY_NAMES]
    if absent:
        hint += (f"{' and '.join(map(repr, absent))} {'is' if len(absent) == 1 else 'are'} part of the model "
                 "family, trained by `make models` (needs a GPU), and not present here. ")
    defaults = f"a workbench default ({', '.join(present)})" if present else "a workbench default (none present)"
    raise FileNotFoundError(f"no model {name!r}: {why}. {hint}Give {defaults}, a folder holding a saved model "
                            "(config.json), or a Hub id (owner/name) when online")


def supported_attention(config, requested: str = "sdpa") -> str:
    """`requested` when the architecture of `config` implements it, else "eager" (every architecture has it).

    E.g. BLOOM, Gemma-2, GPT-J, MPT and gpt-oss have no SDPA attention: "sdpa" becomes "eager" for them.
    """
    if requested in (None, "eager"):
        return "eager"
    try:
        cls = auto_class(config)._model_mapping[type(config)]
    except (KeyError, ValueError):
        return requested               # an unknown class: let transformers decide (load_model retries)
    flag = {"sdpa": "_supports_sdpa", "flex_attention": "_supports_flex_attn"}.get(requested)
    return requested if flag is None or getattr(cls, flag, False) else "eager"


def load_model(name_or_dir: str | Path = "tiny-dense", attn_implementation: str = "sdpa",
               trust_remote_code: bool = False, device: str | None = None, dtype=None, local_only: bool = False):
    """(model, tokenizer) for a workbench default, a local directory or a Hub causal LM, in eval mode.

    Code shipped with a model is never run unless `trust_remote_code=True`: a directory declaring some
    (`auto_map`) raises RemoteCodeRefused (see workbench.loading). `local_only` forbids any download.
    `attn_implementation` falls back to "eager" for an architecture without it (supported_attention); ask
    for "eager" to read attention weights. Encoder-only models are refused; encoder-decoders load as seq2seq.
    """
    from transformers import AutoConfig
    where = resolve(name_or_dir)
    trust = trust_remote_code is True
    kw = dict(local_files_only=local_only or Path(where).exists())
    config = from_pretrained(AutoConfig, where, trust_remote_code=trust, **kw)
    if getattr(config, "model_type", "") == "nllb-moe":   # transformers 5.x runs only experts 0 and 1: fix first
        from .translation.models import patch_nllb_moe_experts
        patch_nllb_moe_experts()
    if getattr(config, "model_type", "") in ENCODER_ONLY:
        raise ValueError(f"{where} is an encoder-only model ({config.model_type}): it predicts masked tokens, not "
                         "the next one, so generation, causal attention maps and label scoring do not apply; use a "
                         "causal LM or an encoder-decoder (T5, BART)")
    tok = from_pretrained(AutoTokenizer, where, trust_remote_code=trust, **kw)
    try:
        model = from_pretrained(auto_class(config), where, attn_implementation=supported_attention(
            config, attn_implementation), dtype=dtype or torch.float32, trust_remote_code=trust, **kw)
    except ValueError as err:          # an architecture without this attention implementation: its default
        if "attn_implementation" not in str(err) and "does not support" not in str(err):
            raise
        model = from_pretrained(auto_class(config), where, dtype=dtype or torch.float32, trust_remote_code=trust, **kw)
    if getattr(model.config, "num_local_experts", None) and getattr(model.config, "_experts_implementation", None) \
            not in (None, "eager", "grouped_mm"):
        model.set_experts_implementation(EXPERTS_IMPLEMENTATION)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    check_vocab(model, tok, where)
    if device:
        model.to(device)
    return model.eval(), tok


def check_vocab(model, tok, where) -> None:
    """ValueError when `tok` has more tokens than `model` has embedding rows (its ids would index past them);
    a warning when it has fewer (legal, e.g. padded embeddings, but also what a replaced tokenizer looks like)."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    rows = getattr(emb, "num_embeddings", None) or getattr(model.config, "vocab_size", None)
    if not rows:
        return
    n = len(tok)
    if n > rows:
        raise ValueError(f"{where}: the tokenizer has {n} tokens but the model only {rows} embedding rows, so "
                         "they were not trained together (was the tokenizer replaced?); retrain the model with "
                         "this tokenizer or restore the one it was trained with")
    if n < rows:
        import warnings
        warnings.warn(f"{where}: the tokenizer has {n} tokens, the model {rows} embedding rows; fine if the "
                      "embeddings are padded, otherwise the tokenizer is not the one the model was trained with",
                      stacklevel=3)


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model presets with their parameter counts")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.set_defaults(func=_cli_models)


def _cli_models(args) -> int:
    from .config import PRESETS
    print(f"{'preset':<12} {'kind':<6} {'layers':>6} {'width':>6} {'heads':>5} {'MLP':>5} {'experts':>8} "
          f"{'total':>10} {'active':>10}")
    for name, cfg in PRESETS.items():
        with torch.device("meta"):
            total, active = count_params(build_model(cfg, vocab_size=args.vocab_size))
        experts = f"{cfg.num_experts_per_tok}/{cfg.num_local_experts}" if cfg.kind == "moe" else "-"
        layers = f"{cfg.num_hidden_layers}+{cfg.num_hidden_layers}" if cfg.kind == "encdec" else cfg.num_hidden_layers
        print(f"{name:<12} {cfg.kind:<6} {layers:>6} {cfg.hidden_size:>6} {cfg.num_attention_heads:>5} "
              f"{cfg.intermediate_size:>5} {experts:>8} {total / 1e6:>9.2f}M {active / 1e6:>9.2f}M")
    from .translation.models import MT_PRESETS, build_translation_model
    from .translation.data import MT_LANGS
    for name in MT_PRESETS:                 # translation presets: train them on a parallel corpus
        with torch.device("meta"):
            m = build_translation_model(name, vocab_size=2048 + len(MT_LANGS))
        c = m.config
        total = sum(p.numel() for p in m.parameters())
        experts = f"2/{c.num_experts}" if c.model_type == "nllb-moe" else "-"
        kind = "nllb" if c.model_type == "nllb-moe" else "m2m"
        layers = f"{c.encoder_layers}+{c.decoder_layers}"
        print(f"{name:<12} {kind:<6} {layers:>6} {c.d_model:>6} "
              f"{c.encoder_attention_heads:>5} {c.encoder_ffn_dim:>5} {experts:>8} {total / 1e6:>9.2f}M "
              f"{'':>10}  (translation: --corpus pairs.jsonl)")
    return 0
