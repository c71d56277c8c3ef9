"""The training panel in a real browser: its loss curve grows while the cell trains, and its Stop button, clicked
while that cell is still running, ends the run cleanly within seconds; the next cell runs with the result."""
import json
import time

import pytest

from .harness import browser_page, open_notebook, run_all, save_screenshot, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TRAIN = """import torch
from workbench.testing import tiny_tokenizer, word_stories
from workbench.widgets.training import TrainingPanel
torch.set_num_threads(1)
panel = TrainingPanel("long run", min_interval_s=0.3)
res = panel.run("dense-nano", word_stories(), tokenizer=tiny_tokenizer(), steps=200000, batch_size=2, seq_len=16,
                eval_every=0, log_every=5, warmup=1, sample_max_new_tokens=4, hidden_size=32, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=32)"""
AFTER = 'print("after the run:", res.stop_reason, "at step", int(res.history.step.max()))'


def _notebook(path):
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [],
              "source": src} for i, src in enumerate([TRAIN, AFTER])]
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": {
        "display_name": "Python 3", "language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_stop_button_ends_a_foreground_run(lab_server, tmp_path):
    from playwright.sync_api import expect
    nb = _notebook(tmp_path / "stop_test.ipynb")
    lab = lab_server(str(nb))
    with browser_page() as page:
        open_notebook(page, lab, nb.name)
        run_all(page)
        status = page.locator(".widget-html", has_text="long run").first
        expect(status).to_contain_text("step", timeout=120_000)      # training is running, the cell is busy
        line = page.locator(".js-plotly-plot .scatterlayer .trace path.js-line").first
        expect(line).to_be_attached(timeout=30_000)
        first = len(line.get_attribute("d") or "")
        time.sleep(2)
        assert len(line.get_attribute("d") or "") > first                  # the live curve grows while it trains
        save_screenshot(page, "stop_button_before", element=page.locator(".jp-Notebook"))
        clicked = time.time()
        page.locator(".wb-stop").click()
        expect(status).to_contain_text("stopped: interrupted after step", timeout=30_000)
        stopped_in = time.time() - clicked
        wait_idle(page, timeout_s=60)
        expect(page.locator(".jp-OutputArea-output", has_text="after the run: interrupted")).to_have_count(1)
        save_screenshot(page, "stop_button_after", element=page.locator(".jp-Notebook"))
        assert not page.errors, page.errors
    print(f"stopped {stopped_in:.1f} s after the click")
    assert stopped_in < 30
