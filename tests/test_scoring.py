"""Scoring functions on hand-built log-likelihoods, tasks and task files, bad input, and the CLI."""
import json

import numpy as np
import pytest

from workbench.scoring import SCORING_FUNCTIONS, Task, load_task_file, predict, premise_strength, scores, story_task
from workbench.scoring.functions import aggregate, class_scores, get_function, resolve_names
from workbench.scoring.loglik import LabelLogprobs

STORIES = [   # a hand-made stand-in for the story corpus
    {"text": "Lily lost her ball and cried.", "feeling": "sad", "topic": "toys", "ending": "bad"},
    {"text": "Tom ate a big cake with his mom.", "feeling": "happy", "topic": "food", "ending": "good"},
    {"text": "The dog ran in the rain.", "feeling": "happy", "topic": "animals", "ending": "good"},
]


def make_task(classes=("good", "bad"), verbalizers=(), n=3, **kw):
    golds = tuple(i % len(classes) for i in range(n))
    return Task("t", tuple(f"text {i}" for i in range(n)), golds, tuple(classes), tuple(verbalizers), **kw)


def fake(task, cond, uncond=None, domain=None, generic=None, content_free=None, first=None, n_tokens=None,
         channel=None, channel_tokens=None):
    """A LabelLogprobs record from hand-built arrays (nats)."""
    cond = np.asarray(cond, float)
    N, V = cond.shape
    z = np.zeros(V)
    return LabelLogprobs(
        task=task, model_name="fake", cond=cond, first=np.asarray(first if first is not None else cond, float),
        n_tokens=np.asarray(n_tokens if n_tokens is not None else np.ones((N, V)), float),
        greedy=np.zeros((N, V), bool), uncond=np.asarray(uncond if uncond is not None else z, float),
        generic=np.asarray(generic if generic is not None else z, float),
        domain=np.asarray(domain if domain is not None else z, float),
        content_free=np.asarray(content_free if content_free is not None else np.zeros((1, V)), float),
        channel=np.asarray(channel if channel is not None else np.full((N, V), np.nan), float),
        channel_tokens=np.asarray(channel_tokens if channel_tokens is not None else np.ones((N, V)), float),
        cont_tokens=(), cont_logprobs=(), ctx_tokens=(), truncated=np.zeros(N, bool))


# ---- scoring functions ----------------------------------------------------------------------------------

def test_dcpmi_overturns_a_label_prior_that_raw_logprob_follows():
    task = make_task(n=4)                         # golds: good, bad, good, bad
    prior = np.array([-1.0, -5.0])                # the model loves "good" whatever the text says
    evidence = np.array([[0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [-0.5, 0.5]])
    r = fake(task, prior + evidence, domain=prior)
    assert predict(r, "acc").tolist() == [0, 0, 0, 0]          # raw log-prob follows the prior
    assert predict(r, "dcpmi").tolist() == [0, 1, 0, 1]        # DCPMI divides it out
    assert premise_strength(r, 0.0).tolist() == predict(r, "acc").tolist()
    assert premise_strength(r, 1.0).tolist() == predict(r, "dcpmi").tolist()


def test_normalisations_use_tokens_chars_and_bytes_of_the_choice_without_delimiter():
    task = make_task(classes=("é", "bb"), n=1)    # "é" is 1 character but 2 UTF-8 bytes
    r = fake(task, [[-3.0, -4.0]], n_tokens=[[3, 1]])
    np.testing.assert_allclose(scores(r, "token_mean"), [[-1.0, -4.0]])
    np.testing.assert_allclose(scores(r, "acc_norm"), [[-3.0, -2.0]])
    np.testing.assert_allclose(scores(r, "acc_bytes"), [[-1.5, -2.0]])
    assert predict(r, "acc").tolist() == [0] and predict(r, "acc_norm").tolist() == [1]


def test_pmi_variants_subtract_their_own_premise():
    task = make_task(n=1)
    r = fake(task, [[-2.0, -3.0]], uncond=[-1.0, -4.0], generic=[0.0, -3.0], domain=[-5.0, 0.0])
    np.testing.assert_allclose(scores(r, "acc_mutual_info"), [[-1.0, 1.0]])
    np.testing.assert_allclose(scores(r, "pmi"), [[-2.0, 0.0]])
    np.testing.assert_allclose(scores(r, "dcpmi"), [[3.0, -3.0]])


def test_first_token_and_channel_read_their_own_columns():
    task = make_task(n=1)
    r = fake(task, [[-1.0, -2.0]], first=[[-3.0, -0.5]], channel=[[-10.0, -4.0]], channel_tokens=[[5, 1]])
    assert predict(r, "first_token").tolist() == [1]
    np.testing.assert_allclose(scores(r, "channel"), [[-2.0, -4.0]])
    assert predict(r, "channel").tolist() == [0]


def test_contextual_calibration_divides_by_content_free_probabilities():
    task = make_task(n=2)
    cond = np.log([[0.6, 0.4], [0.8, 0.2]])
    cf = np.log([[0.75, 0.25], [0.65, 0.35]])     # mean p_cf = [0.7, 0.3]
    r = fake(task, cond, content_free=cf)
    p_cf = np.array([0.7, 0.3])
    expect = np.log(np.array([[0.6, 0.4], [0.8, 0.2]]) / p_cf)
    np.testing.assert_allclose(scores(r, "calibrated"), expect, atol=1e-12)
    assert predict(r, "calibrated").tolist() == [1, 0]   # 0.6/0.7 < 0.4/0.3; 0.8/0.7 > 0.2/0.3


def test_verbalizers_aggregate_by_max_logsumexp_sum_and_mean():
    task = make_task(classes=("pos", "neg"), verbalizers=(("good", "great"), ("bad",)), n=1)
    r = fake(task, np.log([[0.2, 0.2, 0.3]]))
    assert predict(r, "acc", how="max").tolist() == [1]           # 0.3 beats 0.2
    assert predict(r, "acc", how="logsumexp").tolist() == [0]     # 0.2 + 0.2 beats 0.3
    np.testing.assert_allclose(class_scores(r, "acc", "logsumexp"), np.log([[0.4, 0.3]]))
    np.testing.assert_allclose(class_scores(r, "acc", "sum"), [[2 * np.log(0.2), np.log(0.3)]])
    np.testing.assert_allclose(class_scores(r, "acc", "mean"), np.log([[0.2, 0.3]]))
    with pytest.raises(ValueError, match="valid: max"):
        aggregate(r.cond, [0, 0, 1], 2, "median")


def test_ties_go_to_the_first_class_as_numpy_and_lm_eval():
    r = fake(make_task(n=1), [[-1.0, -1.0]])
    assert predict(r, "acc").tolist() == [0]


def test_registry_documents_every_function():
    for name, f in SCORING_FUNCTIONS.items():
        assert f.formula and f.units.startswith("nats"), name
    assert {"acc", "acc_norm", "acc_bytes", "acc_mutual_info", "pmi", "dcpmi", "token_mean", "first_token",
            "calibrated", "channel"} <= set(SCORING_FUNCTIONS)


def test_unknown_scoring_function_lists_valid_ones():
    with pytest.raises(ValueError, match="valid: acc, token_mean"):
        get_function("accuracy")
    with pytest.raises(ValueError, match="dcpmi"):
        resolve_names("acc,dcpmmi")
    assert resolve_names("all") == list(SCORING_FUNCTIONS)


def test_channel_without_channel_pass_says_how_to_fix():
    with pytest.raises(ValueError, match="channel=True"):
        scores(fake(make_task(n=1), [[0.0, 0.0]]), "channel")


# ---- tasks and bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("classes, match", [((), "empty label set"), (("only",), "single label"),
                                            (("a", "b", "a"), "duplicate labels")])
def test_bad_label_sets_are_rejected(classes, match):
    with pytest.raises(ValueError, match=match):
        Task("t", ("x",), (0,), classes)


def test_verbalizer_shared_by_two_classes_is_rejected():
    with pytest.raises(ValueError, match="more than one class"):
        make_task(classes=("pos", "neg"), verbalizers=(("good",), ("good", "bad")))


def test_template_without_text_placeholder_is_rejected():
    with pytest.raises(ValueError, match="placeholder"):
        make_task(template="Story:")


def test_story_task_from_records():
    t = story_task("feeling", records=STORIES, labels=["happy", "sad"])
    assert t.golds == (1, 0, 0) and t.classes == ("happy", "sad")
    assert t.prompt(0).startswith("Story: Lily") and t.domain_premise
    with pytest.raises(ValueError, match="not one of"):
        story_task("feeling", records=STORIES, labels=["happy", "angry"])
    with pytest.raises(ValueError, match="valid: feeling"):
        story_task("colour", records=STORIES, labels=["red"])


def _write(tmp_path, yaml_text, rows=None, data="d.jsonl", raw=None):
    (tmp_path / data).write_text(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.yaml").write_text(yaml_text)
    return tmp_path / "t.yaml"


YAML = ('name: topics\ndata: d.jsonl\ntext_field: text\nlabel_field: label\n'
        'template: "Story: {text}\\nThis story is about"\nchoices: [animals, toys]\n'
        'target_delimiter: " "\ndomain_premise: "This story is about"\ngeneric_premise: ":"\n')


def test_yaml_task_file_with_index_and_string_labels(tmp_path):
    p = _write(tmp_path, YAML, [{"text": "a dog", "label": 0}, {"text": "a doll", "label": "toys"}])
    t = load_task_file(p)
    assert t.golds == (0, 1) and t.name == "topics" and t.domain_premise == "This story is about"


def test_yaml_choices_mapping_gives_several_verbalizers(tmp_path):
    y = YAML.replace("choices: [animals, toys]", "choices: {animals: [animals, pets], toys: toys}")
    t = load_task_file(_write(tmp_path, y, [{"text": "a dog", "label": "animals"}]))
    assert t.verbalizers == (("animals", "pets"), ("toys",))


def test_csv_task_file(tmp_path):
    y = YAML.replace("d.jsonl", "d.csv")
    t = load_task_file(_write(tmp_path, y, data="d.csv", raw="text,label\na dog,0\n\"a doll, red\",toys\n"))
    assert t.texts == ("a dog", "a doll, red") and t.golds == (0, 1)


@pytest.mark.parametrize("raw, match", [
    ('{"text": "a", "label": 0}\n{"text": "b" "label": 1}\n', r"d\.jsonl:2: not valid JSON"),
    ('{"text": "a", "label": 0}\n{"txt": "b", "label": 1}\n', r"d\.jsonl:2: missing text field 'text'"),
    ('{"text": "a", "label": 5}\n', r"d\.jsonl:1: field 'label' = 5 is not an index"),
    ('{"text": "a", "label": "plants"}\n', r"d\.jsonl:1: field 'label' = 'plants' is not one of"),
    ('[1, 2]\n', r"d\.jsonl:1: expected a JSON object"),
])
def test_malformed_data_names_line_and_field(tmp_path, raw, match):
    with pytest.raises(ValueError, match=match):
        load_task_file(_write(tmp_path, YAML, raw=raw))


@pytest.mark.parametrize("yaml_text, match", [
    (YAML.replace("choices: [animals, toys]\n", ""), "missing required field 'choices'"),
    (YAML + "verbaliser: x\n", r"unknown field\(s\) \['verbaliser'\]"),
    (YAML.replace("choices: [animals, toys]", "choices: [animals]"), "single label"),
    (YAML.replace("choices: [animals, toys]", "choices: 3"), "field 'choices' must be"),
    ("name: [unclosed\n", r"t\.yaml:\d+: invalid YAML"),
])
def test_malformed_task_file_names_the_field(tmp_path, yaml_text, match):
    with pytest.raises(ValueError, match=match):
        load_task_file(_write(tmp_path, yaml_text, [{"text": "a", "label": 0}]))


def test_hf_task_reads_local_files_through_the_datasets_loader(tmp_path):
    from workbench.scoring import hf_task
    (tmp_path / "d.jsonl").write_text('{"text": "a dog", "label": 1}\n{"text": "a doll", "label": 0}\n')
    t = hf_task("json", split="train", data_files=str(tmp_path / "d.jsonl"), choices=["toys", "animals"],
                template="{text} is about", cache_dir=str(tmp_path / "cache"))
    assert t.golds == (1, 0) and t.prompt(0) == "a dog is about"


# ---- CLI ------------------------------------------------------------------------------------------------

def test_cli_score_writes_scores_and_prints_json_summary(tmp_path, capsys, tiny_dense, tiny_tok):
    from workbench.cli import main
    from workbench.models import save_model
    save_model(tiny_dense, tiny_tok, tmp_path / "m")
    p = _write(tmp_path, YAML, [{"text": f"a dog {i}", "label": i % 2} for i in range(4)])
    assert main(["score", "--model", str(tmp_path / "m"), "--task", str(p), "--scoring", "all",
                 "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["scores"]) == set(SCORING_FUNCTIONS) and summary["n"] == 4
    assert all(0 <= s["acc"] <= 1 and 0 <= s["macro_f1"] <= 1 for s in summary["scores"].values())
    import pandas as pd
    df = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert len(df) == 4 * 2 and {"ll_cond", "acc", "dcpmi", "channel"} <= set(df.columns)


def test_cli_unknown_scoring_function_fails_cleanly(tmp_path, capsys):
    from workbench.cli import main
    assert main(["score", "--model", "x", "--task", "topic", "--scoring", "nope"]) == 2
    assert "valid: acc" in capsys.readouterr().err
