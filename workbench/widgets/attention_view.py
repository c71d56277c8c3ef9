"""Attention as a client-side view: every layer and head of one input in the browser, the controls there.

Here: `AttentionView` (an anywidget; JavaScript in js/attention.js and js/heads.js) and `attention_view(rec)`. The
browser holds the input's attention once, as float16 bytes, and draws four pictures of it on a <canvas> (`view`):
    "attention"  one head's (or the mean of heads') query x key heat map; layer/head sliders, mean, normalisation
    "rollout"    the rollout through the chosen layer (probes.rollout)
    "grid"       the model grid: every layer x head as small multiples on one colour scale (plots.model_grid);
                 the layer/head sliders (or a click on a cell) outline the selected cell; normalisation, colours
    "head view"  bertviz-style lines from each query (left) to the keys it attends to (right), one colour per head,
                 opacity following the weight (plots.head_view); `heads` toggles, `threshold` (weights below it
                 are not drawn), `query` (-1: every query; a click on a left token pins it); hovering a token
                 shows only its lines (hover stays in the page, it is not a trait)
Every control redraws in the page (no kernel round trip, no plotly). Their values are synced traits: Python reads
`view.layer` etc., and a reloaded page shows what the controls say. `static_figure()` is the plotly figure of what
is shown (PNG/SVG/PDF export through workbench.plots.export).

Memory held by the browser per input, float16 (decoded to float32 once there, so about twice this in use); the
grid and the head view draw from the same data, nothing more is sent for them:
    weights  L x H x T x T x 2 bytes      e.g. 4 layers x 4 heads x 128^2  = 512 KiB
    rollout  L x T x T x 2 bytes          e.g. 4 layers x 128^2            = 128 KiB
    grid     one RGBA image of the cells, L x H x min(T, cell)^2 x 4 bytes (cell <= 140 px): 4 x 4 x 128^2 = 1 MiB
Past `max_tokens_full` tokens (512) or `max_bytes_full` bytes (32 MiB: e.g. 12 layers x 12 heads x 256^2 is
18 MiB, x 512^2 is 74 MiB) the view switches to on-demand mode (`on_demand` True): only the current layer is sent,
and Python sends the next one when the layer slider moves (one kernel round trip per layer change; heads, mean,
normalisation, colours, head-view heads, threshold, query and hover stay in the browser). In on-demand mode the
grid shows the current layer's heads only (one row; the note under it says so).
`view.to_html(path)` saves the view as one HTML file that keeps its controls offline (`standalone`): every layer,
even in on-demand mode, up to `standalone.HTML_MAX_BYTES` of payload.
Not here: computing attention (`workbench.probes.attention`), static figures (`workbench.plots.attention`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import traitlets as T

from ..plots.attention import HEAD_COLORS, NORMALIZATIONS, heatmap_title, heatmap_z
from . import standalone
from .canvas import BaseView, CSS, MiB, colorscale_stops, esm, f16

COLORSCALES = ("Viridis", "Blues", "Magma", "Cividis", "Greys")
VIEWS = ("attention", "rollout", "grid", "head view")


class AttentionView(BaseView):
    """Heat map of one input's attention (query rows, key columns) with its controls, drawn in the browser.

    Payload traits (set by `set_record`): `weights` float16 bytes of shape (len(blocks), n_heads, n_tokens,
    n_tokens), `rollout` float16 bytes (len(blocks), n_tokens, n_tokens), `blocks` the layers they hold.
    Control traits (synced both ways): `layer`, `head`, `mean`, `view` (one of VIEWS), `norm` (a key of
    plots.attention.NORMALIZATIONS), `colorscale` (one of COLORSCALES), and for the head view `heads` (sorted head
    ids drawn), `threshold` (weights below it are not drawn, 0 <= threshold < 1), `query` (the pinned query token,
    -1 for every query). Setting a control out of range raises traitlets.TraitError naming the valid range.
    """
    _esm = esm("heads", "attention")
    _css = CSS
    max_tokens_full = 512
    max_bytes_full = 32 * MiB

    tokens = T.List(T.Unicode()).tag(sync=True)          # display text of each token
    n_tokens = T.Int(0).tag(sync=True)
    n_layers = T.Int(1).tag(sync=True)
    n_heads = T.Int(1).tag(sync=True)
    n_prompt = T.Int(0).tag(sync=True)                    # tokens after this one were generated (dashed line)
    causal = T.Bool(True).tag(sync=True)
    model_name = T.Unicode("model").tag(sync=True)
    titles = T.Dict().tag(sync=True)                      # shown() key ("attention L1 H0") -> title
    weights = T.Bytes(b"").tag(sync=True)
    rollout = T.Bytes(b"").tag(sync=True)
    blocks = T.List(T.Int()).tag(sync=True)
    on_demand = T.Bool(False).tag(sync=True)
    layer = T.Int(0).tag(sync=True)
    head = T.Int(0).tag(sync=True)
    mean = T.Bool(False).tag(sync=True)
    view = T.Unicode("attention").tag(sync=True)
    norm = T.Unicode("none").tag(sync=True)
    colorscale = T.Unicode("Viridis").tag(sync=True)
    norms = T.List(T.Unicode(), default_value=list(NORMALIZATIONS)).tag(sync=True)
    colorscales = T.Dict().tag(sync=True)
    size = T.Int(520).tag(sync=True)                      # largest side of the map in CSS pixels
    heads = T.List(T.Int()).tag(sync=True)                # head view: heads drawn (set_record: all of them)
    threshold = T.Float(0.05).tag(sync=True)              # head view: weights below this are not drawn
    query = T.Int(-1).tag(sync=True)                      # head view: pinned query token, -1 for every query
    head_colors = T.List(T.Unicode(), default_value=list(HEAD_COLORS)).tag(sync=True)   # as plots.head_view

    def __init__(self, **kwargs):
        super().__init__(colorscales=colorscale_stops(*COLORSCALES), **kwargs)
        self.rec, self._rollout = None, None
        self.add_class("wb-attention-canvas")
        self.observe(self._load_layer, names="layer")

    @classmethod
    def from_record(cls, rec, rollout=None, **controls) -> "AttentionView":
        """A view of `rec` (probes.attention.AttentionRecord) and its rollout ((layer, T, T), or None to compute
        it with probes.rollout.attention_rollout); `controls` set the starting layer, head, norm, ..."""
        v = cls()
        v.set_record(rec, rollout)
        for k, val in controls.items():
            setattr(v, k, val)
        return v

    # ------------------------------------------------------------------ payload
    def full_payload_bytes(self, rec=None) -> int:
        """Bytes of weights + rollout for every layer of `rec` (default: the current record)."""
        rec = rec or self.rec
        return 2 * rec.n_layers * (rec.n_heads + 1) * rec.n_tokens ** 2

    def payload_bytes(self) -> int:
        """Bytes the browser holds now (weights + rollout, float16)."""
        return len(self.weights) + len(self.rollout)

    def set_record(self, rec, rollout=None, model_name: str | None = None) -> None:
        """Show `rec`: one message carrying every layer (or, past the size limits, the current layer only)."""
        if rollout is None:
            from ..probes.rollout import attention_rollout
            rollout = attention_rollout(rec.weights)
        self.rec, self._rollout = rec, np.asarray(rollout)
        on_demand = rec.n_tokens > self.max_tokens_full or self.full_payload_bytes(rec) > self.max_bytes_full
        layer, head = min(self.layer, rec.n_layers - 1), min(self.head, rec.n_heads - 1)
        blocks = [layer] if on_demand else list(range(rec.n_layers))
        with self.hold_sync():
            self.set_trait("tokens", list(rec.tokens))
            self.set_trait("n_layers", rec.n_layers)
            self.set_trait("n_heads", rec.n_heads)
            self.set_trait("n_tokens", rec.n_tokens)
            self.set_trait("n_prompt", rec.n_prompt)
            self.set_trait("causal", bool(getattr(rec, "causal", True)))
            self.set_trait("model_name", model_name or rec.model_name)
            self.set_trait("titles", _titles(rec, self.model_name))
            self.set_trait("on_demand", on_demand)
            self.set_trait("layer", layer)
            self.set_trait("head", head)
            heads = [h for h in self.heads if h < rec.n_heads]
            self.set_trait("heads", heads if heads else list(range(rec.n_heads)))
            self.set_trait("query", self.query if self.query < rec.n_tokens else -1)
            self._send_blocks(blocks)

    def _payload(self, blocks: list[int]) -> dict:
        """The payload traits for `blocks` (layer ids): weights (B, H, T, T) and rollout (B, T, T), float16."""
        return {"weights": f16(self.rec.weights[blocks]), "rollout": f16(self._rollout[blocks]),
                "blocks": list(blocks)}

    def _send_blocks(self, blocks: list[int]) -> None:
        for name, value in self._payload(blocks).items():
            self.set_trait(name, value)

    def _load_layer(self, change) -> None:
        """On-demand mode: send the layer the slider moved to (the browser shows "loading" until it arrives)."""
        if self.rec is not None and self.on_demand and change["new"] not in self.blocks:
            with self.hold_sync():
                self._send_blocks([change["new"]])

    # ------------------------------------------------------------------ controls
    @T.validate("layer")
    def _check_layer(self, proposal):
        if not 0 <= proposal["value"] < max(self.n_layers, 1):
            raise T.TraitError(f"layer {proposal['value']} is out of range: this model has layers "
                               f"0..{self.n_layers - 1}")
        return proposal["value"]

    @T.validate("head")
    def _check_head(self, proposal):
        if not 0 <= proposal["value"] < max(self.n_heads, 1):
            raise T.TraitError(f"head {proposal['value']} is out of range: this model has heads 0..{self.n_heads - 1}")
        return proposal["value"]

    @T.validate("heads")
    def _check_heads(self, proposal):
        value = list(proposal["value"])
        bad = [h for h in value if not 0 <= h < max(self.n_heads, 1)]
        if bad:
            raise T.TraitError(f"heads {bad} are out of range: this model has heads 0..{self.n_heads - 1}")
        if len(set(value)) != len(value):
            raise T.TraitError(f"heads {value} repeat a head: list each head once, e.g. {sorted(set(value))}")
        return sorted(value)

    @T.validate("threshold")
    def _check_threshold(self, proposal):
        if not 0 <= proposal["value"] < 1:
            raise T.TraitError(f"threshold {proposal['value']} is out of range: use a weight in [0, 1), e.g. 0.05")
        return proposal["value"]

    @T.validate("query")
    def _check_query(self, proposal):
        if not -1 <= proposal["value"] < max(self.n_tokens, 1):
            raise T.TraitError(f"query {proposal['value']} is out of range: use -1 (every query) or a token "
                               f"position 0..{self.n_tokens - 1}")
        return proposal["value"]

    @T.validate("view", "norm", "colorscale")
    def _check_choice(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        allowed = {"view": VIEWS, "norm": tuple(NORMALIZATIONS), "colorscale": tuple(self.colorscales)}[name]
        if value not in allowed:
            raise T.TraitError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        return value

    def current_z(self) -> np.ndarray:
        """The numbers the browser draws for the current controls, from the full-precision record:
        "attention"/"rollout": (T, T), NaN above the diagonal of a causal record; "grid": (n_layers, n_heads, T, T)
        normalised maps (only the current layer's row in on-demand mode: (1, n_heads, T, T)); "head view":
        (len(heads), T, T) weights of the lines drawn (0 below `threshold`, and outside the pinned query's row)."""
        if self.view == "grid":
            layers = [self.layer] if self.on_demand else range(self.rec.n_layers)
            return np.stack([[heatmap_z(self.rec, layer, h, self.norm) for h in range(self.rec.n_heads)]
                             for layer in layers])
        if self.view == "head view":
            w = np.array(self.rec.weights[self.layer][self.heads], dtype=float)
            w[w < self.threshold] = 0.0
            if self.query >= 0:
                keep = np.zeros(w.shape[1], bool)
                keep[self.query] = True
                w[:, ~keep] = 0.0
            return w
        if self.view == "rollout":
            z = np.array(self._rollout[self.layer], dtype=float)
            if self.causal:
                z[np.triu_indices(z.shape[0], 1)] = np.nan
            return z
        return heatmap_z(self.rec, self.layer, None if self.mean else self.head, self.norm)

    def shown(self) -> str:
        """What the browser shows, as it names it (the canvas's data-shown): "attention L1 H0", "attention L1 mean",
        "rollout L1", "grid L1 H0" (the outlined cell) or "head view L1 H0,2 q5 t5" (heads, the pinned query or
        "all", the threshold in hundredths; while the mouse is on a token the page says "q7" or "k7" instead)."""
        if self.view == "rollout":
            return f"rollout L{self.layer}"
        if self.view == "grid":
            return f"grid L{self.layer} H{self.head}"
        if self.view == "head view":
            sel = f"q{self.query}" if self.query >= 0 else "all"
            heads = ",".join(map(str, self.heads))
            return f"head view L{self.layer} H{heads} {sel} t{round(self.threshold * 100)}"
        return f"attention L{self.layer} " + ("mean" if self.mean else f"H{self.head}")

    def _title_key(self) -> str:
        if self.view == "head view":
            return f"head view L{self.layer}"
        return self.shown()

    def title(self) -> str:
        """The title above the picture for the current controls, e.g. "layer 1 head 0 (tiny-dense)"."""
        return self.titles[self._title_key()]

    def static_figure(self):
        """The plotly figure (workbench.plots.attention) of what the view shows, for PNG/SVG/PDF export with
        plots.export.export_figure: attention_heatmap, model_grid or head_view with the current controls.
        ValueError for the rollout view (use plots.rollout_heatmap(probes.rollout.rollout_record(rec))) or when
        nothing is shown yet."""
        from ..plots import attention as P
        if self.rec is None:
            raise ValueError("nothing to draw: this view has no record yet (set_record(rec) first)")
        if self.view == "grid":
            return P.model_grid(self.rec, self.norm, self.colorscale)
        if self.view == "head view":
            return P.head_view(self.rec, self.layer, self.heads, self.threshold,
                               None if self.query < 0 else self.query)
        if self.view == "rollout":
            raise ValueError("the rollout view has no static figure here: use plots.rollout_heatmap("
                             "probes.rollout.rollout_record(rec), layer=...) and export that")
        return P.attention_heatmap(self.rec, self.layer, None if self.mean else self.head, self.norm,
                                   self.colorscale, title=self.title())

    # ------------------------------------------------------------------ standalone HTML
    def standalone_state(self, max_bytes: int = standalone.HTML_MAX_BYTES) -> dict:
        """The state a standalone file holds: this view's traits with every layer's weights and rollout (also in
        on-demand mode) and `on_demand` False. ValueError when nothing is shown yet, or when the payload
        (2 * L * (H + 1) * T^2 bytes) is over `max_bytes`, naming the size and a token count that would fit."""
        if self.rec is None:
            raise ValueError("nothing to save: this view has no record yet (set_record(rec) or compute a text first)")
        rec, full = self.rec, self.full_payload_bytes()
        fits = int((max_bytes / (2 * rec.n_layers * (rec.n_heads + 1))) ** 0.5)
        standalone.check_size(full, f"the attention of {rec.n_layers} layers x {rec.n_heads} heads x "
                                    f"{rec.n_tokens}^2 tokens (float16, with the rollout)",
                              f"shorten the text to at most {fits} tokens (e.g. max_tokens={fits})", max_bytes)
        return standalone.view_state(self, **self._payload(list(range(rec.n_layers))), on_demand=False)

    def to_html(self, path, max_bytes: int = standalone.HTML_MAX_BYTES) -> Path:
        """Save this view as one self-contained HTML file (JavaScript, CSS and every layer and head inline, no
        network, no kernel) whose controls work as here, starting from their current values. Returns the path
        written (".html" added when missing). Size: about 4/3 of 2 * L * (H + 1) * T^2 bytes (4 x 4 x 128 tokens:
        0.9 MB). ValueError when nothing is shown yet or past `max_bytes` of payload (see `standalone_state`)."""
        state = self.standalone_state(max_bytes)
        title = f"attention: {self.model_name}, {self.n_tokens} tokens, {self.n_layers} layers x {self.n_heads} heads"
        return standalone.save_view(self, path, state, title)


def _titles(rec, model_name: str) -> dict:
    """Every title the view can show, by its title key (shown(), or "head view L1" for the head view; the browser
    only picks one): L x (2H + 3) short strings."""
    out = {}
    for layer in range(rec.n_layers):
        for head in [*range(rec.n_heads), None]:
            key = f"attention L{layer} " + ("mean" if head is None else f"H{head}")
            out[key] = f"{heatmap_title(rec, layer, head)} ({model_name})"
            if head is not None:
                out[f"grid L{layer} H{head}"] = (f"all layers x heads, layer {layer} head {head} outlined "
                                                 f"({model_name})")
        out[f"rollout L{layer}"] = f"rollout through layer {layer} (mean of heads) ({model_name})"
        out[f"head view L{layer}"] = f"head view, layer {layer}: query (left) -> key (right) ({model_name})"
    return out


def attention_view(rec, rollout=None, **controls) -> AttentionView:
    """Client-side view of an AttentionRecord (see AttentionView), e.g. attention_view(rec, layer=1, head=2),
    attention_view(rec, view="grid") or attention_view(rec, view="head view", layer=1, query=rec.n_tokens - 1).
    Controls out of range raise traitlets.TraitError naming the valid range."""
    return AttentionView.from_record(rec, rollout, **controls)
