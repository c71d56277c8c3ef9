"""Making models small: distillation, pruning, quantization and LoRA (see each module).

Each method returns a new model plus a record of what was done; `measure` measures any variant the same way.
"""
from .distill import DistillRecord, compare_with_baseline, distill, distill_hidden
from .experts import expert_shares, prune_experts, recover
from .lora import AdaptRecord, adapt, merge
from .prune import PruneRecord, magnitude_prune, prune_heads, prune_mlp, sparsity
from .quantize import SCHEMES, QuantRecord, quantize

__all__ = ["DistillRecord", "compare_with_baseline", "distill", "distill_hidden", "expert_shares", "prune_experts",
           "recover", "AdaptRecord", "adapt", "merge", "PruneRecord", "magnitude_prune", "prune_heads", "prune_mlp",
           "sparsity", "SCHEMES", "QuantRecord", "quantize"]
