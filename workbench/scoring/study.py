"""The seed paper's design on tiny models: size x architecture x instruction tuning x scoring function.

Here: `qa_texts()` (the `qa` corpus, for the "instruction-tuned" variants), `instruct_tune()`, `StudyModel`,
`score_models()` (cached `LabelLogprobs` per model and task), `results_frame()` (one row per model x task x
scoring function, ready for `stats.ancova`), and for a stored grid of the model family `grid_frame()` and
`function_tests()`.
Lepagnol et al. (LREC-COLING 2024) compare encoder-decoder and decoder-only models; `study_models` trains
dense and mixture-of-experts decoders on the spot, the model family (`workbench.family`) adds T5
encoder-decoders.
"""
from __future__ import annotations

from dataclasses import dataclass

from .functions import predictions, resolve_names
from .loglik import LabelLogprobs, label_logprobs
from .stats import accuracy, macro_f1

def qa_texts(n: int = 200, seed: int = 0) -> list[str]:
    """`n` documents of the `qa` corpus (a training-split story, then questions/instructions about it with
    their answers): what the instruction-tuned ("-it") variants are fine-tuned on."""
    from workbench.corpora import generate_corpus
    return generate_corpus("qa", n, seed=seed).texts


def instruct_tune(model, tokenizer, texts: list[str], steps: int = 30, seed: int = 0, **train_kw):
    """A copy of `model` fine-tuned briefly on `texts` (e.g. `qa_texts()`): the "instruction-tuned" variant."""
    import copy

    from workbench.train import train
    kw = dict(batch_size=8, lr=1e-3, warmup=min(10, steps // 3), eval_every=0, sample_prompts=(), log_every=10)
    kw.update(train_kw)
    return train(copy.deepcopy(model), texts, tokenizer=tokenizer, steps=steps, seed=seed, **kw).model.eval()


@dataclass(frozen=True)
class StudyModel:
    name: str
    model: object
    tokenizer: object
    params: int          # total parameters
    arch: str            # "dense" | "moe"
    instruct: int        # 0 base, 1 instruction-tuned


def score_models(models: list[StudyModel], tasks: list, channel: bool = True) -> dict[tuple[str, str], LabelLogprobs]:
    """(model name, task name) -> LabelLogprobs: every log-likelihood, computed once per model and task."""
    return {(m.name, t.name): label_logprobs(m.model, m.tokenizer, t, model_name=m.name, channel=channel)
            for m in models for t in tasks}


def results_frame(models: list[StudyModel], cache: dict, names=None, how: str = "logsumexp"):
    """Long DataFrame: model, params, arch, instruct, task, scoring, acc, macro_f1, majority."""
    import numpy as np
    import pandas as pd
    meta = {m.name: m for m in models}
    rows = []
    for (mname, tname), rec in cache.items():
        m = meta[mname]
        maj = np.bincount(rec.golds).max() / len(rec.golds)
        for fn, p in predictions(rec, resolve_names(names), how).items():
            rows.append({"model": mname, "params": m.params, "arch": m.arch, "instruct": m.instruct,
                         "task": tname, "scoring": fn, "acc": accuracy(rec.golds, p),
                         "macro_f1": macro_f1(rec.golds, p), "majority": maj})
    return pd.DataFrame(rows)


def study_models(fast: bool = True, seed: int = 0, sizes=("nano", "tiny"), archs=("dense", "moe"),
                 steps: int | None = None, it_steps: int | None = None, n_stories: int | None = None):
    """(models, notes): base + instruction-tuned variants for every size x architecture.

    The "tiny" size uses the default trained model (data/models/tiny-<arch>) when it exists and `fast`;
    otherwise every base model is trained here on generated stories for `steps` updates (a visible note says
    so). Instruction tuning: `it_steps` updates on question/answer lines about *other* stories (seed + 1).
    """
    from workbench.models import count_params, load_model, resolve
    from workbench.train import train
    from .tasks import _default_stories
    steps = steps or (30 if fast else 400)
    it_steps = it_steps or (20 if fast else 150)
    stories, _ = _default_stories(n_stories or (300 if fast else 3000), seed + 1)
    qa = qa_texts(200 if fast else 1000, seed + 2)
    kw = dict(batch_size=8, seq_len=128, eval_every=0, sample_prompts=(), log_every=10,
              tokenizer_vocab_size=1024 if fast else 2048, threads=1 if fast else None)
    models, notes = [], []
    for size in sizes:
        for arch in archs:
            default = f"{size}-{arch}"
            try:
                if not (fast and size == "tiny"):
                    raise FileNotFoundError("trained here")
                resolve(default)
                model, tok = load_model(default)
                how = "default model"
            except FileNotFoundError as err:
                if fast and size == "tiny":
                    notes.append(f"{default}: {err}; trained here for {steps} steps instead")
                res = train(f"{arch}-{size}", [r["text"] for r in stories], steps=steps, seed=seed, **kw)
                model, tok, how = res.model.eval(), res.tokenizer, f"{steps} steps here"
            total = count_params(model)[0]
            models.append(StudyModel(f"{arch}-{size}", model, tok, total, arch, 0))
            it = instruct_tune(model, tok, qa, steps=it_steps, seed=seed,
                               **{k: v for k, v in kw.items() if k in ("threads", "seq_len")})
            models.append(StudyModel(f"{arch}-{size}-it", it, tok, total, arch, 1))
            notes.append(f"{arch}-{size}: {total / 1e6:.2f}M parameters, base = {how}, "
                         f"instruction-tuned = +{it_steps} steps on the qa corpus")
    return models, notes


def grid_frame(records: dict, meta: dict, names=None, how: str = "logsumexp", size: str = "params_active"):
    """Long DataFrame of a stored grid (`grid.load_grid` records, `meta` = grid.json's meta["models"]):
    model, params (`size`: "params_active" or "params_total"), arch (dense | moe | encdec), instruct (0/1),
    task, scoring, acc, macro_f1, majority, ceiling."""
    import numpy as np
    import pandas as pd
    rows = []
    for (mname, tname), rec in records.items():
        m = meta[mname]
        present = [n for n in resolve_names(names) if n != "channel" or not np.isnan(rec.channel).all()]
        for fn, p in predictions(rec, present, how).items():
            rows.append({"model": mname, "params": m[size], "arch": m["config"]["kind"],
                         "instruct": int(bool(m.get("base"))), "task": tname, "scoring": fn,
                         "acc": accuracy(rec.golds, p), "macro_f1": macro_f1(rec.golds, p),
                         "majority": rec.task.majority, "ceiling": rec.task.ceiling})
    return pd.DataFrame(rows)


def function_tests(records: dict, baseline: str = "acc", names=None, how: str = "logsumexp", n_boot: int = 2000):
    """Per (model, task, scoring function): accuracy, its difference from `baseline`'s with a paired-bootstrap
    95% CI, and McNemar's p-value on the same examples. DataFrame, one row per cell and function."""
    import numpy as np
    import pandas as pd
    from .stats import mcnemar, paired_bootstrap
    rows = []
    for (mname, tname), rec in records.items():
        present = [n for n in resolve_names(names) if n != "channel" or not np.isnan(rec.channel).all()]
        preds = predictions(rec, present, how)
        base = preds[baseline]
        for fn, p in preds.items():
            if fn == baseline:
                continue
            pb, mc = paired_bootstrap(rec.golds, p, base, n=n_boot), mcnemar(rec.golds, p, base)
            rows.append({"model": mname, "task": tname, "scoring": fn, "acc": accuracy(rec.golds, p),
                         "delta": pb.diff, "delta_lo": pb.ci[0], "delta_hi": pb.ci[1], "mcnemar_p": mc.p_value})
    return pd.DataFrame(rows)


def describe_ancova(table, alpha: float = 0.05) -> list[str]:
    """One plain sentence per factor of an `stats.ancova` table, read from its p-values."""
    names = {"np.log(params)": "model size (log parameters)", "C(arch)": "architecture",
             "C(instruct)": "instruction tuning", "C(scoring)": "scoring function", "C(task)": "task"}
    out = []
    for term, row in table.drop(index="Residual", errors="ignore").iterrows():
        p = row["PR(>F)"]
        verdict = "a significant effect" if p < alpha else "no significant effect"
        out.append(f"{names.get(term, term)}: F = {row['F']:.2f}, p = {p:.3g} -> {verdict} at alpha = {alpha}")
    return out


def default_or_tiny(name: str = "tiny-dense", seed: int = 0):
    """(model, tokenizer, note): a default trained model, or an untrained tiny one with a note saying so."""
    from workbench.models import load_model
    try:
        model, tok = load_model(name)
        return model, tok, f"{name}: the default trained model"
    except FileNotFoundError as err:
        from workbench.testing import tiny_model, tiny_tokenizer
        tok = tiny_tokenizer()
        kind = "moe" if "moe" in name else "dense"
        return (tiny_model(kind, seed=seed, tokenizer=tok, max_position_embeddings=512), tok,
                f"NOTE: {err}. Using an UNTRAINED tiny {kind} model instead: the scores below are noise, "
                "the plumbing is real.")
