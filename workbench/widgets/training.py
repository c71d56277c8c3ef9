"""The live training panel: a progress line, a loss curve that grows while training runs, a Stop button,
and for MoE runs a routing-health panel (per-layer load, entropy, aux/z losses, dead-expert alarm).

    panel = TrainingPanel()
    result = panel.run("dense-tiny", corpus, steps=500)     # displays itself, returns the TrainResult

Stopping: press Stop, or interrupt the kernel (the square button). A cell that trains in the foreground keeps
the kernel busy, so there the Stop button interrupts the kernel through the Jupyter server (see
`workbench.widgets.stop`); with `background=True` the run is a thread, the click reaches Python directly and
`panel.wait()` returns the result. Either way the loop ends cleanly after the current step and keeps the model
and its last checkpoint. Updates are throttled to one redraw every `min_interval_s` seconds, so plotting costs
a small, fixed share of training time.

The figures are plain `go.Figure`s (`panel.loss_fig`, and for MoE runs `panel.moe_figs`) shown through
`FigureOutput`s, whose state is the figure last drawn: a reloaded tab or a Voila page draws the run as it stands.
Not plotly's FigureWidget: each of those carries plotly.js itself in its widget state (about 5 MB with plotly 7),
so a page with three of them reloaded 20 MB of state, and on a busy machine the widget manager gave up on the
panels ("Error displaying widget: model not found").
"""
from __future__ import annotations

import html
import threading
import time

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from ..errors import describe_error
from ..train.history import DEAD_SHARE
from ..train import Callback, train
from .figure_output import FigureOutput
from .stop import StopButton

MAX_POINTS = 1500   # points per trace sent to the browser; older steps are thinned


def _thin(x, y):
    if len(x) <= MAX_POINTS:
        return x, y
    idx = np.linspace(0, len(x) - 1, MAX_POINTS).astype(int)
    return [x[i] for i in idx], [y[i] for i in idx]


class TrainingPanel:
    """Progress + live loss curve + Stop; `run()` trains with it, `callback()` plugs it into train()."""

    def __init__(self, title: str = "training", min_interval_s: float = 1.0, display_now: bool = True):
        self.title, self.min_interval_s = title, min_interval_s
        self.result, self.error, self._thread, self._stop = None, None, None, False
        self.bar = W.IntProgress(min=0, max=1, value=0, layout=W.Layout(width="50%"))
        self.status = W.HTML(f"<b>{title}</b>: waiting")
        self.stop_button = StopButton()
        self.stop_button.on_click(lambda _: self.request_stop())
        self.loss_fig = go.Figure()
        self.loss_fig.add_scatter(name="train", mode="lines")
        self.loss_fig.add_scatter(name="validation", mode="lines+markers")
        self.loss_fig.update_layout(title=f"{title}: loss", height=300, xaxis_title="step",
                                    yaxis_title="cross-entropy", margin=dict(l=50, r=20, t=40, b=40))
        self.loss_out = FigureOutput(self.loss_fig)
        self.routing_box = W.VBox([])
        self.alarm = W.HTML("")
        self.widget = W.VBox([W.HBox([self.bar, self.stop_button]), self.status, self.loss_out,
                              self.alarm, self.routing_box])
        self._steps, self._train = [], []
        self._last_draw = 0.0
        self.moe_figs = None          # (expert-load heat map, router entropy and aux/z lines) once an MoE run logs
        self._moe_outs = None
        if display_now:
            self.display()

    def display(self):
        from IPython.display import display
        display(self.widget)

    def _ipython_display_(self):
        self.display()

    def request_stop(self):
        if self._stop or self.stop_button.disabled:      # already asked, or the run has ended (a late click)
            return
        self._stop = True
        self.status.value += " · <i>stopping…</i>"

    def callback(self) -> Callback:
        return _PanelCallback(self)

    def run(self, model_or_preset, corpus, background: bool = False, callbacks=(), **train_kwargs):
        """Train with this panel attached; returns the TrainResult (or the thread when background=True)."""
        cbs = [self.callback(), *callbacks]
        if not background:
            self.stop_button.busy = True            # a click now interrupts the busy kernel
            try:
                self.result = train(model_or_preset, corpus, callbacks=cbs, **train_kwargs)
            finally:
                self.stop_button.busy = False
            return self.result

        def target():
            try:
                self.result = train(model_or_preset, corpus, callbacks=cbs, **train_kwargs)
            except Exception as err:                       # shown inline; never breaks the kernel
                self.error = err
                self.status.value = (f"<b>{self.title}</b>: <span style='color:red'>error: "
                                     f"{html.escape(describe_error(err))}</span>")
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        return self._thread

    def wait(self):
        """Block until a background run ends; returns its TrainResult."""
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self.result

    # --- drawing (called from the callback, throttled) ------------------------------------------------
    def _progress(self, state, rows):
        cfg, r = state.config, rows[-1]
        self.bar.max, self.bar.value = cfg.steps, state.step
        left = (cfg.steps - state.step) * state.tokens_per_step / max(r["tokens_per_s"], 1e-9)
        elapsed = time.perf_counter() - state.start_time
        val = f" · val {state.evals[-1]['val_loss']:.3f}" if state.evals else ""
        self.status.value = (f"<b>{self.title}</b>: step {state.step}/{cfg.steps} "
                             f"({100 * state.step / cfg.steps:.0f}%) · loss {r['lm_loss']:.3f}{val} · "
                             f"{r['tokens_per_s']:,.0f} tok/s · {elapsed:.0f}s elapsed, ~{left:.0f}s left")

    def _draw(self, state, force=False):
        now = time.perf_counter()
        if not force and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        x, y = _thin(self._steps, self._train)
        self.loss_fig.data[0].x, self.loss_fig.data[0].y = x, y
        self.loss_fig.data[1].x = [e["step"] for e in state.evals]
        self.loss_fig.data[1].y = [e["val_loss"] for e in state.evals]
        self.loss_out.show(self.loss_fig)                  # one message; also what a reloaded tab draws
        if state.is_moe and state.history:
            self._draw_routing(state)

    def _draw_routing(self, state):
        last = state.history[-1]
        load = np.asarray(last["expert_load"])                      # (layers, experts)
        n_layers, n_exp = load.shape
        if self.moe_figs is None:
            heat = go.Figure(go.Heatmap(z=load, colorscale="Viridis", zmin=0, zmax=min(1.0, 3.0 / n_exp)))
            heat.update_layout(title="expert load (last step)", xaxis_title="expert", yaxis_title="layer",
                               height=120 + 35 * n_layers, width=480, margin=dict(l=50, r=20, t=40, b=40))
            lines = go.Figure()
            for l in range(n_layers):
                lines.add_scatter(name=f"entropy L{l}", mode="lines")
            lines.add_scatter(name="aux", mode="lines", yaxis="y2", line=dict(dash="dot"))
            lines.add_scatter(name="z", mode="lines", yaxis="y2", line=dict(dash="dash"))
            lines.update_layout(title=f"router entropy (max ln {n_exp} = {np.log(n_exp):.2f}) and aux/z losses",
                                yaxis2=dict(overlaying="y", side="right", title="aux / z"), height=280, width=600,
                                margin=dict(l=50, r=50, t=40, b=40))
            self.moe_figs = (heat, lines)
            self._moe_outs = (FigureOutput(), FigureOutput())
            # side by side where they fit, one under the other on a laptop screen
            self.routing_box.children = [W.HBox(list(self._moe_outs), layout=W.Layout(flex_flow="row wrap"))]
        heat, lines = self.moe_figs
        hist = state.history[-MAX_POINTS:]
        steps = [r["step"] for r in hist]
        ent = np.asarray([r["router_entropy"] for r in hist])
        heat.data[0].z = load
        for l in range(n_layers):
            lines.data[l].x, lines.data[l].y = steps, ent[:, l]
        lines.data[n_layers].x, lines.data[n_layers].y = steps, [r["aux_loss"] for r in hist]
        lines.data[n_layers + 1].x, lines.data[n_layers + 1].y = steps, [r["z_loss"] for r in hist]
        for out, fig in zip(self._moe_outs, self.moe_figs):
            out.show(fig)
        recent = np.asarray([r["expert_load"] for r in hist[-50:]]).mean(0)
        dead = np.argwhere(recent < DEAD_SHARE / n_exp)
        self.alarm.value = ("" if not len(dead) else
                            "<span style='color:red'><b>dead experts</b> (layer, expert): "
                            + ", ".join(f"({l}, {x})" for l, x in dead) + "</span>")


class _PanelCallback(Callback):
    def __init__(self, panel: TrainingPanel):
        self.p = panel

    def on_start(self, state):
        self.p._stop = False
        self.p.stop_button.disabled = False        # a panel runs again (a "train" button in a dashboard)
        self.p._steps = [r["step"] for r in state.history]
        self.p._train = [r["lm_loss"] for r in state.history]

    def on_log(self, state, rows):
        self.p._steps += [r["step"] for r in rows]
        self.p._train += [r["lm_loss"] for r in rows]
        if time.perf_counter() - self.p._last_draw >= self.p.min_interval_s:
            self.p._progress(state, rows)
            self.p._draw(state)
        if self.p._stop:
            state.request_stop("Stop button")

    def on_eval(self, state, row):
        self.p._draw(state, force=True)

    def on_end(self, state):
        if state.history:
            self.p._progress(state, state.history[-1:])
            self.p._draw(state, force=True)
        note = f" · stopped: {state.stop_reason}" if state.stop_reason else " · done"
        self.p.stop_button.disabled = True       # before the status: a page never shows "done" beside a live Stop
        self.p.status.value += note

