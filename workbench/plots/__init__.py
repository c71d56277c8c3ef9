"""Plot builders: pure functions record -> plotly Figure. Never call .show(); never import ipywidgets."""
