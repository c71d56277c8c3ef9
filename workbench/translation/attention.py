"""Cross-attention of a translation: which source token each target token reads.

`cross_attention(model, tok, source, src_lang, tgt_lang)` translates `source` greedily (or takes a given
`target`), then runs the model teacher-forced on (source, target) with eager attention and returns the decoder's
cross-attention weights: weights[l, h, i, j] = softmax_j(q_i . k_j / sqrt(d)) of decoder layer l, head h, for
decoder position i (the token fed at i; position 0 is the start token, position 1 the forced language token)
over encoder position j. Each row sums to 1 over the real source tokens.
Here: `CrossAttention`, `cross_attention()`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import lang_token


@dataclass(frozen=True)
class CrossAttention:
    source_tokens: list[str]     # (S,) encoder tokens: language token, source pieces, EOS
    target_tokens: list[str]     # (T,) decoder inputs: start token, language token, target pieces
    weights: np.ndarray          # (L, H, T, S) cross-attention probabilities, rows sum to 1
    translation: str             # the target text

    def mean_heads(self, layer: int) -> np.ndarray:
        """(T, S) the heads' mean for decoder layer `layer` (ValueError out of range)."""
        if not 0 <= layer < self.weights.shape[0]:
            raise ValueError(f"layer {layer} out of range: the decoder has layers 0..{self.weights.shape[0] - 1}")
        return self.weights[layer].mean(0)


@torch.no_grad()
def cross_attention(model, tok, source: str, src_lang: str, tgt_lang: str, target: str | None = None,
                    num_beams: int = 1) -> CrossAttention:
    """The CrossAttention of translating `source` (see the module docstring); `target` skips decoding.
    ValueError: unknown language codes or an empty source (translate's checks)."""
    from .decode import translate
    if target is None:
        target = translate(model, tok, source, src_lang, tgt_lang, num_beams=num_beams)[0]
    else:
        translate  # noqa: B018 (the checks below mirror translate's)
        if not isinstance(source, str) or not source.strip():
            raise ValueError("source sentence 0 is empty: give text to translate")
    src = [tok.convert_tokens_to_ids(lang_token(src_lang))] + tok(source, add_special_tokens=False)["input_ids"] + \
        [tok.eos_token_id]
    tgt = [model.config.decoder_start_token_id, tok.convert_tokens_to_ids(lang_token(tgt_lang))] + \
        tok(target, add_special_tokens=False)["input_ids"]
    device = next(model.parameters()).device
    was, impl = model.training, model.config._attn_implementation
    model.eval()
    model.config._attn_implementation = "eager"      # attention weights exist only on the eager path
    try:
        out = model(input_ids=torch.tensor([src], device=device), decoder_input_ids=torch.tensor([tgt], device=device),
                    output_attentions=True)
    finally:
        model.config._attn_implementation = impl
        model.train(was)
    w = torch.stack([a[0].float().cpu() for a in out.cross_attentions]).numpy()     # (L, H, T, S)
    return CrossAttention(tok.convert_ids_to_tokens(src), tok.convert_ids_to_tokens(tgt), w, target)
