"""`workbench score`: every scoring function on one model and task, written per example and summarised."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("score", help="zero-shot label scoring with every scoring function")
    p.add_argument("--model", required=True, help="model directory, default name (tiny-dense) or hub id")
    p.add_argument("--task", required=True, help="built-in task (feeling, topic, ending, language, domain, pronoun; "
                   "NAME/LEVEL for a harder level, e.g. feeling/1), YAML task file or hf:NAME")
    p.add_argument("--scoring", default="all", help="'all' or comma-separated names of scoring functions")
    p.add_argument("--aggregate", default="logsumexp", help="how verbalizers of a class combine")
    p.add_argument("--limit", type=int, default=None, help="score only the first N examples")
    p.add_argument("--no-channel", action="store_true", help="skip the channel pass (saves N*V forward rows)")
    p.add_argument("--out", default=None, help="directory for scores.csv and summary.csv/json")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow a model that ships its own Python code (auto_map) to run it; off by default")
    p.set_defaults(func=_cli)


def _load(name: str, trust_remote_code: bool = False):
    """(model, tokenizer): load_model routes encoder-decoders to their seq2seq class."""
    from workbench.models import load_model
    return load_model(name, trust_remote_code=trust_remote_code)


def _cli(args) -> int:
    from . import example_table, label_logprobs, load_task, resolve_names, summarize
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1 (the number of examples to score), got {args.limit}; "
                         "leave it out to score them all")
    names = resolve_names(args.scoring)              # fail fast on an unknown function, before loading anything
    if args.no_channel:
        if args.scoring != "all" and "channel" in names:
            raise ValueError("--no-channel skips the pass that channel scoring needs: drop one of the two")
        names = [n for n in names if n != "channel"]
    task = load_task(args.task)
    if args.limit is not None:
        task = task.head(args.limit)
    model, tok = _load(args.model, args.trust_remote_code)
    rec = label_logprobs(model, tok, task, model_name=str(args.model),
                         channel=not args.no_channel and "channel" in names)
    summary = summarize(rec, names, args.aggregate)
    out = {"model": str(args.model), "task": task.name, "n": len(task.texts),
           "majority_acc": summary.attrs["majority_acc"],
           "scores": {r.scoring: {"acc": r.acc, "macro_f1": r.macro_f1, "acc_ci": [r.acc_lo, r.acc_hi]}
                      for r in summary.itertuples()}}
    if args.out:
        d = Path(args.out)
        d.mkdir(parents=True, exist_ok=True)
        example_table(rec, names).to_csv(d / "scores.csv", index=False)
        summary.to_csv(d / "summary.csv", index=False)
        (d / "summary.json").write_text(json.dumps(out, indent=2))
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
    else:
        print(f"{task.name}: {len(task.texts)} examples, majority baseline acc {out['majority_acc']:.3f}")
        print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0
