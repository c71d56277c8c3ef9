"""The plotly labs of notebooks 04 (scoring) and 07 (prompt styles) survive a page reload: after a control change,
a save (Ctrl+S, as autosave would) and a reload, every figure is drawn (traces present), its title says what the
controls say, the console has no "Error setting state", and the controls still redraw the figures.

Also prints control -> repaint times (a dropdown change to the figure's new title in the page, median of a few).
"""
import re
import statistics
import time

import pytest

from .harness import browser_page, run_notebook, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SCORING, PROMPTS = ".wb-scoring-lab", ".wb-prompt-lab"

_REPAINT_JS = """async (select, [value, scope, idx, expected]) => {
    const t0 = performance.now();
    select.value = value;
    select.dispatchEvent(new Event('change', {bubbles: true}));
    return await new Promise((resolve, reject) => {
        const tick = () => {
            const plot = document.querySelectorAll(scope + ' .js-plotly-plot')[idx];
            const title = plot && plot.querySelector('.gtitle');
            if (title && title.textContent.includes(expected)) {
                requestAnimationFrame(() => resolve(performance.now() - t0));   // the frame that shows it
                return;
            }
            if (performance.now() - t0 > 30000) { reject('no repaint with ' + expected); return; }
            requestAnimationFrame(tick);
        };
        tick();
    });
}"""


def _figures(page, scope: str) -> list[dict]:
    """Per plotly figure in the lab: its number of traces, title, and drawn trace groups."""
    return page.locator(f"{scope} .js-plotly-plot").evaluate_all("""ps => ps.map(p => ({
        traces: (p.data || []).length, drawn: p.querySelectorAll('.trace, .hm image').length,
        title: (p.querySelector('.gtitle') || {}).textContent || ''}))""")


def _expect_figures(page, scope: str, titles: list[str], timeout: float = 60) -> list[dict]:
    """Wait until the lab shows exactly len(titles) figures, each with traces drawn and titles[i] in its title."""
    deadline, figs = time.time() + timeout, []
    while time.time() < deadline:
        figs = _figures(page, scope)
        if len(figs) == len(titles) and all(f["traces"] > 0 and f["drawn"] > 0 and t in f["title"]
                                            for f, t in zip(figs, titles)):
            return figs
        time.sleep(0.25)
    raise AssertionError(f"{scope}: expected figures titled {titles}, got {figs}")


def _select(page, scope: str, label: str):
    """The <select> of the lab's dropdown whose label is exactly `label`."""
    own_label = page.locator("label.widget-label", has_text=re.compile(f"^{re.escape(label)}$"))
    return page.locator(f"{scope} .widget-dropdown").filter(has=own_label).locator("select").first


def _repaint_ms(select, value: str, scope: str, idx: int, expected: str) -> float:
    return select.evaluate(_REPAINT_JS, [value, scope, idx, expected])


def _timings(select, scope: str, idx: int, a: tuple, b: tuple, n: int = 6) -> str:
    """Median / max ms from a dropdown change to the frame showing the new title, alternating a and b."""
    ms = [_repaint_ms(select, (a if k % 2 else b)[0], scope, idx, (a if k % 2 else b)[1]) for k in range(n)]
    return f"median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms over {n}: {[round(m) for m in ms]}"


def _save_and_reload(page, lab, notebook: str) -> None:
    """Ctrl+S, wait until the file on disk holds the widget outputs, reload, wait for the notebook."""
    path = lab.root / notebook
    before = path.stat().st_mtime
    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+s")
    deadline = time.time() + 30
    while time.time() < deadline:
        if path.stat().st_mtime != before and "application/vnd.jupyter.widget-view+json" in path.read_text():
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the notebook was not saved with its widget outputs")
    page.reload()
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)


def _console(page) -> list:
    console = []
    page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
    return console


def _no_state_errors(page, console) -> None:
    assert not page.errors, page.errors
    bad = [c for c in console if "Error setting state" in c or "indices must be valid" in c]
    assert not bad, bad
    assert page.get_by_text("Error displaying widget").count() == 0


def test_scoring_lab_survives_a_reload(lab_server):
    from playwright.sync_api import expect
    notebook = "04_scoring_functions.ipynb"
    lab = lab_server(notebook)
    with browser_page(width=1366, height=1400) as page:
        console = _console(page)
        try:
            run_notebook(page, lab, notebook, timeout_s=500)
            expect(page.locator(SCORING)).to_have_count(1, timeout=60_000)
            page.locator(SCORING).scroll_into_view_if_needed()
            _expect_figures(page, SCORING, ["dense-4m", "· acc", "flip", "Example 0", "Premise"])
            fn = _select(page, SCORING, "scoring")
            print("scoring lab, function -> confusion matrix repaint:",
                  _timings(fn, SCORING, 1, ("acc", "· acc"), ("dcpmi", "· dcpmi")))
            fn.select_option("dcpmi")                                   # the state to come back after the reload
            slider = page.locator(f"{SCORING} .widget-slider", has_text="example").locator(".noUi-handle")
            slider.focus()
            page.keyboard.press("ArrowRight")
            _expect_figures(page, SCORING, ["dense-4m", "· dcpmi", "flip", "Example 1", "Premise"])
            save_screenshot(page, "reload_04_before", element=page.locator(SCORING))
            _save_and_reload(page, lab, notebook)
            expect(page.locator(SCORING)).to_have_count(1, timeout=60_000)
            page.locator(SCORING).scroll_into_view_if_needed()
            figs = _expect_figures(page, SCORING, ["dense-4m", "· dcpmi", "flip", "Example 1", "Premise"])
            assert _select(page, SCORING, "scoring").input_value() == "dcpmi"
            expect(page.locator(f"{SCORING} .widget-slider", has_text="example").locator(".widget-readout")
                   ).to_have_text("1")
            save_screenshot(page, "reload_04_after", element=page.locator(SCORING))
            _select(page, SCORING, "scoring").select_option("acc_norm")      # still live after the reload
            figs = _expect_figures(page, SCORING, ["dense-4m", "· acc_norm", "flip", "Example 1", "Premise"])
            print("after reload:", figs)
            _no_state_errors(page, console)
        except Exception:
            save_screenshot(page, "reload_04_failure")
            raise


def test_prompt_lab_survives_a_reload(lab_server):
    from playwright.sync_api import expect
    notebook = "07_prompt_styles.ipynb"
    lab = lab_server(notebook)
    with browser_page(width=1366, height=1400) as page:
        console = _console(page)
        try:
            run_notebook(page, lab, notebook, timeout_s=600)
            expect(page.locator(PROMPTS)).to_have_count(1, timeout=60_000)
            page.locator(PROMPTS).scroll_into_view_if_needed()
            _expect_figures(page, PROMPTS, ["task type = question answering: judge", "question answering: model x"])
            metric = _select(page, PROMPTS, "metric")
            print("prompt lab, metric -> line graph repaint:",
                  _timings(metric, PROMPTS, 0, ("judge", ": judge across"), ("rouge_l", ": rouge_l across")))
            metric.select_option("judge")
            _select(page, PROMPTS, "aspect").select_option(label="domain")
            _expect_figures(page, PROMPTS, ["domain = stories: judge", "domain = stories: model x"])
            _select(page, PROMPTS, "value").select_option("code")
            _expect_figures(page, PROMPTS, ["domain = code: judge", "domain = code: model x"])
            save_screenshot(page, "reload_07_before", element=page.locator(PROMPTS))
            _save_and_reload(page, lab, notebook)
            expect(page.locator(PROMPTS)).to_have_count(1, timeout=60_000)
            page.locator(PROMPTS).scroll_into_view_if_needed()
            figs = _expect_figures(page, PROMPTS, ["domain = code: judge", "domain = code: model x"])
            assert _select(page, PROMPTS, "value").input_value() == "code"
            save_screenshot(page, "reload_07_after", element=page.locator(PROMPTS))
            _select(page, PROMPTS, "value").select_option("stories")          # still live after the reload
            figs = _expect_figures(page, PROMPTS, ["domain = stories: judge", "domain = stories: model x"])
            print("after reload:", figs)
            _no_state_errors(page, console)
        except Exception:
            save_screenshot(page, "reload_07_failure")
            raise
