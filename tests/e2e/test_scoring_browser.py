"""Notebook 04 in a real browser: it runs, the scoring lab renders, and switching the scoring function redraws
the confusion matrix and the highlighted accuracy bar."""
import time

import pytest

from .harness import browser_page, run_notebook, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NOTEBOOK = "04_scoring_functions.ipynb"


def test_scoring_notebook_in_browser(lab_server):
    from playwright.sync_api import expect
    start = time.time()
    lab = lab_server(NOTEBOOK)
    with browser_page() as page:
        run_notebook(page, lab, NOTEBOOK, timeout_s=400)
        widget = page.locator(".wb-scoring-lab")
        expect(widget).to_have_count(1, timeout=60_000)
        confusion = widget.locator(".js-plotly-plot").nth(1)
        confusion.scroll_into_view_if_needed()
        title = confusion.locator(".gtitle")
        expect(title).to_contain_text("· acc", timeout=60_000)
        bars = widget.locator(".js-plotly-plot").first.locator(".point path")
        colors_before = [bars.nth(i).evaluate("e => getComputedStyle(e).fill") for i in range(bars.count())]
        save_screenshot(page, "04_lab_before", element=widget)
        select = widget.locator(".widget-dropdown", has_text="scoring").locator("select")
        select.select_option("dcpmi")                                   # the user switches the function
        expect(title).to_contain_text("· dcpmi", timeout=30_000)        # kernel round trip redrew the chart
        colors_after = [bars.nth(i).evaluate("e => getComputedStyle(e).fill") for i in range(bars.count())]
        assert colors_after != colors_before                             # the highlighted bar moved
        save_screenshot(page, "04_lab_after", element=widget)
        assert not page.errors, page.errors
    print(f"browser test took {time.time() - start:.1f} s")
