"""Notebooks 04 (scoring) and 07 (prompt styles) in a real browser, each run once: they run, their labs render
and answer their controls (04: switching the scoring function, in the page, redraws the confusion matrix and moves
the highlighted accuracy bar; 07: changing the preview's style changes the prompt the model sees and rings that style
on the line graph; both labs draw in the page), and the labs survive a page reload: after a control change,
a save (Ctrl+S, as autosave would) and a reload, every chart is drawn (painted pixels), its title says what the
controls say, the console has no "Error setting state", and the controls still redraw the charts.
So do the FigureWidgets of notebook 01's training panels (after the runs: the finished curves, routing panel and
status, point for point) and notebook 06's compression lab (the ringed variants are the ones its controls name).
Notebooks 04, 06 and 07 run once in the browser, here: the notebook-level checks (it runs without an error, its
widgets render and answer) come first, then the reload.

Also prints control -> repaint times (a select's change to the frame showing the chart's new title, median of ten).
"""
import json
import re
import statistics
import time

import pytest

from .harness import NOTEBOOKS, browser_page, move_slider, run_notebook, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SCORING, PROMPTS, COMPRESS = ".wb-scoring-lab", ".wb-prompt-lab", ".wb-compress-lab"


def _select(page, scope: str, label: str):
    """The <select> of the lab's dropdown whose label is exactly `label`."""
    own_label = page.locator("label.widget-label", has_text=re.compile(f"^{re.escape(label)}$"))
    return page.locator(f"{scope} .widget-dropdown").filter(has=own_label).locator("select").first


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


_CHART_REPAINT_JS = """async (select, [value, scope, chart, expected]) => {
    const t0 = performance.now();
    select.value = value;
    select.dispatchEvent(new Event('change', {bubbles: true}));
    return await new Promise((resolve, reject) => {
        const tick = () => {
            const title = document.querySelector(`${scope} .wb-title[data-chart='${chart}']`);
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


def _charts(page, scope: str = SCORING) -> list[dict]:
    """Per chart of a lab's canvas view: its title, drawings so far and painted (non-white) pixels."""
    return page.locator(f"{scope} .wb-view .wb-panel").evaluate_all("""ps => ps.map(p => {
        const c = p.querySelector('canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++;
        return {chart: c.dataset.chart, title: p.querySelector('.wb-title').textContent, frames: +c.dataset.frame,
                painted: n}; })""")


def _expect_charts(page, titles: list[str], timeout: float = 60, scope: str = SCORING) -> list[dict]:
    """Wait until the lab's view shows len(titles) charts, each painted and with titles[i] in its title."""
    deadline, charts = time.time() + timeout, []
    while time.time() < deadline:
        charts = _charts(page, scope)
        if len(charts) == len(titles) and all(c["frames"] > 0 and c["painted"] > 500 and t in c["title"]
                                              for c, t in zip(charts, titles)):
            return charts
        time.sleep(0.25)
    raise AssertionError(f"{scope}: expected charts titled {titles}, got {charts}")


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
            _expect_charts(page, ["dense-4m", "· acc", "flip", "Example 0", "Premise"])
            acc = page.locator(f"{SCORING} canvas[data-chart='accuracy']")
            bars_before = acc.evaluate("c => c.toDataURL()")
            save_screenshot(page, "04_lab_before", element=page.locator(SCORING))
            fn = page.locator(f"{SCORING} select[data-control='fn']")
            fn.select_option("dcpmi")                                   # the user switches the function:
            _expect_charts(page, ["dense-4m", "· dcpmi", "flip", "Example 0", "Premise"])
            expect(acc).to_have_attribute("data-highlight", "dcpmi")
            assert acc.evaluate("c => c.toDataURL()") != bars_before    # the highlighted accuracy bar moved
            ms = [fn.evaluate(_CHART_REPAINT_JS, [v, SCORING, "confusion", f"· {v}"]) for v in ["acc", "dcpmi"] * 5]
            print("scoring lab, function -> confusion matrix repaint (in the page): "
                  f"median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms: {[round(m) for m in ms]}")
            page.locator(f"{SCORING} select[data-control='b']").select_option("acc_norm")
            expect(page.locator(f"{SCORING} .wb-flip-head")).to_contain_text("between acc and acc_norm")
            slider = page.locator(f"{SCORING} input[data-control='example']")
            slider.focus()
            page.keyboard.press("ArrowRight")
            _expect_charts(page, ["dense-4m", "· dcpmi", "flip", "Example 1", "Premise"])
            time.sleep(1.0)                                             # the values reach the kernel
            save_screenshot(page, "reload_04_before", element=page.locator(SCORING))
            _save_and_reload(page, lab, notebook)
            expect(page.locator(SCORING)).to_have_count(1, timeout=60_000)
            page.locator(SCORING).scroll_into_view_if_needed()
            charts = _expect_charts(page, ["dense-4m", "· dcpmi", "flip", "Example 1", "Premise"])
            assert fn.input_value() == "dcpmi"
            assert page.locator(f"{SCORING} select[data-control='b']").input_value() == "acc_norm"
            expect(page.locator(f"{SCORING} .wb-flip-head")).to_contain_text("between acc and acc_norm")
            assert slider.input_value() == "1"
            save_screenshot(page, "reload_04_after", element=page.locator(SCORING))
            fn.select_option("acc_norm")                                # still live after the reload
            charts = _expect_charts(page, ["dense-4m", "· acc_norm", "flip", "Example 1", "Premise"])
            print("after reload:", charts)
            _no_state_errors(page, console)
        except Exception:
            save_screenshot(page, "reload_04_failure")
            raise


def test_prompt_lab_survives_a_reload(lab_server):
    from playwright.sync_api import expect
    notebook = "07_prompt_styles.ipynb"
    lab = lab_server(notebook)
    select = lambda name: page.locator(f"{PROMPTS} select[data-control='{name}']")  # noqa: E731  (the grid's)
    with browser_page(width=1366, height=1400) as page:
        console = _console(page)
        try:
            run_notebook(page, lab, notebook, timeout_s=600)
            expect(page.locator(PROMPTS)).to_have_count(1, timeout=60_000)
            page.locator(PROMPTS).scroll_into_view_if_needed()
            charts = ["task type = question answering: judge", "question answering: model x"]
            _expect_charts(page, charts, scope=PROMPTS)
            lab_widget = page.locator(PROMPTS)
            prompt = lab_widget.locator(".wb-prompt")
            expect(prompt).to_have_count(1, timeout=60_000)
            shown = prompt.inner_text()
            lines = lab_widget.locator("canvas[data-chart='lines']")
            before = lines.evaluate("c => c.toDataURL()")
            save_screenshot(page, "07_lab_before", element=lab_widget)
            _select(page, PROMPTS, "style").select_option("question_answer")    # the user picks another style:
            expect(prompt).to_contain_text("Question:", timeout=30_000)  # the exact text the model sees changed
            assert prompt.inner_text() != shown
            expect(lines).to_have_attribute("data-ring", "question_answer", timeout=30_000)  # and it is ringed
            assert lines.evaluate("c => c.toDataURL()") != before
            metric = select("metric")
            ms = [metric.evaluate(_CHART_REPAINT_JS, [v, PROMPTS, "lines", f": {v} across"])
                  for v in ["rouge_l", "judge"] * 5]
            print("prompt lab, metric -> line graph repaint (in the page): "
                  f"median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms: {[round(m) for m in ms]}")
            select("aspect").select_option(label="domain")
            _expect_charts(page, ["domain = stories: judge", "domain = stories: model x"], scope=PROMPTS)
            select("entity").select_option("code")
            _expect_charts(page, ["domain = code: judge", "domain = code: model x"], scope=PROMPTS)
            lab_widget.locator("button[data-control='models']", has_text="dense-1m").click()   # untick a model
            expect(lab_widget.locator(".wb-best-table tr")).to_have_count(5)                   # header + 4 models
            time.sleep(1.0)                                                                 # values reach the kernel
            save_screenshot(page, "reload_07_before", element=page.locator(PROMPTS))
            _save_and_reload(page, lab, notebook)
            expect(page.locator(PROMPTS)).to_have_count(1, timeout=60_000)
            page.locator(PROMPTS).scroll_into_view_if_needed()
            charts = _expect_charts(page, ["domain = code: judge", "domain = code: model x"], scope=PROMPTS)
            assert select("entity").input_value() == "code"
            expect(lab_widget.locator(".wb-best-table tr")).to_have_count(5)
            expect(lines).to_have_attribute("data-ring", "question_answer")
            save_screenshot(page, "reload_07_after", element=page.locator(PROMPTS))
            select("entity").select_option("stories")                        # still live after the reload
            charts = _expect_charts(page, ["domain = stories: judge", "domain = stories: model x"], scope=PROMPTS)
            print("after reload:", charts)
            _no_state_errors(page, console)
        except Exception:
            save_screenshot(page, "reload_07_failure")
            raise


def _first_cells(name: str, through: str, folder) -> str:
    """A copy of notebook `name` cut after the last cell whose source contains `through` (the cells a test needs);
    returns the copy's path."""
    nb = json.loads((NOTEBOOKS / name).read_text())
    last = max(i for i, c in enumerate(nb["cells"]) if through in "".join(c["source"]))
    nb["cells"] = nb["cells"][:last + 1]
    path = folder / name
    path.write_text(json.dumps(nb))
    return str(path)


_PANEL_JS = """cell => ({
    status: [...cell.querySelectorAll('.widget-html')].map(h => h.textContent).find(t => t.includes(': step')) || '',
    stopDisabled: !!(cell.querySelector('.wb-stop') || {}).disabled,
    alarm: [...cell.querySelectorAll('.widget-html')].map(h => h.textContent).filter(t => t.includes('dead')).join(),
    figures: [...cell.querySelectorAll('.js-plotly-plot')].map(p => ({
        title: (p.querySelector('.gtitle') || {}).textContent || '',
        drawn: [...p.querySelectorAll('.scatterlayer .trace path.js-line')]
                   .filter(l => (l.getAttribute('d') || '').length > 1).length + p.querySelectorAll('.hm image').length,
        traces: (p._fullData || []).map(t => ({
            name: t.name || '', n: Array.from(t.x || t.z || []).length,
            x: Array.from(t.x || []).map(Number).slice(-3),
            y: Array.from(t.y || []).map(v => Math.round(Number(v) * 1e6) / 1e6).slice(-3),
            z: t.z ? Math.round(Array.from(t.z).flatMap(r => Array.from(r)).reduce((a, b) => a + b, 0) * 1e6) / 1e6
                   : null}))}))
})"""


def _panels(page) -> list[dict]:
    """What each training panel shows: status line, Stop button, alarm, and per figure its drawn traces."""
    cells = page.locator(".jp-Cell", has=page.locator(".wb-stop"))
    out = []
    for i in range(cells.count()):
        cells.nth(i).scroll_into_view_if_needed()
        out.append(cells.nth(i).evaluate(_PANEL_JS))
    return out


def _wait_for(read, ok, timeout: float = 60):
    """Poll read() until ok(value) holds; return the value (the last one read, on timeout, for the message)."""
    deadline, value = time.time() + timeout, None
    while time.time() < deadline:
        value = read()
        if ok(value):
            return value
        time.sleep(0.5)
    return value


def test_training_panels_survive_a_reload(lab_server, tmp_path):
    """Notebook 01 through its two training panels (light mode): after the runs, a save and a reload, each panel
    shows the finished run: the same status line ("done", 100%), a disabled Stop button, and the same loss
    curves (and the MoE routing panel) point for point."""
    from playwright.sync_api import expect
    name = "01_train_a_tiny_model.ipynb"
    lab = lab_server(_first_cells(name, "moe_panel.run(", tmp_path))
    with browser_page(width=1366, height=1400) as page:
        console = _console(page)
        try:
            run_notebook(page, lab, name, timeout_s=400)
            expect(page.locator(".wb-stop")).to_have_count(2, timeout=60_000)

            def finished(panels):      # the status, the button and the figures are separate widgets' messages
                return len(panels) == 2 and all("done" in p["status"] and p["stopDisabled"] and p["figures"] and
                                                all(f["drawn"] for f in p["figures"]) for p in panels)
            before = _wait_for(lambda: _panels(page), finished)
            assert finished(before), before
            for p in before:
                steps = int(re.search(r"step (\d+)/(\d+)", p["status"]).group(2))
                loss = p["figures"][0]
                assert loss["title"].endswith(": loss") and loss["traces"][0]["name"] == "train"
                assert loss["traces"][0]["x"][-1] == steps            # the curve reaches the run's last step
                assert loss["traces"][1]["n"] > 0                     # validation markers
                assert "(100%)" in p["status"] and p["stopDisabled"], p
            assert len(before[1]["figures"]) == 3                     # MoE: loss, expert load, router entropy
            save_screenshot(page, "reload_01_before", element=page.locator(".jp-Notebook"))
            _save_and_reload(page, lab, name)
            expect(page.locator(".wb-stop")).to_have_count(2, timeout=60_000)
            after = _wait_for(lambda: _panels(page), lambda panels: panels == before)
            save_screenshot(page, "reload_01_after", element=page.locator(".jp-Notebook"))
            assert after == before, f"before the reload:\n{before}\nafter:\n{after}"
            _no_state_errors(page, console)
        except Exception:
            save_screenshot(page, "reload_01_failure")
            raise


def _ringed(page) -> dict:
    """The compression lab's figure: its title and the (x, y) points of its 'selected' (ringed) trace."""
    return page.locator(f"{COMPRESS} .js-plotly-plot").first.evaluate("""p => {
        const sel = (p._fullData || []).find(t => t.name === 'selected') || {x: [], y: []};
        const pts = Array.from(sel.x || []).map((x, i) => [Math.round(Number(x) * 1e4) / 1e4,
                                                           Math.round(Number(sel.y[i]) * 1e4) / 1e4]);
        return {title: (p.querySelector('.gtitle') || {}).textContent || '', traces: (p.data || []).length,
                drawn: p.querySelectorAll('.scatterlayer .trace').length,
                points: pts.sort((a, b) => a[0] - b[0] || a[1] - b[1])};
    }""")


def _expected_ring(variants, x: str, y: str = "val_loss", model: str = "dense-4m") -> list:
    """The (x, y) points of the shipped table's rows for `variants` ((method, setting) pairs), as _ringed sorts them."""
    from workbench.compress.variants import load_results
    t = load_results()
    chosen = [(m, str(s)) in set(variants) for m, s in zip(t["method"], t["setting"])]
    rows = t[(t["model"] == model).to_numpy() & chosen]
    assert len(rows) == len(variants), rows
    return sorted([round(float(a), 4), round(float(b), 4)] for a, b in zip(rows[x], rows[y]))


def _close(points, want, tol: float = 1e-3) -> bool:
    return len(points) == len(want) and all(abs(a - b) <= tol for p, w in zip(points, want) for a, b in zip(p, w))


def test_compression_notebook_and_its_lab_survive_a_reload(lab_server):
    """Notebook 06 in a real browser: it runs; in its lab change the sparsity slider and the cost axis, save,
    reload; the chart rings the variants the controls name, on the axes they name (checked against the shipped
    table), and still follows them; the live button then prunes the model and shows two stories side by side."""
    from playwright.sync_api import expect
    from workbench.plots.compress import LABELS
    name = "06_making_models_small.ipynb"
    lab = lab_server(name)
    with browser_page(width=1366, height=1400) as page:
        console = _console(page)
        try:
            run_notebook(page, lab, name, timeout_s=500)
            assert page.locator(".js-plotly-plot").count() >= 2               # the static chart and the lab's
            expect(page.locator(COMPRESS)).to_have_count(1, timeout=60_000)
            page.locator(COMPRESS).scroll_into_view_if_needed()
            table = page.locator(f"{COMPRESS} .widget-html").nth(1)
            expect(table).to_contain_text("magnitude", timeout=60_000)       # the notebook set sparsity 0.5
            expect(table).to_contain_text("0.5")
            student = ("smaller member", "dense-1m")              # the notebook's cell sets these three
            want = _expected_ring([("magnitude", "0.5"), ("quantize", "int8-weight"), student], "disk_mb")
            got = _wait_for(lambda: _ringed(page), lambda r: _close(r["points"], want))
            assert _close(got["points"], want) and "size on disk" in got["title"], got
            move_slider(page, 0, scope=COMPRESS)                   # sparsity 0.5 -> 0.7
            latency = LABELS["ms_per_token_1t"]                    # the dropdown lists the axes by their labels
            _select(page, COMPRESS, "cost").select_option(label=latency)
            want = _expected_ring([("magnitude", "0.7"), ("quantize", "int8-weight"), student], "ms_per_token_1t")
            before = _wait_for(lambda: _ringed(page), lambda r: _close(r["points"], want) and "1 thread" in r["title"])
            assert _close(before["points"], want) and "1 thread" in before["title"], before
            save_screenshot(page, "reload_06_before", element=page.locator(COMPRESS))
            _save_and_reload(page, lab, name)
            expect(page.locator(COMPRESS)).to_have_count(1, timeout=60_000)
            page.locator(COMPRESS).scroll_into_view_if_needed()
            after = _wait_for(lambda: _ringed(page), lambda r: r == before and r["drawn"] > 0)
            assert after == before and after["drawn"] > 0, f"before the reload: {before}\nafter: {after}"
            assert _select(page, COMPRESS, "cost").input_value() == latency
            expect(page.locator(f"{COMPRESS} .widget-slider", has_text="sparsity").first  # not 'live sparsity'
                   .locator(".widget-readout")).to_have_text("0.7")
            expect(page.locator(f"{COMPRESS} .widget-html").nth(1)).to_contain_text("int8-weight")
            save_screenshot(page, "reload_06_after", element=page.locator(COMPRESS))
            move_slider(page, 1, scope=COMPRESS)                   # bits 8 -> 4: still live after the reload
            want = _expected_ring([("magnitude", "0.7"), ("quantize", "int4-weight"), student], "ms_per_token_1t")
            moved = _wait_for(lambda: _ringed(page), lambda r: _close(r["points"], want))
            assert _close(moved["points"], want), moved
            widget = page.locator(COMPRESS)
            widget.locator("button", has_text="prune live and compare").click()
            expect(widget.locator(".widget-html").last).to_contain_text("of the weights pruned", timeout=120_000)
            expect(widget.locator(".legendtext", has_text="live magnitude")).to_have_count(1, timeout=30_000)
            save_screenshot(page, "06_lab_live", element=widget)
            _no_state_errors(page, console)
        except Exception:
            save_screenshot(page, "reload_06_failure")
            raise
