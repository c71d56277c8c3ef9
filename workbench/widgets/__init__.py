"""Widgets: panels that only wire controls to compute (probes, scoring, train) and plots.

Views that only change what is shown run in the browser (anywidgets with their JavaScript in js/, no CDN):
`attention_view.AttentionView`, `routing_view.TokenExpertView` / `FramesView`; shared parts in `canvas`. Each
view's `to_html(path)` (and the "save HTML" buttons) writes it as one offline HTML file with its controls
(`standalone`).
"""
