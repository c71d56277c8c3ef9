"""Zero-shot label scoring: tasks, log-likelihoods (lm-eval-compatible), scoring functions and statistics.

    task = load_task("topic")                              # or a YAML task file, or hf:NAME
    rec = label_logprobs(model, tok, task)                 # every log-likelihood, computed once
    predict(rec, "dcpmi"); summarize(rec)                  # switch functions instantly on the cache
"""
from .functions import (AGGREGATIONS, SCORING_FUNCTIONS, class_scores, example_table, predict, predictions,
                        premise_strength, resolve_names, scores, summarize)
from .loglik import ContextScorer, LabelLogprobs, label_logprobs
from .tasks import Task, hf_task, load_task, load_task_file, story_task

__all__ = ["AGGREGATIONS", "SCORING_FUNCTIONS", "ContextScorer", "LabelLogprobs", "Task", "class_scores",
           "example_table", "hf_task", "label_logprobs", "load_task", "load_task_file", "predict", "predictions",
           "premise_strength", "resolve_names", "scores", "story_task", "summarize"]
