"""The built-in tasks on a shipped model: graded difficulty shows in accuracy, not only in the ceilings."""
import numpy as np
import pytest

import workbench as wb
from workbench.config import DEFAULT_MODELS
from workbench.scoring import label_logprobs, load_task, predictions

# the largest dense model shipped in data/ (the family's dense-12m once trained, else the earlier default)
LARGEST_DENSE = next(n for n in ("dense-12m", "dense-4m", "tiny-dense") if (DEFAULT_MODELS[n] / "config.json").exists())


@pytest.fixture(scope="module")
def model():
    return wb.load_model(LARGEST_DENSE)


def _acc(model, spec, n=100):
    m, tok = model
    task = load_task(spec, n=n)
    rec = label_logprobs(m, tok, task, channel=False)
    return float((predictions(rec, ["acc"])["acc"] == np.asarray(task.golds)).mean()), task


def test_feeling_levels_go_from_the_ceiling_to_chance(model):
    accs, tasks = zip(*(_acc(model, f"feeling/{level}") for level in range(3)))
    assert accs[0] >= 0.9 * tasks[0].ceiling                        # the deciding sentence shown: read
    assert abs(accs[2] - tasks[2].majority) <= 0.1                  # nothing shown decides it: chance, no leak
    assert accs[0] > accs[1] >= accs[2] - 0.05                      # graded in between
    assert accs[1] <= tasks[1].ceiling + 0.1                        # never above what the text allows (+ noise)


@pytest.mark.parametrize("name", ["topic", "ending"])
def test_levels_are_monotone_from_read_to_chance(model, name):
    """Each level removes more of what decides the label: accuracy falls level by level (within sampling
    noise of 60 examples), from near the ceiling to the majority baseline."""
    accs, tasks = zip(*(_acc(model, f"{name}/{level}", n=60) for level in range(3)))
    assert accs[0] >= 0.9 * tasks[0].ceiling and accs[0] > tasks[0].majority + 0.3
    assert accs[0] >= accs[1] - 0.05 and accs[1] >= accs[2] - 0.05
    assert abs(accs[2] - tasks[2].majority) <= 0.12


def test_pronoun_agreement_is_read_from_the_story(model):
    acc, task = _acc(model, "pronoun/1")
    assert acc >= 0.9 > task.majority
