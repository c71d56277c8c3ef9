"""Training callbacks: hooks the loop calls at log intervals, evaluations, samples, checkpoints and the end.

The loop never calls a callback per step: `on_log` gets the rows of the last `log_every` steps at once,
so progress bars and live plots cost (almost) nothing. On one GPU those rows arrive one window late (after
the next window's steps have run; evaluations, samples, checkpoints and the end catch up). A callback stops
training with `state.request_stop(reason)`; the loop then ends cleanly and saves a checkpoint.
"""
from __future__ import annotations

import math
import sys
import time


class Callback:
    """Base class: override what you need. `state` is the loop's live TrainState."""

    def on_start(self, state) -> None: ...

    def on_log(self, state, rows: list[dict]) -> None: ...

    def on_eval(self, state, row: dict) -> None: ...

    def on_sample(self, state, step: int, texts: list[str]) -> None: ...

    def on_checkpoint(self, state, path) -> None: ...

    def on_end(self, state) -> None: ...


class PrintProgress(Callback):
    """Plain progress lines for the command line: step, loss, lr, tokens/s, ETA (and val loss)."""

    def __init__(self, every_s: float = 2.0, stream=None):
        self.every_s, self.stream, self._last = every_s, stream or sys.stderr, 0.0

    def __getstate__(self):       # pickles (train(devices=N) sends callbacks to its processes): std streams by name
        names = {id(sys.stderr): "stderr", id(sys.stdout): "stdout"}
        return {**self.__dict__, "stream": names.get(id(self.stream), self.stream)}

    def __setstate__(self, state):
        self.__dict__.update(state)
        if isinstance(self.stream, str):
            self.stream = getattr(sys, self.stream)

    def on_log(self, state, rows):
        now = time.perf_counter()
        if now - self._last < self.every_s and state.step < state.config.steps:
            return
        self._last = now
        r = rows[-1]
        extra = f" aux {r['aux_loss']:.3f} z {r['z_loss']:.3f}" if "aux_loss" in r else ""
        left = (state.config.steps - state.step) * state.tokens_per_step / max(r["tokens_per_s"], 1e-9)
        print(f"step {state.step:>6}/{state.config.steps} loss {r['loss']:.4f}{extra} lr {r['lr']:.2e} "
              f"{r['tokens_per_s']:,.0f} tok/s eta {left:,.0f}s", file=self.stream, flush=True)

    def on_eval(self, state, row):
        print(f"step {row['step']:>6} val_loss {row['val_loss']:.4f} val_ppl {row['val_ppl']:.2f}",
              file=self.stream, flush=True)

    def on_sample(self, state, step, texts):
        for t in texts[:1]:
            print(f"step {step:>6} sample: {t[:200]!r}", file=self.stream, flush=True)

    def on_end(self, state):
        if state.stop_reason:
            print(f"stopped: {state.stop_reason}", file=self.stream, flush=True)


class StopAfter(Callback):
    """Stop once `step` optimizer steps are done (for tests and demos of stop/resume)."""

    def __init__(self, step: int):
        self.step = step

    def on_log(self, state, rows):
        if state.step >= self.step:
            state.request_stop(f"stopped after step {state.step} by StopAfter")


class StopAtLoss(Callback):
    """Stop when the validation loss first reaches `target` (time-to-target benchmarks)."""

    def __init__(self, target: float):
        self.target, self.reached_at = target, math.nan

    def on_eval(self, state, row):
        if row["val_loss"] <= self.target and math.isnan(self.reached_at):
            self.reached_at = time.perf_counter() - state.start_time
            state.request_stop(f"val_loss {row['val_loss']:.3f} <= {self.target}")
