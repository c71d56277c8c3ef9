"""Model presets and paths.

Here: `ModelConfig` (a frozen dataclass using Hugging Face field names), the named `PRESETS`,
`fast_mode()` and the locations of the embedded defaults in `data/`.
Not here: training settings (`workbench.train`), building the model (`workbench.models`).
"""
from __future__ import annotations

import difflib
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Literal

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MODELS_DIR = DATA_DIR / "models"
FAMILY_NAMES = ("dense-1m", "dense-4m", "dense-12m", "moe-1m", "moe-4m", "moe-12m", "encdec-4m", "encdec-12m",
                "dense-4m-it", "moe-4m-it", "encdec-4m-it")      # workbench.family: `make models` trains them
# Older names kept working: "tiny-dense" and "tiny-moe" are the family's smallest dense and MoE members
# (4 layers of width 128; 1.18M parameters active per token).
ALIASES = {"tiny-dense": "dense-1m", "tiny-moe": "moe-1m"}
DEFAULT_MODELS = {**{alias: MODELS_DIR / name for alias, name in ALIASES.items()},
                  **{name: MODELS_DIR / name for name in FAMILY_NAMES}}


def fast_mode() -> bool:
    """True when WB_FAST=1 (CI, nbval, class laptops): notebooks pick their small sizes."""
    return os.environ.get("WB_FAST", "0").lower() in {"1", "true", "yes"}


MOE_ONLY = frozenset({"num_local_experts", "num_experts_per_tok", "router_aux_loss_coef", "router_z_loss_coef",
                      "router_jitter_noise", "shared_expert_intermediate_size"})   # used by kind "moe" only


@dataclass(frozen=True)
class ModelConfig:
    kind: Literal["dense", "moe", "encdec"] = "dense"   # encdec: T5 (num_hidden_layers encoder + as many decoder)
    hidden_size: int = 128              # residual width; head dim = hidden_size // num_attention_heads
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int | None = None  # < num_attention_heads gives grouped-query attention
    intermediate_size: int = 512        # MLP width (per expert for moe)
    max_position_embeddings: int = 256  # context window in tokens
    vocab_size: int = 4096              # replaced by the tokenizer's size when one is given
    tie_word_embeddings: bool = True    # input and output embeddings share weights (saves vocab*width)
    rope_theta: float = 10_000.0
    scaled_residual_init: bool = True   # o_proj/down_proj start at std 0.02 / sqrt(2 * layers) (GPT-2); False: 0.02
    # --- moe only ---
    num_local_experts: int = 8          # experts per MoE layer
    num_experts_per_tok: int = 2        # top-k routing
    router_aux_loss_coef: float = 0.01  # weight of the load-balancing loss in the optimised loss
    router_z_loss_coef: float = 0.001   # weight of the router z-loss (ST-MoE): mean(logsumexp(logits)^2)
    router_jitter_noise: float = 0.0    # multiplicative uniform noise on router inputs while training
    shared_expert_intermediate_size: int = 0  # > 0 adds an always-on shared expert (Qwen2-MoE style)

    def __post_init__(self):
        validate_config(self)

    def to_dict(self) -> dict:
        return asdict(self)

    def override(self, **changes) -> "ModelConfig":
        """A copy with `changes` applied; unknown names raise with the list of valid ones, and MoE-only
        settings (MOE_ONLY) given for a config that is not kind "moe" raise instead of being ignored."""
        valid = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise ValueError(did_you_mean("model setting", unknown, valid)
                             or f"unknown model setting(s) {unknown}; valid: {sorted(valid)}")
        kind = changes.get("kind", self.kind)
        moe_only = sorted(set(changes) & MOE_ONLY)
        if moe_only and kind != "moe":
            raise ValueError(f"model setting(s) {moe_only} apply only to moe presets, but this model is kind "
                             f"{kind!r}: use an moe preset (e.g. moe-nano, moe-tiny) or add kind=moe, or drop "
                             "those settings")
        return replace(self, **changes)


def validate_config(c: ModelConfig) -> None:
    """Raise ValueError naming the first inconsistent setting."""
    if c.kind not in ("dense", "moe", "encdec"):
        raise ValueError(f"kind must be 'dense', 'moe' or 'encdec', got {c.kind!r}")
    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings", "vocab_size"):
        if int(getattr(c, name)) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(c, name)}")
    if c.hidden_size % c.num_attention_heads:
        raise ValueError(f"num_attention_heads={c.num_attention_heads} must divide hidden_size={c.hidden_size}")
    kv = c.num_key_value_heads or c.num_attention_heads
    if c.num_attention_heads % kv:
        raise ValueError(f"num_key_value_heads={kv} must divide num_attention_heads={c.num_attention_heads}")
    if c.kind == "moe":
        if c.num_local_experts < 1:
            raise ValueError(f"num_local_experts must be >= 1, got {c.num_local_experts}")
        if not 1 <= c.num_experts_per_tok <= c.num_local_experts:
            raise ValueError(f"num_experts_per_tok (top-k)={c.num_experts_per_tok} must be between 1 and "
                             f"num_local_experts={c.num_local_experts}")
        for name in ("router_aux_loss_coef", "router_z_loss_coef", "router_jitter_noise"):
            if getattr(c, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(c, name)}")


def _dense(h, layers, heads, inter, **kw):
    return ModelConfig(kind="dense", hidden_size=h, num_hidden_layers=layers, num_attention_heads=heads,
                       intermediate_size=inter, **kw)


def _moe(h, layers, heads, inter, experts=8, k=2, **kw):
    return ModelConfig(kind="moe", hidden_size=h, num_hidden_layers=layers, num_attention_heads=heads,
                       intermediate_size=inter, num_local_experts=experts, num_experts_per_tok=k, **kw)


# Parameter counts with a 4096-token vocabulary: `workbench models` prints them exactly.
PRESETS: dict[str, ModelConfig] = {
    "dense-nano": _dense(64, 2, 4, 256),        # 0.39M: unit tests, first contact
    "dense-tiny": _dense(128, 4, 4, 512),       # 1.57M: nanoGPT-comparable (4 layers, 4 heads, width 128)
    "dense-small": _dense(256, 6, 8, 1024),     # 7.3M
    "dense-base": _dense(512, 8, 8, 1536, num_key_value_heads=4, max_position_embeddings=512),  # 27M
    "moe-nano": _moe(64, 2, 4, 128, experts=4, k=2),              # 0.49M total, 0.39M active
    "moe-tiny": _moe(128, 4, 4, 256, experts=8, k=2),             # 3.9M total, 1.6M active
    "moe-small": _moe(256, 6, 8, 512, experts=8, k=2),            # 21.5M total, 7.4M active
    "moe-base": _moe(384, 6, 6, 512, experts=8, k=2, max_position_embeddings=512),  # 33M, 12M active
}


def _encdec(h, layers, heads, inter, **kw):
    return ModelConfig(kind="encdec", hidden_size=h, num_hidden_layers=layers, num_attention_heads=heads,
                       intermediate_size=inter, **kw)


# The model family (workbench.family): one tokenizer and corpus mixture; MoE twins match the dense models'
# active parameters (top-2 of 4 experts, each half the dense MLP width); encoder-decoders have as many
# encoder as decoder layers. Counts with a 4096-token vocabulary.
PRESETS.update({
    "dense-1m": _dense(128, 4, 4, 256),                          # 1.18M
    "dense-4m": _dense(256, 4, 4, 768),                          # 4.46M
    "dense-12m": _dense(384, 6, 6, 1024, max_position_embeddings=512),                 # 12.2M
    "moe-1m": _moe(128, 4, 4, 128, experts=4, k=2),              # 1.58M total, 1.18M active
    "moe-4m": _moe(256, 4, 4, 384, experts=4, k=2),              # 6.8M total, 4.46M active
    "moe-12m": _moe(384, 6, 6, 512, experts=4, k=2, max_position_embeddings=512),      # 19.3M, 12.2M active
    "encdec-4m": _encdec(256, 2, 4, 640),                        # T5: 2 + 2 layers, 4.6M
    "encdec-12m": _encdec(384, 3, 6, 768, max_position_embeddings=512),                # T5: 3 + 3 layers, 12.2M
})


def did_you_mean(what: str, unknown, valid) -> str:
    """"unknown WHAT 'x'; did you mean 'y'? (all settings: ...)" when every unknown name has a close valid
    one, else "" (the caller then lists them all)."""
    guesses = [(u, difflib.get_close_matches(u, sorted(valid), n=1)) for u in unknown]
    if not guesses or not all(g for _, g in guesses):
        return ""
    return "; ".join(f"unknown {what} {u!r}; did you mean {g[0]!r}?" for u, g in guesses) + \
        " (all settings: `workbench train --help`)"


def get_preset(name: str, **overrides) -> ModelConfig:
    """The named preset with `overrides` applied; unknown names list the valid ones (and the closest)."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f" did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown preset {name!r};{hint} valid presets: {', '.join(PRESETS)}")
    return PRESETS[name].override(**overrides) if overrides else PRESETS[name]
