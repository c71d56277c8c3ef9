"""Data-parallel training inside one run: the process group, DistributedDataParallel, and who does what.

A run is distributed when it starts under torchrun (`torchrun --nproc-per-node N -m workbench.train ...`,
`workbench train --nproc-per-node N`, or `train(..., devices=N)`; see `launch`), i.e. when the environment
says WORLD_SIZE > 1. Then `session()` joins the process group (NCCL on CUDA, gloo on CPU; gloo with a
warning when this torch has no NCCL), each rank takes GPU LOCAL_RANK, and:

- `TrainConfig.batch_size` stays the GLOBAL batch: rank r trains on rows [r*b, (r+1)*b) of every global
  micro-batch, b = batch_size / world. DDP averages the gradients of the equal shards, which is the gradient
  of the global batch's mean loss, so the run follows the single-process one up to float rounding (exactly
  so for dense and T5 models; an MoE's load-balancing loss is a product of batch statistics, averaged here
  over the ranks' shards instead of taken over the whole batch);
- every rank logs the rank-averaged step values, so histories agree; rank 0 alone runs the callbacks,
  evaluates, samples and writes (run-folder lock, checkpoints, records, final model), and a stop it decides
  reaches the other ranks at the next log point;
- what rank 0 decides before training (the run folder, the checkpoint to resume from, the tokenizer) is sent
  to the others, errors included (`first`), so every rank fails with the same message.
Checkpoints hold the global state (weights, one optimizer, the step), so a run resumes with any number of
processes. With `TrainConfig.fsdp` the model is sharded instead of replicated (`fsdp`). Not here: starting the
processes (`launch`), the loop (`loop`).
"""
from __future__ import annotations

import contextlib
import inspect
import os
import pickle
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .fsdp import deferred_sync, is_sharded


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: `rank` of `world` processes, `local_rank` on its machine."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        """True on the process that writes (rank 0)."""
        return self.rank == 0


def env_ranks() -> Ranks:
    """The ranks torchrun put in the environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE); one
    process when they are absent. Raises ValueError when a variable is not an integer."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return Ranks(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")),
                     int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))
    except ValueError as err:
        raise ValueError(f"the torchrun variables RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE must be integers "
                         f"({err}); start the run with torchrun or unset them") from None


def under_torchrun() -> bool:
    """True inside a process that torchrun (torch.distributed.run) started."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def current() -> Ranks:
    """This process's ranks in the joined process group (one process when none is joined)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    e = env_ranks()
    return Ranks(dist.get_rank(), dist.get_world_size(), e.local_rank, e.local_world)


def check_devices(nproc: int, device: str | None, n_gpus: int | None = None) -> None:
    """Refuse `nproc` processes per machine that the device cannot hold. On CUDA each process takes one GPU, so
    nproc must not exceed the GPUs (`n_gpus`, default: torch.cuda.device_count()); a device naming one GPU
    ("cuda:1") cannot be shared out. CPU takes any number. Raises ValueError naming the setting and the fix."""
    if not isinstance(nproc, int) or isinstance(nproc, bool) or nproc < 1:
        raise ValueError(f"the number of processes (--nproc-per-node, devices) must be a positive integer, "
                         f"got {nproc!r}")
    n_gpus = torch.cuda.device_count() if n_gpus is None else n_gpus
    kind = str(device or ("cuda" if n_gpus else "cpu"))
    if not kind.startswith("cuda"):
        return
    if nproc > 1 and kind != "cuda":
        raise ValueError(f"device={kind!r} names one GPU, but {nproc} processes each take their own (cuda:LOCAL_RANK);"
                         f" pass --device cuda (device='cuda')")
    if nproc > n_gpus:
        have = f"only {n_gpus} GPU{'s' if n_gpus != 1 else ''}" if n_gpus else "no GPU"
        fix = f"use --nproc-per-node {n_gpus} (devices={n_gpus}) or fewer" if n_gpus else \
            "train on CPU with --device cpu (device='cpu')"
        raise ValueError(f"{nproc} processes on cuda need {nproc} GPUs (one each), but this machine has {have}: "
                         f"{fix}")


@contextlib.contextmanager
def session(device: str | None, batch_size: int):
    """Join the process group torchrun describes for the `with` block and yield this process's Ranks (one
    process, nothing joined, outside torchrun). Raises ValueError when `batch_size` (the global batch) does not
    split evenly among the processes, or when the processes on this machine outnumber its GPUs on CUDA.
    On a clean exit the ranks meet at a barrier, so rank 0's final files are written when train() returns
    anywhere; a group this call joined is left again."""
    ranks = env_ranks()
    if ranks.world <= 1 or (dist.is_available() and dist.is_initialized()):
        r = current()
        check_batch(batch_size, r.world)
        yield r
        return
    check_batch(batch_size, ranks.world)
    check_devices(ranks.local_world, device)
    cuda = str(device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    backend = "gloo"
    if cuda:
        torch.cuda.set_device(ranks.local_rank)
        if dist.is_nccl_available():
            backend = "nccl"
        else:
            warnings.warn("this torch has no NCCL: the GPUs exchange gradients through gloo (slower)",
                          RuntimeWarning, stacklevel=3)
    kw = {"device_id": torch.device("cuda", ranks.local_rank)} if backend == "nccl" else {}
    dist.init_process_group(backend, **kw)
    ok = False
    try:
        yield current()
        ok = True
    finally:
        if ok:
            dist.barrier()
        dist.destroy_process_group()


def check_batch(batch_size: int, world: int) -> None:
    """Raise ValueError when `batch_size` (the global batch, sequences) does not split evenly among `world`
    processes, naming the setting and a batch size that would."""
    if world > 1 and batch_size % world:
        fit = max(world, batch_size // world * world)
        raise ValueError(f"batch_size={batch_size} is the global batch and must split evenly among the {world} "
                         f"processes: use a multiple of {world} (e.g. --batch-size {fit})")


def device_for(device: str | None, ranks: Ranks) -> torch.device:
    """The torch device of this process: `device` (default: cuda when available, else cpu); in a distributed
    CUDA run the GPU of this process's local rank."""
    d = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if ranks.world > 1 and d.type == "cuda":
        return torch.device("cuda", ranks.local_rank)
    return d


def first(fn, ranks: Ranks):
    """fn() computed on rank 0 and sent to every rank (pickled), so all ranks agree on it; an exception raised by
    fn on rank 0 is raised on every rank (as RuntimeError with its message where it does not pickle).
    One process: just fn()."""
    if ranks.world <= 1:
        return fn()
    box, payload = [None], None
    if ranks.main:
        try:
            payload = ("ok", fn())
        except Exception as err:        # noqa: BLE001 - sent on, then raised everywhere
            payload = ("error", err)
        box[0] = payload
        if payload[0] == "error":
            try:
                pickle.dumps(payload[1])
            except Exception:           # noqa: BLE001
                box[0] = ("error", RuntimeError(f"{type(payload[1]).__name__}: {payload[1]}"))
    dist.broadcast_object_list(box, src=0)
    kind, value = payload if ranks.main else box[0]
    if kind == "error":
        if ranks.main:
            raise value
        value.workbench_rank0_copy = True        # the CLI prints it once, on rank 0
        raise value from None
    return value


def agree(value, ranks: Ranks):
    """Rank 0's `value` on every rank (e.g. a stop reason decided by a callback)."""
    return first(lambda: value, ranks)


def mean_over_ranks(tensors: dict[str, torch.Tensor], ranks: Ranks) -> dict[str, torch.Tensor]:
    """{name: the tensor's mean over all ranks} (any shapes; one collective for all); unchanged on one process."""
    if ranks.world <= 1 or not tensors:
        return tensors
    names = list(tensors)
    dev = torch.device("cpu") if dist.get_backend() == "gloo" else torch.device("cuda", torch.cuda.current_device())
    flat = torch.cat([tensors[k].detach().float().reshape(-1).to(dev) for k in names])   # stats may mix devices
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= ranks.world
    out, i = {}, 0
    for k in names:
        n = tensors[k].numel()
        out[k] = flat[i:i + n].reshape(tensors[k].shape)
        i += n
    return out


class _LeanModule(torch.nn.Module):
    """A lean forward (the CPU fast path or the GPU kernels) as a module over the model's parameters, so DDP can
    hook it."""

    def __init__(self, model, lean):
        super().__init__()
        self.model, self._lean = model, lean

    def forward(self, input_ids, output_router_logits=False, targets=None):
        return self._lean(input_ids, output_router_logits, targets=targets)


class _LeanStep:
    """A DDP-wrapped lean forward with the lean call signature (a plain callable, as compute_loss expects)."""

    def __init__(self, ddp, call=None):
        self.ddp, self.call = ddp, ddp if call is None else call      # call: DDP, or its torch.compile form

    def __call__(self, input_ids, output_router_logits=False, targets=None):
        return self.call(input_ids, output_router_logits, targets=targets)

    def no_sync(self):
        return self.ddp.no_sync()


def train_forward(model, lean, compile_: bool, is_moe: bool, ranks: Ranks):
    """What the loop calls each micro-batch: `lean` (the CPU fast path) or the model (torch.compiled when
    `compile_`), wrapped in DistributedDataParallel when ranks.world > 1 (an MoE with find_unused_parameters:
    experts no token of a shard chose get no gradient there). DDP copies rank 0's weights to every rank."""
    if ranks.world <= 1 or is_sharded(model):       # FSDP: the sharded model is its own data-parallel wrapper
        return (torch.compile(lean or model) if compile_ else lean or model)
    from torch.nn.parallel import DistributedDataParallel as DDP
    dev = next(model.parameters()).device
    kw = {"device_ids": [dev.index] if dev.type == "cuda" else None, "find_unused_parameters": is_moe,
          "gradient_as_bucket_view": True}       # gradients live in the all-reduce buckets: one copy fewer
    # buffers (RoPE tables) never change while training: sync them once, at wrap time, not every forward
    sync = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP).parameters else \
        "broadcast_buffers"
    kw[sync] = False
    # compiled after the wrap, so dynamo sees DDP and splits the graph at its gradient buckets (DDPOptimizer):
    # each bucket's all-reduce starts while the backward of the layers below runs. A compiled lean forward
    # wrapped afterwards would be one autograd node whose gradients all arrive at the end of the backward:
    # no overlap (measured 1.56x on 2 GPUs)
    if lean is not None:
        ddp = DDP(_LeanModule(model, lean), **kw)
        return _LeanStep(ddp, torch.compile(ddp) if compile_ else ddp)
    ddp = DDP(model, **kw)
    return torch.compile(ddp) if compile_ else ddp


def accumulating(step_fn, defer: bool):
    """Context for one micro-batch: with `defer` (not the last micro-batch of a step) a DDP forward/backward
    keeps its gradient local (no_sync; FSDP: no reduce-scatter) until the last one; otherwise, or in one
    process, nothing."""
    no_sync = getattr(step_fn, "no_sync", None) if defer else None
    if callable(no_sync):
        return no_sync()
    return deferred_sync(step_fn, defer)
