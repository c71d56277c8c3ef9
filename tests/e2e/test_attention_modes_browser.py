"""The model grid and the head view in a real browser. Every control (layer/head sliders, a click on a grid cell,
normalisation, head toggles, threshold, query, hovering a token) redraws the canvas in the page: moved while the
kernel is busy running another cell, the picture changes at once and the kernel hears of the new values only
afterwards, while an on-demand view (which needs the kernel for another layer) waits; after a page reload each
view shows what its controls say. A saved file keeps the controls with no kernel and no network."""
import json
import time

import pytest

from .harness import browser_page, open_notebook, run_all, save_screenshot, start_lab, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NOTEBOOK = "modes.ipynb"
TEXT = "Once upon a time, there was a little girl named Lily. She liked to play with her red ball."
CELLS = [f'''\
import json, pathlib, time, torch
torch.set_num_threads(1)
from workbench.testing import tiny_model, tiny_tokenizer
from workbench.probes.attention import attention_record, sharpen
from workbench.widgets.attention_view import AttentionView, attention_view
tok = tiny_tokenizer()
rec = attention_record(sharpen(tiny_model("dense", tokenizer=tok)), tok, {TEXT!r})

def keep(view, name, traits):
    """Write the view's control values to name.json whenever the kernel hears of a change."""
    def write(_=None):          # renamed into place: the test never reads a half-written file
        tmp = pathlib.Path(name + ".json.tmp")
        tmp.write_text(json.dumps({{t: getattr(view, t) for t in traits}}))
        tmp.replace(name + ".json")
    view.observe(write, names=traits)
    write()
''', '''\
grid = attention_view(rec, view="grid")
grid.add_class("wb-grid-test")
keep(grid, "grid", ["layer", "head", "norm"])
grid''', '''\
lines = attention_view(rec, view="head view")
lines.add_class("wb-lines-test")
keep(lines, "lines", ["layer", "heads", "threshold", "query"])
lines''', '''\
class OneLayerAtATime(AttentionView):
    max_tokens_full = 8                   # this text is longer: the kernel sends one layer at a time
long_grid = OneLayerAtATime.from_record(rec, view="grid")
long_grid.add_class("wb-long-test")
long_grid''', '''\
if pathlib.Path("busy.flag").exists():    # the test runs this cell again to keep the kernel busy
    pathlib.Path("busy.started").write_text("1")
    t0 = time.time()
    while not pathlib.Path("release.flag").exists() and time.time() < t0 + 90:
        time.sleep(0.05)
"idle"''']
GRID, LINES, LONG = ".wb-grid-test", ".wb-lines-test", ".wb-long-test"


@pytest.fixture
def lab(tmp_path):
    import nbformat
    src = tmp_path / NOTEBOOK
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, src)
    lab = start_lab([src], root=tmp_path / "lab", env={"WB_FAST": "1"})
    yield lab
    lab.stop()


def _canvas(page, scope: str):
    return page.locator(f"{scope} canvas.wb-canvas".strip()).first


def _shown(page, scope: str, shown: str, timeout: int = 5_000) -> None:
    from playwright.sync_api import expect
    expect(_canvas(page, scope)).to_have_attribute("data-shown", shown, timeout=timeout)


def _picture(page, scope: str) -> str:
    return _canvas(page, scope).evaluate("c => c.toDataURL()")


def _changed(page, scope: str, old: str) -> str:
    """Wait (2 s at most: a redraw in the page) until the canvas differs from `old`; returns the new picture."""
    page.wait_for_function("([sel, old]) => document.querySelector(sel).toDataURL() !== old",
                           arg=[f"{scope} canvas.wb-canvas".strip(), old], timeout=2_000)
    return _picture(page, scope)


def _press(page, scope: str, control: str, key: str = "ArrowRight") -> None:
    page.locator(f"{scope} input[data-control='{control}']".strip()).first.focus()
    page.keyboard.press(key)


def _at(page, scope: str, fx) -> tuple[float, float]:
    """Page coordinates of a point of the canvas given by fx(geometry) -> (x, y) in canvas CSS pixels."""
    canvas = _canvas(page, scope)
    canvas.scroll_into_view_if_needed()
    g = json.loads(canvas.get_attribute("data-geometry"))
    box = canvas.bounding_box()
    x, y = fx(g)
    return box["x"] + x, box["y"] + y


def _cell(g, layer, head):
    step = g["cell"] + g["gap"]
    return g["x0"] + head * step + g["cell"] / 2, g["y0"] + g["rows"].index(layer) * step + g["cell"] / 2


def _token(g, side, i):
    return (g["left"] - 8 if side == "q" else g["right"] + 8), g["top"] + (i + 0.5) * g["row"]


def _kernel_state(lab, name: str) -> dict:
    return json.loads((lab.root / f"{name}.json").read_text())


def _wait_kernel(lab, name: str, expected: dict, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = _kernel_state(lab, name)
        if all(state.get(k) == v for k, v in expected.items()):
            return
        time.sleep(0.2)
    raise AssertionError(f"the kernel's {name} controls are {state}, expected {expected}")


def test_grid_and_head_view_answer_without_the_kernel(lab):
    with browser_page(width=1300, height=2600) as page:
        try:
            _drive(page, lab)
        except Exception:
            save_screenshot(page, "modes_failure")
            raise
        assert not page.errors, page.errors


def _drive(page, lab):
    from playwright.sync_api import expect
    open_notebook(page, lab, NOTEBOOK)
    run_all(page)
    wait_idle(page, timeout_s=300)
    _shown(page, GRID, "grid L0 H0", 60_000)
    _shown(page, LINES, "head view L0 H0,1,2,3 all t5", 60_000)
    _shown(page, LONG, "grid L0 H0", 60_000)
    expect(page.locator(f"{GRID} .wb-title")).to_contain_text("all layers x heads, layer 0 head 0 outlined")
    expect(page.locator(f"{LONG} .wb-note")).to_contain_text("the grid shows the layer the kernel sent")
    assert json.loads(_canvas(page, GRID).get_attribute("data-geometry"))["rows"] == [0, 1]
    assert json.loads(_canvas(page, LONG).get_attribute("data-geometry"))["rows"] == [0]
    grid0, lines0 = _picture(page, GRID), _picture(page, LINES)
    save_screenshot(page, "modes_grid", element=page.locator(GRID))
    save_screenshot(page, "modes_head_view", element=page.locator(LINES))

    (lab.root / "busy.flag").write_text("1")                  # keep the kernel busy in the last cell
    page.locator(".jp-Notebook .jp-CodeCell").last.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")
    deadline = time.time() + 30
    while not (lab.root / "busy.started").exists():
        assert time.time() < deadline, "the busy cell did not start"
        time.sleep(0.1)
    started = time.time()

    _press(page, GRID, "layer")                               # grid: the outline moves to layer 1
    _shown(page, GRID, "grid L1 H0")
    expect(page.locator(f"{GRID} .wb-title")).to_contain_text("layer 1 head 0 outlined")
    grid1 = _changed(page, GRID, grid0)
    page.locator(f"{GRID} select[data-control='norm']").select_option("row max")     # every cell redrawn
    grid2 = _changed(page, GRID, grid1)
    page.mouse.click(*_at(page, GRID, lambda g: _cell(g, 0, 2)))                    # a click picks a cell
    _shown(page, GRID, "grid L0 H2")
    _changed(page, GRID, grid2)
    page.mouse.move(*_at(page, GRID, lambda g: _cell(g, 1, 3)))                     # hover names the cell
    expect(page.locator(f"{GRID} .wb-tip")).to_contain_text("layer 1 head 3")

    _press(page, LINES, "threshold")                          # head view: fewer lines
    _shown(page, LINES, "head view L0 H0,1,2,3 all t6")
    lines1 = _changed(page, LINES, lines0)
    page.mouse.move(*_at(page, LINES, lambda g: _token(g, "q", 6)))                 # one query's lines
    _shown(page, LINES, "head view L0 H0,1,2,3 q6 t6")
    lines2 = _changed(page, LINES, lines1)
    page.mouse.move(*_at(page, LINES, lambda g: _token(g, "k", 1)))                 # the lines into one key
    _shown(page, LINES, "head view L0 H0,1,2,3 k1 t6")
    lines3 = _changed(page, LINES, lines2)
    page.locator(f"{LINES} button[data-control='heads']", has_text="H1").click()   # head 1 off
    _shown(page, LINES, "head view L0 H0,2,3 all t6")
    lines4 = _changed(page, LINES, lines3)
    page.mouse.click(*_at(page, LINES, lambda g: _token(g, "q", 4)))                # pin query 4
    page.mouse.move(0, 0)
    _shown(page, LINES, "head view L0 H0,2,3 q4 t6")
    _changed(page, LINES, lines4)
    _press(page, LINES, "layer")
    _shown(page, LINES, "head view L1 H0,2,3 q4 t6")
    expect(page.locator(f"{LINES} .wb-title")).to_contain_text("head view, layer 1")

    _press(page, LONG, "layer")                               # on demand: layer 1 must come from the kernel
    expect(page.locator(f"{LONG} .wb-note")).to_contain_text("loading layer 1 from the kernel", timeout=2_000)
    time.sleep(0.5)
    _shown(page, LONG, "grid L0 H0", 1_000)                   # ... so it waits while the kernel is busy
    assert time.time() - started < 60, "the checks took longer than the busy cell lasts"
    assert _kernel_state(lab, "grid") == {"layer": 0, "head": 0, "norm": "none"}   # the kernel has heard nothing
    assert _kernel_state(lab, "lines")["threshold"] == 0.05
    assert page.locator(".jp-Notebook-ExecutionIndicator[data-status='busy']").count() == 1

    (lab.root / "release.flag").write_text("1")              # the kernel is free: it catches up
    _shown(page, LONG, "grid L1 H0", 30_000)
    _wait_kernel(lab, "grid", {"layer": 0, "head": 2, "norm": "row max"})
    _wait_kernel(lab, "lines", {"layer": 1, "heads": [0, 2, 3], "threshold": 0.06, "query": 4})
    save_screenshot(page, "modes_after", element=page.locator(LINES))

    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()   # save, then reload: every
    page.keyboard.press("Control+s")                                                  # view shows its controls
    deadline = time.time() + 30
    while (lab.root / NOTEBOOK).read_text().count("application/vnd.jupyter.widget-view+json") < 3:
        assert time.time() < deadline, "the notebook was not saved with its widget outputs"
        time.sleep(0.3)
    page.reload()
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    _shown(page, GRID, "grid L0 H2", 60_000)
    _shown(page, LINES, "head view L1 H0,2,3 q4 t6", 60_000)
    _shown(page, LONG, "grid L1 H0", 60_000)
    assert page.locator(f"{GRID} select[data-control='norm']").input_value() == "row max"
    assert page.locator(f"{LINES} input[data-control='threshold']").input_value() == "0.06"
    expect(page.locator(f"{LINES} button.wb-active[data-control='heads']")).to_have_text(["H0", "H2", "H3"])


def test_saved_grid_and_head_view_keep_their_controls(tmp_path, tiny_tok):
    from workbench.probes.attention import attention_record, sharpen
    from workbench.testing import tiny_model
    from workbench.widgets.attention_view import attention_view
    rec = attention_record(sharpen(tiny_model("dense", tokenizer=tiny_tok)), tiny_tok, TEXT)
    grid = attention_view(rec, view="grid").to_html(tmp_path / "grid.html")
    lines = attention_view(rec, view="head view", threshold=0.1).to_html(tmp_path / "lines.html")
    with browser_page(width=1000, height=1600) as page:
        asked = []
        page.route("**/*", lambda r: (asked.append(r.request.url),
                                      r.continue_() if r.request.url.startswith("file:") else r.abort()))
        page.goto(grid.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        _shown(page, "", "grid L0 H0")
        before = _picture(page, "")
        _press(page, "", "layer")
        _shown(page, "", "grid L1 H0")
        _changed(page, "", before)
        page.goto(lines.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        _shown(page, "", "head view L0 H0,1,2,3 all t10")
        before = _picture(page, "")
        _press(page, "", "threshold", "ArrowLeft")
        _shown(page, "", "head view L0 H0,1,2,3 all t9")
        before = _changed(page, "", before)
        page.mouse.move(*_at(page, "", lambda g: _token(g, "q", 5)))
        _shown(page, "", "head view L0 H0,1,2,3 q5 t9")
        _changed(page, "", before)
        save_screenshot(page, "modes_standalone_head_view")
        assert asked == [grid.as_uri(), lines.as_uri()], asked
        assert not page.errors, page.errors
