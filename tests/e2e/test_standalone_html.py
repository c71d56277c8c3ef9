"""Saved views opened straight from disk (file://) in Chromium with every network request blocked and no Jupyter
server: the canvas views (attention, token -> expert, group heat maps, checkpoint replay) draw, and moving a
slider with the keyboard redraws the canvas and retitles it; the older plotly export still moves too."""
import time

import pytest

from .harness import browser_page, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TEXT = "Once upon a time, there was a little girl named Lily."


def _open_offline(page, path) -> list:
    """Open `path` with every non-file request aborted; returns the list of URLs the page asked for."""
    asked = []

    def route(r):
        asked.append(r.request.url)
        r.continue_() if r.request.url.startswith("file:") else r.abort()
    page.route("**/*", route)
    page.goto(path.as_uri())
    return asked


def _painted(page) -> int:
    """Coloured (non-white, opaque) pixels on the view's canvas: 0 for a blank view."""
    return page.locator("canvas.wb-canvas").evaluate("""c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++;
        return n; }""")


def _picture(page) -> str:
    return page.locator("canvas.wb-canvas").evaluate("c => c.toDataURL()")


def _expect(page, shown: str, title: str) -> None:
    from playwright.sync_api import expect
    expect(page.locator("canvas.wb-canvas")).to_have_attribute("data-shown", shown, timeout=10_000)
    expect(page.locator(".wb-title")).to_contain_text(title)
    assert _painted(page) > 500, "blank canvas"


def _press(page, control: str, key: str = "ArrowRight") -> None:
    page.locator(f"input[data-control='{control}']").focus()
    page.keyboard.press(key)


def _check_slider(page, path, control, start, after, key="ArrowRight", shot=None):
    """Open `path` offline, check the first picture (`start` = (data-shown, title)), move `control` with the
    keyboard and check the canvas changed to `after`; no page errors and nothing but the file fetched."""
    asked = _open_offline(page, path)
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    _expect(page, *start)
    before = _picture(page)
    _press(page, control, key)
    _expect(page, *after)
    assert _picture(page) != before, "the canvas did not change"
    if shot:
        save_screenshot(page, shot)
    assert asked == [path.as_uri()], asked
    assert not page.errors, page.errors


def test_saved_canvas_views_move_without_a_kernel(tmp_path, tiny_tok):
    from workbench.probes import routing as R
    from workbench.probes.attention import sharpen
    from workbench.testing import tiny_model
    from workbench.widgets import routing as W
    from workbench.widgets.attention import AttentionExplorer
    from workbench.widgets.attention_view import AttentionView

    ex = AttentionExplorer(sharpen(tiny_model("dense", tokenizer=tiny_tok)), tiny_tok, TEXT, name="tiny")
    attention = ex.to_html(tmp_path / "attention.html")

    class OneLayerAtATime(AttentionView):
        max_tokens_full = 8                          # on-demand in the notebook; the file holds every layer
    long_view = OneLayerAtATime.from_record(ex.rec, layer=1)
    assert long_view.on_demand
    on_demand = long_view.to_html(tmp_path / "on_demand.html")
    moe = sharpen(tiny_model("moe", tokenizer=tiny_tok, num_local_experts=8))
    texts = [TEXT, "def add(a, b): return a + b", "the cat sat"]
    rec = R.routing_record(moe, tiny_tok, texts, groups={"domain": ["story", "code", "story"]})
    tokens = W.routing_explorer(rec).to_html(tmp_path / "tokens.html")
    groups = W.group_explorer(rec, "domain")
    groups.refresh(layer=0)
    groups = groups.to_html(tmp_path / "groups.html")
    early = sharpen(tiny_model("moe", seed=3, tokenizer=tiny_tok, num_local_experts=8), seed=3)
    replay = W.checkpoint_replay([(0, R.routing_record(early, tiny_tok, texts)), (9, rec)])
    replay = replay.to_html(tmp_path / "replay.html")
    cases = [
        (attention, "layer", ("attention L0 H0", "layer 0 head 0 (tiny)"),
         ("attention L1 H0", "layer 1 head 0 (tiny)"), "ArrowRight", "standalone_attention"),
        (on_demand, "layer", ("attention L1 H0", "layer 1 head 0"), ("attention L0 H0", "layer 0 head 0"),
         "ArrowLeft", None),
        (tokens, "layer", ("L0 top-1", "layer 0: first-choice expert"), ("L1 top-1", "layer 1: first-choice"),
         "ArrowRight", "standalone_tokens"),
        (groups, "layer", ('[0,"similarity",false,"cosine"]', "layer 0"), ('[1,"similarity",false,"cosine"]',
                                                                          "layer 1"), "ArrowRight", None),
        (replay, "ckpt", ("C1 L0", "step 9, layer 0"), ("C0 L0", "step 0, layer 0"), "ArrowLeft",
         "standalone_replay"),
    ]
    for path, control, start, after, key, shot in cases:
        with browser_page(width=1000, height=1100) as page:
            try:
                _check_slider(page, path, control, start, after, key, shot)
            except Exception:
                save_screenshot(page, f"standalone_failure_{path.stem}")
                raise
    with browser_page(width=1000, height=1100) as page:                   # the other controls work there too
        _open_offline(page, attention)
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        _press(page, "head")
        _expect(page, "attention L0 H1", "layer 0 head 1 (tiny)")
        page.locator("button[data-control='view']", has_text="rollout").click()
        _expect(page, "rollout L0", "rollout through layer 0 (mean of heads) (tiny)")
        raw = _picture(page)
        page.locator("select[data-control='colorscale']").select_option("Greys")
        page.wait_for_function("old => document.querySelector('canvas.wb-canvas').toDataURL() !== old", arg=raw,
                               timeout=5_000)
        assert page.evaluate("window.wbModel.saves") == 3 and not page.errors, page.errors


def test_saved_plotly_view_moves_without_a_kernel(tmp_path, tiny_tok):
    from playwright.sync_api import expect

    from workbench.testing import tiny_model
    from workbench.widgets.attention import AttentionExplorer
    ex = AttentionExplorer(tiny_model("dense", tokenizer=tiny_tok), tiny_tok, TEXT, name="tiny")
    path = ex.to_html(tmp_path / "attention.html", kind="plotly")
    with browser_page() as page:
        _open_offline(page, path)                                       # prove that nothing is fetched
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


def test_saved_scoring_lab_moves_without_a_kernel(tmp_path, tiny_tok):
    """The scoring lab's charts saved from the lab: offline, the function select redraws the bars and the confusion
    matrix, the example slider the surprisal strip, the flip selects the listed flips, λ the curve and its line."""
    from playwright.sync_api import expect

    from workbench.scoring import Task, label_logprobs
    from workbench.testing import tiny_model
    from workbench.widgets.scoring import scoring_lab
    texts = tuple(f"Lily {'lost' if i % 2 else 'found'} her ball {i}." for i in range(10))
    task = Task("feel", texts, tuple(i % 2 for i in range(10)), ("happy", "sad"),
                verbalizers=(("happy", "glad"), ("sad",)), template="Story: {text}\nShe feels",
                domain_premise="She feels")
    rec = label_logprobs(tiny_model("dense", tokenizer=tiny_tok), tiny_tok, task, model_name="tiny")
    lab = scoring_lab({("tiny", "feel"): rec}).lab
    lab.fn.value, lab.example.value = "pmi", 2
    path = lab.view.to_html(tmp_path / "scoring.html")
    canvas = lambda name: page.locator(f"canvas[data-chart='{name}']")   # noqa: E731
    title = lambda name: page.locator(f".wb-title[data-chart='{name}']")  # noqa: E731
    picture = lambda name: canvas(name).evaluate("c => c.toDataURL()")   # noqa: E731
    with browser_page(width=1366, height=1800) as page:
        try:
            asked = _open_offline(page, path)
            page.wait_for_selector("body[data-ready='1']", timeout=30_000)
            expect(title("confusion")).to_have_text("Confusion matrix · pmi")
            expect(title("surprisal")).to_contain_text("Example 2 (gold: happy)")
            expect(title("flips")).to_have_text("Which examples flip (of 10)")
            before = {n: picture(n) for n in ("accuracy", "confusion", "surprisal", "lambda")}
            page.locator("select[data-control='fn']").select_option("acc_norm")
            expect(title("confusion")).to_have_text("Confusion matrix · acc_norm")
            expect(canvas("accuracy")).to_have_attribute("data-highlight", "acc_norm")
            assert picture("accuracy") != before["accuracy"]
            _press(page, "example")
            expect(title("surprisal")).to_contain_text("Example 3 (gold: sad)")
            assert picture("surprisal") != before["surprisal"]
            page.locator("select[data-control='b']").select_option("first_token")
            expect(page.locator(".wb-flip-head")).to_contain_text("between acc and first_token")
            _press(page, "lam", "ArrowLeft")
            expect(page.locator(".wb-lam-text")).to_contain_text("λ = 0.95, premise = domain: accuracy")
            assert picture("lambda") != before["lambda"]                 # the λ line moved
            save_screenshot(page, "standalone_scoring_lab")
            assert asked == [path.as_uri()], asked
            assert page.evaluate("window.wbModel.saves") == 4 and not page.errors, page.errors
        except Exception:
            save_screenshot(page, "standalone_failure_scoring")
            raise


def test_saved_prompt_grid_moves_without_a_kernel(tmp_path):
    """The prompt lab's grid saved as a file: offline, the metric and value selects retitle and redraw the line
    graph and heat map, and unticking a model removes its row from the best-style table."""
    import pandas as pd
    from playwright.sync_api import expect

    from workbench.widgets.prompting_view import PromptView
    rows = [{"model": m, "style": s, "task": t, "task_type": tt, "domain": "stories", "instance": i,
             "judge": float((i + len(s) + len(m)) % 3 == 0), "rouge_l": (i % 4) / 4, "chrf": 0.5, "exact_match": 0.0}
            for m in ("a-1m", "b-4m", "b-4m-it") for s in ("plain", "qa") for t, tt in (("x", "recall"), ("y", "qa"))
            for i in range(4)]
    view = PromptView()
    view.set_table(pd.DataFrame(rows))
    path = view.to_html(tmp_path / "grid.html")
    with browser_page(width=1366, height=1400) as page:
        try:
            asked = _open_offline(page, path)
            page.wait_for_selector("body[data-ready='1']", timeout=30_000)
            title = page.locator(".wb-title[data-chart='lines']")
            expect(title).to_have_text("task type = recall: judge across prompt styles")
            lines = page.locator("canvas[data-chart='lines']")
            before = lines.evaluate("c => c.toDataURL()")
            page.locator("select[data-control='metric']").select_option("rouge_l")
            expect(title).to_have_text("task type = recall: rouge_l across prompt styles")
            page.locator("select[data-control='entity']").select_option("qa")
            expect(page.locator(".wb-title[data-chart='heatmap']")).to_have_text("task type = qa: model x style")
            assert lines.evaluate("c => c.toDataURL()") != before
            expect(page.locator(".wb-best-table tr")).to_have_count(4)             # header + 3 models
            page.locator("button[data-control='models']", has_text="a-1m").click()
            expect(page.locator(".wb-best-table tr")).to_have_count(3)
            save_screenshot(page, "standalone_prompt_grid")
            assert asked == [path.as_uri()], asked
            assert not page.errors, page.errors
        except Exception:
            save_screenshot(page, "standalone_failure_prompt_grid")
            raise
