"""Attention weights of a Hugging Face causal LM (or an encoder-decoder's parts, or an encoder) as a plain record.

Here: `AttentionRecord` (tokens + weights `(layer, head, query, key)` + model identity),
`attention_record()` for a text, `attention_record_from_ids()` for token ids, `generation_record()` for the
attention of generated tokens, and `token_labels()` (the real tokens, byte pieces included).
Weights are per *query* head: for grouped-query attention (GQA) transformers' eager attention repeats the
key/value heads before the softmax, so every query head has its own map.
Not here: head summaries (`probes.heads`), rollout/flow (`probes.rollout`), plotting (`workbench.plots`).
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..models import AttentionSwitchRefused, use_attention


class AttentionUnavailable(ValueError):
    """The model returned no attention weights."""


class TruncationWarning(UserWarning):
    """The input was longer than the context window and was cut."""


@dataclass(frozen=True, eq=False)
class AttentionRecord:
    """Attention of one sequence. `weights[l, h, q, k]` = how much query token q attends to key token k.

    Rows sum to 1 over k <= q when `causal` (zero above the diagonal), over all keys otherwise.
    """
    tokens: tuple[str, ...]          # display text of each token (byte pieces shown as <0xNN>)
    token_ids: np.ndarray            # (seq,) int64
    weights: np.ndarray              # (layer, head, query, key) float32
    model_name: str = "model"        # what produced it: a default name, a directory or a class name
    model_type: str = ""             # config.model_type, e.g. "llama", "mixtral"
    n_kv_heads: int = 0              # key/value heads (< heads for GQA)
    n_prompt: int = -1               # tokens given as input; later ones were generated (-1: all are input)
    warnings: tuple[str, ...] = ()   # things the user must see (truncation, byte tokens)
    meta: dict = field(default_factory=dict)  # anything else (text, max_tokens, part, cross_attention, ...)
    causal: bool = True              # False for bidirectional attention (an encoder): keys after the query count

    def __post_init__(self):
        w = self.weights
        if w.ndim != 4 or w.shape[2] != w.shape[3] or w.shape[2] != len(self.tokens):
            raise ValueError(f"weights must be (layer, head, seq, seq) with seq={len(self.tokens)} tokens, "
                             f"got {w.shape}")
        if self.n_prompt < 0:
            object.__setattr__(self, "n_prompt", len(self.tokens))

    @property
    def n_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def n_heads(self) -> int:
        return self.weights.shape[1]

    @property
    def n_tokens(self) -> int:
        return self.weights.shape[2]

    @property
    def n_generated(self) -> int:
        return self.n_tokens - self.n_prompt

    def check_index(self, layer: int, head: int | None = None) -> None:
        """Raise IndexError naming the valid range when `layer`/`head` is out of range."""
        if not 0 <= int(layer) < self.n_layers:
            raise IndexError(f"layer {layer} is out of range: this model has layers 0..{self.n_layers - 1}")
        if head is not None and not 0 <= int(head) < self.n_heads:
            raise IndexError(f"head {head} is out of range: this model has heads 0..{self.n_heads - 1}")

    def head(self, layer: int, head: int) -> np.ndarray:
        """The (query, key) map of one head, with a clear error for a bad index."""
        self.check_index(layer, head)
        return self.weights[layer, head]

    def layer_mean(self, layer: int) -> np.ndarray:
        """(query, key) map averaged over the heads of one layer (still row-stochastic)."""
        self.check_index(layer)
        return self.weights[layer].mean(0)


# ----------------------------------------------------------------------------- tokens

def _byte_decoder() -> dict[str, int]:
    """GPT-2 byte-level alphabet: printable stand-in character -> byte value."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_BYTES = _byte_decoder()


def _token_bytes(piece: str) -> bytes | None:
    """Bytes of a byte-level BPE piece ('Ġthe' -> b' the'), or None for other tokenizers' pieces."""
    if piece and all(ch in _BYTES for ch in piece):
        return bytes(_BYTES[ch] for ch in piece)
    return None


def token_labels(tok, ids) -> list[str]:
    """Display text of each token id: the decoded text, or `<0xNN>` for a piece that is only part of a character.

    E.g. 'é' in a byte-level tokenizer without that merge -> ['<0xC3>', '<0xA9>']; a lone space -> '\u2423'.
    """
    labels = []
    for i, piece in zip(ids, tok.convert_ids_to_tokens([int(i) for i in ids])):
        text = tok.decode([int(i)])
        if "\ufffd" in text:                  # an incomplete UTF-8 sequence: show its bytes
            raw = _token_bytes(piece or "")
            text = "".join(f"<0x{b:02X}>" for b in raw) if raw is not None else (piece or text)
        text = text.replace("\n", "\\n")
        if text and not text.strip():
            text = text.replace(" ", "\u2423")        # a lone space shows as an open box
        labels.append("".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text))
    return labels


def _byte_warning(labels: list[str]) -> list[str]:
    n = sum("<0x" in t for t in labels)
    return [f"{n} token(s) are raw bytes of characters the tokenizer has no merge for (shown as <0xNN>)"] if n else []


# ----------------------------------------------------------------------------- compute

def context_window(model) -> int:
    return int(getattr(model.config, "max_position_embeddings", 0) or 1_000_000)


def encode(tok, text: str, add_bos: bool = True, max_tokens: int | None = None, model=None) -> tuple[list[int], list[str]]:
    """Token ids of `text` (BOS first when the tokenizer has one), cut to the context window with a warning."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text is empty: type a sentence (or pick a sample story) to see its attention")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    bos = getattr(tok, "bos_token_id", None)
    if add_bos and bos is not None and (not ids or ids[0] != bos):
        ids = [bos] + ids
    limit = min(max_tokens or 1_000_000, context_window(model) if model is not None else 1_000_000)
    notes = []
    if len(ids) > limit:
        notes.append(f"the text has {len(ids)} tokens; only the first {limit} are shown "
                     f"(context window / max_tokens = {limit})")
        warnings.warn(notes[-1], TruncationWarning, stacklevel=3)
        ids = ids[:limit]
    return ids, notes


CAUSAL_TOLERANCE = 1e-4   # largest share of a row's attention on later tokens accepted from a causal model
PARTS = ("encoder", "decoder")


def is_encoder_only(model) -> bool:
    """True for a bidirectional encoder (BERT and the like): no causal mask, no next-token prediction."""
    from ..models import ENCODER_ONLY
    c = model.config
    return getattr(c, "model_type", "") in ENCODER_ONLY or "MaskedLM" in type(model).__name__


@contextlib.contextmanager
def _eager(model):
    """Run `model` with eager attention (switched in place and back when needed); AttentionUnavailable when
    the model does not switch."""
    if getattr(model.config, "_attn_implementation", "eager") == "eager":
        yield model
        return
    try:
        ctx = use_attention(model, "eager")
        ctx.__enter__()
    except AttentionSwitchRefused as e:
        raise AttentionUnavailable(f"attention weights need eager attention: {e}") from None
    try:
        yield model
    finally:
        ctx.__exit__(None, None, None)


def _stack(att, what: str, model) -> np.ndarray:
    if not att or any(a is None for a in att):
        raise AttentionUnavailable(f"{type(model).__name__} returned no {what} weights: it needs eager attention "
                                   "(load with attn_implementation='eager') and output_attentions=True support")
    return torch.stack([a[0] for a in att]).float().cpu().numpy()   # (layer, head, q, k)


def check_causal(weights: np.ndarray, model, what: str = "attention") -> None:
    """Refuse weights of a causal model that put mass on later tokens (the causal mask was not applied)."""
    above = float(np.triu(weights, 1).sum(-1).max()) if weights.shape[-1] > 1 else 0.0
    if above > CAUSAL_TOLERANCE:
        raise AttentionUnavailable(
            f"{type(model).__name__} returned {what} weights that are not causal (up to {above:.2f} of a row's "
            "mass on later tokens), so they are not the weights its forward pass used; load the model with "
            "attn_implementation='eager' (workbench.load_model(..., attn_implementation='eager')) and try again")


def _same_outputs(model, kw: dict, out) -> None:
    """After a switch to eager attention: refuse unless the eager pass gives the logits the model's own
    implementation gives (else its eager weights are not the ones its forward pass uses)."""
    impl = getattr(model.config, "_attn_implementation", "eager")
    if impl == "eager":
        return
    own = model(**kw, use_cache=False).logits.float()
    diff = float((own - out.logits.float()).abs().max())
    if diff > 1e-4 * max(1.0, float(own.abs().max())):
        raise AttentionUnavailable(
            f"{type(model).__name__}'s eager attention computes different outputs from its {impl!r} attention (logits "
            f"differ by up to {diff:.3g}), so its eager attention weights are not the ones its forward pass uses; "
            "attention maps of this architecture need a model loaded with attn_implementation='eager'")


@torch.no_grad()
def _forward_attentions(model, ids: torch.Tensor) -> np.ndarray:
    """(layer, head, q, k) self-attention of one sequence (decoder-only or encoder-only model), checked: after a
    switch to eager the logits must not change, and a causal model's weights must be zero above the diagonal."""
    try:
        with _eager(model):
            out = model(input_ids=ids, output_attentions=True, use_cache=False)
    except AttentionUnavailable:
        raise
    except (ValueError, NotImplementedError) as e:
        raise AttentionUnavailable(f"{type(model).__name__} cannot return attention weights ({e}); load it with "
                                   "attn_implementation='eager' or use a model whose attention is a softmax") from e
    w = _stack(getattr(out, "attentions", None), "attention", model)
    _same_outputs(model, {"input_ids": ids}, out)
    if not is_encoder_only(model):
        check_causal(w, model)
    return w


@torch.no_grad()
def _forward_encdec(model, src: torch.Tensor, dec: torch.Tensor) -> dict:
    """Encoder self-, decoder self- and cross-attention of an encoder-decoder on (source, decoder input)."""
    try:
        with _eager(model):
            out = model(input_ids=src, decoder_input_ids=dec, output_attentions=True, use_cache=False)
    except AttentionUnavailable:
        raise
    except (ValueError, NotImplementedError) as e:
        raise AttentionUnavailable(f"{type(model).__name__} cannot return attention weights ({e})") from e
    parts = {"encoder": _stack(out.encoder_attentions, "encoder attention", model),
             "decoder": _stack(out.decoder_attentions, "decoder attention", model),
             "cross": _stack(out.cross_attentions, "cross-attention", model)}
    _same_outputs(model, {"input_ids": src, "decoder_input_ids": dec}, out)
    check_causal(parts["decoder"], model, "decoder self-attention")
    return parts


def kv_heads(model, n_heads: int) -> int:
    """Key/value heads of the first attention layer, read from its key (or fused query-key-value) projection's
    weight shape; the config's value only when no such projection is found (e.g. DeepSeek's latent attention).

    Falcon-7B-style multi-query attention: 1, although its config says num_kv_heads = heads.
    """
    for module in model.modules():
        head_dim = int(getattr(module, "head_dim", None) or getattr(module, "head_size", None)
                       or getattr(module, "key_value_proj_dim", None) or 0)
        if head_dim <= 0:
            continue
        for name in ("k_proj", "key", "k"):
            w = getattr(getattr(module, name, None), "weight", None)
            if isinstance(w, torch.Tensor) and w.dim() == 2:
                return max(1, int(w.shape[0]) // head_dim)
        for name in ("query_key_value", "c_attn", "Wqkv", "qkv_proj", "qkv"):
            lin = getattr(module, name, None)
            w = getattr(lin, "weight", None)
            if isinstance(w, torch.Tensor) and w.dim() == 2:
                out = int(w.shape[1] if type(lin).__name__ == "Conv1D" else w.shape[0])   # GPT-2's Conv1D: (in, out)
                kv = (out - n_heads * head_dim) // (2 * head_dim)
                if kv >= 1:
                    return kv
    c = model.config
    return int(getattr(c, "num_key_value_heads", None) or getattr(c, "num_attention_heads", None) or n_heads)


def _identity(model, name: str | None, n_heads: int = 0) -> dict:
    c = model.config
    return dict(model_name=name or getattr(c, "name_or_path", "") or type(model).__name__,
                model_type=getattr(c, "model_type", ""), n_kv_heads=kv_heads(model, n_heads))


def _device(model):
    return next(model.parameters()).device


def attention_record_from_ids(model, tok, ids, name: str | None = None, n_prompt: int = -1,
                              notes=(), meta: dict | None = None, part: str | None = None,
                              target_ids=None) -> AttentionRecord:
    """AttentionRecord for explicit token ids (a list or 1-D tensor).

    Encoder-decoders: `part="encoder"` (default) is the encoder's bidirectional self-attention over `ids`;
    `part="decoder"` the decoder's causal self-attention over `target_ids` (the start token prepended) given
    `ids` as the source, with the cross-attention in `meta["cross_attention"]` (layer, head, target, source).
    """
    ids = torch.as_tensor(list(ids), dtype=torch.long)
    if ids.numel() == 0:
        raise ValueError("no tokens to look at: give at least one token id")
    meta = dict(meta or {})
    label = (lambda xs: token_labels(tok, xs)) if tok is not None else (lambda xs: [str(int(i)) for i in xs])
    causal = not is_encoder_only(model)
    if getattr(model.config, "is_encoder_decoder", False):
        part = part or "encoder"
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS} for an encoder-decoder, got {part!r}")
        start = int(model.config.decoder_start_token_id if model.config.decoder_start_token_id is not None
                    else getattr(tok, "pad_token_id", 0) or 0)
        tgt = [int(t) for t in (target_ids if target_ids is not None else [])]
        if tgt and tgt[0] == start:
            tgt = tgt[1:]
        if part == "decoder" and not tgt:
            raise ValueError("the decoder part needs target tokens: give the text the decoder reads (target=...)")
        dec = torch.tensor([[start] + tgt])
        att = _forward_encdec(model, ids[None].to(_device(model)), dec.to(_device(model)))
        src_labels = label(ids.tolist())
        if part == "encoder":
            weights, labels, causal = att["encoder"], src_labels, False
        else:
            weights, labels = att["decoder"], label(dec[0].tolist())
            meta.update(cross_attention=att["cross"], source_tokens=tuple(src_labels),
                        source_ids=ids.numpy())
            ids = dec[0]
        meta["part"] = part
    else:
        if part not in (None, "decoder"):
            raise ValueError(f"{type(model).__name__} is not an encoder-decoder: it has no {part!r} part")
        weights = _forward_attentions(model, ids[None].to(_device(model)))
        labels = label(ids.tolist())
    return AttentionRecord(tokens=tuple(labels), token_ids=ids.numpy(), weights=weights, n_prompt=n_prompt,
                           warnings=tuple(notes) + tuple(_byte_warning(labels)), meta=meta, causal=causal,
                           **_identity(model, name, weights.shape[1]))


def attention_record(model, tok, text: str, max_tokens: int | None = None, add_bos: bool = True,
                     name: str | None = None, part: str | None = None, target: str | None = None) -> AttentionRecord:
    """Attention of every layer and head of `model` on `text`: weights `(layer, head, query, key)`.

    Switches to eager attention for the call and back; refuses (AttentionUnavailable) when that fails or a
    causal model's weights come back non-causal. Text longer than the context window (or `max_tokens`) is
    truncated with a warning kept in `record.warnings`. Encoder-decoders: `part` "encoder" (default, over
    `text`) or "decoder" (over `target`, with `text` as the source); see attention_record_from_ids.
    """
    ids, notes = encode(tok, text, add_bos=add_bos, max_tokens=max_tokens, model=model)
    tgt = None
    if target is not None:
        tgt = tok(target, add_special_tokens=False)["input_ids"]
    return attention_record_from_ids(model, tok, ids, name=name, notes=notes, part=part, target_ids=tgt,
                                     meta={"text": text, "max_tokens": max_tokens})


@torch.no_grad()
def generation_record(model, tok, prompt: str, max_new_tokens: int = 8, max_tokens: int | None = None,
                      add_bos: bool = True, name: str | None = None) -> AttentionRecord:
    """Greedy continuation of `prompt` and the attention of every prompt *and generated* token.

    Rows `n_prompt..` are the generated tokens. A causal model's attention for token t depends only on
    tokens <= t, so one forward pass over prompt + continuation gives exactly the attention each new
    token had while it was generated (the test checks this against `generate(output_attentions=True)`).
    Encoder-decoders: the prompt goes to the encoder and the record is the decoder's self-attention over
    the start token and the generated tokens (cross-attention in `meta["cross_attention"]`).
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if is_encoder_only(model):
        raise ValueError(f"{type(model).__name__} is an encoder-only model: it does not generate text")
    encdec = bool(getattr(model.config, "is_encoder_decoder", False))
    window = context_window(model)
    limit = min(max_tokens or window, window if encdec else window - max_new_tokens)
    if limit < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for the prompt in a "
                         f"{window}-token context window; ask for fewer new tokens")
    ids, notes = encode(tok, prompt, add_bos=add_bos, max_tokens=limit, model=model)
    x = torch.tensor([ids], device=_device(model))
    pad = getattr(tok, "pad_token_id", None)
    out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=pad if pad is not None else getattr(tok, "eos_token_id", 0))
    seq = out[0].tolist()
    meta = {"text": prompt, "max_new_tokens": max_new_tokens}
    if encdec:
        return attention_record_from_ids(model, tok, ids, name=name, n_prompt=1, notes=notes, part="decoder",
                                         target_ids=seq, meta=meta)
    return attention_record_from_ids(model, tok, seq, name=name, n_prompt=len(ids), notes=notes, meta=meta)


# ----------------------------------------------------------------------------- models for demos

def sharpen(model, std: float = 0.3, seed: int = 0):
    """Re-initialise the weight matrices of a random model with a larger std, so its heads look distinct.

    With the usual 0.02 a random model's attention is nearly uniform; for demos and tests only.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


def load_or_tiny(name: str = "tiny-dense", kind: str | None = None):
    """(model, tokenizer, note): the named model, or a tiny random one with a note saying why.

    Lets a notebook run before the default models are trained (note is "" when `name` loaded).
    """
    from ..models import load_model
    try:
        model, tok = load_model(name, attn_implementation="eager", local_only=True)
        return model, tok, ""
    except (FileNotFoundError, OSError) as e:
        from ..corpora import generate_corpus
        from ..models import build_model
        from ..tokenizer import train_tokenizer
        kind = kind or ("moe" if "moe" in str(name) else "dense")
        tok = train_tokenizer(generate_corpus("stories", 200, seed=0).texts, vocab_size=300)
        model = sharpen(build_model(f"{kind}-nano", tokenizer=tok, seed=0, attn_implementation="eager",
                                    hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=64, max_position_embeddings=128).eval())
        model.config.name_or_path = f"tiny random {kind} model"
        return model, tok, (f"{name!r} is not available ({e}); using a tiny RANDOM {kind} model instead, "
                            "so the patterns below are not learned ones")
