"""Generative evaluation: styles render the expected text, few-shot examples stay out of the test set, greedy
decoding is deterministic, metrics equal hand-computed values, the judge on constructed answers, bad input."""
import json

import pytest

from workbench.evaluation import (STYLES, GenTask, Instance, StyleError, TaskFileError, builtin_suite, builtin_task,
                                  chrf, exact_match, judge, load_task_file, normalize, pick_shots, render, rouge_l,
                                  score_output)
from workbench.evaluation.generation import cut_at_stop, generate_batch
from workbench.evaluation.grid import evaluate
from workbench.evaluation.suite import SUITE


def _inst(i, answer, **kw):
    fields = dict(input=f"Tom has a cat number {i}.", question="What does Tom have?", cue="Tom has a",
                  instruction="Name Tom's pet.", wrong="dog", **kw)
    return Instance(f"t{i}", fields, (answer,), {"task_type": "qa", "domain": "toy", "reasoning": "lookup"})


TASK = GenTask("toy", (_inst(0, "cat"),), tuple(_inst(i, "cat") for i in range(1, 5)), "Say the pet.",
               "Name the animal.", ("\n",), 4)
SHOT = "Tom has a cat number {k}. Tom has a cat"


def test_each_builtin_style_renders_the_expected_text():
    inst = TASK.instances[0]
    shots = [s.id for s in pick_shots(TASK, inst, 3)]
    ex = [SHOT.format(k=s[1:]) for s in shots]
    expected = {
        "input_only": "Tom has a cat number 0. Tom has a",
        "definition_first": "Say the pet.\nTom has a cat number 0. Tom has a",
        "definition_last": "Tom has a cat number 0.\nSay the pet.\nTom has a",
        "paraphrase": "Name the animal.\nTom has a cat number 0. Tom has a",
        "question_answer": "Tom has a cat number 0.\nQuestion: What does Tom have?\nAnswer:",
        "instruction": "Tom has a cat number 0.\nInstruction: Name Tom's pet.\nResponse:",
        "one_shot": ex[0] + "\nTom has a cat number 0. Tom has a",
        "three_shot": "\n".join(ex) + "\nTom has a cat number 0. Tom has a",
        "definition_contrast": f"Say the pet.\nRight: {ex[0]}\nWrong: {ex[0][:-3]}dog\n"
                               "Tom has a cat number 0. Tom has a",
    }
    assert set(expected) == set(STYLES) and len(STYLES) >= 8
    for name, text in expected.items():
        assert render(TASK, inst, name) == text, name


def test_empty_cue_leaves_no_double_space_and_keeps_code_indentation():
    code = Instance("c", {"input": "def f(n):\n    return n\nx = 1\n"}, ("print(f(x))",), {})
    task = GenTask("code", (code,), (Instance("p", {"input": "y = 2\n"}, ("print(y)",), {}),))
    assert render(task, code, "input_only") == "def f(n):\n    return n\nx = 1\n"
    assert render(task, code, "one_shot") == "y = 2\nprint(y)\ndef f(n):\n    return n\nx = 1\n"


def test_few_shot_examples_never_include_the_test_instance():
    for task in builtin_suite(n=40, pool=12):
        test_inputs = {i.fields["input"] for i in task.instances}
        assert not test_inputs & {p.fields["input"] for p in task.pool}
        for inst in task.instances:
            shots = pick_shots(task, inst, 3)
            assert inst.id not in {s.id for s in shots} and len({s.id for s in shots}) == 3
            prompt = render(task, inst, "three_shot")
            assert prompt.count(inst.fields["input"].strip()) == 1        # the test input only once, at the end
    assert pick_shots(TASK, TASK.instances[0], 2) == pick_shots(TASK, TASK.instances[0], 2)   # seeded


def test_pool_sharing_an_input_with_the_test_set_is_refused():
    with pytest.raises(TaskFileError, match="disjoint"):
        GenTask("leak", (_inst(0, "cat"),), (_inst(0, "cat"),))


def test_builtin_suite_has_200_instances_per_task_type_with_aspects():
    suite = builtin_suite(n=200, pool=5)
    assert [t.name for t in suite] == list(SUITE)
    by_type = {}
    for t in suite:
        assert len(t.instances) == 200 and len({i.fields["input"] for i in t.instances}) >= 190
        for i in t.instances:
            assert i.aspects["task_type"] and i.aspects["domain"] and i.aspects["reasoning"] and i.references
            by_type[i.aspects["task_type"]] = by_type.get(i.aspects["task_type"], 0) + 1
    assert min(by_type.values()) >= 200 and len({t.aspects["domain"] for t in suite}) == 4
    assert builtin_task("qa", n=5).instances == builtin_task("qa", n=50).instances[:5]    # deterministic prefix


def test_references_are_right_by_construction():
    for task in builtin_suite(n=30, pool=2):
        for i in task.instances:
            assert judge(i.references[0], i.required, i.forbidden) == 1.0, (task.name, i.references)
            assert judge(i.fields["wrong"], i.required, i.forbidden) == 0.0 or task.name == "title", \
                (task.name, i.fields["wrong"])


def test_metrics_against_hand_computed_values():
    assert normalize(" The Big  Park. ") == "big park"
    assert exact_match("the park.", ["Park"]) == 1.0 and exact_match("park bench", ["park"]) == 0.0
    # LCS("the cat sat", "the cat sat on the mat") = 3 words: P = 3/3, R = 3/6, F = 2PR/(P+R) = 2/3
    assert rouge_l("the cat sat", ["the cat sat on the mat"]) == pytest.approx(2 / 3)
    assert rouge_l("", ["x"]) == 0.0
    assert chrf("Bella", ["Bella"]) == pytest.approx(1.0) and chrf("xyz", ["Bella"]) == 0.0
    assert 0 < chrf("Bela", ["Bella"]) < 1
    assert rouge_l("a b", ["x", "a b"]) == 1.0                       # max over references
    with pytest.raises(ValueError, match="references is empty"):
        score_output("x", [])


def test_semantic_judge_on_constructed_answers():
    req, forb = [["Bella"]], ["Julia", "Tom"]
    assert judge("Bella.", req, forb) == 1.0
    assert judge("Julia's friend is Bella", req, forb) == 0.0           # a contradicting name appears
    assert judge("Isabella", req, forb) == 0.0                          # whole words only
    assert judge("bella", req, forb) == 1.0                             # case-insensitive
    assert judge("the blue lake", [["blue lake"]], ["lake", "park"]) == 1.0   # its own word is not a contradiction
    assert judge("17", [["17"]], [str(n) for n in range(30) if n != 17]) == 1.0
    assert judge("17 or 18", [["17"]], ["18"]) == 0.0
    assert judge("Paul and the pizza", [["Paul"], ["pizza"]], ["cake"]) == 1.0
    assert judge("Paul and the cake", [["Paul"], ["pizza"]], ["cake"]) == 0.0


def test_style_with_a_missing_field_names_the_field_and_the_style():
    with pytest.raises(StyleError, match=r"style 'terse'.*\{pet\}.*task 'toy'"):
        render(TASK, TASK.instances[0], STYLES["input_only"].__class__("terse", "{input} {pet}"))


def test_more_shots_than_the_pool_holds_is_a_clear_error():
    small = GenTask("small", (_inst(0, "cat"),), (_inst(1, "cat"),))
    with pytest.raises(StyleError, match="asks for 3 examples but the few-shot pool holds 1"):
        render(small, small.instances[0], "three_shot")


def test_empty_reference_list_is_refused():
    with pytest.raises(TaskFileError, match="references"):
        Instance("x", {"input": "a"}, (), {})
    with pytest.raises(TaskFileError, match="references"):
        Instance("x", {"input": "a"}, ("", "  "), {})


def test_cut_at_stop():
    assert cut_at_stop(" Bella. She", ["\n", "."]) == (" Bella", True)
    assert cut_at_stop(" a\nb.", [".", "\n"]) == (" a", True)
    assert cut_at_stop(" no stop", ["\n"]) == (" no stop", False)


@pytest.fixture(scope="module")
def tiny():
    from workbench.testing import tiny_model, tiny_tokenizer
    tok = tiny_tokenizer()
    return tiny_model("dense", tokenizer=tok, seed=1), tok


def test_stop_string_that_never_occurs_cuts_at_max_length_with_a_note(tiny):
    model, tok = tiny
    g = generate_batch(model, tok, ["Lily had a ball."], stop=("\u2603",), max_new_tokens=5)[0]
    assert g.hit_max and g.new_tokens == 5 and g.text == g.raw
    task = GenTask("nostop", (Instance("a", {"input": "Lily had a ball."}, ("x",), {}),), stop=("\u2603",),
                   max_new_tokens=5)
    df = evaluate(model, tok, task, ["input_only"])
    assert bool(df["hit_max"].iloc[0])


def test_greedy_decoding_is_deterministic_and_batch_independent(tiny):
    model, tok = tiny
    task = builtin_task("arithmetic", n=12, pool=4)
    a = evaluate(model, tok, task, ["input_only", "one_shot"], batch_size=1)
    b = evaluate(model, tok, task, ["input_only", "one_shot"], batch_size=8)
    c = evaluate(model, tok, task, ["input_only", "one_shot"], batch_size=8)
    assert a["output"].tolist() == b["output"].tolist() == c["output"].tolist()
    assert len(a) == 24 and set(a.columns) >= {"judge", "exact_match", "rouge_l", "chrf", "task_type"}


def test_sampling_is_seeded(tiny):
    model, tok = tiny
    prompts = ["Lily had a ball."] * 3
    a = generate_batch(model, tok, prompts, ("\n",), 8, temperature=1.0, seed=3)
    b = generate_batch(model, tok, prompts, ("\n",), 8, temperature=1.0, seed=3)
    assert [g.raw for g in a] == [g.raw for g in b]


def test_user_task_file_with_its_own_style(tmp_path):
    rows = [{"input": f"Mia has a {p}.", "references": [p], "question": "What pet?", "cue": "Mia's pet is a",
             "reasoning": "lookup"} for p in ("cat", "dog", "fish")]
    (tmp_path / "pets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "pool.jsonl").write_text(json.dumps({"input": "Sam has a bird.", "references": ["bird"],
                                                     "cue": "Sam's pet is a"}) + "\n")
    (tmp_path / "pets.yaml").write_text(
        "name: pets\ndata: pets.jsonl\npool: pool.jsonl\ndefinition: Say the pet.\ndomain: stories\n"
        "task_type: question answering\nstop: [\"\\n\", \".\"]\nmax_new_tokens: 3\n"
        "styles:\n  terse: '{input} Pet:'\n")
    task = load_task_file(tmp_path / "pets.yaml")
    assert len(task.instances) == 3 and task.instances[0].aspects == {
        "task_type": "question answering", "domain": "stories", "reasoning": "lookup"}
    assert render(task, task.instances[1], "terse") == "Mia has a dog. Pet:"
    assert render(task, task.instances[0], "one_shot") == ("Sam has a bird. Sam's pet is a bird\n"
                                                           "Mia has a cat. Mia's pet is a")
    assert task.stop == ("\n", ".")


@pytest.mark.parametrize("line,match", [
    ('{"references": ["a"]}', "missing field `input`"),
    ('{"input": "x", "references": []}', "references"),
    ('{"input": "x"', "line 1: not valid JSON"),
    ('{"input": "x", "references": ["a"], "required": ["a"]}', "`required` must be a list of non-empty lists"),
])
def test_bad_task_files_name_the_line_and_field(tmp_path, line, match):
    (tmp_path / "d.jsonl").write_text(line + "\n")
    (tmp_path / "t.yaml").write_text("name: t\ndata: d.jsonl\n")
    with pytest.raises(TaskFileError, match=match):
        load_task_file(tmp_path / "t.yaml")


def test_unknown_task_file_key_and_missing_data(tmp_path):
    (tmp_path / "t.yaml").write_text("name: t\ndata: d.jsonl\ntemplate: x\n")
    with pytest.raises(TaskFileError, match="unknown keys \\['template'\\]"):
        load_task_file(tmp_path / "t.yaml")
    (tmp_path / "u.yaml").write_text("name: t\ndata: nope.jsonl\n")
    with pytest.raises(TaskFileError, match="nope.jsonl: file not found"):
        load_task_file(tmp_path / "u.yaml")


def test_invalid_yaml_names_the_file_and_line(tmp_path):
    (tmp_path / "t.yaml").write_text("name: t\ndata: [d.jsonl\n")
    with pytest.raises(TaskFileError, match=r"t\.yaml:\d+: invalid YAML"):
        load_task_file(tmp_path / "t.yaml")
