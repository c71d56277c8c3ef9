"""Byte-level BPE tokenizers trained with Hugging Face `tokenizers`, wrapped as `PreTrainedTokenizerFast`.

Here: `train_tokenizer()`, `load_tokenizer()`, `plain_tokenizer()`, `save_tokenizer()` and the
`workbench tokenizer` command.
A saved tokenizer loads with plain `AutoTokenizer.from_pretrained(dir)`; no workbench import needed.
Byte-level means every string round-trips (no unknown token): characters the merges never saw split
into byte tokens, which the explorers show as they are.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from .loading import from_pretrained

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
SPECIAL_TOKENS = [PAD, BOS, EOS]          # ids 0, 1, 2


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Learn byte-level BPE merges on `texts` until the vocabulary has `vocab_size` entries (specials included)."""
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ValueError("cannot train a tokenizer on an empty corpus: give at least one non-empty text")
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size={vocab_size} is below the {256 + len(SPECIAL_TOKENS)} byte and special tokens")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    learned = tok.get_vocab_size()
    if learned < vocab_size:
        raise ValueError(f"corpus too small for vocab_size={vocab_size}: only {learned} tokens could be learned "
                         f"from {len(texts)} texts; use a larger corpus or a vocab_size <= {learned}")
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """A `tokenizers.Tokenizer` as a transformers tokenizer with BOS/EOS/PAD set (no BOS added automatically)."""
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   clean_up_tokenization_spaces=False)
    fast.model_max_length = 1_000_000   # the model's context window is enforced where text is fed to it
    return fast


def save_tokenizer(tok: PreTrainedTokenizerFast, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(out_dir)
    return out_dir


def load_tokenizer(path: str | Path, trust_remote_code: bool = False) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved with `save_pretrained` (a workbench tokenizer or any local HF one).

    Code shipped with it is never run unless `trust_remote_code=True` (else RemoteCodeRefused, a ValueError).
    """
    path = Path(path)
    if not (path / "tokenizer.json").exists() and not (path / "tokenizer_config.json").exists():
        raise FileNotFoundError(f"no tokenizer in {path}: expected tokenizer.json (train one with "
                                f"`workbench tokenizer --corpus DIR --vocab-size V --out {path}`)")
    return from_pretrained(AutoTokenizer, path, trust_remote_code=trust_remote_code, local_files_only=True)


def plain_tokenizer(tok):
    """`tok` with no tie to code shipped with it, so that `save_pretrained` writes no `auto_map` and copies no
    module: a tokenizer of a class defined outside transformers becomes a plain PreTrainedTokenizerFast over
    the same `tokenizers` backend and special tokens. Raises ValueError for such a class without a fast backend."""
    custom = not type(tok).__module__.startswith(("transformers.", "tokenizers."))
    if custom:
        if not isinstance(tok, PreTrainedTokenizerFast):
            raise ValueError(f"tokenizer class {type(tok).__name__} is custom code without a tokenizer.json "
                             "backend; the workbench trains only with tokenizers it can save as plain files")
        specials = {k: v for k, v in tok.special_tokens_map.items() if isinstance(v, str)}
        new = PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer, clean_up_tokenization_spaces=False,
                                      **specials)
        new.model_max_length = tok.model_max_length
        tok = new
    tok.init_kwargs.pop("auto_map", None)
    tok._auto_class = None
    return tok


def with_eos(tok):
    """A copy of `tok` whose encodings end with EOS when special tokens are added (`tok(text)` -> ids + [EOS]),
    T5's convention for encoder inputs; encodings with add_special_tokens=False are unchanged.
    Raises ValueError for a tokenizer without EOS or without a fast (tokenizers) backend."""
    import copy

    from tokenizers import processors
    if tok.eos_token is None or not isinstance(tok, PreTrainedTokenizerFast):
        raise ValueError("an encoder-decoder needs a fast tokenizer with an EOS token to end its encoder inputs")
    backend = copy.deepcopy(tok.backend_tokenizer)
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {tok.eos_token}", pair=f"$A {tok.eos_token} $B {tok.eos_token}",
        special_tokens=[(tok.eos_token, tok.eos_token_id)])
    specials = {k: v for k, v in tok.special_tokens_map.items() if isinstance(v, str)}
    new = PreTrainedTokenizerFast(tokenizer_object=backend, clean_up_tokenization_spaces=False, **specials)
    new.model_max_length = tok.model_max_length
    return new


def register(sub) -> None:
    p = sub.add_parser("tokenizer", help="train a byte-level BPE tokenizer on a corpus")
    p.add_argument("--corpus", required=True, help="corpus directory, .txt or .jsonl file")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty --out (a model folder's tokenizer is replaced)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from .corpora import read_texts
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a directory: choose another --out")
    if out.is_dir() and any(out.iterdir()) and not getattr(args, "overwrite", False):
        what = "a model" if (out / "config.json").exists() else "files"
        raise FileExistsError(f"{out} already holds {what}; a new tokenizer there would not match what was "
                              f"trained with the old one. Choose another --out, or pass --overwrite to replace it")
    texts = read_texts(args.corpus)
    tok = train_tokenizer(texts, args.vocab_size)
    save_tokenizer(tok, args.out)
    n_tokens = sum(len(ids) for ids in tok(texts[:2000])["input_ids"])
    n_chars = sum(len(t) for t in texts[:2000])
    print(f"tokenizer: vocab {len(tok)}, {n_chars / max(n_tokens, 1):.2f} characters/token "
          f"on {min(len(texts), 2000)} texts, saved to {args.out}")
    return 0
