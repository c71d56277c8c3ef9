"""The attention heat map as a client-side view: every layer and head of one input in the browser, controls there.

Here: `AttentionView` (an anywidget; JavaScript in js/attention.js) and `attention_view(rec)`. The browser holds
the input's attention once, as float16 bytes, and the layer/head sliders, "mean of heads", attention/rollout,
normalisation and colour controls redraw a <canvas> in the page (no kernel round trip, no plotly). Their values
are synced traits: Python reads `view.layer` etc., and a reloaded page shows what the controls say.

Memory held by the browser per input, float16 (decoded to float32 once there, so about twice this in use):
    weights  L x H x T x T x 2 bytes      e.g. 4 layers x 4 heads x 128^2  = 512 KiB
    rollout  L x T x T x 2 bytes          e.g. 4 layers x 128^2            = 128 KiB
Past `max_tokens_full` tokens (512) or `max_bytes_full` bytes (32 MiB: e.g. 12 layers x 12 heads x 256^2 is
18 MiB, x 512^2 is 74 MiB) the view switches to on-demand mode (`on_demand` True): only the current layer is sent,
and Python sends the next one when the layer slider moves (one kernel round trip per layer change; heads, mean,
normalisation and colours stay in the browser).
`view.to_html(path)` saves the view as one HTML file that keeps its controls offline (`standalone`): every layer,
even in on-demand mode, up to `standalone.HTML_MAX_BYTES` of payload.
Not here: computing attention (`workbench.probes.attention`), static figures (`workbench.plots.attention`).
"""
from __future__ import annotations

from pathlib import Path

import anywidget
import numpy as np
import traitlets as T

from ..plots.attention import NORMALIZATIONS, heatmap_title, heatmap_z
from . import standalone
from .canvas import CSS, MiB, colorscale_stops, esm, f16

COLORSCALES = ("Viridis", "Blues", "Magma", "Cividis", "Greys")
VIEWS = ("attention", "rollout")


class AttentionView(anywidget.AnyWidget):
    """Heat map of one input's attention (query rows, key columns) with its controls, drawn in the browser.

    Payload traits (set by `set_record`): `weights` float16 bytes of shape (len(blocks), n_heads, n_tokens,
    n_tokens), `rollout` float16 bytes (len(blocks), n_tokens, n_tokens), `blocks` the layers they hold.
    Control traits (synced both ways): `layer`, `head`, `mean`, `view` ("attention" | "rollout"), `norm`
    (a key of plots.attention.NORMALIZATIONS), `colorscale` (one of COLORSCALES). Setting a control out of
    range raises traitlets.TraitError naming the valid range.
    """
    _esm = esm("attention")
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

    @T.validate("view", "norm", "colorscale")
    def _check_choice(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        allowed = {"view": VIEWS, "norm": tuple(NORMALIZATIONS), "colorscale": tuple(self.colorscales)}[name]
        if value not in allowed:
            raise T.TraitError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        return value

    def current_z(self) -> np.ndarray:
        """(T, T) the map the browser shows for the current controls, from the full-precision record (NaN above
        the diagonal of a causal record)."""
        if self.view == "rollout":
            z = np.array(self._rollout[self.layer], dtype=float)
            if self.causal:
                z[np.triu_indices(z.shape[0], 1)] = np.nan
            return z
        return heatmap_z(self.rec, self.layer, None if self.mean else self.head, self.norm)

    def shown(self) -> str:
        """What the browser shows, as it names it (the canvas's data-shown): "attention L1 H0", "attention L1 mean"
        or "rollout L1"."""
        if self.view == "rollout":
            return f"rollout L{self.layer}"
        return f"attention L{self.layer} " + ("mean" if self.mean else f"H{self.head}")

    def title(self) -> str:
        """The title above the map for the current controls, e.g. "layer 1 head 0 (tiny-dense)"."""
        return self.titles[self.shown()]

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
    """Every title the view can show, by its shown() key (the browser only picks one)."""
    out = {}
    for layer in range(rec.n_layers):
        for head in [*range(rec.n_heads), None]:
            key = f"attention L{layer} " + ("mean" if head is None else f"H{head}")
            out[key] = f"{heatmap_title(rec, layer, head)} ({model_name})"
        out[f"rollout L{layer}"] = f"rollout through layer {layer} (mean of heads) ({model_name})"
    return out


def attention_view(rec, rollout=None, **controls) -> AttentionView:
    """Client-side heat map of an AttentionRecord (see AttentionView), e.g. attention_view(rec, layer=1, head=2)."""
    return AttentionView.from_record(rec, rollout, **controls)
