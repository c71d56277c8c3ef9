"""Making models small: pruning, quantization and LoRA now; distillation follows (see each module).

Each method returns a new model plus a record of what was done; `measure` measures any variant the same way.
"""
from .lora import AdaptRecord, adapt, merge
from .prune import PruneRecord, magnitude_prune, prune_heads, prune_mlp, sparsity
from .quantize import SCHEMES, QuantRecord, quantize

__all__ = ["AdaptRecord", "adapt", "merge", "PruneRecord", "magnitude_prune", "prune_heads", "prune_mlp", "sparsity", "SCHEMES", "QuantRecord",
           "quantize"]
