"""Adapting a model to a labelled task: LoRA (through `peft`) against full fine-tuning, on the same data.

The task is a built-in classification task answered in words: each training example is the task's prompt
followed by the gold label's first verbalizer, and the loss is the cross-entropy of the label tokens only
(the prompt is context, not target). An encoder-decoder (the family's T5 members) reads the prompt in its
encoder and learns the label tokens in its decoder, as `workbench.scoring` scores them. Training examples come
from the training split of the corpus (`builtin_task(..., split="train")`); accuracy is measured on the
held-out evaluation split, as everywhere.

LoRA (Hu et al. 2022): each targeted linear layer W gets a trainable low-rank update (alpha / r) B A, W frozen;
`merge()` folds B A into W and returns a plain `transformers` model (peft's `merge_and_unload`).
Here: `AdaptRecord`, `label_examples()`, `adapt()`, `merge()`.
"""
from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

# the linear layers LoRA adapts, where a model has them: Llama-layout decoders (the dense and MoE members), then
# T5 (attention q, k, v, o; gated MLP wi_0, wi_1, wo; wi in ungated T5). Never the embeddings or the output head.
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                   "q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo")


@dataclass(frozen=True)
class AdaptRecord:
    """method ("lora" | "full"), rank (LoRA), trainable and total parameters, adapter bytes on disk (LoRA:
    the saved adapter; full: the whole model in float16), steps, seconds, and the training loss of the first
    and the last step (nats per label token)."""
    method: str
    rank: int | None
    trainable: int
    total: int
    adapter_bytes: int
    steps: int
    seconds: float
    first_loss: float
    final_loss: float


def label_examples(tok, task) -> list[tuple[list[int], int]]:
    """(token ids of prompt + delimiter + gold verbalizer, number of label tokens at the end) per example."""
    out = []
    for i, gold in enumerate(task.golds):
        ctx = tok(task.prompt(i))["input_ids"]
        label = tok(task.target_delimiter + task.verbalizers[gold][0], add_special_tokens=False)["input_ids"]
        out.append((ctx + label, len(label)))
    return out


def _seq2seq_batches(examples, batch_size: int, steps: int, seed: int, pad: int):
    """(encoder ids, encoder mask, decoder labels with -100 padding): the prompt in, the label tokens out."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(examples), (batch_size,), generator=g).tolist()
        enc_w = max(len(examples[i][0]) - examples[i][1] for i in idx)
        dec_w = max(examples[i][1] for i in idx)
        ids = torch.full((batch_size, enc_w), pad, dtype=torch.long)
        mask = torch.zeros(batch_size, enc_w, dtype=torch.long)
        labels = torch.full((batch_size, dec_w), -100, dtype=torch.long)
        for b, i in enumerate(idx):
            seq, n_label = examples[i]
            ids[b, :len(seq) - n_label] = torch.tensor(seq[:-n_label])
            mask[b, :len(seq) - n_label] = 1
            labels[b, :n_label] = torch.tensor(seq[-n_label:])
        yield ids, mask, labels


def _batches(examples, batch_size: int, steps: int, seed: int, pad: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(examples), (batch_size,), generator=g).tolist()
        width = max(len(examples[i][0]) for i in idx)
        ids = torch.full((batch_size, width), pad, dtype=torch.long)
        mask = torch.zeros(batch_size, width, dtype=torch.long)
        target = torch.full((batch_size, width), -100, dtype=torch.long)
        for b, i in enumerate(idx):
            seq, n_label = examples[i]
            ids[b, :len(seq)] = torch.tensor(seq)
            mask[b, :len(seq)] = 1
            target[b, len(seq) - n_label:len(seq)] = torch.tensor(seq[-n_label:])
        yield ids, mask, target


def adapt(model, tok, task, method: str = "lora", rank: int = 8, alpha: int | None = None, steps: int = 100,
          lr: float | None = None, batch_size: int = 16, targets=DEFAULT_TARGETS, seed: int = 0):
    """(adapted model, AdaptRecord): `model` (not changed) trained on `task`'s examples for `steps` AdamW
    steps. `method="lora"`: peft LoRA of `rank` on the `targets` modules present (default lr 2e-3), and on a
    mixture of experts also on the fused expert tensors (`experts.gate_up_proj`, `experts.down_proj`, through
    peft's `target_parameters`); `"full"`: every parameter (default lr 2e-4). Decoder-only models (dense, MoE)
    and encoder-decoders (T5: encoder and decoder both adapted) alike. Raises ValueError for an unknown
    method, a rank below 1, or targets that name no linear layer of the model."""
    if method not in ("lora", "full"):
        raise ValueError(f"unknown adaptation method {method!r}: use 'lora' or 'full'")
    model = copy.deepcopy(model).float().train()
    torch.manual_seed(seed)                      # LoRA's A matrices are drawn at random: the seed fixes them too
    if method == "lora":
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        from peft import LoraConfig, get_peft_model
        present = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
                         & set(targets))
        if not present:
            raise ValueError(f"no linear layer of {type(model).__name__} is named one of {', '.join(targets)}")
        # MoE experts are fused 3-D parameters in transformers 5 (no nn.Linear): peft targets them by name
        experts = sorted({n.split(".mlp.", 1)[1] for n, _ in model.named_parameters()
                          if ".mlp.experts." in n and n.rsplit(".", 1)[-1] in ("gate_up_proj", "down_proj")})
        model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=0.0,
                                                 target_modules=present, target_parameters=experts or None,
                                                 bias="none"))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr or (2e-3 if method == "lora" else 2e-4), weight_decay=0.0)
    examples = label_examples(tok, task)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    t0, loss, first = time.perf_counter(), torch.tensor(float("nan")), None
    for ids, mask, target in (_seq2seq_batches if seq2seq else _batches)(examples, batch_size, steps, seed, pad):
        if seq2seq:                    # T5 shifts the labels right behind its start token for the decoder input
            logits = model(input_ids=ids, attention_mask=mask, labels=target).logits
        else:    # logits only where the next token is a label (`logits_to_keep`): the loss reads no others
            keep = (target[:, 1:] != -100).any(0).nonzero().squeeze(1)
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
            target = target[:, keep + 1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1), ignore_index=-100)
        first = float(loss.item()) if first is None else first
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - t0
    model.eval()
    with tempfile.TemporaryDirectory() as d:
        if method == "lora":
            model.save_pretrained(d)                                       # the adapter only
        else:
            copy.deepcopy(model).half().save_pretrained(d, safe_serialization=True)
        size = sum(f.stat().st_size for f in Path(d).iterdir() if f.suffix == ".safetensors")
    total = sum(p.numel() for p in model.parameters())
    return model, AdaptRecord(method, rank if method == "lora" else None, sum(p.numel() for p in params), total,
                              size, steps, seconds, float("nan") if first is None else first, float(loss.item()))


def merge(model):
    """A plain `transformers` model with the LoRA update folded into its weights (peft `merge_and_unload`);
    a model without adapters is returned as is."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
