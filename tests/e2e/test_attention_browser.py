"""Notebook 02 in a real browser: it runs, the model grid and the head view render as canvas views, the explorer
renders, and moving the layer slider redraws the heat map (in the page: the explorer's heat map is a canvas view;
tests/e2e/test_view_browser.py covers reloads, test_attention_modes_browser.py the grid's and head view's controls)."""
import re
import time

import pytest

from .harness import browser_page, run_notebook, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NOTEBOOK = "02_attention_and_attribution.ipynb"
EXPLORER = ".wb-attention-explorer"


def test_attention_notebook_in_browser(lab_server):
    start = time.time()
    lab = lab_server(NOTEBOOK)
    with browser_page() as page:
        try:
            _run_and_move_slider(page, lab)
        except Exception:
            save_screenshot(page, "02_failure")                                # what the page showed
            raise
    print(f"browser test took {time.time() - start:.1f} s")


def _run_and_move_slider(page, lab):
    from playwright.sync_api import expect
    run_notebook(page, lab, NOTEBOOK, timeout_s=300)
    assert page.get_by_text("Message serialization failed").count() == 0     # e.g. NaN sent to a widget
    explorer = page.locator(EXPLORER)
    expect(explorer).to_have_count(1, timeout=60_000)
    assert page.locator(".js-plotly-plot").count() >= 10                       # the static figures rendered too
    views = page.locator(".wb-attention-view canvas.wb-canvas")                # the grid, the head view, the explorer
    expect(views).to_have_count(3, timeout=60_000)
    expect(views.nth(0)).to_have_attribute("data-shown", "grid L0 H0", timeout=60_000)
    expect(views.nth(1)).to_have_attribute("data-shown", re.compile(r"^head view L\d H0,1,2,3 q\d+ t5$"))
    canvas = explorer.locator("canvas.wb-canvas")
    canvas.scroll_into_view_if_needed()
    title = explorer.locator(".wb-title")
    expect(title).to_contain_text("layer 0 head 0", timeout=60_000)
    before = canvas.evaluate("c => c.toDataURL()")
    save_screenshot(page, "02_explorer_before", element=explorer)
    explorer.locator("input[data-control='layer']").focus()
    page.keyboard.press("ArrowRight")                                          # the layer slider
    expect(canvas).to_have_attribute("data-shown", "attention L1 H0", timeout=5_000)   # no kernel round trip
    expect(title).to_contain_text("layer 1 head 0")
    assert canvas.evaluate("c => c.toDataURL()") != before
    save_screenshot(page, "02_explorer_after", element=explorer)
    summary = page.locator(".js-plotly-plot").nth(1)                           # the head-summary chart
    summary.scroll_into_view_if_needed()
    save_screenshot(page, "02_head_summary", element=summary)
    save_screenshot(page, "02_page")
    assert not page.errors, page.errors
