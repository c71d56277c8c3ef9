"""The `workbench` command. Each module listed in COMMANDS adds its own subcommand through `register(sub)`."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings

COMMANDS = [  # module -> its subcommand(s)
    "workbench.corpora.cli",   # corpus, validate
    "workbench.tokenizer",     # tokenizer
    "workbench.models",        # models
    "workbench.train.cli",     # train, generate
    "workbench.scoring.cli",   # score
]


DEBUG_HELP = "on an error, show the full traceback instead of the one-line message"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Train, probe and score small language models.")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and name.startswith(err.name):   # that part of the workbench is not installed yet
                continue
            raise
        module.register(sub)
    for p in sub.choices.values():          # --debug also after the command name
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


@contextlib.contextmanager
def _quiet(command: str):
    """Warnings as one line `workbench COMMAND: warning: MESSAGE`; transformers' progress bars off and its
    logging at errors only. Everything is restored on exit."""
    from transformers.utils import logging as hf_logging
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"workbench {command}: warning: {message}", file=file or sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    """Run one command. Errors go through workbench.errors: a known failure prints what happened and what to
    do (exit 2); any other prints a one-line summary and a pointer to --debug (exit 1); --debug re-raises.
    Warnings print as one line each, and transformers' progress bars and log messages are off, unless --debug."""
    from .errors import explain
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)   # as given: `train --nproc-per-node` relaunches it
    try:
        with contextlib.nullcontext() if args.debug else _quiet(args.command):
            return int(args.func(args) or 0)
    except BrokenPipeError:                   # the reader went away (`workbench models | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (Exception, KeyboardInterrupt) as err:
        if args.debug:
            raise
        message, known = explain(err)
        if getattr(err, "workbench_rank0_copy", False):     # another rank's copy of rank 0's error: said there
            return 2 if known else 1
        print(f"workbench {args.command}: error: {message}", file=sys.stderr)
        if isinstance(err, KeyboardInterrupt):
            return 130
        if not known:
            print(f"workbench {args.command}: run again with --debug for the traceback", file=sys.stderr)
        return 2 if known else 1


if __name__ == "__main__":
    sys.exit(main())
