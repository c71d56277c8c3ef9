"""The model family: matched small models that serve as the controlled variables of the workbench's studies.

Dense, mixture-of-experts and encoder-decoder models at about 1M, 4M and 12M (active) parameters, plus
instruction-tuned ("-it") variants, all trained on one corpus mixture with one tokenizer and one token budget
(`recipe`); each member is checked (live experts, well-formed stories, held-out zero-shot accuracy; `checks`)
and carries a model card written from those measurements (`cards`). `python -m workbench.family` runs it.
"""
from .recipe import FAMILY, Member

__all__ = ["FAMILY", "Member"]
