"""Notebooks 00 and 01 in a real browser (light mode): they run from start to end without an error, their
figures render, and in 01 both training panels finish with their loss curves and the MoE routing panel."""
import time

import pytest

from .harness import browser_page, run_notebook, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_data_and_tokenizer_notebook_in_browser(lab_server):
    from playwright.sync_api import expect
    start = time.time()
    name = "00_data_and_tokenizer.ipynb"
    lab = lab_server(name)
    with browser_page() as page:
        run_notebook(page, lab, name, timeout_s=300)
        expect(page.locator(".js-plotly-plot").first).to_be_attached(timeout=30_000)  # label balance and others
        assert page.locator(".js-plotly-plot").count() >= 2
        assert page.locator(".jp-OutputArea-output", has_text="well_formed").count() >= 1   # the validator's table
        save_screenshot(page, "00_end")
        assert not page.errors, page.errors
    print(f"browser test took {time.time() - start:.1f} s")


def test_training_notebook_in_browser(lab_server):
    from playwright.sync_api import expect
    start = time.time()
    name = "01_train_a_tiny_model.ipynb"
    lab = lab_server(name)
    with browser_page() as page:
        run_notebook(page, lab, name, timeout_s=400)
        for title in ("dense", "moe"):
            status = page.locator(".widget-html", has_text=f"{title}: step").first
            expect(status).to_contain_text("done", timeout=30_000)                 # each panel ran to its end
        assert page.locator(".js-plotly-plot").count() >= 6        # two live loss curves, routing panel, figures
        expect(page.locator(".gtitle", has_text="expert load").first).to_be_attached()
        assert page.locator(".wb-stop").count() == 2
        # each button's state arrives in its own widget's message, not always before the status text's
        expect(page.locator(".wb-stop:disabled")).to_have_count(2, timeout=30_000)
        page.set_viewport_size({"width": 1366, "height": 900})            # a laptop screen
        time.sleep(1)
        width = page.evaluate("document.querySelector('.jp-WindowedPanel-outer, .jp-Notebook').clientWidth")
        panel = page.locator(".jp-Cell", has=page.locator(".wb-stop")).last
        overflow = panel.evaluate(f"""c => [...c.querySelectorAll('.js-plotly-plot')].map(p =>
            p.getBoundingClientRect().right - c.getBoundingClientRect().left).filter(r => r > {width} + 1)""")
        assert overflow == [], f"figures wider than the notebook ({width} px): {overflow}"
        save_screenshot(page, "01_panels", element=page.locator(".jp-Cell", has=page.locator(".wb-stop")).last)
        assert not page.errors, page.errors
    print(f"browser test took {time.time() - start:.1f} s")
