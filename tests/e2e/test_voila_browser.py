"""Notebook 02 served by Voilà (`make voila`), in a real browser: the page renders the attention explorer (an
anywidget canvas view, so Voilà has found anywidget's front-end extension) and the static plotly figures, the
layer slider redraws the heat map in the page, Python answers the explorer's buttons through Voilà's kernel
connection, and the page shows no error output.

Voilà runs every cell when the page is requested, then renders the outputs and connects the widgets to that
kernel; the code cells are hidden. Known and allowed here: jupyterlab-plotly's renderer, after drawing a figure,
tries to cache a PNG of it in the output's mime model (`model.setData`), which Voilà hands over as plain JSON, so
each static figure logs "r.setData is not a function" in the console; the figures themselves are drawn.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from .harness import NOTEBOOKS, REPO, Lab, _free_port, browser_page, require_browser, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NOTEBOOK = "02_attention_and_attribution.ipynb"
EXPLORER = ".wb-attention-explorer"
KNOWN_PAGE_ERRORS = ("r.setData is not a function",)    # jupyterlab-plotly under Voilà, see the docstring
ERROR_TEXTS = ("Traceback", "Error displaying widget", "There was an error when executing cell",
               "Cell execution timed out", "Javascript Error", "Message serialization failed")


def start_voila(notebook, root, env: dict | None = None, timeout: float = 60) -> Lab:
    """`voila` on a free 127.0.0.1 port serving a fresh copy of `notebook` from `root`, private config dirs,
    offline, tracebacks shown (so a failing cell says why). Returns a `Lab` (url, root, proc, log, stop())."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(notebook, root / notebook.name)
    port = _free_port()
    full_env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / ".cfg"), JUPYTER_RUNTIME_DIR=str(root / ".rt"),
                    IPYTHONDIR=str(root / ".ipython"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                    HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                    PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **(env or {}))
    cmd = [sys.executable, "-m", "voila", notebook.name, "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}",
           "--show_tracebacks=True"]
    log = root / "voila.log"
    proc = subprocess.Popen(cmd, cwd=root, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=full_env)
    server = Lab(f"http://127.0.0.1:{port}", root, proc, log)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:   # a plain connect: a GET would run the notebook
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    pytest.fail(f"Voilà did not start; its log:\n{log.read_text()[-3000:]}")


@pytest.fixture
def voila_server(tmp_path):
    require_browser()
    server = start_voila(NOTEBOOKS / NOTEBOOK, tmp_path / "voila", env={"WB_FAST": "1"})
    yield server
    server.stop()                                            # Voilà shuts its kernels down on SIGTERM
    assert server.proc.poll() is not None


def test_voila_renders_and_responds(voila_server):
    start = time.time()
    with browser_page(width=1200, height=1000) as page:
        try:
            _render_and_move(page, voila_server)
        except Exception:
            save_screenshot(page, "voila_02_failure")
            print(voila_server.log.read_text()[-3000:])
            raise
    print(f"Voilà browser test took {time.time() - start:.1f} s")


def _render_and_move(page, server):
    from playwright.sync_api import expect
    t0 = time.time()
    page.goto(server.url + "/", wait_until="commit", timeout=60_000)
    explorer = page.locator(EXPLORER)
    expect(explorer).to_have_count(1, timeout=300_000)     # Voilà ran every cell and rendered the widgets
    title = explorer.locator(".wb-title")
    expect(title).to_contain_text("layer 0 head 0", timeout=60_000)
    print(f"page rendered with its widgets after {time.time() - t0:.1f} s")

    config = json.loads(page.locator("#jupyter-config-data").text_content())
    extensions = {e["name"] for e in config.get("federated_extensions", [])}
    assert {"anywidget", "@jupyter-widgets/jupyterlab-manager", "jupyterlab-plotly"} <= extensions, extensions
    assert page.locator(".js-plotly-plot").count() >= 10        # the static figures (plotly mime renderer)

    canvas = explorer.locator("canvas.wb-canvas")
    canvas.scroll_into_view_if_needed()
    before = canvas.evaluate("c => c.toDataURL()")
    save_screenshot(page, "voila_02_explorer_before", element=explorer)
    layer = explorer.locator("input[data-control='layer']")
    layer.focus()
    page.keyboard.press("ArrowRight")                            # the layer slider, drawn in the page
    expect(canvas).to_have_attribute("data-shown", "attention L1 H0", timeout=5_000)
    expect(title).to_contain_text("layer 1 head 0")
    assert layer.input_value() == "1"
    assert canvas.evaluate("c => c.toDataURL()") != before
    save_screenshot(page, "voila_02_explorer_after", element=explorer)
    page.keyboard.press("ArrowLeft")                             # and back
    expect(title).to_contain_text("layer 0 head 0", timeout=5_000)
    expect(canvas).to_have_attribute("data-shown", "attention L0 H0")

    # Python answers through Voilà's kernel connection: a button's click runs a callback that updates widgets
    save = explorer.locator(".wb-save-html")
    save.locator("button").click()
    expect(save).to_contain_text("saved", timeout=60_000)
    assert (server.root / "attention.html").is_file()
    explorer.get_by_role("button", name="attribute").click()  # computed in the kernel, shown in an Output widget
    expect(explorer.locator(".js-plotly-plot")).to_have_count(1, timeout=120_000)
    expect(explorer).to_contain_text("completeness")

    save_screenshot(page, "voila_02_page")
    stderr = page.locator("[data-mime-type='application/vnd.jupyter.stderr']").all_text_contents()
    shown = page.locator("body").inner_text()
    found = [t for t in ERROR_TEXTS if t in shown or any(t in s for s in stderr)]
    assert not found, f"error output on the page: {found}; stderr outputs: {[s[:500] for s in stderr]}"
    unexpected = [e for e in page.errors if not any(k in e for k in KNOWN_PAGE_ERRORS)]
    assert not unexpected, unexpected



STOP_NOTEBOOK = """import ipywidgets as W
import torch
from IPython.display import display
from workbench.testing import tiny_tokenizer, word_stories
from workbench.train import Callback
from workbench.widgets.training import TrainingPanel
torch.set_num_threads(1)
panel = TrainingPanel("long run", min_interval_s=0.3, display_now=False)
after = W.HTML("not run yet")
after.add_class("wb-after")

class Report(Callback):
    def on_end(self, state):
        after.value = f"after the run: {state.stop_reason} at step {state.step}"

def go(_):
    panel.run("dense-nano", word_stories(), tokenizer=tiny_tokenizer(), steps=200000, batch_size=2, seq_len=16,
              eval_every=0, log_every=5, warmup=1, sample_max_new_tokens=4, hidden_size=32, num_hidden_layers=1,
              num_attention_heads=2, max_position_embeddings=32, background=True, callbacks=[Report()])

button = W.Button(description="train")
button.on_click(go)
display(W.VBox([button, after, panel.widget]))     # one box: the dashboard's controls above its panel"""


def test_voila_stop_ends_a_run_started_on_the_page(tmp_path):
    """A dashboard under Voilà: a button starts a run (background=True), the panel's curve and status grow live,
    Stop ends it cleanly after the current step, and the same panel runs again with Stop enabled.
    (A foreground run cannot be stopped under Voilà: Voilà lets the page send the kernel only widget and
    kernel-info messages, so neither the REST interrupt nor an interrupt_request reaches a busy kernel.)"""
    from playwright.sync_api import expect
    require_browser()
    src = tmp_path / "src" / "voila_stop.ipynb"
    src.parent.mkdir()
    src.write_text(json.dumps({"cells": [{"cell_type": "code", "id": "c0", "metadata": {}, "execution_count": None,
                                          "outputs": [], "source": STOP_NOTEBOOK}],
                               "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                           "name": "python3"}},
                               "nbformat": 4, "nbformat_minor": 5}))
    server = start_voila(src, tmp_path / "voila", env={"WB_FAST": "1"})
    try:
        with browser_page(width=1200, height=900) as page:
            try:
                page.goto(server.url + "/", wait_until="commit", timeout=60_000)
                start = page.get_by_role("button", name="train")
                expect(start).to_be_visible(timeout=180_000)
                status = page.locator(".widget-html", has_text="long run").first
                stop, after = page.locator(".wb-stop"), page.locator(".wb-after")
                for run in range(2):                   # the second run: the same panel, Stop enabled again
                    start.click()
                    expect(status).to_contain_text("step", timeout=60_000)
                    expect(status).not_to_contain_text("stopped", timeout=30_000)
                    expect(stop).to_be_enabled()
                    time.sleep(1.5)
                    clicked = time.time()
                    stop.click()
                    expect(status).to_contain_text("stopped: Stop button", timeout=30_000)
                    expect(after).to_contain_text("after the run: Stop button at step", timeout=30_000)
                    stopped_in = time.time() - clicked
                    assert stopped_in < 30
                    print(f"run {run}: stopped {stopped_in:.1f} s after the click; {after.inner_text()}")
                expect(stop).to_be_disabled()
                save_screenshot(page, "voila_stop")
            except Exception:
                save_screenshot(page, "voila_stop_failure")
                print(server.log.read_text()[-3000:])
                print("status:", page.locator(".widget-html", has_text="long run").first.inner_text())
                raise
    finally:
        server.stop()
