"""The prompt-style lab (widgets.prompting): controls change the figures and the preview; the live button
reproduces the stored greedy output; errors show inline."""
import pytest

from workbench.evaluation import builtin_suite
from workbench.evaluation.grid import load_results
from workbench.models import load_model
from workbench.widgets.prompting import prompt_lab


@pytest.fixture(scope="module")
def lab():
    table = load_results()
    table = table[table["model"].isin(["dense-1m", "dense-4m-it"])]
    tasks = builtin_suite(n=200)
    cache = {}

    def load(name):
        cache.setdefault(name, load_model(name, trust_remote_code=False, local_only=True))
        return cache[name]
    return prompt_lab(table, tasks=tasks, load=load), table


def test_lab_renders_figures_for_the_first_aspect_value(lab):
    box, _ = lab
    assert hasattr(box, "controls"), getattr(box, "value", "")          # not the inline-error fallback
    names = [t.name for t in box.figure.data]
    assert names == ["dense-1m", "dense-4m-it", "selected"]
    assert "question answering" in box.figure.layout.title.text
    assert len(box.heatmap.data[0].z) == 2 and list(box.best()["model"]) == ["dense-1m", "dense-4m-it"]


def test_style_change_changes_the_preview_and_rings_that_style(lab):
    box, _ = lab
    c = box.controls
    c["style"].value = "input_only"
    before = box.prompt.value
    c["style"].value = "question_answer"
    assert box.prompt.value != before and "Question:" in box.prompt.value
    assert set(box.figure.data[-1].x) == {"question_answer"}
    assert "stored greedy output" in box.output.value and "judge" in box.output.value


def test_aspect_change_lists_its_values_and_redraws(lab):
    box, _ = lab
    c = box.controls
    c["aspect"].value = "domain"
    assert set(c["entity"].options) == {"stories", "constructed languages", "arithmetic", "code"}
    c["entity"].value = "code"
    assert "domain = code" in box.figure.layout.title.text
    c["aspect"].value = "task_type"


def test_live_generation_reproduces_the_stored_output(lab):
    box, table = lab
    c = box.controls
    c["task"].value, c["instance"].value, c["style"].value, c["model"].value = "arithmetic", 3, "three_shot", "dense-1m"
    box.run_live()
    inst = [t for t in builtin_suite(n=4, names=["arithmetic"])][0].instances[3]
    stored = table[(table.model == "dense-1m") & (table.task == "arithmetic") & (table["style"] == "three_shot")
                   & (table.instance == inst.id)]["output"].iloc[0]
    assert f"<b>live</b>: <code>{stored}</code>" in box.live.value


def test_unticking_every_model_leaves_nothing_to_draw(lab):
    box, _ = lab
    boxes = box.controls["models"]
    for b in boxes.values():
        b.value = False
    assert box.view.models == []                                        # the page says "tick at least one model"
    with pytest.raises(ValueError, match="tick at least one model"):
        box.figure
    for b in boxes.values():
        b.value = True
    assert box.view.models == ["dense-1m", "dense-4m-it"] and len(box.figure.data) == 3
