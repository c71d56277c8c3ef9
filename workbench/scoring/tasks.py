"""Zero-shot classification tasks: examples + prompt template + verbalizers + premises.

Here: the `Task` record, built-in tasks from the story labels (`story_task`), YAML task files pointing at
JSONL/CSV (`load_task_file`), Hugging Face datasets (`hf_task`), and `load_task()` which accepts any of them.
Not here: computing log-likelihoods (`loglik.py`) or turning them into predictions (`functions.py`).

A YAML task file (paths relative to the YAML file):

    name: topics
    data: topics.jsonl            # JSONL or CSV
    text_field: text
    label_field: label            # an index into choices, or the choice string itself
    template: "Story: {text}\\nThis story is about"
    choices: [animals, toys, food, weather]   # or a mapping class -> list of verbalizers
    target_delimiter: " "         # between prompt and choice, as lm-evaluation-harness does
    domain_premise: "This story is about"     # for DCPMI
    generic_premise: ":"                      # for PMI with a generic premise
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

CONTENT_FREE = ("N/A", "", "[MASK]")          # Zhao et al. 2021's content-free inputs
TASK_FIELDS = {"name", "data", "text_field", "label_field", "template", "choices", "target_delimiter",
               "domain_premise", "generic_premise", "content_free", "channel_template", "split", "limit"}


@dataclass(frozen=True)
class Task:
    """A zero-shot classification task.

    `verbalizers[k]` holds the strings that stand for class k (usually one). The prompt of example i is
    `template.format(text=texts[i])`; a choice is scored as the continuation `target_delimiter + verbalizer`.
    `channel_template` (with `{label}`) is the context under which the *input* is scored for channel scoring.
    """
    name: str
    texts: tuple[str, ...]
    golds: tuple[int, ...]
    classes: tuple[str, ...]
    verbalizers: tuple[tuple[str, ...], ...] = ()
    template: str = "{text}"
    target_delimiter: str = " "
    domain_premise: str = ""
    generic_premise: str = ":"
    content_free: tuple[str, ...] = CONTENT_FREE
    channel_template: str = "{label}:"
    reachable: tuple[float, ...] = ()  # per example: the ideal reader's expected accuracy on the shown text
    description: str = ""

    def __post_init__(self):
        if not self.verbalizers:
            object.__setattr__(self, "verbalizers", tuple((c,) for c in self.classes))
        object.__setattr__(self, "verbalizers", tuple(tuple(v) for v in self.verbalizers))
        validate_task(self)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def ceiling(self) -> float | None:
        """Best accuracy reachable from the text shown (mean of `reachable`); None when not known."""
        return sum(self.reachable) / len(self.reachable) if self.reachable else None

    @property
    def majority(self) -> float:
        """Accuracy of always answering the most frequent gold class."""
        return max(self.golds.count(k) for k in range(self.n_classes)) / len(self.golds) if self.golds else 0.0

    @property
    def choices(self) -> list[tuple[int, str]]:
        """Flat list of (class index, verbalizer string): the columns of every log-likelihood matrix."""
        return [(k, v) for k, vs in enumerate(self.verbalizers) for v in vs]

    def prompt(self, i: int) -> str:
        return self.template.format(text=self.texts[i])

    def head(self, n: int) -> "Task":
        """The first `n` examples (for fast runs; built-in tasks interleave their classes, so a head stays
        balanced)."""
        return replace(self, texts=self.texts[:n], golds=self.golds[:n], reachable=self.reachable[:n])

    def with_(self, **changes) -> "Task":
        """A copy with other template / verbalizers / premises (validated again)."""
        return replace(self, **changes)


def validate_task(t: Task) -> None:
    """Reject label sets and templates that make scoring meaningless, saying how to fix them."""
    if not t.classes:
        raise ValueError(f"task {t.name!r} has an empty label set: give at least two choices")
    if len(t.classes) < 2:
        raise ValueError(f"task {t.name!r} has a single label {t.classes[0]!r}: zero-shot classification "
                         "needs at least two choices to compare")
    dup = sorted({c for c in t.classes if t.classes.count(c) > 1})
    if dup:
        raise ValueError(f"task {t.name!r} has duplicate labels {dup}: each class must appear once")
    if len(t.verbalizers) != len(t.classes):
        raise ValueError(f"task {t.name!r}: {len(t.verbalizers)} verbalizer lists for {len(t.classes)} classes")
    flat = [v for vs in t.verbalizers for v in vs]
    if any(not vs for vs in t.verbalizers) or any(not v.strip() for v in flat):
        raise ValueError(f"task {t.name!r}: every class needs at least one non-empty verbalizer")
    dup = sorted({v for v in flat if flat.count(v) > 1})
    if dup:
        raise ValueError(f"task {t.name!r}: verbalizers {dup} stand for more than one class; make them unique")
    if "{text}" not in t.template:
        raise ValueError(f"task {t.name!r}: template {t.template!r} lacks the {{text}} placeholder")
    if "{label}" not in t.channel_template:
        raise ValueError(f"task {t.name!r}: channel_template {t.channel_template!r} lacks {{label}}")
    if len(t.texts) != len(t.golds):
        raise ValueError(f"task {t.name!r}: {len(t.texts)} texts but {len(t.golds)} gold labels")
    if t.reachable and len(t.reachable) != len(t.texts):
        raise ValueError(f"task {t.name!r}: {len(t.reachable)} reachable accuracies for {len(t.texts)} texts")
    bad = [g for g in t.golds if not 0 <= g < len(t.classes)]
    if bad:
        raise ValueError(f"task {t.name!r}: gold labels {bad[:5]} are outside 0..{len(t.classes) - 1}")


# ---- built-in tasks from the story labels -------------------------------------------------------------------

STORY_TASKS = {   # label field -> (template, domain premise)
    "feeling": ("Story: {text}\nAt the end, the hero feels", "At the end, the hero feels"),
    "topic": ("Story: {text}\nThis story is about", "This story is about"),
    "ending": ("Story: {text}\nThe story ends", "The story ends"),
}
STORY_VERBALIZERS = {   # label -> the words that stand for it after the template (others: the label itself)
    "lost": ("something lost",), "friends": ("friends",), "adventure": ("an adventure",),
    "helping": ("helping",), "baking": ("baking",), "good": ("well",), "bad": ("badly",),
}


def story_task(field_name: str = "topic", records: list[dict] | None = None, labels: list[str] | None = None,
               n: int = 60, seed: int = 0) -> Task:
    """A built-in task: classify generated stories by `feeling`, `topic` or `ending`.

    `records` (dicts with "text" and the label field) and `labels` default to `workbench.corpora`'s
    story generator (`generate_corpus("stories", n, seed)` and `LABELS[field_name]`).
    """
    if field_name not in STORY_TASKS:
        raise ValueError(f"unknown built-in task {field_name!r}; valid: {', '.join(STORY_TASKS)}")
    if records is None or labels is None:
        default_records, default_labels = _default_stories(n, seed)
        records = records if records is not None else default_records
        labels = labels if labels is not None else default_labels[field_name]
    labels = list(labels)
    texts, golds = [], []
    for i, r in enumerate(records):
        if r.get(field_name) not in labels:
            raise ValueError(f"story {i} has {field_name}={r.get(field_name)!r}, not one of {labels}")
        texts.append(r["text"])
        golds.append(labels.index(r[field_name]))
    template, premise = STORY_TASKS[field_name]
    verbs = tuple(STORY_VERBALIZERS.get(c, (c,)) for c in labels)
    return Task(name=f"stories-{field_name}", texts=tuple(texts), golds=tuple(golds), classes=tuple(labels),
                verbalizers=verbs, template=template, domain_premise=premise)


def _default_stories(n: int, seed: int) -> tuple[list[dict], dict]:
    """Story records and label sets from `workbench.corpora` (generate_corpus, else generate_stories)."""
    from workbench import corpora    # imported lazily: only the built-in tasks need the story generator
    if hasattr(corpora, "generate_corpus"):
        return list(corpora.generate_corpus(kind="stories", n=n, seed=seed).records), dict(corpora.LABELS)
    from workbench.corpora import stories
    keys = ("text", "feeling", "topic", "ending", "hero")
    return [{k: getattr(s, k) for k in keys} for s in stories.generate_stories(n, seed)], dict(stories.LABELS)


# ---- YAML task files ----------------------------------------------------------------------------------------

def _read_rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) pairs of a JSONL or CSV file (UTF-8, with or without the byte-order mark that
    spreadsheets write); malformed lines raise naming the line."""
    if not path.exists():
        raise FileNotFoundError(f"task data file {path} does not exist (paths are relative to the YAML file)")
    rows = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            for i, row in enumerate(csv.DictReader(f), start=2):
                rows.append((i, row))
        return rows
    for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{i}: not valid JSON ({err.msg}); each line must be one JSON object") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{i}: expected a JSON object, got {type(row).__name__}")
        rows.append((i, row))
    return rows


def _gold(value, classes: list[str], where: str, label_field: str) -> int:
    """A label given as an index into choices or as the choice string itself."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{where}: field {label_field!r} is {value!r}; give a choice index or string")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()
                                  and value not in classes):
        idx = int(value)
        if not 0 <= idx < len(classes):
            raise ValueError(f"{where}: field {label_field!r} = {idx} is not an index into {len(classes)} choices")
        return idx
    if value in classes:
        return classes.index(value)
    raise ValueError(f"{where}: field {label_field!r} = {value!r} is not one of the choices {classes}")


def _parse_choices(choices, where: str) -> tuple[list[str], list[tuple[str, ...]]]:
    if isinstance(choices, dict):
        classes = [str(c) for c in choices]
        verbs = [tuple([v] if isinstance(v, str) else list(v)) for v in choices.values()]
        return classes, verbs
    if isinstance(choices, list):
        return [str(c) for c in choices], [(str(c),) for c in choices]
    raise ValueError(f"{where}: field 'choices' must be a list of strings or a mapping class -> verbalizers")


def task_from_rows(name: str, rows: list[tuple[int, dict]], spec: dict, where: str) -> Task:
    """Build a Task from (line, row) pairs and the YAML spec; errors name the file, line and field."""
    text_field, label_field = spec.get("text_field", "text"), spec.get("label_field", "label")
    classes, verbs = _parse_choices(spec.get("choices"), where)
    texts, golds = [], []
    for line, row in rows:
        at = f"{where}:{line}"
        if text_field not in row:
            raise ValueError(f"{at}: missing text field {text_field!r} (fields present: {sorted(row)})")
        if label_field not in row:
            raise ValueError(f"{at}: missing label field {label_field!r} (fields present: {sorted(row)})")
        texts.append(str(row[text_field]))
        golds.append(_gold(row[label_field], classes, at, label_field))
    if not texts:
        raise ValueError(f"{where}: the data file has no examples")
    kw = {k: spec[k] for k in ("template", "target_delimiter", "domain_premise", "generic_premise",
                               "channel_template") if k in spec}
    if "content_free" in spec:
        kw["content_free"] = tuple(spec["content_free"])
    limit = spec.get("limit")
    if limit:
        texts, golds = texts[:int(limit)], golds[:int(limit)]
    return Task(name=name, texts=tuple(texts), golds=tuple(golds), classes=tuple(classes),
                verbalizers=tuple(verbs), **kw)


def read_task_yaml(path: str | Path, fields) -> dict:
    """The mapping in a YAML task file. FileNotFoundError for a missing file; ValueError naming the file and
    line for invalid YAML, or naming `fields` when the file is not a mapping. Shared by every task-file loader."""
    import yaml
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"task file {path} does not exist")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ValueError(f"{path}{line}: invalid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: a task file must be a YAML mapping with fields {sorted(fields)}")
    return spec


def load_task_file(path: str | Path) -> Task:
    """Read a YAML task file (fields as in this module's docstring) and the JSONL/CSV it points at."""
    path = Path(path)
    spec = read_task_yaml(path, TASK_FIELDS)
    unknown = sorted(set(spec) - TASK_FIELDS)
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {unknown}; valid fields: {sorted(TASK_FIELDS)}")
    for required in ("data", "choices"):
        if required not in spec:
            raise ValueError(f"{path}: missing required field {required!r}")
    for key in ("template", "target_delimiter", "domain_premise", "generic_premise"):
        if key in spec and not isinstance(spec[key], str):
            raise ValueError(f"{path}: field {key!r} must be a string, got {spec[key]!r}")
    data = (path.parent / str(spec["data"])).resolve()
    _parse_choices(spec["choices"], str(path))     # spec errors name the YAML file, row errors the data file
    try:
        return task_from_rows(spec.get("name", path.stem), _read_rows(data), spec, str(data))
    except ValueError as err:
        if str(err).startswith("task "):               # Task validation: about the YAML spec, not a data row
            raise ValueError(f"{path}: {err}") from None
        raise


# ---- Hugging Face datasets ----------------------------------------------------------------------------------

def hf_task(name: str, split: str = "test", text_field: str = "text", label_field: str = "label",
            choices=None, data_files=None, limit: int | None = None, cache_dir=None, **spec) -> Task:
    """A task from a Hugging Face dataset by name (needs the hub, or its cache), e.g. `hf_task("ag_news")`.

    `choices` default to the names of a ClassLabel `label_field`. `data_files` reads local files through
    the same loader (`hf_task("json", data_files="x.jsonl", choices=[...])`).
    """
    import datasets
    ds = datasets.load_dataset(name, split=split, data_files=data_files, cache_dir=cache_dir)
    if choices is None:
        feat = ds.features.get(label_field)
        if not isinstance(feat, datasets.ClassLabel):
            raise ValueError(f"dataset {name!r}: {label_field!r} is not a ClassLabel; pass choices=[...]")
        choices = list(feat.names)
    if limit:
        ds = ds.select(range(min(limit, len(ds))))
    rows = [(i, dict(r)) for i, r in enumerate(ds)]
    return task_from_rows(spec.pop("task_name", name), rows,
                          dict(spec, text_field=text_field, label_field=label_field, choices=choices),
                          f"{name}[{split}] row")


def load_task(spec: str | Path | Task, n: int = 600, seed: int = 0) -> Task:
    """A Task from a Task, a built-in v2 task ('feeling', 'topic', 'ending', 'language', 'domain', 'pronoun',
    optionally with a level: 'feeling/1'; see `builtin.py`), a v1 story task ('stories-topic': the whole story
    shown, label words not in the corpus; kept for comparison), a YAML task file, or 'hf:NAME'."""
    from .builtin import BUILTIN_TASKS, builtin_task
    if isinstance(spec, Task):
        return spec
    s = str(spec)
    name, _, level = s.partition("/")
    if name in BUILTIN_TASKS and not Path(s).exists():
        return builtin_task(name, int(level) if level.isdigit() else (level or 0), n=n, seed=seed)
    if s.startswith("stories-") and s.removeprefix("stories-") in STORY_TASKS:
        return story_task(s.removeprefix("stories-"), n=n, seed=seed)
    if s.startswith("hf:"):
        return hf_task(s[3:], limit=n)
    if s.endswith((".yaml", ".yml")) or Path(s).exists():
        return load_task_file(s)
    raise ValueError(f"unknown task {s!r}: give a built-in task ({', '.join(BUILTIN_TASKS)}, optionally /LEVEL), "
                     "a YAML task file, or hf:DATASET")
