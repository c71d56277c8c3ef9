"""A Stop button that also works while the cell that trains is still running.

A cell that trains in the foreground keeps the kernel's main thread busy, and ipykernel 7 handles widget
messages on that thread, so an ordinary button's click waits until the cell ends. This button (an anywidget:
its front-end code ships here, no CDN) does two things on a click: it sends the click to Python as usual
(enough when the run is a background thread or the kernel is idle) and, while Python has marked a
foreground run as `busy`, it asks the Jupyter server to interrupt this kernel
(`POST {base}api/kernels/{id}/interrupt`, the request JupyterLab's own stop button makes, with the page's
XSRF cookie). `train()` turns the interrupt into a clean stop after the current step that keeps the model and
its last checkpoint (stop reason "interrupted after step N").
Here: `StopButton`, `kernel_id()`.
"""
from __future__ import annotations

from pathlib import Path

import traitlets

from .canvas import BaseView

_ESM = r"""
function render({ model, el }) {
  const button = document.createElement("button");
  button.className = "jupyter-widgets jupyter-button widget-button mod-warning wb-stop";
  button.innerHTML = "<i class='fa fa-stop'></i> Stop";
  button.title = model.get("hint");
  button.onclick = async () => {
    model.send({ event: "click" });
    const id = model.get("kernel_id");
    if (!model.get("busy") || !id) return;
    const node = document.getElementById("jupyter-config-data");
    const base = ((node ? JSON.parse(node.textContent).baseUrl : null) || "/").replace(/\/?$/, "/");
    const xsrf = (document.cookie.match(/(?:^|;\s*)_xsrf=([^;]+)/) || [])[1];
    button.classList.add("wb-stop-sent");
    await fetch(`${base}api/kernels/${id}/interrupt`, {
      method: "POST", credentials: "same-origin",
      headers: xsrf ? { "X-XSRFToken": decodeURIComponent(xsrf) } : {},
    });
  };
  const sync = () => { button.disabled = model.get("disabled"); };
  model.on("change:disabled", sync);
  sync();
  el.appendChild(button);
}
export default { render };
"""


def kernel_id() -> str:
    """The id of the Jupyter kernel this code runs in ("" outside a kernel): the name of its connection file,
    kernel-<id>.json, as Jupyter Server names it."""
    try:
        from ipykernel.connect import get_connection_file
        stem = Path(get_connection_file()).stem
    except Exception:                    # not in a kernel (a script, a test)
        return ""
    return stem[len("kernel-"):] if stem.startswith("kernel-") else ""


class StopButton(BaseView):
    """A button whose clicks reach Python (`on_click(fn)`), and interrupt the kernel while `busy` is True."""
    _esm = _ESM
    busy = traitlets.Bool(False).tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)
    kernel_id = traitlets.Unicode("").tag(sync=True)
    hint = traitlets.Unicode("end training cleanly after the current step (keeps the model and a checkpoint)"
                                ).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(kernel_id=kernel_id(), **kwargs)
        self._handlers = []
        self.on_msg(self._on_msg)

    def on_click(self, fn) -> None:
        """Call fn(button) on every click."""
        self._handlers.append(fn)

    def click(self) -> None:
        """What a click does on the Python side (for tests and programmatic stops)."""
        for fn in self._handlers:
            fn(self)

    def _on_msg(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("event") == "click":
            self.click()
