"""`workbench corpus` (generate and write a corpus) and `workbench validate` (grammar numbers for stories)."""
from __future__ import annotations

import json
import time


def register(sub) -> None:
    p = sub.add_parser("corpus", help="generate a corpus (stories, parallel or mixed) and print its statistics")
    p.add_argument("--kind", default="stories", help="stories | parallel | mixed")
    p.add_argument("--n", type=int, default=1000, help="number of stories (stories, parallel) or documents (mixed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory (corpus.jsonl, corpus.txt, meta.json)")
    p.add_argument("--overwrite", action="store_true", help="replace a directory holding a different corpus")
    p.set_defaults(func=_corpus)

    v = sub.add_parser("validate", help="judge stories against the story grammar (well-formed, hero consistency)")
    v.add_argument("file", help="a .txt file of stories (blank-line separated), a .jsonl or a corpus directory")
    v.add_argument("--json", action="store_true", help="print the numbers as JSON")
    v.add_argument("--lang", default="en", help="language of the stories: en (default); vel, kor, tuu are "
                                                "translated to English first")
    v.set_defaults(func=_validate)


def _corpus(args) -> int:
    from . import generate_corpus, write_corpus
    t0 = time.perf_counter()
    corpus = generate_corpus(args.kind, args.n, args.seed)
    corpus.meta["command"] = f"workbench corpus --kind {args.kind} --n {args.n} --seed {args.seed}"
    seconds = time.perf_counter() - t0
    out = write_corpus(corpus, args.out, overwrite=args.overwrite)
    print(json.dumps(corpus.stats(), indent=2))
    print(f"wrote {len(corpus)} records to {out} (generated in {seconds:.1f} s)")
    return 0


def _validate(args) -> int:
    from . import read_texts, validate_texts
    from .languages import to_english
    texts = read_texts(args.file)
    if args.lang != "en":
        texts = [_to_english_or_keep(t, args.lang, to_english) for t in texts]
    result = validate_texts(texts)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, val in result.items():
            print(f"{k:20s} {val:.4f}" if isinstance(val, float) else f"{k:20s} {val}")
    return 0


def _to_english_or_keep(text: str, lang: str, to_english) -> str:
    """Sentences that do not parse in `lang` stay as they are, so they count as not well-formed."""
    from .grammar import split_sentences
    out = []
    for s in split_sentences(text):
        try:
            out.append(to_english(s, lang))
        except ValueError:
            out.append(s)
    return " ".join(out)
