"""A plotly figure shown through an `ipywidgets.Output`, so that it survives a page reload.

A `go.FigureWidget` keeps its figure in the browser's plotly.js model: after a reload or a reopened tab the
widget manager rebuilds it from the kernel's state and the restyle/relayout messages that built it are gone, so
it comes back empty, stale or mixed ("Error setting state: indices must be valid indices for gd.data").
`FigureOutput.show(fig)` instead sets the Output's `outputs` to one display_data output carrying the figure's
plotly JSON: that bundle is the widget's own state, so a reloaded page draws exactly the figure last shown
(JupyterLab's plotly mime renderer; no CDN). The builders in `workbench.plots` stay pure `go.Figure` factories.
"""
from __future__ import annotations

import json

import ipywidgets as widgets
import plotly.graph_objects as go
import plotly.io as pio

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def plotly_output(fig: go.Figure) -> dict:
    """A display_data output (nbformat dict) showing `fig` with the plotly mime renderer."""
    title = fig.layout.title.text or "plotly figure"
    return {"output_type": "display_data", "metadata": {},
            "data": {PLOTLY_MIME: json.loads(pio.to_json(fig, validate=False)), "text/plain": f"<{title}>"}}


class FigureOutput(widgets.Output):
    """An Output showing one plotly figure; `.figure` is the `go.Figure` shown now (for tests and exports)."""

    def __init__(self, fig: go.Figure | None = None, **kwargs):
        super().__init__(**kwargs)
        self.add_class("wb-figure")
        self.figure: go.Figure = go.Figure()
        if fig is not None:
            self.show(fig)

    def show(self, fig: go.Figure) -> None:
        """Replace the figure shown (one state message; the browser redraws it whole)."""
        self.outputs = (plotly_output(fig),)
        self.figure = fig
