"""Widgets: ipywidgets panels that only wire controls to compute (probes, scoring, train) and plots."""
