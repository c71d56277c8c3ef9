"""Making models small: pruning and quantization now; distillation and LoRA follow (see each module).

Each method returns a new model plus a record of what was done; `measure` measures any variant the same way.
"""
from .prune import PruneRecord, magnitude_prune, prune_heads, prune_mlp, sparsity
from .quantize import SCHEMES, QuantRecord, quantize

__all__ = ["PruneRecord", "magnitude_prune", "prune_heads", "prune_mlp", "sparsity", "SCHEMES", "QuantRecord",
           "quantize"]
