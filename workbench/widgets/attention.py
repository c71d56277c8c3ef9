"""Attention and attribution explorer for JupyterLab: ipywidgets for the input, a canvas view for the heat map.

Here: `AttentionExplorer` / `attention_explorer()`. The forward pass runs once per (model, text, generation)
and is cached; its attention (every layer and head) and rollout go to the browser once, in an `AttentionView`
(`attention_view.py`), which shows them as a heat map, the rollout, the model grid or the head view; its
layer/head/mean/view/normalisation/colour and head-view (heads, threshold, query, hover) controls redraw in the
page with no kernel round trip (past 512 tokens or 32 MiB the view fetches one layer at a time; see AttentionView).
`explorer.layer.value` etc. still read and set those controls. Python runs only to compute: a new text, model
or generation, or an attribution. Errors and warnings are shown inside the widget. "save HTML" (or
`explorer.to_html(path)`) writes the view with its controls as one file that works offline (`standalone`).
Not here: compute (`workbench.probes`), figures (`workbench.plots.attention`), the view (`attention_view`).
"""
from __future__ import annotations

import html
import warnings
from pathlib import Path

import ipywidgets as W
import numpy as np

from ..config import DEFAULT_MODELS
from ..errors import describe_error
from ..plots import attention as plots
from ..probes import attention as probe
from ..probes.attribution import METHODS, attribute_ids
from ..probes.rollout import attention_rollout
from .attention_view import COLORSCALES, VIEWS, AttentionView
from .canvas import TraitControl
from .standalone import HTML_MAX_BYTES, save_html_row

SAMPLES = {
    "Lily and the ball": "Once upon a time, there was a little girl named Lily. She liked to play with her red "
                         "ball in the park. One day, her dog Max ran away with the ball. Lily ran after Max.",
    "Tom's boat": "Tom had a big blue boat. He went to the lake with his mom. The boat was fast and Tom was happy.",
    "repeated names": "Ben gave Anna a cake. Anna gave Ben a hug. Ben gave Anna a kiss and Anna gave Ben",
    "bytes and symbols": "Zoë ate crème brûlée ☃ 🙂 at 3:45!",
}


def _html_msg(kind: str, text: str) -> str:
    color = {"error": "#b00020", "warning": "#8a6d00", "info": "#2f5f8a"}[kind]
    return f'<div style="color:{color};white-space:pre-wrap">{kind}: {html.escape(text)}</div>'


class AttentionExplorer:
    """Text/model controls around one cached AttentionRecord and its AttentionView; `widget` is what a notebook
    shows. `layer`, `head`, `mean`, `view`, `norm`, `cmap`, and the head view's `heads`, `threshold` and `query`
    are TraitControls of the view (`.value` get/set)."""

    def __init__(self, model=None, tok=None, text: str | None = None, name: str = "model",
                 max_tokens: int = 128, models: dict | None = None, note: str = ""):
        self.max_tokens = max_tokens
        self._models = dict(models or {})            # name -> (model, tok): what the picker offers
        if model is not None:
            self._models[name] = (model, tok)
        for default, path in DEFAULT_MODELS.items():  # defaults present in data/ load lazily on first use
            if (path / "config.json").exists():
                self._models.setdefault(default, None)
        self._cache: dict = {}
        self._model_notes: dict = {name: note} if note else {}   # name -> note shown while that model is in use
        self.rec = None
        self._rollout = None
        self._build(text or next(iter(SAMPLES.values())), name if model is not None else "tiny-dense")
        self.compute()

    # ------------------------------------------------------------------ layout
    def _build(self, text: str, model_name: str) -> None:
        s = W.Layout
        self.sample = W.Dropdown(options=["(own text)"] + list(SAMPLES), value="(own text)", description="sample")
        self.text = W.Textarea(value=text, description="text", layout=s(width="95%", height="60px"))
        self.model = W.Dropdown(options=list(self._models), value=model_name, description="model")
        self.model_dir = W.Text(placeholder="or a local Hugging Face model directory", layout=s(width="320px"))
        self.generate = W.Checkbox(value=False, description="generate", indent=False, layout=s(width="90px"))
        self.n_new = W.BoundedIntText(value=8, min=1, max=64, description="new tokens", layout=s(width="160px"))
        self.run = W.Button(description="compute", button_style="primary")
        self.heat = AttentionView()                    # the heat map and its controls, in the browser
        self.layer = TraitControl(self.heat, "layer", lambda: self.heat.n_layers - 1)
        self.head = TraitControl(self.heat, "head", lambda: self.heat.n_heads - 1)
        self.mean = TraitControl(self.heat, "mean")
        self.view = TraitControl(self.heat, "view", options=VIEWS)
        self.norm = TraitControl(self.heat, "norm", options=tuple(plots.NORMALIZATIONS))
        self.cmap = TraitControl(self.heat, "colorscale", options=COLORSCALES)
        self.heads = TraitControl(self.heat, "heads")
        self.threshold = TraitControl(self.heat, "threshold")
        self.query = TraitControl(self.heat, "query", lambda: self.heat.n_tokens - 1)
        self.target = W.Dropdown(options=[], description="target")
        self.method = W.Dropdown(options=METHODS, value=METHODS[0], description="method")
        self.explain = W.Button(description="attribute")
        self.status = W.HTML()
        self.attr_fig = None                           # the last attribution figure (plotly)
        self.attr_out = W.Output()                     # shows it as a plain plotly output: survives a page reload
        self.save = save_html_row(self.to_html, "attention.html")   # the view as one offline HTML file
        self.sample.observe(self._on_sample, "value")
        self.run.on_click(lambda _: self.compute())
        self.model.observe(lambda _: self.compute(), "value")
        self.explain.on_click(lambda _: self._guard(self.attribute))
        self.widget = W.VBox([
            W.HBox([self.sample, self.model, self.model_dir]), self.text,
            W.HBox([self.generate, self.n_new, self.run]), self.status,
            self.heat, self.save, W.HBox([self.target, self.method, self.explain]), self.attr_out])
        self.widget.add_class("wb-attention-explorer")

    # ------------------------------------------------------------------ helpers
    def _guard(self, fn) -> None:
        """Run a callback; any error is shown in the widget instead of breaking the kernel."""
        try:
            fn()
        except Exception as e:   # noqa: BLE001 (shown to the user, inline)
            self.status.value = _html_msg("error", describe_error(e))

    def _on_sample(self, change) -> None:
        if change["new"] in SAMPLES:
            self.text.value = SAMPLES[change["new"]]
            self.compute()

    def _model(self):
        path = self.model_dir.value.strip()
        key = path or self.model.value
        if self._models.get(key) is None:
            if path:
                from ..models import load_model
                self._models[key] = load_model(path, attn_implementation="eager", local_only=True)
            else:
                m, t, note = probe.load_or_tiny(key)
                self._models[key] = (m, t)
                self._model_notes[key] = note
        return key, self._models[key]

    # ------------------------------------------------------------------ compute (once per input) and render
    def compute(self) -> None:
        """Forward pass for the current text/model/generation settings (cached), then re-render."""
        self._guard(self._compute)

    def _compute(self) -> None:
        key, (model, tok) = self._model()
        gen = self.generate.value
        cache_key = (key, self.text.value, gen, self.n_new.value if gen else 0)
        if cache_key not in self._cache:
            with warnings.catch_warnings():           # truncation etc. are shown in the widget instead
                warnings.simplefilter("ignore")
                self._cache[cache_key] = self._record(model, tok, key, gen)
        self.rec, self._rollout = self._cache[cache_key]
        self._set_ranges()
        notes = [n for n in [self._model_notes.get(key, "")] if n] + list(self.rec.warnings)
        self.status.value = "".join(_html_msg("warning", n) for n in notes)
        self.heat.set_record(self.rec, self._rollout, model_name=self.rec.model_name)

    def _record(self, model, tok, key: str, gen: bool):
        if gen:
            rec = probe.generation_record(model, tok, self.text.value, self.n_new.value,
                                          max_tokens=self.max_tokens, name=key)
        else:
            rec = probe.attention_record(model, tok, self.text.value, max_tokens=self.max_tokens, name=key)
        return rec, attention_rollout(rec.weights)

    def _set_ranges(self) -> None:
        rec = self.rec
        self.target.options = [(f"{i}: {rec.tokens[i]!r}", i) for i in range(1, rec.n_tokens)]
        self.target.value = rec.n_tokens - 1 if rec.n_tokens > 1 else None

    def current_z(self) -> np.ndarray:
        """(T, T) the matrix the heat map shows for the current controls (from the cache only)."""
        return self.heat.current_z()

    def title(self) -> str:
        """The heat map's title for the current controls, e.g. "layer 1 head 0 (tiny)"."""
        return self.heat.title()

    def to_html(self, path, kind: str = "canvas", max_bytes: int = HTML_MAX_BYTES) -> Path:
        """Save the current record as one self-contained HTML file that works offline, with no kernel; returns
        the path written (".html" added when missing).

        kind="canvas" (default): the view with all its controls (heat map, rollout, grid and head view; layer,
        head, mean, norm, colours, heads, threshold, query) and every layer and head inline, starting at the current
        controls (`AttentionView.to_html`;
        about 0.9 MB for 4 layers x 4 heads x 128 tokens; ValueError past `max_bytes` of payload, naming the
        size and a token count that fits). kind="plotly": the older plotly figure with one slider over every
        (layer, head) pair, plotly.js inline (`plots.attention_slider` + `plots.export.save_html`, about 5 MB).
        ValueError when nothing is computed yet or for another `kind`."""
        if self.rec is None:
            raise ValueError("nothing to save yet: compute attention for a text first")
        if kind == "canvas":
            return self.heat.to_html(path, max_bytes=max_bytes)
        if kind == "plotly":
            from ..plots.attention import attention_slider
            from ..plots.export import save_html
            fig = attention_slider(self.rec, self.norm.value, self.cmap.value,
                                   title_suffix=f" ({self.rec.model_name})")
            return save_html(fig, path)
        raise ValueError(f"unknown kind {kind!r}: use 'canvas' (the view with its controls) or 'plotly'")

    def attribute(self) -> None:
        """Attribution of the picked target token to the tokens before it (cached per target and method)."""
        if self.rec is None or self.target.value is None:
            raise ValueError("nothing to attribute: compute a text with at least two tokens first")
        key, (model, tok) = self._model()
        pos = int(self.target.value)
        ids = [int(i) for i in self.rec.token_ids]
        cache_key = ("attr", key, tuple(ids[:pos + 1]), self.method.value)
        if cache_key not in self._cache:
            self._cache[cache_key] = attribute_ids(model, tok, ids[:pos], [ids[pos]], self.method.value, name=key)
        attr = self._cache[cache_key]
        self.attr_fig = plots.attribution_bars(attr)
        self.attr_out.outputs = (_plotly_output(self.attr_fig),)
        note = f"attribution of {attr.target_tokens[0]!r} at position {pos}"
        if attr.method == "integrated_gradients":
            total, diff = attr.completeness()
            note += f"; completeness: sum {total:.3f} vs Δlog p {diff:.3f} (gap {attr.delta:.3f})"
        self.status.value = _html_msg("info", note)
        self.last_attribution = attr


def _plotly_output(fig) -> dict:
    """A display_data output of a plotly figure (rendered by JupyterLab's plotly mime renderer; an Output widget
    keeps it, so it comes back after a page reload, unlike a FigureWidget)."""
    import json

    import plotly.io as pio
    return {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.plotly.v1+json": json.loads(pio.to_json(fig, validate=False)),
                     "text/plain": f"<{fig.layout.title.text}>"}}


def attention_explorer(model=None, tok=None, text: str | None = None, name: str = "model", max_tokens: int = 128,
                       **kw) -> W.Widget:
    """The explorer's widget (keep the AttentionExplorer via `attention_explorer(...).explorer` if needed).

    Texts are cut to `max_tokens` tokens (a warning says so). The browser holds the text's attention as float16:
    layers x heads x tokens^2 x 2 bytes plus the rollout (4 x 4 x 128^2: 640 KiB); past 512 tokens or 32 MiB
    the view fetches one layer at a time from the kernel (AttentionView)."""
    ex = AttentionExplorer(model, tok, text, name=name, max_tokens=max_tokens, **kw)
    ex.widget.explorer = ex
    return ex.widget
