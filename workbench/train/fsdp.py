"""Fully sharded data parallel (FSDP2, `torch.distributed.fsdp.fully_shard`): the option for models whose weights,
gradients and optimizer state do not fit one GPU.

`TrainConfig.fsdp=True` in a run of several processes (`workbench train ... --nproc-per-node N --fsdp`, or
`train(..., devices=N, fsdp=True)`) shards every transformer block (the classes the model names in its own
`_no_split_modules`: LlamaDecoderLayer, MixtralDecoderLayer, T5Block, ...) and then the rest (embeddings, final
norm, a tied output layer) across the ranks (Zhao et al. 2023, "PyTorch FSDP: Experiences on Scaling Fully Sharded
Data Parallel", arXiv:2304.11277). Each rank keeps 1/N of every parameter, of its gradient and of its AdamW
moments: per rank about 16 P / N bytes of training state for P float32 parameters, instead of DDP's 16 P. A
block's weights are all-gathered for its forward and again for its backward and freed after each, and its
gradients are reduce-scattered, so the update equals DDP's and the single-process run's up to float rounding
(tests compare the three). Everything else of a distributed run (batch shards, rank 0 writes, stop decisions)
is as in `distributed`.

What needs the whole model gathers it, a collective every rank joins:
- evaluation, sampling, checkpoints and the final model use a plain copy of the model (its own transformers
  class, loaded from the full state dict) that only rank 0 holds: one more copy of the weights on rank 0's
  device (4 P bytes), none of gradients or optimizer state;
- checkpoints hold the full optimizer state numbered as `optimizer.state_dict()` numbers a single process's
  parameters, so a checkpoint resumes with any number of processes, sharded or not.
The lean forwards (the CPU fast path, the CUDA kernels) read weights directly and would bypass the blocks'
all-gather hooks, so a sharded run trains through the model's own forward.
"""
from __future__ import annotations

import contextlib
import copy

import torch
import torch.distributed as dist


def is_sharded(model) -> bool:
    """True when `fully_shard` has been applied to `model` (its class is then an FSDPModule)."""
    from torch.distributed.fsdp import FSDPModule
    return isinstance(model, FSDPModule)


def shard(model) -> None:
    """Shard `model` in place across the process group: each transformer block, then the root.

    Every rank must call it with the same architecture; rank 0's weights and buffers are broadcast first (each
    rank keeps its own slice of them), so ranks may have initialised differently. Raises ValueError when the
    model names no block classes in `_no_split_modules` (train it with DDP instead: fsdp=False)."""
    from torch.distributed.fsdp import fully_shard
    names = set(getattr(model, "_no_split_modules", None) or ())
    blocks = [m for m in model.modules() if type(m).__name__ in names]
    if not blocks:
        raise ValueError(f"fsdp=True shards a model block by block, but {type(model).__name__} names no block "
                         "classes in _no_split_modules: train it with DDP (fsdp=False)")
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, 0)
    for block in blocks:
        fully_shard(block)
    fully_shard(model)


def plain_class(model) -> type:
    """The model's own class under the FSDP subclass `fully_shard` swapped in (e.g. LlamaForCausalLM)."""
    from torch.distributed.fsdp import FSDPModule
    return next(c for c in type(model).__mro__[1:] if not issubclass(c, FSDPModule))


def full_model(model, twin=None):
    """Collective: gather the sharded `model`'s full weights; rank 0 gets a plain copy of the model's class on the
    model's device (`twin`, reused when given), the other ranks None.

    The copy is in eval mode and has none of the training-time hooks; weights are copied, not shared, so training
    the sharded model does not change it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if dist.get_rank() != 0:
        return None
    device = next(model.parameters()).device
    if twin is None:
        twin = plain_class(model)(copy.deepcopy(model.config))
        twin.generation_config = copy.deepcopy(model.generation_config)
        twin.to(device)
    twin.load_state_dict(state)
    return twin.eval()


def full_optimizer_state(model, optimizer) -> dict | None:
    """Collective: the optimizer's full state on rank 0 (None elsewhere), on the CPU, in `optimizer.state_dict()`'s
    layout for the unsharded model: parameters numbered 0, 1, ... in the order of the param groups."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict
    by_name = get_optimizer_state_dict(model, optimizer,
                                       options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if dist.get_rank() != 0:
        return None
    names = _names(model, optimizer)
    number = {name: i for i, name in enumerate(names)}
    return {"state": {number[k]: v for k, v in by_name["state"].items()},
            "param_groups": [{**g, "params": [number[n] for n in g["params"]]} for g in by_name["param_groups"]]}


def load_optimizer_state(model, optimizer, saved: dict) -> None:
    """Load a full optimizer state in `optimizer.state_dict()`'s numbered layout (a checkpoint of any run) into
    the sharded model's optimizer; every rank calls it with the same `saved`. Raises ValueError when the saved
    state numbers more parameters than the model has (a checkpoint of another model)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
    names = _names(model, optimizer)
    numbers = [i for g in saved["param_groups"] for i in g["params"]]
    if len(numbers) != len(names):
        raise ValueError(f"the checkpoint's optimizer state has {len(numbers)} parameters, the model "
                         f"{len(names)}: resume a checkpoint of this model")
    by_name = {"state": {names[i]: v for i, v in saved["state"].items()},
               "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in saved["param_groups"]]}
    set_optimizer_state_dict(model, optimizer, by_name, options=StateDictOptions(full_state_dict=True))


def _names(model, optimizer) -> list[str]:
    """Parameter names in the optimizer's order (its param groups, each in its own order)."""
    name = {id(p): n for n, p in model.named_parameters()}
    return [name[id(p)] for g in optimizer.param_groups for p in g["params"]]


@contextlib.contextmanager
def deferred_sync(step_fn, defer: bool):
    """For a micro-batch that is not the last of its step (`defer`): keep the sharded gradients local (no
    reduce-scatter) until the last micro-batch's backward, as DDP's no_sync does."""
    setter = getattr(step_fn, "set_requires_gradient_sync", None)
    if not defer or setter is None:
        yield
        return
    setter(False)
    try:
        yield
    finally:
        setter(True)
