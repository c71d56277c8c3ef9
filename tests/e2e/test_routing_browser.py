"""Notebook 03 in a real browser: it runs, the routing widgets render, and the layer slider redraws the heat map."""
import time

import pytest

from .harness import browser_page, move_slider, run_notebook, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NOTEBOOK = "03_moe_routing.ipynb"


def _moves_heat_map(page, scope: str, title_before: str, title_after: str, shot: str) -> None:
    from playwright.sync_api import expect
    widget = page.locator(scope)
    expect(widget).to_have_count(1, timeout=60_000)
    heat = widget.locator(".js-plotly-plot").first
    heat.scroll_into_view_if_needed()
    title = heat.locator(".gtitle")
    expect(title).to_contain_text(title_before, timeout=60_000)
    image = heat.locator(".hm image").first
    before = image.get_attribute("href")
    save_screenshot(page, f"{shot}_before", element=widget)
    move_slider(page, 0, scope=scope)                                   # the layer slider is the first one
    expect(title).to_contain_text(title_after, timeout=30_000)          # kernel round trip
    expect(image).not_to_have_attribute("href", before, timeout=30_000)
    save_screenshot(page, f"{shot}_after", element=widget)


def test_routing_notebook_in_browser(lab_server):
    start = time.time()
    lab = lab_server(NOTEBOOK)
    with browser_page() as page:
        run_notebook(page, lab, NOTEBOOK, timeout_s=400)
        assert page.locator(".js-plotly-plot").count() >= 10           # the static figures rendered too
        _moves_heat_map(page, ".wb-routing-explorer", "layer 0:", "layer 1:", "03_tokens")
        assert page.locator(".wb-routing-groups").count() == 1
        assert not page.errors, page.errors
    print(f"browser test took {time.time() - start:.1f} s")
