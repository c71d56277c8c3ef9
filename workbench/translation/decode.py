"""Decoding: translate sentences with a translation model through `generate`, and load shipped translation models.

The target language is forced as NLLB does it: the decoder starts from its start token and the first generated
token is forced to the target-language token (`forced_bos_token_id`); the language token is dropped from the
output text. Greedy (num_beams=1) or beam search (num_beams > 1, length penalty 1.0, as transformers defines it).
Here: `translate()`, `translate_pairs()`, `load_translation_model()`, `MT_MODELS`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..config import DATA_DIR
from .data import MT_LANGS, Pair, check_mt_tokenizer, lang_token

MT_MODELS = {"mt-dense": DATA_DIR / "translation" / "mt-dense", "mt-moe": DATA_DIR / "translation" / "mt-moe"}


class SourceTooLong(UserWarning):
    """A source sentence was cut to fit the model's context."""


class SeveralSentences(UserWarning):
    """A source holds several sentences: the models were trained on one sentence at a time."""


def _check_sources(sources) -> list[str]:
    if isinstance(sources, str):
        sources = [sources]
    sources = list(sources)
    if not sources:
        raise ValueError("no source sentences given")
    for i, s in enumerate(sources):
        if not isinstance(s, str) or not s.strip():
            raise ValueError(f"source sentence {i} is empty: give text to translate")
    return sources


@torch.no_grad()
def translate(model, tok, sources, src_lang: str, tgt_lang: str, num_beams: int = 1,
              max_new_tokens: int | None = None, batch_size: int = 64) -> list[str]:
    """Translations of `sources` (a string or a list of strings) from `src_lang` into `tgt_lang` (codes of MT_LANGS).

    Returns one string per source, in order. A source longer than the model's context (max_position_embeddings
    tokens with its language token and EOS) is cut, with a SourceTooLong warning naming it; a source of several
    sentences gets a SeveralSentences warning (the models translate one sentence at a time). max_new_tokens
    defaults to 2 x the longest source + 8. ValueError: an unknown language code (the valid ones listed), an
    empty source, num_beams < 1, or a tokenizer without the language tokens."""
    for name, code in (("src_lang", src_lang), ("tgt_lang", tgt_lang)):
        if code not in MT_LANGS:
            raise ValueError(f"{name}={code!r} is not a language of the translation models; valid: "
                             f"{', '.join(MT_LANGS)}")
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    sources = _check_sources(sources)
    check_mt_tokenizer(tok)
    ctx = int(getattr(model.config, "max_position_embeddings", 1024))
    src_id, tgt_id = tok.convert_tokens_to_ids(lang_token(src_lang)), tok.convert_tokens_to_ids(lang_token(tgt_lang))
    from ..corpora.grammar import split_sentences
    several = [i for i, s in enumerate(sources) if len(split_sentences(s)) > 1]
    if several:
        warnings.warn(f"source(s) {several[:5]} hold several sentences; the models translate one sentence at a time "
                      "(they were trained on single sentences and may drop the rest): split them first, e.g. with "
                      "workbench.corpora.grammar.split_sentences", SeveralSentences, stacklevel=2)
    rows = []
    for i, s in enumerate(sources):
        ids = tok(s, add_special_tokens=False)["input_ids"]
        if len(ids) + 2 > ctx:
            warnings.warn(f"source {i} has {len(ids)} tokens; the model reads {ctx} with its language token and EOS: "
                          f"cut to the first {ctx - 2}", SourceTooLong, stacklevel=2)
            ids = ids[:ctx - 2]
        rows.append([src_id] + ids + [tok.eos_token_id])
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    out: list[str] = []
    for b in range(0, len(rows), batch_size):
        chunk = rows[b:b + batch_size]
        width = max(len(r) for r in chunk)
        x = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        for j, r in enumerate(chunk):
            x[j, :len(r)] = torch.tensor(r)
        x = x.to(device)
        new = max_new_tokens or min(ctx - 1, 2 * width + 8)
        gen = model.generate(input_ids=x, attention_mask=(x != tok.pad_token_id).long(), forced_bos_token_id=tgt_id,
                             num_beams=num_beams, do_sample=False, max_new_tokens=new, max_length=None,
                             pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id, decoder_start_token_id=model.config.decoder_start_token_id)
        out += [t.strip() for t in tok.batch_decode(gen, skip_special_tokens=True)]
    model.train(was)
    return out


def translate_pairs(model, tok, pairs: list[Pair], num_beams: int = 1, batch_size: int = 64) -> list[str]:
    """Hypotheses for `pairs` (any mix of directions), in the order of `pairs`: one translate() call per
    direction."""
    hyps: list[str | None] = [None] * len(pairs)
    by_dir: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(pairs):
        by_dir.setdefault((p.src_lang, p.tgt_lang), []).append(i)
    for (a, b), idx in by_dir.items():
        for i, h in zip(idx, translate(model, tok, [pairs[i].src for i in idx], a, b, num_beams=num_beams,
                                       batch_size=batch_size)):
            hyps[i] = h
    return hyps


def load_translation_model(name_or_dir: str | Path = "mt-moe", trust_remote_code: bool = False):
    """(model, tokenizer) of a shipped translation model ("mt-dense", "mt-moe") or a run folder, with plain
    `from_pretrained` (the NLLB-MoE expert dispatch checked and fixed on import, see translation.models)."""
    from transformers import AutoModelForSeq2SeqLM

    from ..loading import from_pretrained
    from ..tokenizer import load_tokenizer
    from . import models as _models   # noqa: F401 (installs the NLLB-MoE dispatch fix when needed)
    path = MT_MODELS.get(str(name_or_dir), Path(name_or_dir))
    if not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(f"no translation model at {path}: give 'mt-dense', 'mt-moe' or a folder with "
                                f"config.json (train one with workbench.train on translation pairs)")
    model = from_pretrained(AutoModelForSeq2SeqLM, path, trust_remote_code=trust_remote_code, dtype=torch.float32,
                            local_files_only=True)
    return model.eval(), load_tokenizer(path, trust_remote_code)
