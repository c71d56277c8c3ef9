"""`workbench corpus` (generate and write a corpus) and `workbench validate` (grammar numbers for stories)."""
from __future__ import annotations

import json
import time


def register(sub) -> None:
    p = sub.add_parser("corpus", help="generate a corpus (stories, parallel, mixed or qa) and print its statistics")
    p.add_argument("--kind", default="stories", help="stories | parallel | mixed | qa")
    p.add_argument("--n", type=int, default=1000, help="number of stories (stories, parallel, qa) or documents (mixed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train", choices=("train", "eval"),
                   help="train (default) or eval: the held-out stories, which no train corpus contains")
    p.add_argument("--out", required=True, help="output directory (corpus.jsonl, corpus.txt, meta.json)")
    p.add_argument("--overwrite", action="store_true", help="replace a directory holding a different corpus")
    p.set_defaults(func=_corpus)

    v = sub.add_parser("validate", help="judge stories against the story grammar (well-formed, hero consistency)")
    v.add_argument("file", help="a .txt file of stories (blank-line separated, or `workbench generate` output: "
                                "one story per '--- sample N' block), or a corpus directory / .jsonl "
                                "(story records, and the stories of qa records, each in its own language)")
    v.add_argument("--json", action="store_true", help="print the numbers as JSON")
    v.add_argument("--drop-unfinished", action="store_true",
                   help="ignore a last sentence without final punctuation (model samples cut at max tokens)")
    v.add_argument("--lang", default="en", help="language of a .txt file's stories: en (default), vel, kor, tuu "
                                                "(read back into English first) or auto (sentence by sentence)")
    v.set_defaults(func=_validate)


def _corpus(args) -> int:
    from . import generate_corpus, write_corpus
    t0 = time.perf_counter()
    corpus = generate_corpus(args.kind, args.n, args.seed, split=args.split)
    split = "" if args.split == "train" else f" --split {args.split}"
    corpus.meta["command"] = f"workbench corpus --kind {args.kind} --n {args.n} --seed {args.seed}{split}"
    seconds = time.perf_counter() - t0
    out = write_corpus(corpus, args.out, overwrite=args.overwrite)
    print(json.dumps(corpus.stats(), indent=2))
    print(f"wrote {len(corpus)} records to {out} (generated in {seconds:.1f} s)")
    return 0


def _validate(args) -> int:
    """A .txt file: every block is a story in --lang. A corpus directory or .jsonl: story records only, each in
    its own language, with a breakdown by language."""
    from pathlib import Path

    from . import load_corpus, read_texts, validate_texts
    from .validate import validate_records
    path = Path(args.file)
    if path.is_dir() or path.suffix == ".jsonl":
        result = validate_records(load_corpus(path).records, drop_unfinished=args.drop_unfinished)
    else:
        result = validate_texts(read_texts(args.file), drop_unfinished=args.drop_unfinished, lang=args.lang)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result.get("all", result), result.get("by_lang", {}))
    return 0


def _print_table(overall: dict, by_lang: dict) -> None:
    cols = {"all": overall, **by_lang}
    print(f"{'':20s}" + "".join(f"{c:>10s}" for c in cols))
    for key in overall:
        cells = [v[key] for v in cols.values()]
        print(f"{key:20s}" + "".join(f"{x:10.4f}" if isinstance(x, float) else f"{x:10d}" for x in cells))
