"""Notebook 06 in a real browser: it runs, the compression lab renders, the sparsity slider rings another
precomputed variant, and the live button prunes the model and shows two stories side by side."""
import time

import pytest

from .harness import browser_page, move_slider, run_notebook, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NOTEBOOK = "06_making_models_small.ipynb"


def test_compression_notebook_in_browser(lab_server):
    from playwright.sync_api import expect
    start = time.time()
    lab = lab_server(NOTEBOOK)
    with browser_page() as page:
        run_notebook(page, lab, NOTEBOOK, timeout_s=500)
        assert page.locator(".js-plotly-plot").count() >= 2               # the static chart and the lab's
        widget = page.locator(".wb-compress-lab")
        expect(widget).to_have_count(1, timeout=60_000)
        table = widget.locator(".widget-html").nth(1)
        expect(table).to_contain_text("magnitude", timeout=60_000)       # the notebook set sparsity 0.5
        expect(table).to_contain_text("0.5")
        save_screenshot(page, "06_lab_before", element=widget)
        move_slider(page, 0, scope=".wb-compress-lab")                  # sparsity 0.5 -> 0.7
        expect(table).to_contain_text("0.7", timeout=30_000)            # kernel round trip, new rows listed
        widget.locator("button", has_text="prune live and compare").click()
        stories = widget.locator(".widget-html").last
        expect(stories).to_contain_text("of the weights pruned", timeout=120_000)
        expect(widget.locator(".legendtext", has_text="live magnitude")).to_have_count(1, timeout=30_000)
        save_screenshot(page, "06_lab_after", element=widget)
        assert not page.errors, page.errors
    print(f"browser test took {time.time() - start:.1f} s")
