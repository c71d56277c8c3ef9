"""Notebook 05 in a real browser: it runs, the translation lab translates into another language when the target
changes and redraws its cross-attention map for another layer, and the language x expert view follows its slider."""
import time

import pytest

from .harness import browser_page, run_notebook, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NOTEBOOK = "05_translation_and_moe.ipynb"


def test_translation_notebook_in_browser(lab_server):
    from playwright.sync_api import expect
    start = time.time()
    lab = lab_server(NOTEBOOK)
    with browser_page() as page:
        run_notebook(page, lab, NOTEBOOK, timeout_s=500)
        widget = page.locator(".wb-translation-lab")
        expect(widget).to_have_count(1, timeout=60_000)
        table = widget.locator(".widget-html-content").first
        expect(table).to_contain_text("exact judgement", timeout=60_000)
        before = table.inner_text()
        title = widget.locator(".js-plotly-plot .gtitle").first
        expect(title).to_contain_text("all layers", timeout=60_000)
        save_screenshot(page, "05_lab_before", element=widget)
        target = widget.locator(".widget-dropdown", has_text="to").locator("select")
        target.select_option(label="Korru")                               # a new target language ...
        widget.locator("button", has_text="translate").click()            # ... and translate again
        expect(table).not_to_have_text(before, timeout=60_000)
        layer = widget.locator(".widget-dropdown", has_text="attention").locator("select")
        layer.select_option(label="decoder layer 2")
        expect(title).to_contain_text("decoder layer 2", timeout=30_000)
        save_screenshot(page, "05_lab_after", element=widget)
        groups = page.locator(".wb-routing-groups")
        assert groups.count() == 2                                        # encoder and decoder views
        first = groups.first
        first.scroll_into_view_if_needed()
        shot_before = first.screenshot()
        handle = first.locator(".widget-slider .noUi-handle, input[type=range]").first
        handle.focus()
        page.keyboard.press("ArrowLeft")                                  # the view opens on the last layer
        page.wait_for_timeout(1500)
        assert first.screenshot() != shot_before                          # the heat map followed the slider
        assert not page.errors, page.errors
    print(f"browser test took {time.time() - start:.1f} s")
