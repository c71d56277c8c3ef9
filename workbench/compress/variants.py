"""Named compression variants and the shipped table of their measurements.

A variant is (method, setting): ("magnitude", "0.5") is 50% global magnitude pruning, ("prune_mlp", "0.25")
removes a quarter of every MLP's channels, ("prune_heads", "0.5") half the heads, ("prune_experts", "0.5") half
of every MoE layer's experts by routing share, ("quantize", "int8-weight") torchao's scheme of that name; a
"+recover" suffix adds `recover()` after the pruning (RECOVER's budget). `make_variant` builds any of them;
`DENSE_VARIANTS` and `MOE_VARIANTS` are the sets `bench/bench_compress.py` measures for the family, and
`load_results()` reads those measurements as shipped in data/compress/pareto.csv (one row per model and
variant, the columns of `measure.measure`), so a notebook opens on them at once.
Here: `make_variant()`, `DENSE_VARIANTS`, `MOE_VARIANTS`, `RECOVER`, `RESULTS`, `load_results()`.
"""
from __future__ import annotations

from pathlib import Path

from ..config import DATA_DIR

DENSE_VARIANTS = [("original", ""), ("magnitude", "0.3"), ("magnitude", "0.5"), ("magnitude", "0.7"),
                  ("prune_mlp", "0.25"), ("prune_mlp", "0.5"), ("prune_heads", "0.25"), ("prune_heads", "0.5"),
                  ("quantize", "int8-weight"), ("quantize", "int8-dynamic"), ("quantize", "int4-weight"),
                  ("prune_mlp+recover", "0.5"), ("prune_heads+recover", "0.5")]
MOE_VARIANTS = [("original", ""), ("prune_experts", "0.25"), ("prune_experts", "0.5"),
                ("prune_experts+recover", "0.5"), ("quantize", "int8-weight")]
RECOVER = dict(steps=200, lr=3e-4, batch_size=16, seq_len=128, seed=0)   # recovery fine-tuning after pruning
# the family's smaller members of the same architecture: the students a model could be replaced by (trained alone
# by the family recipe; the table lists their measurements as method "smaller member" of the larger model)
STUDENTS = {"dense-12m": ("dense-1m", "dense-4m"), "dense-4m": ("dense-1m",), "moe-12m": ("moe-1m", "moe-4m"),
            "moe-4m": ("moe-1m",)}
RESULTS = DATA_DIR / "compress" / "pareto.csv"
LORA_RESULTS = DATA_DIR / "compress" / "lora.csv"           # bench/bench_lora.py --table


def make_variant(model, tok, method: str, setting: str, calib: list[str], train_texts: list[str] | None = None):
    """(variant model, record or None) of `model` for (method, setting); the input model is not changed.

    `calib`: calibration texts for structured pruning; `train_texts`: the training texts of a "+recover"
    variant. Raises ValueError for an unknown method (listing the known ones), a bad setting, or a "+recover"
    variant without train_texts."""
    from . import magnitude_prune, prune_experts, prune_heads, prune_mlp, quantize, recover
    if method.endswith("+recover"):
        if not train_texts:
            raise ValueError(f"{method}: recovery fine-tuning needs train_texts (training documents)")
        pruned, rec = make_variant(model, tok, method.removesuffix("+recover"), setting, calib)
        return recover(pruned, tok, train_texts, **RECOVER).model.eval(), rec
    builders = {"original": lambda: (model, None), "magnitude": lambda: magnitude_prune(model, float(setting)),
                "prune_mlp": lambda: prune_mlp(model, float(setting), calib, tok),
                "prune_heads": lambda: prune_heads(model, float(setting), calib, tok),
                "prune_experts": lambda: prune_experts(model, float(setting), calib, tok),
                "quantize": lambda: quantize(model, setting)}
    if method not in builders:
        raise ValueError(f"unknown compression method {method!r}; known: {', '.join(builders)} "
                         "(each may end in '+recover' except original and quantize)")
    return builders[method]()


def variant_label(setting: str, rec) -> str:
    """The setting, with the counts kept where rounding matters: '0.25 (2/4 heads)', '0.5 (2/4 experts per layer)'."""
    detail = getattr(rec, "detail", None) or {}
    for key, what in (("heads", "heads"), ("experts", "experts per layer")):
        if key in detail:
            return f"{setting} ({detail[key][1]}/{detail[key][0]} {what})"
    return setting


def load_results(path: str | Path | None = None):
    """The shipped measurements (DataFrame; columns of `measure.measure` plus latency ratios against each
    model's original). Raises FileNotFoundError naming the command that makes the file when it is missing."""
    import pandas as pd
    path = Path(path) if path is not None else RESULTS
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: make it with `python bench/bench_compress.py --models "
                                "dense-4m dense-12m moe-4m --table`")
    return pd.read_csv(path, keep_default_na=False, na_values=[""]).assign(
        setting=lambda d: d["setting"].fillna("").astype(str))


def load_lora_results(path: str | Path | None = None):
    """The shipped LoRA / full fine-tuning rows (DataFrame: model, method, setting, task, trainable, adapter_kb,
    acc:<task> as the mean over seeds, ci_low, ci_high, seeds). Raises FileNotFoundError naming the command
    that makes the file when it is missing."""
    import pandas as pd
    path = Path(path) if path is not None else LORA_RESULTS
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: make it with `python bench/bench_lora.py --table`")
    return pd.read_csv(path, keep_default_na=False, na_values=[""]).assign(
        setting=lambda d: d["setting"].fillna("").astype(str))
