"""Notebook 03 in a real browser: it runs, the routing views render, and the layer slider redraws the token view
(in the page: the routing widgets are canvas views; tests/e2e/test_view_browser.py covers reloads)."""
import time

import pytest

from .harness import browser_page, run_notebook, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NOTEBOOK = "03_moe_routing.ipynb"


def _moves_layer(page, scope: str, title_before: str, title_after: str, shot: str) -> None:
    from playwright.sync_api import expect
    widget = page.locator(scope)
    expect(widget).to_have_count(1, timeout=60_000)
    canvas = widget.locator("canvas.wb-canvas")
    canvas.scroll_into_view_if_needed()
    title = widget.locator(".wb-title")
    expect(title).to_contain_text(title_before, timeout=60_000)
    before = canvas.evaluate("c => c.toDataURL()")
    save_screenshot(page, f"{shot}_before", element=widget)
    widget.locator("input[data-control='layer']").focus()
    page.keyboard.press("ArrowRight")
    expect(title).to_contain_text(title_after, timeout=5_000)             # redrawn in the page
    assert canvas.evaluate("c => c.toDataURL()") != before
    save_screenshot(page, f"{shot}_after", element=widget)


def test_routing_notebook_in_browser(lab_server):
    start = time.time()
    lab = lab_server(NOTEBOOK)
    with browser_page() as page:
        run_notebook(page, lab, NOTEBOOK, timeout_s=400)
        assert page.locator(".js-plotly-plot").count() >= 10           # the static figures rendered too
        _moves_layer(page, ".wb-routing-explorer", "layer 0:", "layer 1:", "03_tokens")
        assert page.locator(".wb-routing-groups canvas.wb-canvas").count() == 1
        assert page.locator(".wb-routing-replay canvas.wb-canvas").count() == 1
        assert not page.errors, page.errors
    print(f"browser test took {time.time() - start:.1f} s")
