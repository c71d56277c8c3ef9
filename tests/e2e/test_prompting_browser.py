"""Notebook 07 in a real browser: it runs, the prompt-style lab renders, changing the preview's style changes the
prompt the model sees and rings that style on the line graph, and the aspect dropdown changes the chart."""
import time

import pytest

from .harness import browser_page, run_notebook, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NOTEBOOK = "07_prompt_styles.ipynb"


def test_prompt_style_notebook_in_browser(lab_server):
    from playwright.sync_api import expect
    start = time.time()
    lab = lab_server(NOTEBOOK)
    with browser_page() as page:
        run_notebook(page, lab, NOTEBOOK, timeout_s=500)
        widget = page.locator(".wb-prompt-lab")
        expect(widget).to_have_count(1, timeout=60_000)
        prompt = widget.locator(".wb-prompt")
        expect(prompt).to_have_count(1, timeout=60_000)
        before = prompt.inner_text()
        title = widget.locator(".js-plotly-plot .gtitle").first
        expect(title).to_contain_text("question answering", timeout=30_000)
        save_screenshot(page, "07_lab_before", element=widget)
        style = widget.locator(".widget-dropdown", has_text="style").locator("select")
        style.select_option("question_answer")                          # the user picks another style
        expect(prompt).to_contain_text("Question:", timeout=30_000)      # the exact text the model sees changed
        assert prompt.inner_text() != before
        ring = widget.locator(".js-plotly-plot").first.locator(".scatterlayer .trace").last.locator(".point")
        expect(ring.first).to_be_visible(timeout=30_000)                 # the selected style is ringed
        aspect = widget.locator(".widget-dropdown", has_text="aspect").locator("select")
        aspect.select_option(label="domain")
        expect(title).to_contain_text("domain = stories", timeout=30_000)
        save_screenshot(page, "07_lab_after", element=widget)
        assert not page.errors, page.errors
    print(f"browser test took {time.time() - start:.1f} s")
