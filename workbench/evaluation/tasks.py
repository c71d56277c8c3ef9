"""Generative tasks: instances with references and aspect labels, and the task files users write.

An instance is what one prompt is built from: named text fields (`input`, `question`, `cue`, `instruction`,
`answer`, `wrong`, or any a user's style needs), the references an output is scored against, its aspect labels
(task type, domain, reasoning type) and what the semantic judge checks (`required`: groups of alternatives of
which one must appear; `forbidden`: words that contradict the reference). A task adds the definition, a
paraphrase of it, stop strings, a generation budget and a disjoint pool of instances for few-shot examples.

A task file (YAML; paths relative to it), the shape of the scoring tasks' files:

    name: pets
    data: pets.jsonl                 # one instance per line: input, references, and any other text fields
    pool: pets_pool.jsonl            # optional: few-shot examples (never the test instances); else none
    definition: "Say which pet the child has."
    paraphrase: "Name the child's pet."
    task_type: question answering    # aspect labels, defaults for every instance (a line may override them)
    domain: stories
    reasoning: fact lookup
    stop: ["\\n", "."]
    max_new_tokens: 8
    styles:                          # optional: extra prompt styles (name -> template), see styles.py
      terse: "{input} Pet:"

An instance line: {"input": "...", "references": ["cat"], "question": "...", "cue": "...", "answer": "cat",
"required": [["cat", "kitten"]], "forbidden": ["dog"], "reasoning": "fact lookup"}. Only `input` and
`references` are needed; `answer` defaults to the first reference.
Here: `Instance`, `GenTask`, `load_task_file()`, `TaskFileError`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

ASPECTS = ("task_type", "domain", "reasoning")
_TASK_KEYS = {"name", "data", "pool", "definition", "paraphrase", "stop", "max_new_tokens", "styles", "limit",
              *ASPECTS}
_JUDGE_KEYS = {"required", "forbidden"}


class TaskFileError(ValueError):
    """A task file or instance is malformed; the message names the file, line and field, and the fix."""


@dataclass(frozen=True)
class Instance:
    """One test item. `fields` are the texts styles may use; `references` are non-empty strings.

    `required`: tuple of groups; the judge passes when each group has one alternative in the output (whole
    words, case-insensitive) and no `forbidden` word appears. Empty `required`: the references are the group.
    """
    id: str
    fields: dict
    references: tuple[str, ...]
    aspects: dict
    required: tuple[tuple[str, ...], ...] = ()
    forbidden: tuple[str, ...] = ()

    def __post_init__(self):
        refs = tuple(r for r in self.references if isinstance(r, str) and r.strip())
        if not refs:
            raise TaskFileError(f"instance {self.id}: `references` is empty; give at least one non-empty "
                                f"reference string (e.g. \"references\": [\"cat\"])")
        object.__setattr__(self, "references", refs)
        object.__setattr__(self, "fields", {"answer": refs[0], **self.fields})
        object.__setattr__(self, "required", tuple(tuple(g) for g in self.required) or (refs,))
        object.__setattr__(self, "forbidden", tuple(self.forbidden))


@dataclass(frozen=True)
class GenTask:
    """A generative task: test `instances`, a disjoint few-shot `pool`, and how to prompt and stop.

    `stop`: strings at which an output is cut (the first occurrence; lm-eval's `until`).
    `max_new_tokens`: the generation budget; an output that meets no stop string is cut there, and the
    result row says so (`hit_max`).
    """
    name: str
    instances: tuple[Instance, ...]
    pool: tuple[Instance, ...] = ()
    definition: str = ""
    paraphrase: str = ""
    stop: tuple[str, ...] = ("\n",)
    max_new_tokens: int = 16
    styles: dict = field(default_factory=dict)
    description: str = ""

    def __post_init__(self):
        if not self.instances:
            raise TaskFileError(f"task {self.name!r} has no instances")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise TaskFileError(f"task {self.name!r}: max_new_tokens must be a positive integer, got "
                                f"{self.max_new_tokens!r}")
        object.__setattr__(self, "stop", tuple(self.stop))
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise TaskFileError(f"task {self.name!r}: every stop string must be a non-empty string, got "
                                f"{list(self.stop)!r}")
        test_inputs = {i.fields.get("input") for i in self.instances}
        leaked = [p.id for p in self.pool if p.fields.get("input") in test_inputs]
        if leaked:
            raise TaskFileError(f"task {self.name!r}: few-shot pool instances {leaked[:3]} have the same input "
                                f"as a test instance; the pool must be disjoint from the test set")

    @property
    def aspects(self) -> dict:
        """The aspect labels of the first instance (task-level defaults)."""
        return dict(self.instances[0].aspects)


def _instance(row: dict, where: str, defaults: dict, idx: int, prefix: str = "") -> Instance:
    if not isinstance(row, dict):
        raise TaskFileError(f"{where}: each line must be a JSON object, got {type(row).__name__}")
    if "input" not in row:
        raise TaskFileError(f"{where}: missing field `input` (the text the prompt is built around)")
    refs = row.get("references", row.get("reference"))
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not [r for r in refs if isinstance(r, str) and r.strip()]:
        raise TaskFileError(f"{where}: `references` must be a non-empty list of strings, got {refs!r}; every "
                            f"instance needs at least one reference answer")
    req = row.get("required", ())
    if req and (not isinstance(req, list) or not all(isinstance(g, list) and g for g in req)):
        raise TaskFileError(f"{where}: `required` must be a list of non-empty lists of alternatives, e.g. "
                            f"[[\"cat\", \"kitten\"]], got {req!r}")
    fields = {k: str(v) for k, v in row.items()
              if k not in {"references", "reference", "id", *ASPECTS, *_JUDGE_KEYS} and isinstance(v, (str, int))}
    aspects = {a: str(row.get(a, defaults.get(a, ""))) for a in ASPECTS}
    return Instance(prefix + str(row.get("id", idx)), fields, tuple(refs), aspects, tuple(tuple(g) for g in req),
                    tuple(row.get("forbidden", ())))


def _read_jsonl(path: Path, defaults: dict, limit: int | None, prefix: str = "") -> tuple[Instance, ...]:
    if not path.exists():
        raise TaskFileError(f"{path}: file not found; `data`/`pool` paths are relative to the task file")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise TaskFileError(f"{path}, line {n}: not valid JSON ({e.msg}); one JSON object per line") from None
        out.append(_instance(row, f"{path}, line {n}", defaults, len(out), prefix))
        if limit and len(out) >= limit:
            break
    if not out:
        raise TaskFileError(f"{path}: no instances; write one JSON object per line")
    return tuple(out)


def load_task_file(path: str | Path) -> GenTask:
    """A `GenTask` from a YAML task file (see the module docstring); raises TaskFileError naming the field."""
    from ..scoring.tasks import read_task_yaml
    path = Path(path)
    try:
        spec = read_task_yaml(path, _TASK_KEYS)
    except (FileNotFoundError, ValueError) as e:
        raise TaskFileError(str(e)) from None
    unknown = set(spec) - _TASK_KEYS
    if unknown:
        raise TaskFileError(f"{path}: unknown keys {sorted(unknown)}; valid keys: {', '.join(sorted(_TASK_KEYS))}")
    if "data" not in spec:
        raise TaskFileError(f"{path}: missing key `data` (a JSONL file of instances, relative to the task file)")
    defaults = {a: spec.get(a, "") for a in ASPECTS}
    limit = spec.get("limit")
    instances = _read_jsonl(path.parent / spec["data"], defaults, limit)
    pool = _read_jsonl(path.parent / spec["pool"], defaults, None, "pool-") if spec.get("pool") else ()
    stop = spec.get("stop", ["\n"])
    if isinstance(stop, str):
        stop = [stop]
    styles = spec.get("styles") or {}
    if not isinstance(styles, dict) or not all(isinstance(v, str) for v in styles.values()):
        raise TaskFileError(f"{path}: `styles` must map a style name to a template string")
    return GenTask(str(spec.get("name", path.stem)), instances, pool, str(spec.get("definition", "")),
                   str(spec.get("paraphrase", "")), tuple(stop), spec.get("max_new_tokens", 16), dict(styles))
