"""Canvas views saved as standalone HTML, without a browser: the file is self-contained (no URL, no external
script), parses as HTML, holds the payload the widget sends (round trip), exports every layer in on-demand mode,
refuses oversize payloads with the fix, and the "save HTML" buttons write files or show errors inline
(the browser half, moving a slider in the saved file with the network blocked, is tests/e2e/test_standalone_html.py)."""
import re
from html.parser import HTMLParser

import numpy as np
import pytest

pytest.importorskip("anywidget")

from workbench.probes.attention import AttentionRecord, attention_record  # noqa: E402
from workbench.probes.rollout import attention_rollout  # noqa: E402
from workbench.probes.routing import routing_record  # noqa: E402
from workbench.testing import tiny_model  # noqa: E402
from workbench.widgets import routing as W  # noqa: E402
from workbench.widgets.attention_view import AttentionView, attention_view  # noqa: E402
from workbench.widgets.canvas import from_f16  # noqa: E402
from workbench.widgets.routing_view import TokenExpertView  # noqa: E402
from workbench.widgets.standalone import encode_state, read_state, save_html_row  # noqa: E402

TEXT = "Once upon a time, there was a little girl named Lily."
F16_TOL = 1e-3


@pytest.fixture(scope="module")
def rec(tiny_tok):
    return attention_record(tiny_model("dense", tokenizer=tiny_tok), tiny_tok, TEXT)


@pytest.fixture(scope="module")
def rrec(tiny_tok):
    return routing_record(tiny_model("moe", tokenizer=tiny_tok), tiny_tok, [TEXT, "def add(a, b): return a + b"],
                          groups={"domain": ["story", "code"]})


class _Page(HTMLParser):
    """Tags, script types and ids of a page (HTMLParser raises nothing, so also check the structure we need)."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.scripts, self.ids = [], [], {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "script":
            self.scripts.append(a)
        if "id" in a:
            self.ids[a["id"]] = tag


def _views(rec, rrec):
    return {"attention": attention_view(rec, layer=1, head=2),
            "tokens": W.routing_explorer(rrec).view,
            "groups": W.group_explorer(rrec, "domain").view,
            "replay": W.checkpoint_replay([(0, rrec), (9, rrec)]).view}


@pytest.mark.parametrize("name", ["attention", "tokens", "groups", "replay"])
def test_file_is_self_contained_html(name, rec, rrec, tmp_path):
    view = _views(rec, rrec)[name]
    path = view.to_html(tmp_path / name)
    text = path.read_text(encoding="utf-8")
    assert path.suffix == ".html"
    assert not re.search(r"https?://|//cdn|\bsrc=|<link|\bimport\b", text)   # nothing to fetch, no imports
    assert "default-src 'none'" in text                                      # the page may not fetch anything
    page = _Page(text)
    assert page.tags[:3] == ["html", "head", "meta"] and page.ids == {"wb-view": "div", "wb-state": "script"}
    assert [s.get("type") for s in page.scripts] == ["application/json", "module"]
    assert text.count("</script>") == 2 and "function render(" in text and "class WbModel" in text
    assert not re.search(r"^export ", text, re.M) and "const WB_MODULE = { render }" in text
    assert read_state(text) == view.standalone_state()                      # the data, back as it went in


def test_attention_payload_round_trips(rec, tmp_path):
    view = attention_view(rec, layer=1, head=2, norm="log", colorscale="Magma")
    state = read_state(view.to_html(tmp_path / "a.html").read_text(encoding="utf-8"))
    L, H, T = rec.n_layers, rec.n_heads, rec.n_tokens
    assert state["weights"] == view.weights and state["rollout"] == view.rollout      # the bytes the widget sends
    np.testing.assert_allclose(from_f16(state["weights"], (L, H, T, T)), rec.weights, atol=F16_TOL)
    np.testing.assert_allclose(from_f16(state["rollout"], (L, T, T)), attention_rollout(rec.weights), atol=F16_TOL)
    assert (state["layer"], state["head"], state["norm"], state["colorscale"]) == (1, 2, "log", "Magma")
    assert state["tokens"] == list(rec.tokens) and state["titles"] == view.titles and state["blocks"] == [0, 1]
    assert not any(k.startswith("_") or k in ("layout", "tooltip") for k in state)    # no ipywidgets housekeeping


def test_routing_payload_round_trips(rrec, tmp_path):
    view = W.routing_explorer(rrec).view
    state = read_state(view.to_html(tmp_path / "r.html").read_text(encoding="utf-8"))
    L, T, k, E = rrec.n_layers, view.n_tokens, rrec.top_k, rrec.n_experts
    assert np.array_equal(np.frombuffer(state["topk"], "u1").reshape(L, T, k), rrec.topk[:, :T])
    np.testing.assert_allclose(from_f16(state["gates"], (L, T, k)), rrec.weights[:, :T], atol=F16_TOL)
    assert len(state["scores"]) == 2 * L * T * E and state["titles"] == view.titles


def test_on_demand_views_export_every_layer(rec, tmp_path):
    class OneLayerAtATime(AttentionView):
        max_tokens_full = 4
    view = OneLayerAtATime.from_record(rec)
    assert view.on_demand and view.blocks == [0]
    state = read_state(view.to_html(tmp_path / "long.html").read_text(encoding="utf-8"))
    assert state["on_demand"] is False and state["blocks"] == list(range(rec.n_layers))
    assert len(state["weights"]) + len(state["rollout"]) == view.full_payload_bytes()
    assert view.blocks == [0]                                   # the live widget is untouched


def test_oversize_payload_is_refused_with_the_fix(rec, rrec, tmp_path):
    with pytest.raises(ValueError, match=r"MiB, over the 0 MiB limit.*max_tokens=\d+.*max_bytes=") as e:
        attention_view(rec).to_html(tmp_path / "big.html", max_bytes=1000)
    assert f"{rec.n_layers} layers x {rec.n_heads} heads" in str(e.value) and not (tmp_path / "big.html").exists()
    with pytest.raises(ValueError, match="fewer tokens"):
        W.routing_explorer(rrec).view.to_html(tmp_path / "r.html", max_bytes=100)
    with pytest.raises(ValueError, match="fewer control combinations"):
        W.group_explorer(rrec, "domain").view.to_html(tmp_path / "g.html", max_bytes=100)
    with pytest.raises(ValueError, match="nothing to save"):
        AttentionView().to_html(tmp_path / "empty.html")
    with pytest.raises(ValueError, match="nothing to save"):
        TokenExpertView().to_html(tmp_path / "empty.html")


def test_page_text_cannot_close_the_script(tmp_path):
    w = np.tril(np.ones((1, 1, 3, 3), np.float32))
    rec = AttentionRecord(tokens=("</script>", "<b>x</b>", "&amp;"), token_ids=np.arange(3),
                          weights=w / w.sum(-1, keepdims=True), model_name="<i>m</i>")
    text = attention_view(rec).to_html(tmp_path / "x.html").read_text(encoding="utf-8")
    assert text.count("</script>") == 2 and "<b>x</b>" not in text and "<i>m</i>" not in text
    assert read_state(text)["tokens"] == ["</script>", "<b>x</b>", "&amp;"]
    with pytest.raises(ValueError):
        encode_state({"z": float("nan")})                    # not JSON: refused, not written as NaN


def test_explorer_button_writes_under_the_working_directory(tiny_tok, tmp_path, monkeypatch):
    from workbench.widgets.attention import AttentionExplorer
    monkeypatch.chdir(tmp_path)
    ex = AttentionExplorer(tiny_model("dense", tokenizer=tiny_tok), tiny_tok, TEXT, name="tiny")
    assert ex.save in ex.widget.children and ex.save.filename.value == "attention.html"
    ex.save.button.click()
    assert (tmp_path / "attention.html").exists() and str(tmp_path / "attention.html") in ex.save.status.value
    (tmp_path / "blocker").write_text("a file, not a folder")
    ex.save.filename.value = "blocker/inside.html"                     # cannot create a folder there
    ex.save.button.click()                                             # no exception: the error is in the widget
    assert "error" in ex.save.status.value and "blocker" in ex.save.status.value


def test_routing_boxes_save_their_view(rrec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for box, name in [(W.routing_explorer(rrec), "routing_tokens.html"),
                      (W.group_explorer(rrec, "domain"), "routing_groups.html"),
                      (W.checkpoint_replay([(0, rrec), (9, rrec)]), "routing_replay.html")]:
        assert box.children[0] is box.view and box.children[2] is box.save
        box.save.save()
        assert (tmp_path / name).exists() and name in box.save.status.value
        assert read_state((tmp_path / name).read_text(encoding="utf-8"))
    row = save_html_row(lambda p: (_ for _ in ()).throw(RuntimeError("disk full")), "x.html")
    row.save()
    assert "disk full" in row.status.value
