"""Translation: many-to-many models (NLLB-MoE and its dense twin), decoding, MT metrics with signatures, an exact
adequacy judgement, their agreement, and NLLB-200's routing analyses.

Metrics and judgements take plain lists of strings (sources, hypotheses, references) and language codes, so they
score any system's outputs.
Here: `data` (parallel pairs with a low-resource language, held-out test pairs, the tokenizer with language tokens),
`models` (the presets on transformers' own classes; training-time capacity, Expert Output Masking, Gating Dropout;
the NLLB-MoE expert-dispatch check), `decode` (`translate`, `load_translation_model`), `evaluate` (per-direction
and grouped scores with CIs), `routing` (language x expert records, separation by layer, capacity overflow),
`study` (the shipped study's tables, metric agreement, the regulariser ablation), `build` (how the shipped study
is made), `metrics` (BLEU, chrF++, spBLEU), `judge` (exact adequacy; its function `judge.judge` is not
re-exported, so `translation.judge` is the module), `synthetic` (systems of graded quality made by controlled
corruptions), `agreement` (Spearman/Kendall with bootstrap CIs, paired significance).
Training itself is `workbench.train` on a parallel corpus (see workbench.train.pairs).
"""
from .agreement import agreement_table, correlate, paired_significance, segment_agreement, system_agreement
from .data import MT_LANGS, Pair, parallel_pairs, test_pairs, train_mt_tokenizer
from .decode import load_translation_model, translate, translate_pairs
from .judge import CATEGORIES, LANGS, Judgement, judge_scores, judge_segment, reference_translation
from .metrics import METRICS, MetricResult, bleu, chrf_pp, corpus_score, score_all, sentence_scores, spbleu
from .models import MT_PRESETS, build_translation_model
from .synthetic import CORRUPTIONS, corrupt, sentence_pairs, synthetic_systems

__all__ = ["METRICS", "MetricResult", "bleu", "chrf_pp", "corpus_score", "score_all", "sentence_scores", "spbleu",
           "CATEGORIES", "LANGS", "Judgement", "judge_scores", "judge_segment", "reference_translation",
           "CORRUPTIONS", "corrupt", "sentence_pairs", "synthetic_systems",
           "agreement_table", "correlate", "paired_significance", "segment_agreement", "system_agreement",
           "MT_LANGS", "Pair", "parallel_pairs", "test_pairs", "train_mt_tokenizer", "load_translation_model",
           "translate", "translate_pairs", "MT_PRESETS", "build_translation_model"]
