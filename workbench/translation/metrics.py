"""MT metrics through sacrebleu, each result carrying its sacrebleu signature.

BLEU     corpus BLEU (Papineni et al. 2002) by `sacrebleu.metrics.BLEU` with its defaults: tokenizer 13a, mixed
         case, exponential smoothing, n-grams up to 4; BLEU = BP * exp(mean_n log p_n), BP = min(1, exp(1 - r/c)).
         Sentence-level scores use `effective_order=True` (sacrebleu's advice for sentence BLEU).
chrF++   chrF with word bigrams (Popovic 2017): `sacrebleu.metrics.CHRF(word_order=2)`; character n-grams up to
         6, word n-grams up to 2, beta 2: F_beta of the averaged n-gram precision and recall.
spBLEU   BLEU on SentencePiece pieces (Goyal et al. 2022, FLORES-101; NLLB 2022): here the pieces come from a
         SentencePiece unigram model trained LOCALLY on the workbench's own parallel corpus (English + the three
         constructed languages), vocabulary 4,000, so it works offline. Its signature says
         `tok:spm-wb4k-<first 12 hex of the model file's sha256>`: it is NOT the FLORES-200 model (sacrebleu's
         `tok:flores200`), and spBLEU numbers here are comparable only with the same checksum.
All scores are on sacrebleu's 0-100 scale.
Here: `METRICS`, `MetricResult`, `corpus_score()`, `sentence_scores()`, `score_all()`, `bleu()`, `chrf_pp()`,
`spbleu()`, `sacrebleu_metric()`, `spm_model()`, `train_spm()`.
Not here: the exact judgement (`workbench.translation.judge`), correlations and significance (`.agreement`).
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DATA_DIR

METRICS = ("BLEU", "spBLEU", "chrF++")
SPM_VOCAB = 4000
SPM_STORIES = 400          # parallel stories (x 4 languages) of the train split, seed 0
SPM_MAX_BYTES = 300_000    # a model this small ships in data/translation; a larger one trains into the user cache
SPM_FILE = "spm-wb4k.model"
SPM_NOTE = ("spBLEU here uses a SentencePiece model trained locally on the workbench corpora (tok:spm-wb4k-<sha>), "
            "not the FLORES-200 model of NLLB's spBLEU: compare numbers only across identical signatures.")
_SPM_SETTINGS = dict(vocab_size=SPM_VOCAB, model_type="unigram", character_coverage=1.0, num_threads=1,
                     input_sentence_size=0, shuffle_input_sentence=False, normalization_rule_name="identity",
                     minloglevel=2)


@dataclass(frozen=True)
class MetricResult:
    """One metric on one system: the corpus score (0-100), per-segment scores (0-100) and the signatures."""
    name: str                          # "BLEU" | "spBLEU" | "chrF++"
    score: float                       # corpus-level score, 0-100
    signature: str                     # sacrebleu signature of the corpus-level metric
    segments: tuple[float, ...] = ()   # sentence-level score of each segment, 0-100 (empty if not asked)
    segment_signature: str = ""        # signature of the sentence-level metric (BLEU: eff:yes)

    def __str__(self) -> str:
        return f"{self.name} = {self.score:.2f}  [{self.signature}]"


# ---- inputs ------------------------------------------------------------------------------------------------

def check_pairs(hypotheses, references, names=("hypotheses", "references")) -> tuple[list[str], list[str]]:
    """Both as lists of str of one length > 0; else ValueError naming the argument and the fix."""
    hyps, refs = _strings(hypotheses, names[0]), _strings(references, names[1])
    if len(hyps) != len(refs):
        one = {"hypotheses": "hypothesis", "references": "reference"}
        raise ValueError(f"{names[0]} and {names[1]} differ in count ({len(hyps)} vs {len(refs)}): "
                         f"pass one {one.get(names[0], names[0][:-1])} per "
                         f"{one.get(names[1], names[1][:-1])}, in the same order")
    return hyps, refs


def _strings(xs, name: str) -> list[str]:
    if isinstance(xs, str):
        raise ValueError(f"{name} must be a list of strings, got one string: wrap it in a list ([{name[:-1]}])")
    xs = list(xs)
    if not xs:
        raise ValueError(f"{name} is empty: pass at least one segment")
    bad = next((i for i, x in enumerate(xs) if not isinstance(x, str)), None)
    if bad is not None:
        raise ValueError(f"{name}[{bad}] is {type(xs[bad]).__name__}, not str: pass plain text segments")
    return xs


def _check_name(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRICS)}")
    return name


# ---- SentencePiece model for spBLEU -----------------------------------------------------------------------

@dataclass(frozen=True)
class SpmModel:
    path: Path
    sha12: str                  # first 12 hex digits of sha256(model file)

    @property
    def signature(self) -> str:
        return f"spm-wb4k-{self.sha12}"

    @functools.cached_property
    def processor(self):
        import sentencepiece as spm
        return spm.SentencePieceProcessor(model_file=str(self.path))

    def pieces(self, text: str) -> list[str]:
        return self.processor.encode(text, out_type=str)


def spm_training_sentences(n_stories: int = SPM_STORIES, seed: int = 0) -> list[str]:
    """One sentence a line: every sentence of `generate_corpus('parallel', n_stories, seed)` (train split),
    in corpus order (English, vel, kor, tuu per story)."""
    from ..corpora import generate_corpus
    from ..corpora.grammar import split_sentences
    corpus = generate_corpus("parallel", n_stories, seed=seed, split="train")
    return [s for r in corpus.records for s in split_sentences(r["text"])]


def train_spm(out: str | Path, n_stories: int = SPM_STORIES, seed: int = 0) -> SpmModel:
    """Train the spBLEU SentencePiece model into file `out` (a unigram model, 4,000 pieces, identity
    normalisation, full character coverage, one thread, no sampling or shuffling of the input: the same
    corpus gives the same bytes, hence the same checksum). Takes about a second."""
    import sentencepiece as spm
    out = Path(out)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(spm_training_sentences(n_stories, seed)),
                                   model_writer=buf, **_SPM_SETTINGS)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out)
    return SpmModel(out, _sha12(out))


def _sha12(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _user_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "slm-workbench" / "translation"


@functools.lru_cache(maxsize=None)
def spm_model(path: str | None = None) -> SpmModel:
    """The spBLEU tokenizer model: `path` if given; else the shipped `data/translation/spm-wb4k.model`; else one
    trained (deterministically, about a second) into the user cache directory."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"spm model {str(p)!r} does not exist: pass a file made by train_spm(), or None "
                             f"for the workbench's own")
        return SpmModel(p, _sha12(p))
    shipped = DATA_DIR / "translation" / SPM_FILE
    if shipped.is_file():
        return SpmModel(shipped, _sha12(shipped))
    cached = _user_cache() / SPM_FILE
    if cached.is_file():
        return SpmModel(cached, _sha12(cached))
    return train_spm(cached)


class _LocalSpmTokenizer:
    """A sacrebleu tokenizer (callable + signature()) splitting into the local model's pieces."""

    def __init__(self, model: SpmModel):
        self.model = model

    def signature(self) -> str:
        return self.model.signature

    @functools.lru_cache(maxsize=2 ** 16)
    def __call__(self, line: str) -> str:
        return " ".join(self.model.pieces(line))


# ---- sacrebleu metric objects -----------------------------------------------------------------------------

def sacrebleu_metric(name: str, sentence: bool = False, spm_path: str | None = None):
    """A fresh `sacrebleu.metrics` object for metric `name` (see METRICS); `sentence=True` gives the
    sentence-level settings (BLEU/spBLEU: effective_order=True). spBLEU is BLEU(tokenize='none') whose
    tokenizer is replaced by the local SentencePiece model, so its signature reads tok:spm-wb4k-<sha>."""
    from sacrebleu.metrics import BLEU, CHRF
    _check_name(name)
    if name == "chrF++":
        return CHRF(word_order=2)
    if name == "BLEU":
        return BLEU(effective_order=sentence)
    metric = BLEU(tokenize="none", effective_order=sentence)
    metric.tokenizer = _LocalSpmTokenizer(spm_model(spm_path))
    metric.tokenizer_signature = metric.tokenizer.signature()
    return metric


def corpus_score(name: str, hypotheses, references, segments: bool = False,
                 spm_path: str | None = None) -> MetricResult:
    """Corpus-level `name` (0-100) of `hypotheses` against one reference each, with its signature.

    hypotheses, references: lists of str, one reference per hypothesis (ValueError on a count mismatch,
    an empty list or a non-string). segments=True adds the sentence-level score of every segment.
    """
    hyps, refs = check_pairs(hypotheses, references)
    metric = sacrebleu_metric(name, spm_path=spm_path)
    score = metric.corpus_score(hyps, [refs])
    seg, seg_sig = (), ""
    if segments:
        seg_metric = sacrebleu_metric(name, sentence=True, spm_path=spm_path)
        seg = tuple(float(seg_metric.sentence_score(h, [r]).score) for h, r in zip(hyps, refs))
        seg_sig = _signature(seg_metric)
    return MetricResult(name, float(score.score), _signature(metric), seg, seg_sig)


def _signature(metric) -> str:
    return str(metric.get_signature())


def sentence_scores(name: str, hypotheses, references, spm_path: str | None = None) -> np.ndarray:
    """(N,) sentence-level `name` of each hypothesis against its reference, 0-100 (sacrebleu sentence_score;
    BLEU and spBLEU with effective order)."""
    hyps, refs = check_pairs(hypotheses, references)
    metric = sacrebleu_metric(name, sentence=True, spm_path=spm_path)
    return np.array([metric.sentence_score(h, [r]).score for h, r in zip(hyps, refs)], dtype=float)


def bleu(hypotheses, references, segments: bool = False) -> MetricResult:
    """Corpus BLEU with sacrebleu's defaults (13a); see `corpus_score`."""
    return corpus_score("BLEU", hypotheses, references, segments)


def chrf_pp(hypotheses, references, segments: bool = False) -> MetricResult:
    """Corpus chrF++ (word_order=2); see `corpus_score`."""
    return corpus_score("chrF++", hypotheses, references, segments)


def spbleu(hypotheses, references, segments: bool = False, spm_path: str | None = None) -> MetricResult:
    """Corpus BLEU on the local SentencePiece model's pieces (not FLORES-200: see SPM_NOTE)."""
    return corpus_score("spBLEU", hypotheses, references, segments, spm_path)


def score_all(hypotheses, references, metrics=METRICS, segments: bool = True) -> dict[str, MetricResult]:
    """{metric name: MetricResult} for every metric in `metrics`, segment scores included by default."""
    return {name: corpus_score(_check_name(name), hypotheses, references, segments) for name in metrics}
