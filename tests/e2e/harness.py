"""Real-browser harness: JupyterLab (headless, 127.0.0.1, private config) driven by Playwright + Debian's Chromium.

Reusable by every notebook's browser test:
    lab = start_lab([notebook_path], env={"WB_FAST": "1"})   # or the `lab_server` fixture factory in conftest.py
    with browser_page() as page:
        open_notebook(page, lab, "02_attention_and_attribution.ipynb")
        run_all(page); wait_idle(page)
        move_slider(page, 0, scope=".wb-attention-explorer"); save_screenshot(page, "after")
Never downloads a browser: tests skip (with the reason) when Chromium or Playwright is missing.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = Path(os.environ.get("WB_ARTIFACTS", REPO / "artifacts" / "e2e"))
CHROMIUM = os.environ.get("WB_CHROMIUM", "/usr/bin/chromium")
TOKEN = "wb-e2e"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage"]


def require_browser() -> None:
    """Skip (never pass silently) when Playwright or Chromium is missing; say how to get them."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]' (no browser download is needed)")
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium) or set WB_CHROMIUM")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    root: Path
    proc: subprocess.Popen
    log: Path

    def api(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}?token={TOKEN}", timeout=5) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        """Stop the server (and its kernels) by its own PID."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_lab(notebooks, root: Path | None = None, env: dict | None = None, timeout: float = 60) -> Lab:
    """JupyterLab on 127.0.0.1 serving fresh copies of `notebooks` from `root`, with private config dirs.

    `env` is added to the server's environment, which kernels inherit (e.g. WB_FAST=1).
    """
    root = Path(root or tempfile.mkdtemp(prefix="wb-lab-"))
    root.mkdir(parents=True, exist_ok=True)
    for nb in notebooks:
        shutil.copy(nb, root / Path(nb).name)
    cfg = root / ".cfg"
    (cfg / "labconfig").mkdir(parents=True, exist_ok=True)
    (cfg / "labconfig" / "page_config.json").write_text(   # the news toast can cover widgets
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}')
    port = _free_port()
    full_env = dict(os.environ, JUPYTER_CONFIG_DIR=str(cfg), JUPYTER_RUNTIME_DIR=str(root / ".rt"),
                    IPYTHONDIR=str(root / ".ipython"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                    HF_DATASETS_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                    **(env or {}))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
           "--LabApp.extension_manager=readonly", f"--IdentityProvider.token={TOKEN}",
           f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={root / '.ws'}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = root / "lab.log"
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=full_env)
    lab = Lab(f"http://127.0.0.1:{port}", root, proc, log)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            lab.api("/api/status")
            return lab
        except Exception:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    lab.stop()
    pytest.fail(f"JupyterLab did not start; its log:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def browser_page(width: int = 1200, height: int = 1400):
    """A Playwright page in headless Debian Chromium with a fresh profile; JS errors collected in page.errors."""
    require_browser()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS, viewport={"width": width, "height": height})
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        try:
            yield page
        finally:
            ctx.close()


def open_notebook(page, lab: Lab, name: str, timeout_ms: int = 90_000) -> None:
    """Open `name` in the single-document UI and wait for its kernel to be idle."""
    page.goto(f"{lab.url}/doc/tree/{name}?token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_ms)
    deadline = time.time() + timeout_ms / 1000
    while time.time() < deadline:    # the indicator reads 'idle' before a kernel exists: ask the server
        try:
            kernels = lab.api("/api/kernels")
        except OSError:              # a kernel still starting can make the listing fail once (HTTP 500): ask again
            time.sleep(0.5)
            continue
        if any(k["execution_state"] == "idle" and k.get("connections", 0) > 0 for k in kernels):
            break
        time.sleep(0.5)
    else:
        raise TimeoutError(f"no idle kernel for {name} after {timeout_ms / 1000:.0f} s")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms)
    time.sleep(1.0)                  # let the kernel connection settle before the first command


def run_all(page) -> None:
    """Run > Run All Cells (the Lumino menu command is runmenu:run-all)."""
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()


def wait_idle(page, timeout_s: float = 240) -> None:
    """Wait until every code cell has run: no '[*]' prompt, every prompt numbered, kernel idle."""
    start = time.time()
    deadline = start + timeout_s
    while time.time() < deadline:
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()
        if time.time() - start > 30 and all(p.strip() == "[ ]:" for p in prompts):
            raise AssertionError("Run All did not start any cell within 30 s (kernel not connected?)")
        done = prompts and all(re.search(r"\[\d+\]", p) for p in prompts)
        idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0
        if done and idle:
            return
        errors = cell_errors(page)
        if errors:
            raise AssertionError(f"a cell failed:\n{errors[0][:2000]}")
        time.sleep(0.5)
    raise TimeoutError(f"the notebook did not finish in {timeout_s} s; prompts: {prompts}")


def run_notebook(page, lab: Lab, name: str, timeout_s: float = 400) -> None:
    """Open `name`, Run All, wait until every cell ran; fail on a traceback or a widget that did not render."""
    open_notebook(page, lab, name)
    run_all(page)
    wait_idle(page, timeout_s=timeout_s)
    assert cell_errors(page) == []
    assert page.get_by_text("Error displaying widget").count() == 0


def cell_errors(page) -> list[str]:
    """Texts of error outputs (tracebacks) in the notebook."""
    sel = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
    return [t for t in page.locator(sel).all_text_contents() if "Traceback" in t]


def move_slider(page, nth: int = 0, steps: int = 1, scope: str = "") -> None:
    """Move the nth ipywidgets slider (inside the `scope` CSS selector) right by `steps` with the keyboard."""
    handle = page.locator(f"{scope} .widget-slider".strip()).nth(nth).locator(".noUi-handle")
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(steps):
        page.keyboard.press("ArrowRight")


def save_screenshot(page, name: str, element=None) -> Path:
    """Save a PNG under artifacts/e2e/ (the whole viewport, or just `element`)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    (element or page).screenshot(path=str(path))
    return path
