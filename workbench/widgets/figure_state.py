"""`keep_state(fig)`: a plotly FigureWidget's synced state made the figure it shows now.

plotly syncs a FigureWidget's `_widget_data`/`_widget_layout` traits when the widget is built or displayed on
its own (`_repr_mimebundle_`), and sends every later change (restyle, relayout, update, added traces) as a
one-off message that only views alive at that moment receive. A FigureWidget that lives inside a box and changes
afterwards therefore comes back empty or stale in any view created later: a Voilà page (Voilà runs every cell
first, then builds the page's widgets from their state) or a reloaded JupyterLab tab. Calling `keep_state` after
a change fixes that; a live view ignores changes of these two traits (plotly's front end does not redraw on
them), so the cost is one state message with the figure's data.
Used by the training panel (`workbench.widgets.training`) and the compression lab (`workbench.widgets.compress`).
"""
from __future__ import annotations

from copy import deepcopy


def keep_state(fig) -> None:
    """Set `fig`'s synced state (what a view created later draws) to its current data and layout."""
    fig._widget_layout = deepcopy(fig._layout_obj._props)
    fig._widget_data = deepcopy(fig._data)
