"""Read and write corpora: corpus directories, JSONL, plain text and Hugging Face datasets.

A corpus directory holds corpus.jsonl (one record per line), corpus.txt (the texts, separated by blank
lines) and meta.json (kind, n, seed, statistics, a sha256 of corpus.jsonl). Writing is atomic: files go to
a temporary directory next to the target, which is then renamed into place.
Plain .txt input: documents are blocks separated by blank lines; a file without any blank line has one
document per line. Output of `workbench generate` (samples under `--- sample N` lines): one document per
sample, the header lines being separators, not documents.
`hf:NAME[:SPLIT]` loads a dataset with `datasets.load_dataset` (default split "train"): NAME may be a Hub
name (needs network, e.g. hf:roneneldan/TinyStories), a local dataset directory, or a local .json/.jsonl/
.parquet/.csv file. The text column is "text" if present, else the only string column.
Here: `write_corpus()`, `load_corpus()`, `read_texts()`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..errors import disk_full_guard
from .corpus import Corpus

FILES = ("corpus.jsonl", "corpus.txt", "meta.json")
_BLANK = re.compile(r"\n[ \t]*\n")
_SAMPLE_HEADER = re.compile(r"^--- sample \d+[ \t]*$", re.M)   # written by `workbench generate`


def sample_header(i: int) -> str:
    """The line `workbench generate` writes above its i-th sample; `split_txt` reads it as a separator."""
    return f"--- sample {i}"


def _jsonl(corpus: Corpus) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in corpus.records)


def write_corpus(corpus: Corpus, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write corpus.jsonl, corpus.txt and meta.json into `out_dir` atomically.
    An existing non-empty `out_dir` is refused unless it already holds this very corpus or `overwrite`."""
    if not corpus.records:
        raise ValueError("refusing to write an empty corpus: generate or load at least one record")
    out = Path(out_dir)
    jsonl = _jsonl(corpus)
    digest = hashlib.sha256(jsonl.encode("utf-8")).hexdigest()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a directory: choose another --out")
    if out.exists() and any(out.iterdir()):
        if _digest_of(out) == digest:
            return out                                  # the same corpus is already there
        if not overwrite:
            raise FileExistsError(f"{out} already holds different files; pass overwrite=True "
                                  f"(CLI: --overwrite) to replace them, or choose another directory")
    meta = {"kind": corpus.kind, "seed": corpus.seed, "n_records": len(corpus.records), "sha256": digest,
            **corpus.meta, "stats": corpus.stats()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)           # mkdtemp makes it private (0700); a corpus dir is an ordinary one
    try:
        with disk_full_guard(out.parent, f"the corpus {out.name}", f"{out} is unchanged" if out.exists() else ""):
            (tmp / "corpus.jsonl").write_text(jsonl, encoding="utf-8")
            (tmp / "corpus.txt").write_text("\n\n".join(_txt_safe(t) for t in corpus.texts) + "\n",
                                            encoding="utf-8")
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            _swap_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _txt_safe(text: str) -> str:
    """A document on its own block: blank lines inside it would split it on reading, so they are squeezed."""
    return _BLANK.sub("\n", text.strip())


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename `tmp` to `out`; an old `out` is moved aside first and removed only after the rename worked."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _digest_of(d: Path) -> str | None:
    try:
        return json.loads((d / "meta.json").read_text(encoding="utf-8")).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _read_utf8(path: Path) -> str:
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")                 # a byte-order mark (spreadsheets, Notepad) is dropped
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (bad byte at offset {err.start}); re-save it as UTF-8, "
                         f"e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed.txt`") from None
    if not text.strip():
        raise ValueError(f"{path} is empty: give a file with at least one document")
    return text.lstrip("\ufeff")


def _read_jsonl(path: Path, field: str = "text") -> list[dict]:
    records = []
    for i, line in enumerate(_read_utf8(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} line {i}: not valid JSON ({err.msg}); "
                             "each line must be one JSON object") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{path} line {i}: expected a JSON object like {{\"text\": ...}}, "
                             f"got {type(rec).__name__}")
        if field not in rec:
            raise ValueError(f"{path} line {i}: missing field {field!r} (fields there: {sorted(rec)}); "
                             f"every line needs a {field!r} string")
        if not isinstance(rec[field], str):
            raise ValueError(f"{path} line {i}: field {field!r} must be a string, got {type(rec[field]).__name__}")
        records.append(rec)
    return records


def split_txt(text: str) -> list[str]:
    """Documents of a plain-text file: blank-line separated blocks, or one per line when there is no blank line;
    in `workbench generate` output, the text between `--- sample N` lines (one document per sample)."""
    text = text.replace("\r\n", "\n").strip("\n")
    if _SAMPLE_HEADER.search(text):
        blocks = _SAMPLE_HEADER.split(text)
    else:
        blocks = _BLANK.split(text) if _BLANK.search(text) else text.split("\n")
    return [b.strip() for b in blocks if b.strip()]


def _read_txt(path: Path) -> list[str]:
    return split_txt(_read_utf8(path))


def load_corpus(path: str | Path) -> Corpus:
    """A corpus directory, a .jsonl file (field "text" required, others kept) or a .txt file, as a Corpus."""
    p = Path(path)
    if p.is_dir():
        if (p / "corpus.jsonl").exists():
            c = load_corpus(p / "corpus.jsonl")
            meta = _meta(p)
            return Corpus(c.records, kind=meta.get("kind", "custom"), seed=meta.get("seed"))
        if (p / "corpus.txt").exists():
            return load_corpus(p / "corpus.txt")
        raise FileNotFoundError(f"{p} holds no corpus.jsonl or corpus.txt: write one with "
                                f"`workbench corpus --kind stories --n 1000 --out {p}`")
    if p.suffix == ".jsonl":
        recs = _read_jsonl(p)
    elif p.suffix in (".txt", ".text", ".md", ""):
        recs = [{"text": t} for t in _read_txt(p)]
    elif not p.exists():
        raise FileNotFoundError(f"no such file or directory: {p}")
    else:
        raise ValueError(f"cannot read {p}: expected a corpus directory, a .jsonl or a .txt file")
    for i, r in enumerate(recs):
        r.setdefault("id", f"{p.stem}-{i:06d}")
        r.setdefault("lang", "en")
        r.setdefault("domain", "text")
    return Corpus(recs, kind="custom")


def _meta(d: Path) -> dict:
    try:
        return json.loads((d / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def read_texts(path: str | Path) -> list[str]:
    """Texts of a corpus directory, .jsonl, .txt, or `hf:NAME[:SPLIT]` (see the module docstring)."""
    s = str(path)
    if s.startswith("hf:"):
        return _read_hf(s[3:])
    p = Path(path)
    texts = load_corpus(p).texts if p.is_dir() or p.suffix == ".jsonl" else _read_txt(p)
    if not texts:
        raise ValueError(f"{p} holds no texts")
    return texts


def _read_hf(spec: str) -> list[str]:
    name, _, split = spec.partition(":")
    if not name:
        raise ValueError("hf: needs a dataset name or local file, e.g. hf:roneneldan/TinyStories:validation")
    import datasets   # imported here: it is slow to import and only this path needs it
    local = Path(name)
    builders = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv", ".txt": "text"}
    try:
        if local.is_file() and local.suffix in builders:
            ds = datasets.load_dataset(builders[local.suffix], data_files=str(local), split=split or "train")
        else:
            ds = datasets.load_dataset(name, split=split or "train")
    except (OSError, ValueError, RuntimeError) as err:
        # OSError: not found or no network. RuntimeError: a dataset loading script (datasets >= 4 never runs one)
        raise ValueError(f"cannot load dataset {name!r} (split {split or 'train'!r}): {err}. Offline, give a local "
                         f"file or directory: hf:path/to/data.parquet") from err
    cols = [c for c, f in ds.features.items() if getattr(f, "dtype", None) in ("string", "large_string")]
    col = "text" if "text" in ds.column_names else (cols[0] if len(cols) == 1 else None)
    if col is None:
        raise ValueError(f"dataset {name!r} has no 'text' column and no single string column "
                         f"(columns: {ds.column_names}); rename the text column to 'text'")
    texts = [t for t in ds[col] if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError(f"dataset {name!r} holds no non-empty texts in column {col!r}")
    return texts
