"""MoE routing views drawn in the browser: all layers (and checkpoints) of a record sent once, controls there.

Here: `TokenExpertView` (tokens coloured by their expert; JavaScript in js/tokens.js) and `FramesView` (a heat map
per combination of control values, precomputed: js/frames.js), plus `heatmap_frame` (a single-heatmap plotly
figure -> a frame). Control values are synced traits (Python reads them; a reloaded page restores them).
`view.to_html(path)` saves either view as one HTML file that keeps its controls offline (`standalone`; a
TokenExpertView in on-demand mode exports every block, up to `standalone.HTML_MAX_BYTES`).

Memory held by the browser, per view:
    TokenExpertView  C x L x T x (k x 3 + E x 2) bytes (experts uint8, gates and router scores float16),
                     C checkpoints, L layers, T <= 512 tokens, k chosen of E experts: 4 layers x 128 tokens,
                     top-2 of 8 experts = 11 KiB; 10 checkpoints x 16 layers x 512 tokens x 64 experts = 10.6 MiB.
                     Past `max_bytes_full` (16 MiB) only the current (checkpoint, layer) is sent, on demand.
    FramesView       the frames as JSON, about 8 bytes per cell: group x expert and group x group maps for every
                     layer x view x soft/hard x metric (4 layers, 6 groups, 8 experts: about 50 KiB).
Not here: computing routing (`workbench.probes.routing`), static figures (`workbench.plots.routing`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import traitlets as T

from ..plots.routing import PALETTE, _tok
from . import standalone
from .canvas import BaseView, CSS, MiB, rgb, esm, f16


class TokenExpertView(BaseView):
    """Tokens in rows of `width`, coloured by the expert their router chose, for every layer (and checkpoint).

    Payload: `topk` (blocks, T, k) expert ids as uint8 (uint16 past 255 experts: `expert_bytes`), `gates`
    (blocks, T, k) and `scores` (blocks, T, E; empty when the router's scores are unknown) as float16; block id =
    ckpt * n_layers + layer, `blocks` lists those present. Controls (synced): `layer`, `top` ("1" | "k"),
    `ckpt` (index into `steps`, the checkpoint replay). Out-of-range values raise traitlets.TraitError.
    """
    _esm = esm("tokens")
    _css = CSS
    max_bytes_full = 16 * MiB

    mode = T.Unicode("explorer").tag(sync=True)          # "explorer" (top-1/top-k toggle) or "replay" (step slider)
    tokens = T.List(T.Unicode()).tag(sync=True)
    n_tokens = T.Int(0).tag(sync=True)                    # tokens shown (first max_tokens of the record)
    n_total = T.Int(0).tag(sync=True)                     # tokens in the record
    n_layers = T.Int(1).tag(sync=True)
    n_experts = T.Int(1).tag(sync=True)
    top_k = T.Int(1).tag(sync=True)
    steps = T.List(T.Unicode()).tag(sync=True)           # checkpoint labels (one "" outside a replay)
    saturation = T.List(T.List(T.Float())).tag(sync=True)   # (C, L) router saturation vs the last checkpoint
    topk = T.Bytes(b"").tag(sync=True)
    expert_bytes = T.Int(1).tag(sync=True)
    gates = T.Bytes(b"").tag(sync=True)
    scores = T.Bytes(b"").tag(sync=True)
    score_name = T.Unicode("").tag(sync=True)             # "p" (softmax), "sigmoid", or "" (unknown: no scores)
    titles = T.Dict().tag(sync=True)                      # shown() key -> title
    blocks = T.List(T.Int()).tag(sync=True)
    on_demand = T.Bool(False).tag(sync=True)
    layer = T.Int(0).tag(sync=True)
    top = T.Unicode("1").tag(sync=True)
    ckpt = T.Int(0).tag(sync=True)
    width = T.Int(16).tag(sync=True)
    palette = T.List(T.Unicode(), default_value=list(PALETTE)).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._records: list = []
        self.observe(self._load_block, names=["layer", "ckpt"])

    @classmethod
    def from_records(cls, records, steps=None, saturation=None, width: int = 16, max_tokens: int = 512,
                     **controls) -> "TokenExpertView":
        """A view of RoutingRecords of the same tokens (one, or one per checkpoint with `steps` labels and the
        (C, L) `saturation`); only the first `max_tokens` tokens are shown (the title says so)."""
        v = cls(width=width, mode="replay" if steps is not None else "explorer")
        v.set_records(list(records), steps, saturation, max_tokens)
        for k, val in controls.items():
            setattr(v, k, val)
        return v

    def set_records(self, records, steps=None, saturation=None, max_tokens: int = 512) -> None:
        rec = records[-1]
        T_ = min(rec.n_tokens, max_tokens)
        self._records, self._T = records, T_
        full = len(records) * rec.n_layers * T_ * (3 * rec.top_k + 2 * rec.n_experts)
        on_demand, self._full_bytes = full > self.max_bytes_full, full
        with self.hold_sync():
            self.set_trait("tokens", [_tok(t) for t in rec.tokens[:T_]])
            self.set_trait("n_tokens", T_)
            self.set_trait("n_total", rec.n_tokens)
            self.set_trait("n_layers", rec.n_layers)
            self.set_trait("n_experts", rec.n_experts)
            self.set_trait("top_k", rec.top_k)
            self.set_trait("steps", [str(s) for s in steps] if steps is not None else [""])
            self.set_trait("saturation", [[float(x) for x in row] for row in saturation] if saturation is not None
                           else [])
            self.set_trait("score_name", {"softmax": "p", "sigmoid": "sigmoid"}.get(rec.score_fn, ""))
            self.set_trait("expert_bytes", 1 if rec.n_experts <= 256 else 2)
            self.set_trait("titles", _token_titles(rec, T_, steps, saturation))
            self.set_trait("on_demand", on_demand)
            self.set_trait("layer", min(self.layer, rec.n_layers - 1))
            self.set_trait("ckpt", len(records) - 1 if steps is not None else 0)
            ids = [self._block_id()] if on_demand else list(range(len(records) * rec.n_layers))
            self._send_blocks(ids)

    def _block_id(self) -> int:
        return self.ckpt * self.n_layers + self.layer

    def _payload(self, ids: list[int]) -> dict:
        """The payload traits for block `ids` (ckpt * n_layers + layer): topk, gates, scores, blocks."""
        T_, L = self._T, self.n_layers
        pick = [(self._records[i // L], i % L) for i in ids]
        topk = np.stack([r.topk[li, :T_] for r, li in pick])                  # (B, T, k)
        return {"topk": np.ascontiguousarray(topk, dtype="u1" if self.expert_bytes == 1 else "<u2").tobytes(),
                "gates": f16(np.stack([r.weights[li, :T_] for r, li in pick])),           # (B, T, k)
                "scores": f16(np.stack([r.scores_of(r.logits[li, :T_]) for r, li in pick]))  # (B, T, E)
                if self.score_name else b"",
                "blocks": list(ids)}

    def _send_blocks(self, ids: list[int]) -> None:
        for name, value in self._payload(ids).items():
            self.set_trait(name, value)

    def _load_block(self, change) -> None:
        if self._records and self.on_demand and self._block_id() not in self.blocks:
            with self.hold_sync():
                self._send_blocks([self._block_id()])

    def payload_bytes(self) -> int:
        """Bytes the browser holds now (experts, gates and scores)."""
        return len(self.topk) + len(self.gates) + len(self.scores)

    @T.validate("layer")
    def _check_layer(self, proposal):
        if not 0 <= proposal["value"] < max(self.n_layers, 1):
            raise T.TraitError(f"unknown layer {proposal['value']!r}: this record has MoE layers "
                               f"0..{self.n_layers - 1}")
        return proposal["value"]

    @T.validate("ckpt")
    def _check_ckpt(self, proposal):
        if not 0 <= proposal["value"] < max(len(self.steps), 1):
            raise T.TraitError(f"unknown checkpoint index {proposal['value']!r}: 0..{len(self.steps) - 1}")
        return proposal["value"]

    @T.validate("top")
    def _check_top(self, proposal):
        if proposal["value"] not in ("1", "k"):
            raise T.TraitError(f"top must be '1' or 'k', got {proposal['value']!r}")
        return proposal["value"]

    def shown(self) -> str:
        """What the browser shows, as it names it (data-shown): "L1 top-1", "L1 top-k", or "C2 L1" in a replay."""
        if self.mode == "replay":
            return f"C{self.ckpt} L{self.layer}"
        return f"L{self.layer} top-{self.top}"

    def title(self) -> str:
        """The title above the tokens for the current controls (as plots.routing.token_experts words it)."""
        return self.titles[self.shown()]

    def standalone_state(self, max_bytes: int = standalone.HTML_MAX_BYTES) -> dict:
        """The state a standalone file holds: this view's traits with every (checkpoint, layer) block, also in
        on-demand mode. ValueError when there is no record, or past `max_bytes` of payload (naming the size)."""
        if not self._records:
            raise ValueError("nothing to save: this view has no routing record yet (from_records(...))")
        n_blocks = len(self._records) * self.n_layers
        standalone.check_size(self._full_bytes, f"the routing of {len(self._records)} checkpoint(s) x "
                                                f"{self.n_layers} layers x {self._T} tokens x {self.n_experts} experts",
                              "show fewer tokens (max_tokens=...) or fewer checkpoints", max_bytes)
        return standalone.view_state(self, **self._payload(list(range(n_blocks))), on_demand=False)

    def to_html(self, path, max_bytes: int = standalone.HTML_MAX_BYTES) -> Path:
        """Save this view as one self-contained HTML file (JavaScript, CSS and every layer and checkpoint inline,
        no network, no kernel) whose sliders and toggles work as here. Returns the path written (".html" added
        when missing). Size: about 4/3 of C x L x T x (3k + 2E) bytes (see the module docstring). ValueError
        when there is no record or past `max_bytes` of payload."""
        state = self.standalone_state(max_bytes)
        what = "routing through training" if self.mode == "replay" else "routing: tokens by expert"
        return standalone.save_view(self, path, state, f"{what} ({self.n_layers} layers, {self.n_tokens} tokens)")

    def current_experts(self) -> np.ndarray:
        """(T, k shown) the experts drawn for the current controls (k shown = 1 for top="1" and in a replay)."""
        rec = self._records[self.ckpt if self.mode == "replay" else 0]
        kk = 1 if self.mode == "replay" or self.top == "1" else rec.top_k
        return rec.topk[self.layer, :self._T, :kk]


def _token_titles(rec, T_: int, steps, saturation) -> dict:
    if steps is not None:
        return {f"C{c} L{li}": f"step {step}, layer {li}: first-choice expert (saturation vs final "
                               f"{100 * saturation[c][li]:.0f}%)"
                for c, step in enumerate(steps) for li in range(rec.n_layers)}
    more = f" (first {T_} of {rec.n_tokens} tokens)" if T_ < rec.n_tokens else ""
    return {f"L{li} top-{top}": f"layer {li}: {choice}{more}" for li in range(rec.n_layers)
            for top, choice in (("1", "first-choice expert"), ("k", f"top-{rec.top_k} experts (rank 1 on top)"))}


def heatmap_frame(fig, maxcell: int = 56) -> dict:
    """A frame for FramesView from a plotly figure holding one go.Heatmap: z (None for NaN, rounded to 4
    decimals), axis labels, title, colour range (None = from the data), colour stops, hover template."""
    h = fig.data[0]
    z = np.asarray(h.z, dtype=float)
    stops = [[float(p), *rgb(c)] for p, c in h.colorscale]
    colorbar = h.colorbar.title.text if h.colorbar and h.colorbar.title else ""
    return {"z": [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in z],
            "x": [str(x) for x in h.x] if h.x is not None else [str(i) for i in range(z.shape[1])],
            "y": [str(y) for y in h.y] if h.y is not None else [str(i) for i in range(z.shape[0])],
            "title": fig.layout.title.text or "", "zmin": h.zmin, "zmax": h.zmax, "stops": stops,
            "hover": h.hovertemplate or "%{y} %{x}: %{z:.3f}", "cbtitle": colorbar or "",
            "xtitle": fig.layout.xaxis.title.text or "", "ytitle": fig.layout.yaxis.title.text or "",
            "maxcell": maxcell}


def frame_key(controls, values: dict) -> str:
    """The frames' key of `values`: JSON of the values in the order of `controls` (as the browser writes it)."""
    return json.dumps([values[c["name"]] for c in controls], ensure_ascii=False, separators=(",", ":"))


class FramesView(BaseView):
    """Heat maps precomputed for every combination of control values, switched in the browser.

    `controls`: [{"name", "kind": "slider" (with "min", "max") | "toggle" (with "options": [[label, value]]),
    "label"}]; `values`: {name: value} (synced both ways); `frames`: {frame_key: heatmap_frame(...)}.
    """
    _esm = esm("frames")
    _css = CSS

    controls = T.List(T.Dict()).tag(sync=True)
    values = T.Dict().tag(sync=True)
    frames = T.Dict().tag(sync=True)
    size = T.Int(440).tag(sync=True)

    def key(self, values: dict | None = None) -> str:
        return frame_key(self.controls, values or self.values)

    def current_frame(self) -> dict:
        """The frame shown for the current values (KeyError naming them when there is none)."""
        key = self.key()
        if key not in self.frames:
            raise KeyError(f"no frame for {key}")
        return self.frames[key]

    def set_values(self, **values) -> None:
        """Change some control values (ValueError, values unchanged, when no frame exists for the result)."""
        new = {**self.values, **values}
        if self.key(new) not in self.frames:
            raise ValueError(f"nothing to show for {new}")
        self.values = new

    def payload_bytes(self) -> int:
        """Bytes of the frames as JSON (what the browser receives)."""
        return len(json.dumps(self.frames))

    def standalone_state(self, max_bytes: int = standalone.HTML_MAX_BYTES) -> dict:
        """The state a standalone file holds (controls, values, every frame). ValueError when there are no frames
        or past `max_bytes` of JSON (naming the size)."""
        if not self.frames:
            raise ValueError("nothing to save: this view has no frames")
        state = standalone.view_state(self)
        standalone.check_size(standalone.payload_size(state), f"{len(self.frames)} precomputed heat maps",
                              "compute fewer control combinations", max_bytes)
        return state

    def to_html(self, path, max_bytes: int = standalone.HTML_MAX_BYTES) -> Path:
        """Save this view as one self-contained HTML file (JavaScript, CSS and every frame inline, no network,
        no kernel) whose controls switch frames as here. Returns the path written (".html" added when missing);
        the file is about the size of the frames' JSON. ValueError as `standalone_state`."""
        state = self.standalone_state(max_bytes)
        title = self.frames.get(self.key(), {}).get("title", "")
        return standalone.save_view(self, path, state, f"routing heat maps: {title}" if title else "routing heat maps")
