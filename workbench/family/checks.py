"""What a family member must show before it ships: live experts, well-formed stories, held-out accuracy.

- `expert_shares()`: per MoE layer, the share of top-k routing assignments each expert receives on held-out
  text. A member ships only if every expert of every layer gets at least DEAD_RATIO of a uniform share
  (1/E): an expert below that is "dead" (Fedus et al. 2022 call the effect expert collapse).
- `validator_scores()`: samples from "Once upon a time" graded by the story grammar (workbench.corpora.validate).
- `zero_shot()`: accuracy of every scoring function on held-out built-in tasks, with the majority baseline,
  the ideal reader's ceiling and a 95% bootstrap interval.
Here: `DEAD_RATIO`, `eval_texts()`, `expert_shares()`, `dead_experts()`, `validator_scores()`, `zero_shot()`.
"""
from __future__ import annotations

import numpy as np

DEAD_RATIO = 0.10


def eval_texts(n: int = 300, seed: int = 0) -> list[str]:
    """`n` held-out documents of the family's mixture (evaluation split: no member trained on them)."""
    from workbench.corpora import generate_corpus
    return generate_corpus("mixed", n, seed=seed, split="eval").texts


def expert_shares(model, tok, texts: list[str], max_tokens: int = 256) -> np.ndarray:
    """(MoE layers, experts) share of the top-k assignments each expert gets over the tokens of `texts`
    (rows sum to 1), read from the routers' own choices (`probes.routing.routing_record`, `expert_load`)."""
    from workbench.probes.routing import routing_record
    from workbench.probes.routing_stats import expert_load
    if not any(t.strip() for t in texts):
        raise ValueError("expert_shares: the texts hold no tokens")
    return expert_load(routing_record(model, tok, list(texts), max_length=max_tokens))


def dead_experts(shares: np.ndarray, ratio: float = DEAD_RATIO) -> list[tuple[int, int, float]]:
    """(layer, expert, share) of every expert below `ratio` x the uniform share 1/E."""
    floor = ratio / shares.shape[1]
    return [(int(l), int(e), float(shares[l, e])) for l, e in zip(*np.nonzero(shares < floor))]


def validator_scores(model, tok, n: int = 200, seed: int = 0, max_new_tokens: int = 320) -> dict:
    """Grammar numbers (per-story means) of `n` samples from "Once upon a time" at temperature 0.8, the last
    unfinished sentence of a sample dropped (workbench.corpora.validate_texts)."""
    from workbench.corpora import validate_texts
    from workbench.train.generate import generate
    texts = []
    for start in range(0, n, 50):
        texts += generate(model, tok, "Once upon a time", n=min(50, n - start), temperature=0.8,
                          max_new_tokens=max_new_tokens, seed=seed + start)
    scores = validate_texts(texts, drop_unfinished=True)
    return ({k: (int(v) if k in ("stories", "sentences") else round(float(v), 4)) for k, v in scores.items()}
            | {"samples": n, "example": texts[0]})


def zero_shot(records: dict) -> list[dict]:
    """Rows (task, scoring, acc, ci_low, ci_high, n, majority, ceiling) from {task spec: LabelLogprobs}."""
    from workbench.scoring import SCORING_FUNCTIONS, predictions
    from workbench.scoring.stats import bootstrap_ci
    rows = []
    for spec, rec in records.items():
        golds = np.asarray(rec.task.golds)
        names = [n for n in SCORING_FUNCTIONS if n != "channel" or not np.isnan(rec.channel).all()]
        for fn, pred in predictions(rec, names).items():
            correct = (pred == golds).astype(float)
            lo, hi = bootstrap_ci(correct)
            rows.append({"task": spec, "scoring": fn, "acc": float(correct.mean()), "ci_low": lo, "ci_high": hi,
                         "n": len(golds), "majority": rec.task.majority, "ceiling": rec.task.ceiling})
    return rows
