"""A saved attention view opened straight from disk in Chromium (no Jupyter server, no network): moving its
slider shows another layer and head."""
import time

import pytest

from .harness import browser_page, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_saved_attention_view_moves_without_a_kernel(tmp_path, tiny_tok):
    from playwright.sync_api import expect

    from workbench.testing import tiny_model
    from workbench.widgets.attention import AttentionExplorer
    ex = AttentionExplorer(tiny_model("dense", tokenizer=tiny_tok), tiny_tok,
                           "Once upon a time, there was a little girl named Lily.", name="tiny")
    path = ex.to_html(tmp_path / "attention.html")
    with browser_page() as page:
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                   else route.abort())                                  # prove that nothing is fetched
        page.goto(path.as_uri())
        title = page.locator(".gtitle")
        expect(title).to_contain_text("layer 0 head 0 (tiny)", timeout=30_000)
        heat = page.locator(".heatmaplayer image, .heatmaplayer").first
        before = page.locator(".hm").first.get_attribute("href") if page.locator(".hm").count() else None
        rail = page.locator(".slider-rail-rect").first.bounding_box()
        page.mouse.click(rail["x"] + rail["width"] * 0.99, rail["y"] + rail["height"] / 2)
        expect(title).not_to_contain_text("layer 0 head 0", timeout=10_000)
        time.sleep(0.5)
        after = page.locator(".hm").first.get_attribute("href") if page.locator(".hm").count() else None
        assert heat.count() == 1 and (before is None or before != after)      # the heat map itself changed
        save_screenshot(page, "attention_standalone")
        assert not page.errors, page.errors
