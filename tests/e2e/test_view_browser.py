"""The canvas views in a real browser: controls redraw in the page, their values reach the kernel, and after a
page reload every view shows what its controls say (no blank or stale picture, no "Error setting state")."""
import json
import time

import pytest

from .harness import browser_page, open_notebook, run_all, save_screenshot, start_lab, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NOTEBOOK = "views.ipynb"
CELLS = ['''\
import json, pathlib, torch
torch.set_num_threads(1)
from workbench.testing import tiny_model, tiny_tokenizer
from workbench.probes.attention import sharpen
from workbench.probes import routing as R
from workbench.widgets import routing as W
from workbench.widgets.attention import AttentionExplorer
tok = tiny_tokenizer()
dense = sharpen(tiny_model("dense", tokenizer=tok))
moe = sharpen(tiny_model("moe", tokenizer=tok, num_local_experts=8))
texts = ["Once upon a time, there was a little girl named Lily.", "def add(a, b): return a + b", "the cat sat"]
rec = R.routing_record(moe, tok, texts, groups={"domain": ["story", "code", "story"]})

def keep(view, name, traits):
    """Write the view's control values to name.json whenever the kernel hears of a change."""
    def write(_=None):          # renamed into place: the test never reads a half-written file
        tmp = pathlib.Path(name + ".json.tmp")
        tmp.write_text(json.dumps({t: getattr(view, t) for t in traits}))
        tmp.replace(name + ".json")
    view.observe(write, names=traits)
    write()
''', '''\
ex = AttentionExplorer(dense, tok, texts[0], name="tiny")
keep(ex.heat, "attention", ["layer", "head", "mean", "view", "norm", "colorscale"])
ex.widget''', '''\
box = W.routing_explorer(rec)
keep(box.view, "tokens", ["layer", "top"])
box''', '''\
groups = W.group_explorer(rec, "domain")
keep(groups.view, "groups", ["values"])
groups''', '''\
early = sharpen(tiny_model("moe", seed=3, tokenizer=tok, num_local_experts=8), seed=3)
replay = W.checkpoint_replay([(0, R.routing_record(early, tok, texts)), (9, rec)])
keep(replay.view, "replay", ["ckpt", "layer"])
replay''', '''\
from workbench.widgets.attention_view import AttentionView
class OneLayerAtATime(AttentionView):
    max_tokens_full = 8                   # this text is longer: the kernel sends one layer at a time
long_view = OneLayerAtATime.from_record(ex.rec)
long_view.add_class("wb-on-demand")
long_view''']
ATT, TOK, GRP, REP = ".wb-attention-explorer", ".wb-routing-explorer", ".wb-routing-groups", ".wb-routing-replay"
LONG = ".wb-on-demand"


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


def _kernel_state(lab, name: str, expected: dict, timeout: float = 15) -> dict:
    """The control values the kernel holds (written by the notebook's observer), once they equal `expected`."""
    deadline, state = time.time() + timeout, None
    while time.time() < deadline:
        try:
            state = json.loads((lab.root / f"{name}.json").read_text())
        except (OSError, ValueError):
            state = None
        if state is not None and all(state.get(k) == v for k, v in expected.items()):
            return state
        time.sleep(0.2)
    raise AssertionError(f"the kernel's {name} controls are {state}, expected {expected}")


def _press(page, scope: str, control: str, key: str = "ArrowRight") -> None:
    page.locator(f"{scope} input[data-control='{control}']").first.focus()
    page.keyboard.press(key)


def _painted(page, scope: str) -> int:
    """Coloured (non-white, opaque) pixels on the view's canvas: 0 for a blank view."""
    return page.locator(f"{scope} canvas.wb-canvas").first.evaluate("""c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++;
        return n; }""")


def _picture(page, scope: str) -> str:
    return page.locator(f"{scope} canvas.wb-canvas").first.evaluate("c => c.toDataURL()")


def _save(page, lab) -> None:
    """Ctrl+S (as autosave would), then wait until the file on disk holds the widget outputs."""
    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+s")
    deadline = time.time() + 30
    while time.time() < deadline:
        if (lab.root / NOTEBOOK).read_text().count("application/vnd.jupyter.widget-view+json") >= 5:
            return
        time.sleep(0.3)
    raise AssertionError("the notebook was not saved with its widget outputs")


def _expect_shown(page, scope: str, shown: str, title: str | None = None) -> None:
    from playwright.sync_api import expect
    expect(page.locator(f"{scope} canvas.wb-canvas").first).to_have_attribute("data-shown", shown, timeout=60_000)
    if title is not None:
        expect(page.locator(f"{scope} .wb-title").first).to_contain_text(title)
    assert _painted(page, scope) > 500, f"{scope} shows a blank canvas"


def test_views_answer_in_the_page_and_survive_a_reload(lab):
    with browser_page(width=1400, height=2400) as page:
        console = []
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        try:
            _move_and_reload(page, lab)
        except Exception:
            save_screenshot(page, "views_failure")
            raise
        assert not page.errors, page.errors
        assert not [c for c in console if "Error setting state" in c or "widget" in c.lower()], console


def _move_and_reload(page, lab):
    from playwright.sync_api import expect
    open_notebook(page, lab, NOTEBOOK)
    run_all(page)
    wait_idle(page, timeout_s=300)
    assert page.get_by_text("Error displaying widget").count() == 0
    _expect_shown(page, ATT, "attention L0 H0", "layer 0 head 0 (tiny)")
    before = _picture(page, ATT)
    _press(page, ATT, "layer")                                           # redrawn in the page ...
    _expect_shown(page, ATT, "attention L1 H0", "layer 1 head 0 (tiny)")
    assert _picture(page, ATT) != before
    _press(page, ATT, "head")
    _expect_shown(page, ATT, "attention L1 H1", "layer 1 head 1 (tiny)")
    raw = _picture(page, ATT)
    page.locator(f"{ATT} select[data-control='norm']").select_option("log")     # its own colour range
    page.wait_for_function("([sel, old]) => document.querySelector(sel).toDataURL() !== old",
                           arg=[f"{ATT} canvas.wb-canvas", raw], timeout=5_000)
    page.locator(f"{ATT} button[data-control='view']", has_text="rollout").click()
    _expect_shown(page, ATT, "rollout L1", "rollout through layer 1 (mean of heads) (tiny)")
    page.locator(f"{ATT} button[data-control='view']", has_text="attention").click()
    page.locator(f"{ATT} select[data-control='norm']").select_option("row max")
    _expect_shown(page, ATT, "attention L1 H1", "layer 1 head 1 (tiny)")
    _kernel_state(lab, "attention", {"layer": 1, "head": 1, "norm": "row max"})   # ... and the kernel knows
    _press(page, TOK, "layer")
    page.locator(f"{TOK} button[data-control='top']", has_text="top-k").click()
    _expect_shown(page, TOK, "L1 top-k", "layer 1: top-2 experts")
    _kernel_state(lab, "tokens", {"layer": 1, "top": "k"})
    page.locator(f"{GRP} button[data-control='view']", has_text="group × expert").click()
    _expect_shown(page, GRP, '[1,"group × expert",false,"cosine"]', "layer 1: group × expert")
    _press(page, REP, "ckpt", "ArrowLeft")
    _expect_shown(page, REP, "C0 L0", "step 0, layer 0")
    _kernel_state(lab, "replay", {"ckpt": 0})
    _expect_shown(page, LONG, "attention L0 H0", "layer 0 head 0")              # on-demand mode: the kernel
    expect(page.locator(f"{LONG} .wb-note")).to_contain_text("one layer at a time")   # sends the next layer
    _press(page, LONG, "layer")
    _expect_shown(page, LONG, "attention L1 H0", "layer 1 head 0")
    _kernel_state(lab, "groups", {"values": {"layer": 1, "view": "group × expert", "counts": False,
                                             "metric": "cosine"}})
    save_screenshot(page, "views_before_reload")
    _save(page, lab)
    page.reload()                                                        # the views come back from the kernel
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    expect(page.locator(".wb-view")).to_have_count(5, timeout=60_000)
    _expect_shown(page, ATT, "attention L1 H1", "layer 1 head 1 (tiny)")
    assert page.locator(f"{ATT} input[data-control='layer']").input_value() == "1"
    assert page.locator(f"{ATT} input[data-control='head']").input_value() == "1"
    assert page.locator(f"{ATT} select[data-control='norm']").input_value() == "row max"
    _expect_shown(page, TOK, "L1 top-k", "layer 1: top-2 experts")
    expect(page.locator(f"{TOK} button.wb-active")).to_have_text("top-k")
    _expect_shown(page, GRP, '[1,"group × expert",false,"cosine"]', "layer 1: group × expert")
    _expect_shown(page, REP, "C0 L0", "step 0, layer 0")
    assert page.locator(f"{REP} input[data-control='ckpt']").input_value() == "0"
    _expect_shown(page, LONG, "attention L1 H0", "layer 1 head 0")
    save_screenshot(page, "views_after_reload")
    _press(page, ATT, "layer", "ArrowLeft")                              # still live after the reload
    _expect_shown(page, ATT, "attention L0 H1", "layer 0 head 1 (tiny)")
    _kernel_state(lab, "attention", {"layer": 0, "head": 1})
    before = _picture(page, ATT)                                         # a new text: computed once, sent once
    page.locator(f"{ATT} .widget-dropdown select").first.select_option("Tom's boat")
    page.wait_for_function("([sel, old]) => document.querySelector(sel).toDataURL() !== old",
                           arg=[f"{ATT} canvas.wb-canvas", before], timeout=30_000)
    _expect_shown(page, ATT, "attention L0 H1", "layer 0 head 1 (tiny)")
    for scope, name in [(ATT, "attention.html"), (TOK, "routing_tokens.html")]:      # "save HTML": a file the
        page.locator(f"{scope} .wb-save-html-button").first.click()                   # kernel writes, its path shown
        expect(page.locator(f"{scope} .wb-save-html").first).to_contain_text(f"saved {lab.root / name}",
                                                                            timeout=30_000)
        assert "Tom" in (lab.root / name).read_text(encoding="utf-8") or scope != ATT   # the current text
