"""CUDA graphs for the training step: after a few eager steps, one optimizer step (every micro-batch's forward and
backward, the gradient clipping and the fused AdamW update) is captured once as a CUDA graph and then replayed,
so a step costs one launch instead of one per kernel (Nguyen et al., "Accelerating PyTorch with CUDA Graphs",
PyTorch blog 2021; the "whole network capture" recipe of PyTorch's CUDA semantics notes).

Why: a small model's eager step is bound by the host launching its kernels, not by the GPU running them
(measured on an H200: a width-512 model's step issues 671 kernels, an MoE's 1,300-1,800, and on a slower host
CPU the step took 30-60 ms while the GPU was busy for 20-40 ms of it). Replaying a graph removes that cost.

The maths is the eager step's: the same forward (`kernels.gpu_forward(..., graph_safe=True)`: no host syncs, so
the output layer's cross-entropy in plain ops and MoE experts as grouped GEMMs), the same losses and the same
AdamW, reading the scheduled learning rate from a device tensor that is refilled before each replay. The
micro-batches are copied into fixed input buffers; gradients live in the graph's memory pool between steps.
Random numbers (MoE jitter, expert output masking) advance on each replay as eagerly. Under `compile=True` the
graph holds the torch.compiled forward and backward (Inductor's fused Triton kernels, compiled during the warm-up
steps), the way torch.compile's own mode="reduce-overhead" would, but around the whole step with its optimizer.
What cannot be captured falls back to eager steps with a warning (a host sync in a custom hook, say): the first
graph step runs eagerly with host syncs made errors, so such a step is found before any capture starts.
"""
from __future__ import annotations

import time
import warnings

import torch

from .kernels import gpu_forward
from .losses import compute_loss

WARMUP_STEPS = 3   # eager steps before the capture: Triton compiles, cuBLAS workspaces, cached RoPE tables


def ineligible(cfg, device, lean, world: int, teacher, pairs: bool, optimizer) -> str:
    """Why this run cannot replay its steps as a CUDA graph ('' when it can)."""
    reasons = [(device.type != "cuda", "it needs a CUDA device"),
               (world > 1, "a data-parallel run synchronises gradients across processes"),
               (lean is None, "the model has no lean forward (kernels='none', or an architecture it does not cover)"),
               (teacher is not None, "distillation runs the teacher eagerly"),
               (pairs, "translation pairs have a different length each batch"),
               (cfg.gating_dropout_p > 0, "gating dropout draws on the host whether a layer drops its routing"),
               (not isinstance(optimizer, torch.optim.AdamW) or not optimizer.defaults.get("fused"),
                "the optimizer is not the fused AdamW")]
    return next((why for bad, why in reasons if bad), "")


def step_graph(state, optimizer, params, device, lean, world: int, pairs: bool, kernels: str):
    """The run's StepGraph (`state`: the loop's TrainState), or None: cuda_graph False, or None and the run cannot
    have one (`ineligible`). `kernels`: the lean CUDA forward's kernels ("liger" or "torch"). Raises ValueError
    when cuda_graph=True and the run cannot have one, saying why."""
    cfg, model = state.config, state.model
    if cfg.cuda_graph is False:
        return None
    why = ineligible(cfg, device, lean, world, state.teacher, pairs, optimizer)
    if why:
        if cfg.cuda_graph:
            raise ValueError(f"cuda_graph=True: {why}; leave cuda_graph unset (automatic) or pass cuda_graph=False")
        return None
    forward = gpu_forward(model, kernels, graph_safe=True, fuse_qkv=not cfg.compile)
    return StepGraph(torch.compile(forward) if cfg.compile else forward, model, optimizer, params, cfg,
                     state.is_moe, device)


class StepGraph:
    """One optimizer step as a CUDA graph. `forward`: a graph-safe lean forward (torch.compiled or not); the other
    arguments as the loop's `_train_step` has them. `step(data, step, timing)` runs optimizer step `step` on the
    run's TokenData and returns its records (device tensors, the loop's keys), or None once `failed` (the caller
    then steps eagerly, for good). The first WARMUP_STEPS calls run the step's body eagerly, the next call checks
    it for host syncs, the one after captures it, and later calls replay it. `failed` holds the reason when the
    check or the capture did not work."""

    def __init__(self, forward, model, optimizer, params, cfg, is_moe: bool, device):
        self.forward, self.model, self.optimizer, self.params = forward, model, optimizer, params
        self.cfg, self.is_moe, self.device = cfg, is_moe, device
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = ""
        self.checked = False
        self.warm = 0
        self.xs: list = []
        self.ys: list = []
        self.lrs: list = []
        self.out: dict = {}

    def step(self, data, step: int, timing) -> dict | None:
        """One step, or None when the caller should run it eagerly (`failed`). The first WARMUP_STEPS steps run
        the graph's body eagerly (compiling it under torch.compile), the next is the check: the body run eagerly
        with host syncs made errors (a failed capture can leave CUDA's random number generator unusable); when
        it fails, nothing was applied, `failed` says why and the caller runs this step eagerly."""
        if self.failed:
            return None
        cfg = self.cfg
        batches = [data.batch(step, micro, cfg.batch_size, cfg.grad_accum, cfg.seed) for micro in range(cfg.grad_accum)]
        t0 = time.perf_counter()
        if not self.xs:
            self.xs = [torch.empty_like(x, device=self.device) for x, _ in batches]
            self.ys = [torch.empty_like(y, device=self.device) for _, y in batches]
        for (x, y), sx, sy in zip(batches, self.xs, self.ys):
            sx.copy_(x.pin_memory(), non_blocking=True)
            sy.copy_(y.pin_memory(), non_blocking=True)
        t1 = time.perf_counter()
        if self.warm < WARMUP_STEPS:
            self.warm += 1
            out = self._body(cfg)
            self.optimizer.zero_grad(set_to_none=True)
        elif not self.checked:
            out = self._check()
        else:
            if self.graph is None and not self._capture():
                return None
            for g, lr in zip(self.optimizer.param_groups, self.lrs):
                lr.fill_(float(g["lr"]))
            self.graph.replay()
            out = {k: v.clone() for k, v in self.out.items()}
        timing["data"] += t1 - t0
        timing["compute"] += time.perf_counter() - t1
        return None if out is None else out | {"step": step, "t": time.perf_counter()}

    def _check(self) -> dict | None:
        """The step run eagerly through the graph's body, host syncs raising (torch.cuda.set_sync_debug_mode)."""
        mode = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings():     # "a prototype feature": said once per switch, not news to a user
            warnings.simplefilter("ignore", UserWarning)
            torch.cuda.set_sync_debug_mode("error")
        try:
            out = self._body(self.cfg)
        except RuntimeError as err:
            return self._fail(err)
        finally:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                torch.cuda.set_sync_debug_mode(mode)
        self.optimizer.zero_grad(set_to_none=True)
        self.checked = True
        return out

    def _fail(self, err) -> None:
        self.failed = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        self.out, self.xs, self.ys = {}, [], []
        self.optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize(self.device)
        warnings.warn(f"CUDA graph capture failed ({self.failed}); training continues with eager steps "
                      "(cuda_graph=False skips the attempt)", RuntimeWarning, stacklevel=4)

    def release(self) -> None:
        """Free the graph and its memory pool; the gradients it held become None, as after an eager step."""
        if self.graph is not None:
            self.optimizer.zero_grad(set_to_none=True)
        self.graph, self.out, self.xs, self.ys = None, {}, [], []

    def _capture(self) -> bool:
        opt = self.optimizer
        saved = [(g["lr"], g.get("capturable", False)) for g in opt.param_groups]
        self.lrs = [torch.tensor(float(g["lr"]), device=self.device) for g in opt.param_groups]
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        try:
            for g, lr in zip(opt.param_groups, self.lrs):
                g["lr"], g["capturable"] = lr, True
            with torch.cuda.graph(graph):
                self.out = self._body(self.cfg)
        except RuntimeError as err:        # an op CUDA graphs cannot hold that the check did not catch
            self._fail(err)
            return False
        finally:
            for g, (lr, cap) in zip(opt.param_groups, saved):
                g["lr"], g["capturable"] = lr, cap
        self.graph = graph
        return True

    def _body(self, cfg) -> dict:
        """The captured step: the loop's `_train_step` with fixed inputs."""
        totals: dict = {}
        n = len(self.xs)
        for x, y in zip(self.xs, self.ys):
            with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
                losses = compute_loss(self.forward, self.model, x, y, self.is_moe, cfg)
            (losses["loss"] / n).backward()
            for k, v in losses.items():
                totals[k] = totals.get(k, 0) + v.detach() / n
        if cfg.grad_clip:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip, foreach=True)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None],
                                                      foreach=True)
        self.optimizer.step()
        return totals | {"grad_norm": grad_norm.detach()}
