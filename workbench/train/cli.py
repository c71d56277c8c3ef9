"""`workbench train` and `workbench generate`: thin wrappers over train() and generate()."""
from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

from . import launch


def register(sub) -> None:
    p = sub.add_parser("train", help="train a preset on a corpus (plain progress lines; --json for a summary)")
    p.add_argument("--preset", help="model preset (see `workbench models`; default: dense-tiny, or with --resume "
                                    "the saved model)")
    p.add_argument("--corpus", required=True, help="corpus directory, .txt or .jsonl file; for the translation presets "
                                                    "(mt-dense, mt-moe) a .jsonl of {src_lang, tgt_lang, src, tgt} pairs")
    p.add_argument("--out", required=True, help="output directory: final model, checkpoints/, history; locked "
                                                 "while the run lasts; must be empty unless --resume or --overwrite")
    p.add_argument("--tokenizer", help="tokenizer directory (default: train a byte-level BPE on the corpus)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow a --tokenizer or resumed checkpoint that ships its own Python code (auto_map) to "
                        "run it; off by default. The saved tokenizer is plain files either way")
    for flag, typ in [("steps", int), ("batch-size", int), ("seq-len", int), ("lr", float), ("grad-accum", int),
                      ("warmup", int), ("eval-every", int), ("sample-every", int), ("checkpoint-every", int),
                      ("keep-checkpoints", int), ("seed", int), ("log-every", int), ("threads", int)]:
        p.add_argument(f"--{flag}", type=typ)
    p.add_argument("--teacher", help="knowledge distillation from this causal LM (default name or folder; it must "
                                     "share the run's tokenizer: pass --tokenizer with the teacher's folder)")
    p.add_argument("--distill-alpha", dest="distill_alpha", type=float,
                   help="weight of the teacher's term (default 0.5): (1-a) cross-entropy + a T^2 KL")
    p.add_argument("--distill-temperature", dest="distill_temperature", type=float, help="softmax temperature (default 2)")
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false", default=None,
                   help="CUDA: launch every kernel of every step instead of replaying the step as a CUDA graph")
    p.add_argument("--fsdp", action="store_true", default=None,
                   help="with --nproc-per-node N: shard weights, gradients and optimizer state across the processes "
                        "(FSDP2) instead of replicating them (DDP), for models that do not fit one GPU")
    p.add_argument("--light-checkpoints", dest="checkpoint_light", action="store_true", default=None,
                   help="intermediate checkpoints as bf16 weights only (small; not resumable)")
    p.add_argument("--resume", action="store_true", help="continue from the newest usable checkpoint in --out")
    p.add_argument("--overwrite", action="store_true", help="delete the run already in --out, then train afresh")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override model or training settings, e.g. --set num_hidden_layers=4 hidden_size=128")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary at the end")
    launch.add_arguments(p)
    p.set_defaults(func=_cli_train)

    g = sub.add_parser("generate", help="sample text from a causal LM directory (or tiny-dense / tiny-moe)",
                       description="Print N samples, each under a '--- sample N' line and followed by a blank "
                                   "line. `workbench validate FILE`, `workbench train --corpus FILE` and read_texts "
                                   "read such a file as one story per sample (the header lines are not stories). "
                                   "A prompt longer than the model's context is cut from the left, and a "
                                   "continuation cut short by the context is reported, both on stderr.")
    g.add_argument("--model", default="tiny-dense")
    g.add_argument("--prompt", default="Once upon a time")
    g.add_argument("--n", type=int, default=3)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--max-new-tokens", type=int, default=64)
    g.add_argument("--seed", type=int)
    g.add_argument("--trust-remote-code", action="store_true",
                   help="allow a model that ships its own Python code (auto_map) to run it; off by default")
    g.set_defaults(func=_cli_generate)


def parse_sets(items: list[str]) -> dict:
    """["hidden_size=128", "lr=1e-3", "kind=moe"] -> {"hidden_size": 128, "lr": 0.001, "kind": "moe"}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = {"true": True, "false": False, "none": None}.get(value.lower(), value)
    return out


def _cli_train(args) -> int:
    from .callbacks import PrintProgress
    from .config import split_overrides
    from .loop import check_model_settings, train
    overrides = parse_sets(args.set)
    from .pairs import MT_PRESETS
    if args.preset in MT_PRESETS:                            # translation presets take their config's names
        from .config import TRAIN_FIELDS
        check_model_settings(args.preset, {k: v for k, v in overrides.items() if k not in TRAIN_FIELDS})
    elif not (args.preset and Path(args.preset).exists()):    # fail fast on a bad preset or model setting
        check_model_settings(args.preset, split_overrides(overrides)[1], args.resume, args.seq_len)
    for name in ("steps", "batch_size", "seq_len", "lr", "grad_accum", "warmup", "eval_every", "sample_every",
                 "checkpoint_every", "keep_checkpoints", "seed", "log_every", "threads", "device", "compile",
                 "cuda_graph", "fsdp", "checkpoint_light", "teacher", "distill_alpha", "distill_temperature"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if launch.wants_launch(args):        # several processes: torchrun reruns this command line in each
        return launch.run_cli(args)
    result = train(args.preset, args.corpus, tokenizer=args.tokenizer, out_dir=args.out,
                   callbacks=[PrintProgress()], resume=args.resume, overwrite=args.overwrite,
                   trust_remote_code=args.trust_remote_code, **overrides)
    h = result.history
    summary = {"out_dir": str(result.out_dir), "steps": int(h["step"].iloc[-1]) if len(h) else 0,
               "tokens_per_s": float(h["tokens_per_s"].median()) if len(h) else 0.0,
               "final_train_loss": float(h["lm_loss"].tail(10).mean()) if len(h) else None,
               "final_val_loss": result.final_val_loss, "train_seconds": round(result.timing.get("total", 0), 2),
               "stopped_early": result.stopped_early, "stop_reason": result.stop_reason,
               "checkpoints": [str(p) for p in result.checkpoints]}
    if os.environ.get("RANK", "0") != "0":     # a torchrun process other than rank 0: rank 0 reports
        return 0
    if args.json:
        print(json.dumps(summary))
    elif result.stop_reason.startswith("nothing to train"):
        print(result.stop_reason)
    else:
        print(f"trained {summary['steps']} steps in {summary['train_seconds']}s, val loss "
              f"{summary['final_val_loss']:.4f}, {summary['tokens_per_s']:,.0f} tokens/s -> {result.out_dir}")
    return 1 if result.stop_reason.startswith("non-finite") else 0


def _cli_generate(args) -> int:
    import warnings
    from ..corpora.io import sample_header
    from ..models import load_model
    from .generate import ContextWarning, generate
    model, tok = load_model(args.model, trust_remote_code=args.trust_remote_code)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ContextWarning)
        texts = generate(model, tok, args.prompt, n=args.n, temperature=args.temperature,
                         max_new_tokens=args.max_new_tokens, seed=args.seed)
    for w in caught:
        if issubclass(w.category, ContextWarning):
            print(f"workbench generate: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    for i, text in enumerate(texts):
        print(f"{sample_header(i + 1)}\n{text}\n", file=sys.stdout)
    return 0
