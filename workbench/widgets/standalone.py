"""Standalone HTML of a canvas view: one file that keeps the view's controls and opens offline, with no kernel.

The file holds the view's own JavaScript and CSS (js/common.js + js/<view>.js, as the widget ships them), its
current state (the synced traits, i.e. the payload the widget sends to JupyterLab; bytes traits as base64) and a
small stand-in for the anywidget `model` (js/standalone.js: get/set/on/off/save_changes), so the same render()
code draws the same canvas from the same data. No CDN, no URL: a Content-Security-Policy in the file forbids
every fetch. A control moved in the saved page changes only that page.

Size: base64 makes the file about 4/3 of the payload (4 layers x 4 heads x 128 tokens of attention: 640 KiB of
float16, a file of about 0.9 MB). Files are refused past `HTML_MAX_BYTES` of payload (48 MiB, a file of about
64 MB), with an error naming the size and the fix; views in on-demand mode export every layer up to that limit.
Here: `save_view()` (used by each view's `to_html`), `standalone_html()`, `view_state()`, `read_state()` (the
inverse, for tests), `check_size()`, `save_html_row()` (the "save HTML" button of the explorers).
Not here: the views (`attention_view`, `routing_view`), plotly figures as HTML (`workbench.plots.export`).
"""
from __future__ import annotations

import base64
import datetime
import html
import json
import re
from pathlib import Path

import ipywidgets as W

from .canvas import JS, MiB

HTML_MAX_BYTES = 48 * MiB
BOOT = JS / "standalone.js"
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:")
PAGE_CSS = ("body { margin: 16px 20px; background: #fff; }\n"
            ".wb-page-head { font: 12px sans-serif; color: #666; margin-bottom: 6px; }\n"
            ".wb-page-head b { color: #222; font-size: 14px; margin-right: 10px; }\n")
_STATE = re.compile(r'<script id="wb-state" type="application/json">(.*?)</script>', re.S)


def view_state(widget, **overrides) -> dict:
    """The synced traits of an anywidget view as it sends them (`widget.get_state`), without the ipywidgets
    housekeeping (`_model_*`, `_esm`, `layout`, ...); `overrides` replace some values (e.g. a full payload)."""
    skip = set(W.DOMWidget.class_trait_names())
    names = [n for n in widget.trait_names(sync=True)
             if not n.startswith("_") and n not in skip and n not in overrides]
    state = widget.get_state(names)
    state.update(overrides)
    return state


def encode_state(state: dict) -> str:
    """State -> JSON text safe inside <script>: bytes values become {"$b64": base64}; "<" is escaped as \\u003c.
    Raises ValueError on NaN/inf (not JSON)."""
    out = {k: {"$b64": base64.b64encode(bytes(v)).decode("ascii")} if isinstance(v, (bytes, bytearray, memoryview))
           else v for k, v in state.items()}
    return json.dumps(out, ensure_ascii=False, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")


def read_state(text: str) -> dict:
    """The state inlined in a standalone file (its text), bytes decoded: the inverse of `encode_state`.
    Raises ValueError when the text is not a standalone view."""
    m = _STATE.search(text)
    if m is None:
        raise ValueError("no <script id=\"wb-state\"> in this text: not a standalone workbench view")
    raw = json.loads(m.group(1))
    return {k: base64.b64decode(v["$b64"]) if isinstance(v, dict) and set(v) == {"$b64"} else v
            for k, v in raw.items()}


def payload_size(state: dict) -> int:
    """Bytes of a state before base64: bytes values at their length, the rest as compact JSON."""
    n = 0
    for v in state.values():
        n += len(v) if isinstance(v, (bytes, bytearray, memoryview)) else len(json.dumps(v, separators=(",", ":")))
    return n


def check_size(nbytes: int, what: str, fix: str, max_bytes: int = HTML_MAX_BYTES) -> None:
    """Raise ValueError naming the size, the limit and `fix` when `nbytes` of payload is over `max_bytes`."""
    if nbytes > max_bytes:
        raise ValueError(f"{what} is {nbytes / MiB:.1f} MiB, over the {max_bytes / MiB:.0f} MiB limit of a standalone "
                         f"HTML file (the file would be about {nbytes * 4 / 3 / 1e6:.0f} MB): {fix}, or pass "
                         f"max_bytes={int(nbytes * 1.01) + 1} to to_html to write it anyway")


def _module(esm: str) -> str:
    """The view's ES module, runnable inline: its `export default` becomes `const WB_MODULE =`."""
    if len(re.findall(r"^export default ", esm, re.M)) != 1:
        raise ValueError("a view's module must end with exactly one `export default { render };` line")
    return re.sub(r"^export default ", "const WB_MODULE = ", esm, flags=re.M)


def standalone_html(esm: str, css: str, state: dict, title: str, classes=()) -> str:
    """The text of a standalone page: `esm` (the view's anywidget module), `css`, `state` (trait -> value; bytes
    allowed), `title` (page title and heading), `classes` (CSS classes of the view's element, as in JupyterLab)."""
    script = (_module(esm) + "\n" + BOOT.read_text(encoding="utf-8")).replace("</script", "<\\/script")
    saved = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    t = html.escape(title)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="generator" content="workbench standalone view">', f"<title>{t}</title>",
        f"<style>\n{PAGE_CSS}{css}\n</style>", "</head>", "<body>",
        f'<div class="wb-page-head"><b>{t}</b>saved {saved}: the controls work offline, without a kernel</div>',
        f'<div id="wb-view" class="{html.escape(" ".join(classes))}"></div>',
        f'<script id="wb-state" type="application/json">{encode_state(state)}</script>',
        f'<script type="module">\n{script}\n</script>', "</body>", "</html>", ""])


def html_path(path) -> Path:
    """`path` as a Path ending in .html (added when it has another or no suffix)."""
    path = Path(path).expanduser()
    return path if path.suffix.lower() in (".html", ".htm") else path.with_name(path.name + ".html")


def save_view(widget, path, state: dict, title: str) -> Path:
    """Write `widget` (an anywidget view) with `state` as a standalone file; returns the path written (".html"
    added when missing; parent folders created). Size checks are the caller's (`check_size`)."""
    path = html_path(path)
    text = standalone_html(widget._esm, widget._css, state, title, widget._dom_classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def save_html_row(save, default: str) -> W.HBox:
    """A "save HTML" button, a file name (default `default`, relative names under the working directory) and a
    status line with the path written, or the error (never a traceback). `save(path) -> Path` writes the file.
    The box has `.filename` (Text), `.button`, `.status` (HTML) and `.save()` (what a click does)."""
    from ..errors import describe_error
    name = W.Text(value=default, placeholder=default, layout=W.Layout(width="240px"))
    button = W.Button(description="save HTML", icon="download",
                      tooltip="write this view as one HTML file that works offline, without a kernel")
    status = W.HTML()

    def click(_=None):
        path = Path(name.value.strip() or default).expanduser()
        path = path if path.is_absolute() else Path.cwd() / path
        try:
            written = save(path)
            mb = written.stat().st_size / 1e6
            status.value = (f"<span style='color:#2f5f8a'>saved {html.escape(str(written))} ({mb:.1f} MB): "
                            "opens offline in any browser</span>")
        except Exception as e:  # noqa: BLE001 (shown to the user, inline)
            status.value = ("<span style='color:#b00020;white-space:pre-wrap'>error: "
                            f"{html.escape(describe_error(e))}</span>")
    button.on_click(click)
    button.add_class("wb-save-html-button")
    row = W.HBox([button, name, status])
    row.add_class("wb-save-html")
    row.filename, row.button, row.status, row.save = name, button, status, click
    return row
