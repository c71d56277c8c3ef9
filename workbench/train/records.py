"""A run's per-step records on their way from the device to the history: each window of `log_every` steps is
stacked on the device, copied to the host, checked for a non-finite loss and handed to the callbacks.

`flush` does it at once (one host sync). On one GPU the loop stages a window (`stage`: an asynchronous copy into
pinned memory) and publishes the previous one (`publish`), so the GPU keeps running the next steps while the host
logs; the callbacks then see each window one window late.
"""
from __future__ import annotations

import time

import torch

from . import distributed


class NonFiniteLoss(RuntimeError):
    """The loss of optimizer step `step` (1-based, as in the history) is NaN or infinite."""

    def __init__(self, step: int):
        super().__init__(f"non-finite loss at step {step}")
        self.step = step


def flush(state, pending, t_window, callbacks) -> float:
    """Move pending per-step tensors to the history (one host sync); raise on a non-finite loss."""
    return publish(state, stage(state, pending), t_window, callbacks)


def stage(state, pending) -> dict | None:
    """Start moving the pending per-step records to the host and empty `pending`: each record stacked on its
    device (the ranks' mean across processes) and copied into pinned host memory without waiting for the GPU.
    Returns the window for `publish` (None when nothing is pending)."""
    if not pending:
        return None
    keys = [k for k in pending[0] if k not in ("step", "t")]
    stacked = {k: torch.stack([torch.as_tensor(r[k]) for r in pending]).float() for k in keys}
    ranks = distributed.Ranks(getattr(state, "rank", 0), getattr(state, "world_size", 1))
    host, event = {}, None
    for k, v in distributed.mean_over_ranks(stacked, ranks).items():      # ranks' mean
        if v.is_cuda:
            host[k] = torch.empty(v.shape, dtype=v.dtype, pin_memory=True).copy_(v, non_blocking=True)
            event = event or torch.cuda.Event()
        else:
            host[k] = v
    if event is not None:
        event.record()
    window = {"steps": [r["step"] for r in pending], "t": pending[-1]["t"], "host": host, "event": event}
    pending.clear()
    return window


def publish(state, window, t_window, callbacks, lagged: bool = False) -> float:
    """Wait for a staged window's copy, raise NonFiniteLoss on a non-finite loss, else append its rows to the
    history and hand them to the callbacks. Returns the start of the next window: now, or with `lagged` (the
    window published while the next one runs on the GPU) the launch time of the window's last step."""
    if window is None:
        return t_window
    if window["event"] is not None:
        window["event"].synchronize()
    stacked, steps = window["host"], window["steps"]
    bad = (~torch.isfinite(stacked["loss"])).nonzero()
    if len(bad):
        raise NonFiniteLoss(steps[int(bad[0])] + 1)
    tps = len(steps) * state.tokens_per_step / max(window["t"] - t_window, 1e-9)
    rows = []
    for i, step in enumerate(steps):
        row = {"step": step + 1}
        for k, v in stacked.items():
            row[k] = v[i].tolist() if v[i].dim() else float(v[i])
        row["tokens_per_s"] = tps
        rows.append(row)
    state.history.extend(rows)
    for cb in callbacks:
        cb.on_log(state, rows)
    return window["t"] if lagged else time.perf_counter()
