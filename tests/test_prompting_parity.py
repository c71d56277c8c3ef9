"""Parity with lm-evaluation-harness's `generate_until` (an independent oracle) on greedy outputs and exact match.

The same prompts (the workbench's rendering of the built-in arithmetic and qa tasks, two styles), the same stop
strings and token budget, the shipped `dense-1m`: lm-eval runs offline in a subprocess with `hf` (batch 8,
sorted by length, its own left padding and stopping criteria); the workbench runs `evaluation.evaluate`
(batch 32). BOS: the workbench puts it in front of every prompt; lm-eval gets it as the prompt's first
characters, which its tokenizer call turns into the same token (`has_bos_prefix`).
Exact match: lm-eval's `exact_match` ignoring case, punctuation, articles and spaces; the workbench's
SQuAD-normalised exact match against the same single target.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from workbench.evaluation import builtin_task
from workbench.evaluation.grid import evaluate
from workbench.evaluation.metrics import exact_match
from workbench.evaluation.styles import render
from workbench.models import load_model

MODEL = "data/models/dense-1m"
CASES = [("arithmetic", "input_only"), ("qa", "three_shot"), ("cloze", "definition_first")]
N = 24
IGNORE = json.dumps(["\\b(a|an|the)\\b", " "])     # lm-eval's exact_match: drop articles and spaces

LM_EVAL = textwrap.dedent("""
    import json, sys
    import lm_eval
    from lm_eval.tasks import TaskManager
    tm = TaskManager(include_path=sys.argv[1], include_defaults=False)
    res = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={sys.argv[2]},dtype=float32",
                                  tasks=sys.argv[3].split(","), task_manager=tm, device="cpu", batch_size=8,
                                  log_samples=True)
    out = {t: [{"doc_id": s["doc_id"], "output": s["filtered_resps"][0], "em": s["exact_match"]}
               for s in samples] for t, samples in res["samples"].items()}
    json.dump(out, open(sys.argv[4], "w"))
""")


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    d = tmp_path_factory.mktemp("genparity")
    _, tok = load_model(MODEL, trust_remote_code=False, local_only=True)
    names = []
    for task_name, style in CASES:
        task = builtin_task(task_name, n=N)
        rows = [{"prompt": tok.bos_token + render(task, i, style), "target": i.references[0]}
                for i in task.instances]
        name = f"wb_{task_name}_{style}"
        names.append(name)
        (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (d / f"{name}.yaml").write_text(textwrap.dedent(f"""\
            task: {name}
            dataset_path: json
            dataset_kwargs:
              data_files:
                test: {d / f'{name}.jsonl'}
            test_split: test
            output_type: generate_until
            doc_to_text: "{{{{prompt}}}}"
            doc_to_target: "{{{{target}}}}"
            generation_kwargs:
              until: {json.dumps(list(task.stop))}
              max_gen_toks: {task.max_new_tokens}
              do_sample: false
            metric_list:
              - metric: exact_match
                ignore_case: true
                ignore_punctuation: true
                regexes_to_ignore: {IGNORE}
            metadata:
              version: 1.0
            """))
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_CACHE=str(d / "hf_datasets"), HF_HOME=str(d / "hf_home"), OMP_NUM_THREADS="2")
    subprocess.run([sys.executable, "-c", LM_EVAL, str(d), MODEL, ",".join(names), str(d / "out.json")],
                   check=True, env=env, capture_output=True)
    return json.loads((d / "out.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("task_name,style", CASES)
def test_greedy_outputs_and_exact_match_equal_lm_eval(oracle, task_name, style):
    model, tok = load_model(MODEL, trust_remote_code=False, local_only=True)
    task = builtin_task(task_name, n=N)
    ours = evaluate(model, tok, task, [style], "dense-1m", batch_size=32)
    theirs = sorted(oracle[f"wb_{task_name}_{style}"], key=lambda s: s["doc_id"])
    assert len(ours) == len(theirs) == N
    assert [o.strip() for o in ours["output"]] == [s["output"].strip() for s in theirs]
    single = [exact_match(o, [i.references[0]]) for o, i in zip(ours["output"], task.instances)]
    assert single == [s["em"] for s in theirs]
    assert sum(bool(o.strip()) for o in ours["output"]) > N // 2           # real outputs, not empty strings
    assert 0 < sum(single) < N or task_name != "arithmetic"     # a task where exact match is informative
