"""Generative evaluation: task suites, prompt styles, greedy decoding with stop strings, metrics and the grid.

tasks (instances, task files) -> styles (the exact prompt) -> generation (batched, greedy by default) ->
metrics (exact match, ROUGE-L, chrF, semantic judge) -> grid (a tidy results table and its summaries).
"""
from .metrics import METRICS, chrf, exact_match, judge, normalize, rouge_l, score_output
from .styles import STYLES, Style, StyleError, pick_shots, render, style_registry
from .suite import SUITE, builtin_suite, builtin_task
from .tasks import ASPECTS, GenTask, Instance, TaskFileError, load_task_file

__all__ = ["ASPECTS", "GenTask", "Instance", "TaskFileError", "load_task_file", "SUITE", "builtin_task",
           "builtin_suite", "STYLES", "Style", "StyleError", "render", "pick_shots", "style_registry",
           "METRICS", "normalize", "exact_match", "rouge_l", "chrf", "judge", "score_output"]
