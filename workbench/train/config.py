"""Training settings: `TrainConfig`, a frozen dataclass with one commented field per knob.

Model settings live in `workbench.config.ModelConfig`; `split_overrides()` sends keyword arguments to
the right one of the two so `train(..., steps=200, hidden_size=64)` works.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..config import ModelConfig, did_you_mean


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000                # optimizer updates
    batch_size: int = 16             # sequences per micro-batch
    grad_accum: int = 1              # micro-batches per update (effective batch = batch_size * grad_accum)
    seq_len: int | None = None       # tokens per sequence; None: min(128, the model's context window)
    lr: float = 3e-3                 # peak learning rate, reached after `warmup` steps
    min_lr_ratio: float = 0.1        # cosine decays to lr * min_lr_ratio at the last step
    warmup: int = 50                 # linear warm-up steps
    weight_decay: float = 0.1        # AdamW decay on matrices (not on norms, biases or embeddings)
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0           # clip the global gradient norm to this (0 disables)
    optimizer: str = "auto"          # "adamw", "adafactor" (update scaled by each matrix's RMS, as T5 was
                                     # trained), or "auto": adafactor for T5, adamw otherwise
    val_fraction: float = 0.05       # share of documents held out for validation
    eval_every: int = 100            # steps between validation passes (0: only at the end)
    eval_batches: int = 8            # validation micro-batches per pass
    sample_every: int = 0            # steps between sample generations (0: only at the end)
    sample_prompts: tuple[str, ...] = ("Once upon a time",)
    sample_n: int = 2                # samples per prompt
    sample_max_new_tokens: int = 48
    sample_temperature: float = 0.8
    checkpoint_every: int = 0        # steps between intermediate checkpoints (0: only the final one)
    checkpoint_steps: tuple[int, ...] = ()  # further steps that get a checkpoint (e.g. log-spaced, for dynamics)
    keep_checkpoints: int | None = 5  # intermediate checkpoints kept (oldest pruned); None keeps all
    checkpoint_light: bool = False   # intermediate checkpoints: bf16 weights only (small, loadable, not resumable)
    log_every: int = 10              # steps between history flushes / callback updates (no per-step syncs)
    seed: int = 0                    # seeds init, data order (a function of seed and step) and sampling
    device: str | None = None        # None: CUDA if available, else CPU
    threads: int | None = None       # CPU threads for torch; None: torch's, fewer when other jobs keep cores busy
    compile: bool = False            # torch.compile the model (CUDA; slow to start on CPU)
    fsdp: bool = False               # several processes: shard weights, gradients and optimizer state (FSDP2)
                                     # instead of replicating them (DDP); see train.fsdp. One process: ignored
    fast_path: bool = True           # CPU: lean Llama/Mixtral forward (same maths) and allocator tuning; see train.fast
    kernels: str | None = None       # CUDA forward: "liger" (Liger-Kernel's fused RMSNorm/RoPE/SwiGLU/linear
                                     # cross-entropy), "torch" (the same lean forward in plain ops), "none" (the
                                     # model's own forward); None: "liger" when installed, "torch" with compile
    cuda_graph: bool | None = None   # CUDA: after a few eager steps, replay each step as one captured CUDA graph
                                     # (same maths, no per-kernel launch cost; see train.graphs); None: when the
                                     # run allows it (one process, lean forward, no teacher/pairs)
    experts_implementation: str | None = None  # MoE experts: "eager" (a loop over experts), "grouped_mm" (one
                                     # grouped GEMM, torch._grouped_mm) or "batched_mm"; None: grouped_mm on CUDA,
                                     # eager on CPU (fastest for tiny experts there; batched_mm is far slower)
    tokenizer_vocab_size: int = 4096  # vocabulary of the BPE trained when no tokenizer is given
    # --- knowledge distillation (Hinton et al. 2015) ---
    teacher: str | None = None       # a causal LM (default name or folder) with the same tokenizer; None: no teacher
    distill_alpha: float = 0.5       # loss = (1 - alpha) * cross-entropy + alpha * T^2 KL(teacher_T || student_T)
    distill_temperature: float = 2.0  # softmax temperature T of both distributions in the KL term
    # --- MoE only ---
    aux_loss_convention: str = "hf"  # which load-balancing formula workbench.moe.router_losses uses
    expert_output_mask_p: float = 0.0  # Expert Output Masking probability while training
    gating_dropout_p: float = 0.0      # gating dropout probability while training

    def __post_init__(self):
        validate(self)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sample_prompts"] = list(self.sample_prompts)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        for key in ("sample_prompts", "checkpoint_steps"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in fields(cls)}})

    def override(self, **changes) -> "TrainConfig":
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            valid = sorted(f.name for f in fields(self))
            raise ValueError(did_you_mean("training setting", unknown, valid)
                             or f"unknown training setting(s) {unknown}; valid: {valid}")
        if "sample_prompts" in changes and isinstance(changes["sample_prompts"], str):
            changes["sample_prompts"] = (changes["sample_prompts"],)
        return replace(self, **changes)


def validate(c: TrainConfig) -> None:
    """Raise ValueError naming the first bad setting and what would be valid."""
    for name in ("steps", "batch_size", "grad_accum", "log_every", "eval_batches"):
        if int(getattr(c, name)) <= 0:
            raise ValueError(f"{name} must be a positive integer, got {getattr(c, name)}")
    if not c.lr > 0:
        raise ValueError(f"lr must be positive, got {c.lr}")
    if c.seq_len is not None and c.seq_len <= 0:
        raise ValueError(f"seq_len must be positive (or None for the model's context), got {c.seq_len}")
    for name in ("warmup", "eval_every", "sample_every", "checkpoint_every", "weight_decay", "grad_clip"):
        if getattr(c, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(c, name)}")
    if c.experts_implementation not in (None, "eager", "grouped_mm", "batched_mm"):
        raise ValueError(f"experts_implementation must be 'eager', 'grouped_mm', 'batched_mm' or None (automatic), "
                         f"got {c.experts_implementation!r}")
    if c.cuda_graph not in (None, True, False):
        raise ValueError(f"cuda_graph must be True, False or None (automatic), got {c.cuda_graph!r}")
    if c.kernels not in (None, "liger", "torch", "none"):
        raise ValueError(f"kernels must be 'liger', 'torch', 'none' or None (automatic), got {c.kernels!r}")
    if c.optimizer not in OPTIMIZERS:
        raise ValueError(did_you_mean("optimizer", [c.optimizer], list(OPTIMIZERS))
                         or f"optimizer must be one of {list(OPTIMIZERS)}, got {c.optimizer!r}")
    if not 0 <= c.distill_alpha <= 1:
        raise ValueError(f"distill_alpha must be in [0, 1] (the weight of the teacher's term), got {c.distill_alpha}")
    if not c.distill_temperature > 0:
        raise ValueError(f"distill_temperature must be positive, got {c.distill_temperature}")
    if any(int(s) <= 0 for s in c.checkpoint_steps):
        raise ValueError(f"checkpoint_steps must be positive steps, got {tuple(c.checkpoint_steps)}")
    if c.keep_checkpoints is not None and c.keep_checkpoints < 0:
        raise ValueError(f"keep_checkpoints must be >= 0 or None (keep all), got {c.keep_checkpoints}")
    if not 0 <= c.min_lr_ratio <= 1:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {c.min_lr_ratio}")
    if not 0 < c.val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {c.val_fraction}")
    for name in ("expert_output_mask_p", "gating_dropout_p"):
        if not 0 <= getattr(c, name) < 1:
            raise ValueError(f"{name} must be in [0, 1), got {getattr(c, name)}")


OPTIMIZERS = ("auto", "adamw", "adafactor")
TRAIN_FIELDS = frozenset(f.name for f in fields(TrainConfig))
MODEL_FIELDS = frozenset(f.name for f in fields(ModelConfig))


def split_overrides(overrides: dict) -> tuple[dict, dict]:
    """(training settings, model settings) from one keyword dict; unknown names raise listing both sets."""
    unknown = sorted(set(overrides) - TRAIN_FIELDS - MODEL_FIELDS)
    if unknown:
        raise ValueError(did_you_mean("setting", unknown, TRAIN_FIELDS | MODEL_FIELDS)
                         or f"unknown setting(s) {unknown}; training settings: {sorted(TRAIN_FIELDS)}; "
                         f"model settings: {sorted(MODEL_FIELDS)}")
    train = {k: v for k, v in overrides.items() if k in TRAIN_FIELDS}
    model = {k: v for k, v in overrides.items() if k in MODEL_FIELDS}
    return train, model
