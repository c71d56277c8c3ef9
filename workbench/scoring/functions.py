"""One registry of label-scoring functions: cached log-likelihoods -> a score per (example, verbalizer).

Here: `SCORING_FUNCTIONS` (name -> `ScoringFunction`), `scores()`, `class_scores()` (verbalizers of a class
aggregated by sum / mean / max / logsumexp), `predict()`, and `premise_strength()` (the lambda slider).
Each function is a small pure function of a `LabelLogprobs` record; log-likelihoods are in nats.
Prediction is argmax over classes; ties go to the first class, as `np.argmax` (and lm-eval) do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .loglik import LabelLogprobs


@dataclass(frozen=True)
class ScoringFunction:
    name: str
    fn: Callable[[LabelLogprobs], np.ndarray]   # record -> (N, V) scores; higher is better
    units: str
    origin: str

    @property
    def formula(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0]


def _lengths(r: LabelLogprobs, unit: str) -> np.ndarray:
    vs = r.verbalizers
    return np.array([len(v) if unit == "chars" else len(v.encode("utf-8")) for v in vs], dtype=np.float64)


def acc(r):
    """LL(y|x) = sum_t log p(t | x, t_<) over the choice tokens. Units: nats. lm-eval `acc`."""
    return r.cond


def token_mean(r):
    """LL(y|x) / n_tokens(y). Units: nats per token. GPT-3 paper; Holtzman et al. `tok_mean`."""
    return r.cond / r.n_tokens


def acc_norm(r):
    """LL(y|x) / len(y) with len = characters of the choice, delimiter excluded. Units: nats per character.
    Exactly lm-eval `acc_norm` (which divides by characters although its docs say bytes)."""
    return r.cond / _lengths(r, "chars")


def acc_bytes(r):
    """LL(y|x) / len(y.encode('utf-8')), delimiter excluded. Units: nats per byte. lm-eval `acc_bytes`."""
    return r.cond / _lengths(r, "bytes")


def first_token(r):
    """log p(t_1 | x): the first choice token only. Units: nats. Zhao et al. 2021; ill-defined when labels
    share a first token (a warning says so)."""
    return r.first


def acc_mutual_info(r):
    """LL(y|x) - LL(y|BOS): PMI with an empty context. Units: nats. lm-eval `acc_mutual_info`."""
    return r.cond - r.uncond[None, :]


def pmi(r):
    """LL(y|x) - LL(y|generic premise), e.g. the premise ':'. Units: nats. Holtzman et al. 2021 `pmi`."""
    return r.cond - r.generic[None, :]


def dcpmi(r):
    """LL(y|x) - LL(y|domain premise): domain-conditional PMI. Units: nats. Holtzman et al. 2021."""
    return r.cond - r.domain[None, :]


def _log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def calibrated(r):
    """log p(y|x) - log p_cf(y), both renormalised over the choices; p_cf = mean over content-free inputs
    ('N/A', '', '[MASK]') of p(y | template(input)). Units: nats. Zhao et al. 2021, argmax diag(p_cf)^-1 p."""
    p_cf = np.exp(_log_softmax(r.content_free)).mean(axis=0)          # (V,)
    return _log_softmax(r.cond) - np.log(p_cf)[None, :]


def channel(r):
    """mean_t log p(x_t | channel_template(y), x_<t): the input scored given the label. Units: nats per
    token. Min et al. 2022 (noisy channel)."""
    if np.isnan(r.channel).all():
        raise ValueError("channel scoring needs the channel pass: compute with label_logprobs(..., channel=True)")
    return r.channel / r.channel_tokens


SCORING_FUNCTIONS: dict[str, ScoringFunction] = {f.name: f for f in [
    ScoringFunction("acc", acc, "nats", "lm-eval acc"),
    ScoringFunction("token_mean", token_mean, "nats/token", "Brown et al. 2020"),
    ScoringFunction("acc_norm", acc_norm, "nats/char", "lm-eval acc_norm"),
    ScoringFunction("acc_bytes", acc_bytes, "nats/byte", "lm-eval acc_bytes"),
    ScoringFunction("first_token", first_token, "nats", "Zhao et al. 2021"),
    ScoringFunction("acc_mutual_info", acc_mutual_info, "nats", "lm-eval acc_mutual_info"),
    ScoringFunction("pmi", pmi, "nats", "Holtzman et al. 2021"),
    ScoringFunction("dcpmi", dcpmi, "nats", "Holtzman et al. 2021"),
    ScoringFunction("calibrated", calibrated, "nats", "Zhao et al. 2021"),
    ScoringFunction("channel", channel, "nats/token", "Min et al. 2022"),
]}
AGGREGATIONS = ("max", "logsumexp", "sum", "mean")


def get_function(name: str) -> ScoringFunction:
    if name not in SCORING_FUNCTIONS:
        raise ValueError(f"unknown scoring function {name!r}; valid: {', '.join(SCORING_FUNCTIONS)}")
    return SCORING_FUNCTIONS[name]


def resolve_names(names: str | list[str] | None) -> list[str]:
    """'all', None, a comma-separated string or a list -> validated function names."""
    if names is None or names == "all":
        return list(SCORING_FUNCTIONS)
    names = names.split(",") if isinstance(names, str) else list(names)
    return [get_function(n.strip()).name for n in names]


def scores(r: LabelLogprobs, name: str) -> np.ndarray:
    """(N, V) scores of one function, one column per verbalizer."""
    return np.asarray(get_function(name).fn(r), dtype=np.float64)


def aggregate(s: np.ndarray, classes: list[int], n_classes: int, how: str = "logsumexp") -> np.ndarray:
    """(N, V) verbalizer scores -> (N, K) class scores.

    max: the best verbalizer; logsumexp: log sum_v exp(s_v) (for log-probs: the log of the summed
    probabilities, Zhao et al.'s synonyms); sum: sum_v s_v; mean: mean_v s_v.
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; valid: {', '.join(AGGREGATIONS)}")
    classes = np.asarray(classes)
    out = np.empty((s.shape[0], n_classes))
    for k in range(n_classes):
        cols = s[:, classes == k]
        if how == "max":
            out[:, k] = cols.max(axis=1)
        elif how == "sum":
            out[:, k] = cols.sum(axis=1)
        elif how == "mean":
            out[:, k] = cols.mean(axis=1)
        else:
            m = cols.max(axis=1, keepdims=True)
            out[:, k] = (m + np.log(np.exp(cols - m).sum(axis=1, keepdims=True)))[:, 0]
    return out


def class_scores(r: LabelLogprobs, name: str, how: str = "logsumexp") -> np.ndarray:
    """(N, K) class scores of one function (verbalizers aggregated with `how`)."""
    return aggregate(scores(r, name), [k for k, _ in r.task.choices], r.task.n_classes, how)


def predict(r: LabelLogprobs, name: str, how: str = "logsumexp") -> np.ndarray:
    """(N,) predicted class indices; ties go to the first class."""
    return class_scores(r, name, how).argmax(axis=1)


def predictions(r: LabelLogprobs, names=None, how: str = "logsumexp") -> dict[str, np.ndarray]:
    """name -> (N,) predictions for several functions at once."""
    return {n: predict(r, n, how) for n in resolve_names(names)}


def premise_strength(r: LabelLogprobs, lam: float, premise: str = "domain", how: str = "logsumexp") -> np.ndarray:
    """(N,) predictions of s = LL(y|x) - lam * LL(y|premise); lam=0 is `acc`, lam=1 is dcpmi / pmi /
    acc_mutual_info for premise 'domain' / 'generic' / 'bos'."""
    terms = {"domain": r.domain, "generic": r.generic, "bos": r.uncond}
    if premise not in terms:
        raise ValueError(f"unknown premise {premise!r}; valid: {', '.join(terms)}")
    s = r.cond - lam * terms[premise][None, :]
    return aggregate(s, [k for k, _ in r.task.choices], r.task.n_classes, how).argmax(axis=1)


def summarize(r: LabelLogprobs, names=None, how: str = "logsumexp", n_boot: int = 1000):
    """DataFrame: per scoring function, accuracy (95% bootstrap CI) and macro-F1, plus a majority row."""
    from .stats import majority_baseline, summary_table
    df = summary_table(r.golds, predictions(r, names, how), n_boot=n_boot)
    maj = majority_baseline(r.golds)
    df.attrs["majority_acc"], df.attrs["majority_macro_f1"] = maj["acc"], maj["macro_f1"]
    return df


def example_table(r: LabelLogprobs, names=None):
    """Long DataFrame: one row per (example, verbalizer) with the raw conditional LL and every score."""
    import pandas as pd
    names = resolve_names(names)
    N, V = r.cond.shape
    cols = {"example": np.repeat(np.arange(N), V), "gold": np.repeat(r.golds, V),
            "class": np.tile([k for k, _ in r.task.choices], N), "choice": np.tile(r.verbalizers, N),
            "ll_cond": r.cond.ravel(), "n_tokens": r.n_tokens.ravel(),
            "ll_bos": np.tile(r.uncond, N), "ll_generic": np.tile(r.generic, N), "ll_domain": np.tile(r.domain, N)}
    for n in names:
        cols[n] = scores(r, n).ravel()
    return pd.DataFrame(cols)
