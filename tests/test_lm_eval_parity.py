"""Parity with lm-evaluation-harness (an independent oracle): per-choice log-likelihoods and acc metrics.

lm-eval runs offline in a subprocess on a tiny saved model and a local JSONL task; the workbench scores the
same model and data through its own YAML task file. Two tasks: the default delimiter " ", and a template
ending in a space with an empty delimiter (lm-eval moves the space into the continuation). One example is
longer than the context window (both left-truncate).
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from workbench.models import save_model
from workbench.scoring import label_logprobs, load_task_file, predict
from workbench.testing import tiny_model, tiny_tokenizer

CHOICES = ["happy", "very sad", "angry at Max", "tired"]
TASKS = {   # name -> (lm-eval doc_to_text, workbench template, delimiter)
    "wb_toy": ("Story: {{text}}\nShe feels", "Story: {text}\nShe feels", " "),
    "wb_toy_ws": ("Story: {{text}}\nShe feels ", "Story: {text}\nShe feels ", ""),
}

LM_EVAL = textwrap.dedent("""
    import json, sys
    import lm_eval
    from lm_eval.tasks import TaskManager
    tm = TaskManager(include_path=sys.argv[1], include_defaults=False)
    res = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={sys.argv[2]},dtype=float32",
                                  tasks=sys.argv[3].split(","), task_manager=tm, device="cpu", batch_size=1,
                                  log_samples=True)
    out = {t: [{"lls": [float(r[0][0]) for r in s["resps"]], "acc": s["acc"], "acc_norm": s["acc_norm"],
                "acc_mutual_info": s["acc_mutual_info"], "doc_id": s["doc_id"]} for s in samples]
           for t, samples in res["samples"].items()}
    json.dump(out, open(sys.argv[4], "w"))
""")


def _texts():
    texts = [f"Lily had a red ball number {i}. Max {'ran away' if i % 2 else 'came back'}. She was sad."
             for i in range(14)]
    texts.append("Tom had a big blue boat. " * 12)          # > 128 tokens: left-truncated by both
    return texts


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("parity")
    tok = tiny_tokenizer()
    save_model(tiny_model("dense", tokenizer=tok, seed=3), tok, d / "model")
    rows = [{"text": t, "label": i % len(CHOICES)} for i, t in enumerate(_texts())]
    (d / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name, (lm_text, template, delim) in TASKS.items():
        (d / f"{name}.yaml").write_text(textwrap.dedent(f"""\
            task: {name}
            dataset_path: json
            dataset_kwargs:
              data_files:
                test: {d / 'data.jsonl'}
            test_split: test
            output_type: multiple_choice
            doc_to_text: {json.dumps(lm_text)}
            doc_to_target: label
            doc_to_choice: {json.dumps(CHOICES)}
            target_delimiter: {json.dumps(delim)}
            metric_list:
              - metric: acc
              - metric: acc_norm
              - metric: acc_mutual_info
            metadata:
              version: 1.0
            """))
        (d / "wb").mkdir(exist_ok=True)
        (d / "wb" / f"{name}.yaml").write_text(
            f"name: {name}\ndata: ../data.jsonl\ntemplate: {json.dumps(template)}\n"
            f"choices: {json.dumps(CHOICES)}\ntarget_delimiter: {json.dumps(delim)}\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_CACHE=str(d / "hf_datasets"), HF_HOME=str(d / "hf_home"), OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-c", LM_EVAL, str(d), str(d / "model"), ",".join(TASKS), str(d / "out.json")],
                   check=True, env=env, capture_output=True)
    return d, json.loads((d / "out.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TASKS))
def test_loglikelihoods_and_metrics_match_lm_eval(setup, name):
    from workbench.models import load_model
    d, oracle = setup
    model, tok = load_model(d / "model")
    task = load_task_file(d / "wb" / f"{name}.yaml")
    with pytest.warns(UserWarning, match="truncated from the left"):
        rec = label_logprobs(model, tok, task, channel=False)
    samples = sorted(oracle[name], key=lambda s: s["doc_id"])
    K = len(CHOICES)
    ref = np.array([s["lls"] for s in samples])                 # (N, 2K): K conditional then K unconditional
    assert np.abs(rec.cond - ref[:, :K]).max() < 1e-5
    assert np.abs(rec.uncond[None, :] - ref[:, K:]).max() < 1e-5
    golds = rec.golds
    for metric, fn in [("acc", "acc"), ("acc_norm", "acc_norm"), ("acc_mutual_info", "acc_mutual_info")]:
        ours = (predict(rec, fn) == golds).astype(float)
        assert ours.tolist() == [s[metric] for s in samples], metric
    assert rec.truncated.sum() == 1
