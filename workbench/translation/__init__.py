"""Translation evaluation: MT metrics with signatures, an exact adequacy judgement, and their agreement.

Everything takes plain lists of strings (sources, hypotheses, references) and language codes, so it scores any
system's outputs.
Here: `metrics` (BLEU, chrF++, spBLEU with sacrebleu signatures), `judge` (exact adequacy from the
constructed languages' rules; its function `judge.judge` is not re-exported, so `translation.judge` is the
module), `synthetic` (systems of graded quality made by controlled corruptions, for offline study),
`agreement` (segment- and system-level Spearman/Kendall with bootstrap CIs, paired significance).
Not here: translation models and decoding.
"""
from .agreement import agreement_table, correlate, paired_significance, segment_agreement, system_agreement
from .judge import CATEGORIES, LANGS, Judgement, judge_scores, judge_segment, reference_translation
from .metrics import METRICS, MetricResult, bleu, chrf_pp, corpus_score, score_all, sentence_scores, spbleu
from .synthetic import CORRUPTIONS, corrupt, sentence_pairs, synthetic_systems

__all__ = ["METRICS", "MetricResult", "bleu", "chrf_pp", "corpus_score", "score_all", "sentence_scores", "spbleu",
           "CATEGORIES", "LANGS", "Judgement", "judge_scores", "judge_segment", "reference_translation",
           "CORRUPTIONS", "corrupt", "sentence_pairs", "synthetic_systems",
           "agreement_table", "correlate", "paired_significance", "segment_agreement", "system_agreement"]
