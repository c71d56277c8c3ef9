"""The `workbench` command. Each module listed in COMMANDS adds its own subcommand through `register(sub)`."""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = [  # module -> its subcommand(s)
    "workbench.corpora.cli",   # corpus, validate
    "workbench.tokenizer",     # tokenizer
    "workbench.models",        # models
    "workbench.train.cli",     # train, generate
    "workbench.scoring.cli",   # score
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Train, probe and score small language models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and name.startswith(err.name):   # that part of the workbench is not installed yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError) as err:
        print(f"workbench {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
