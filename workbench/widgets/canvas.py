"""Shared Python side of the canvas views: anywidgets whose JavaScript ships in `workbench/widgets/js/` (no CDN).

A canvas view gets all the data of the current input once, as traits (compact: float16 or uint8 bytes), and its
sliders, dropdowns and toggles run in the browser: a control change is a redraw in the page, not a kernel round
trip. The control values are synced traits, so Python reads them and a reloaded page restores them.
Here: `BaseView` (the anywidget base class of every view here), `esm()` (common.js + a view's files, one ES
module), `CSS`, `f16()` / `from_f16()` (float16 payloads),
`colorscale_stops()`, `rgb()`, `TraitControl` (`.value` access to a view's trait, for code written for ipywidgets).
Not here: the views (`attention_view`, `routing_view`), figures for export (`workbench.plots`).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import anywidget
import numpy as np

JS = Path(__file__).resolve().parent / "js"
CSS = (JS / "common.css").read_text(encoding="utf-8")
MiB = 1 << 20


class BaseView(anywidget.AnyWidget):
    """anywidget.AnyWidget with a repr that does not print the traits.

    ipywidgets' repr lists every trait that differs from its default, and a widget shown as a cell's value is
    repr'ed each time: for a view holding a 32 MiB float16 payload that took 0.66 s and built a 100 MB string,
    of which Jupyter keeps 110 characters. anywidget 0.9.20 made the same change; the release pinned in
    pyproject.toml predates it.
    """

    def __repr__(self) -> str:
        return object.__repr__(self)


@lru_cache(maxsize=None)
def esm(*names: str) -> str:
    """The ES module of one view: the shared helpers (js/common.js) followed by js/<name>.js for each name, in
    order (the last one holds the view's `render` and its `export default`). FileNotFoundError for a missing file."""
    return "\n".join((JS / f"{n}.js").read_text(encoding="utf-8") for n in ("common", *names))


def f16(a) -> bytes:
    """Array -> little-endian float16 bytes (C order). Relative error <= 2**-11 (about 5e-4 on values <= 1);
    values below 6e-8 become 0; NaN stays NaN."""
    return np.ascontiguousarray(a, dtype="<f2").tobytes()


def from_f16(b: bytes, shape) -> np.ndarray:
    """Inverse of `f16`: bytes -> float32 array of `shape` (ValueError when the sizes do not match)."""
    a = np.frombuffer(b, dtype="<f2")
    if a.size != int(np.prod(shape)):
        raise ValueError(f"payload holds {a.size} float16 values, shape {tuple(shape)} needs {int(np.prod(shape))}")
    return a.astype(np.float32).reshape(shape)


def rgb(color: str) -> list[int]:
    """A plotly colour "#rrggbb" or "rgb(r, g, b)" -> [r, g, b]."""
    if color.startswith("#"):
        n = int(color[1:], 16)
        return [(n >> 16) & 255, (n >> 8) & 255, n & 255]
    return [int(round(float(v))) for v in color[color.index("(") + 1:color.index(")")].split(",")[:3]]


@lru_cache(maxsize=None)
def _stops(name: str) -> tuple:
    import plotly.colors
    return tuple((float(pos), *rgb(c)) for pos, c in plotly.colors.get_colorscale(name))


def colorscale_stops(*names: str) -> dict:
    """{name: [[pos, r, g, b], ...]} of plotly colour scales (the same colours as the static figures)."""
    return {n: [list(s) for s in _stops(n)] for n in names}


class TraitControl:
    """`.value` (get/set), `.observe(fn, "value")` and, for sliders, `.max` of one trait of a view: lets code written
    for an ipywidgets control (`explorer.layer.value = 2`) drive a control that now lives in the browser."""

    def __init__(self, widget, trait: str, max_fn=None, options=None):
        self.widget, self.trait, self._max_fn, self.options = widget, trait, max_fn, options

    @property
    def value(self):
        return getattr(self.widget, self.trait)

    @value.setter
    def value(self, v) -> None:
        setattr(self.widget, self.trait, v)

    @property
    def max(self) -> int:
        if self._max_fn is None:
            raise AttributeError(f"{self.trait} is not a slider")
        return self._max_fn()

    def observe(self, fn, names="value") -> None:
        """Call fn(change) when the value changes (change["name"] is "value", as for an ipywidgets control)."""
        self.widget.observe(lambda change: fn({**change, "name": "value"}), names=self.trait)

    def __repr__(self) -> str:
        return f"TraitControl({type(self.widget).__name__}.{self.trait}={self.value!r})"
