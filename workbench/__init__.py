"""SLM Workbench: train small language models, look inside them, and compare scoring functions.

`import workbench as wb` is all a notebook needs. The pipeline, one way:
corpora -> tokenizer -> models -> train -> probes -> scoring -> plots -> widgets -> notebooks.
Compute modules never import plotly or ipywidgets; `wb.plots` and `wb.widgets` load on first use.
"""
from __future__ import annotations

import importlib
import logging

# Library notices that say nothing to a user of the workbench: transformers imports torchao when it is
# installed, and torchao then registers Enums with torch (a deprecation notice from torch.utils._pytree)
# and cannot load its GPU-only kernels on a CPU. Only these messages are dropped; other warnings stay.
_NOTICES = ("is an Enum subclass and is now natively supported", "Failed to load /", "Could not load this library")


def _drop_notices(record: logging.LogRecord) -> bool:
    return not any(n in str(record.msg) for n in _NOTICES)


for _name in ("torch.utils._pytree", "torchao"):
    logging.getLogger(_name).addFilter(_drop_notices)

from .config import DATA_DIR, DEFAULT_MODELS, PRESETS, ModelConfig, fast_mode, get_preset
from .models import build_model, count_params, load_model, save_model, use_attention
from .tokenizer import load_tokenizer, train_tokenizer

__version__ = "0.1.0"

_LAZY_MODULES = {"corpora", "train", "moe", "probes", "scoring", "plots", "widgets", "teach", "testing", "notebook"}
_LAZY_NAMES = {  # name -> module that defines it (imported on first use)
    "generate_corpus": "corpora", "load_corpus": "corpora", "write_corpus": "corpora", "read_texts": "corpora",
    "validate_text": "corpora", "validate_texts": "corpora", "LABELS": "corpora",
    "TrainConfig": "train", "TrainResult": "train", "generate": "train",
    "setup_notebook": "notebook",
}


def __getattr__(name: str):
    """PEP 562: heavy or UI modules load only when used (`wb.plots`, `wb.widgets`, `wb.train(...)`)."""
    if name in _LAZY_MODULES:
        return importlib.import_module(f"workbench.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"workbench.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
