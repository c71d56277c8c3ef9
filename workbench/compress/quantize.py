"""Post-training quantization with torchao (weights of the decoder's linear layers).

Library choice: torchao is PyTorch's own quantization library and its CPU paths run on the pinned torch
(2.13): int8 weight-only (`Int8WeightOnlyConfig`), int8 dynamic activations with int8 weights
(`Int8DynamicActivationInt8WeightConfig`) and int4 weight-only in groups (`IntxWeightOnlyConfig` with
`torch.int4`; torchao's tinygemm/opaque int4 kernels are GPU- or build-specific and refuse to run here).
optimum-quanto would also run, but it is no longer developed at torchao's pace and needs a second stack.

Honest sizes: on CPU torchao keeps int4 values unpacked, one per int8 byte (`IntxUnpackedToInt8Tensor`), so
an int4 model is no smaller in memory than an int8 one; `QuantRecord` gives both the bytes as stored and the
bytes of an ideally packed layout (bits / 8 per weight, plus scales). Embeddings and the (tied) output head
stay unquantized, as in torchao's defaults for LLMs (float32 in memory, float16 on disk as the family ships
them). Quantized models are saved with `torch.save` of the state dict and read back with `weights_only=True`
(`save_quantized` / `load_quantized`); safetensors cannot hold torchao's tensor subclasses.
Here: `SCHEMES`, `QuantRecord`, `quantize()`, `tensor_bytes()`, `weight_bytes()`, `save_quantized()`, `load_quantized()`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

SCHEMES = ("int8-weight", "int8-dynamic", "int4-weight")
_BITS = {"int8-weight": 8, "int8-dynamic": 8, "int4-weight": 4}


@dataclass(frozen=True)
class QuantRecord:
    """scheme, bits, group size, linear layers quantized, bytes of the decoder linear weights before (fp32)
    and as stored, the ideally packed bytes, and the library version."""
    scheme: str
    bits: int
    group_size: int | None
    layers: int
    fp32_bytes: int
    stored_bytes: int
    packed_bytes: int
    library: str


def _config(scheme: str, group_size: int):
    from torchao.quantization import (Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig,
                                      IntxWeightOnlyConfig)
    from torchao.quantization.granularity import PerGroup
    if scheme == "int8-weight":
        return Int8WeightOnlyConfig()
    if scheme == "int8-dynamic":
        return Int8DynamicActivationInt8WeightConfig()
    return IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(group_size))


def _targets(model) -> list[str]:
    """Names of the linear layers inside the decoder blocks (not embeddings, not the output head)."""
    inner = getattr(model, "model", model)
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and ".layers." in f".{n}."
            and inner is not model]


def tensor_bytes(t) -> int:
    """Bytes a tensor occupies as stored; for a tensor subclass (torchao's quantized tensors) the sum of its
    inner tensors (quantized data, scales, zero points)."""
    flatten = getattr(t, "__tensor_flatten__", None)
    parts = [getattr(t, a) for a in flatten()[0]] if flatten else [t]
    return sum(p.numel() * p.element_size() for p in parts if isinstance(p, torch.Tensor))


def weight_bytes(model, names: list[str] | None = None) -> int:
    """Bytes that the weights of the named linear layers occupy as stored (quantized data and scales)."""
    mods = dict(model.named_modules())
    return sum(tensor_bytes(mods[n].weight) for n in (names if names is not None else _targets(model)))


def quantize(model, scheme: str, group_size: int = 32) -> tuple[nn.Module, QuantRecord]:
    """A quantized copy of `model` (CPU, eval mode) and its record. Raises ValueError naming the supported
    schemes for an unknown one, and for an int4 group size that does not divide the layers' input width."""
    import torchao
    if scheme not in SCHEMES:
        raise ValueError(f"unsupported quantization scheme {scheme!r}: supported are {', '.join(SCHEMES)}")
    model = copy.deepcopy(model).float().cpu().eval()
    names = _targets(model)
    if not names:
        raise ValueError(f"{type(model).__name__}: no linear layers found in model.model.layers to quantize")
    mods = dict(model.named_modules())
    if scheme == "int4-weight":
        bad = sorted({mods[n].in_features for n in names if mods[n].in_features % group_size})
        if bad:
            raise ValueError(f"int4 group_size {group_size} does not divide the input width(s) {bad}: use 32 or 64")
    fp32 = sum(mods[n].weight.numel() * 4 for n in names)
    n_weights = sum(mods[n].weight.numel() for n in names)
    rows = sum(mods[n].weight.shape[0] for n in names)
    from torchao.quantization import quantize_
    quantize_(model, _config(scheme, group_size), filter_fn=lambda m, fqn: fqn in set(names))
    bits = _BITS[scheme]
    scales = n_weights // group_size if scheme == "int4-weight" else rows        # fp32 scale per group / row
    packed = n_weights * bits // 8 + scales * 4
    return model, QuantRecord(scheme, bits, group_size if scheme == "int4-weight" else None, len(names), fp32,
                              weight_bytes(model, names), packed, f"torchao {torchao.__version__}")


def _plain_float(t) -> bool:
    return type(t) is torch.Tensor and t.is_floating_point()


def save_quantized(model, path: str | Path) -> Path:
    """torch.save of the quantized state dict, the tensors left unquantized (embeddings, norms) in float16 as
    the family ships them, and the config beside it (config.json)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    halves: dict = {}                             # tied tensors (embeddings = output head) stay one tensor
    state = {k: (halves.setdefault(v.data_ptr(), v.half()) if _plain_float(v) else v)
             for k, v in model.state_dict().items()}
    torch.save(state, path / "quantized.pt")
    model.config.to_json_file(path / "config.json")
    return path


def load_quantized(path: str | Path, scheme: str, group_size: int = 32):
    """Rebuild the model from config.json, quantize it the same way and load the saved state with
    `torch.load(weights_only=True)` (torchao registers its tensor types as safe)."""
    from transformers import AutoConfig, AutoModelForCausalLM
    path = Path(path)
    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    model, _ = quantize(model, scheme, group_size)
    state = torch.load(path / "quantized.pt", weights_only=True, map_location="cpu")
    model.load_state_dict(state, assign=True)
    for p in model.parameters():                  # unquantized tensors were stored in float16
        if _plain_float(p.data) and p.dtype == torch.float16:
            p.data = p.data.float()
    return model.eval()
