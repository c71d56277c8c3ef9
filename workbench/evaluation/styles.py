"""Prompt styles: named templates that turn one instance into the exact text a model sees.

A style is data: a `str.format` template over the instance's fields (`input`, `question`, `cue`,
`instruction`, ...), the task's `definition` and `paraphrase`, two joined fields (`context` = input + " " +
cue, `solved` = context + " " + answer; no space after a newline, so programs keep their lines), and, for
few-shot styles, `shots` (k solved examples from the task's pool, each rendered with `shot_template`, default
"{solved}", joined by newlines), `example` and `counterexample` (one pool instance with its right and its
wrong answer). Trailing spaces are removed, so a prompt ends where the model's first token (" Bella", " 17")
begins.

The nine built-in styles (after the prompt-style grid of the seed study; "-it" models were tuned on the
`question_answer` and `instruction` forms):

    input_only           {context}
    definition_first     {definition}\\n{context}
    definition_last      {input}\\n{definition}\\n{cue}
    paraphrase           {paraphrase}\\n{context}
    question_answer      {input}\\nQuestion: {question}\\nAnswer:
    instruction          {input}\\nInstruction: {instruction}\\nResponse:      (the "-it" chat form)
    one_shot             {shots}\\n{context}                                   (1 example)
    three_shot           {shots}\\n{context}                                   (3 examples)
    definition_contrast  {definition}\\nRight: {example}\\nWrong: {counterexample}\\n{context}

Examples are drawn from the pool with a seed that depends on the instance, never include the test instance,
and are the same for every model. Here: `Style`, `STYLES`, `style_registry()`, `render()`, `StyleError`.
"""
from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

from .tasks import GenTask, Instance

SHOT_TEMPLATE = "{solved}"
_DOUBLE = re.compile(r"(?<=\S) {2,}")


class StyleError(ValueError):
    """A style cannot be rendered for a task: a missing field, or more shots than the pool holds."""


@dataclass(frozen=True)
class Style:
    """`template` over instance/task fields; `shots` examples from the pool (0 = zero-shot)."""
    name: str
    template: str
    shots: int = 0
    shot_template: str = SHOT_TEMPLATE
    description: str = ""

    @property
    def fields(self) -> set[str]:
        """Every field name the template and (for few-shot styles) the shot template use."""
        names = {f for _, f, _, _ in string.Formatter().parse(self.template) if f}
        if self.shots or names & {"shots", "example", "counterexample"}:
            names |= {f for _, f, _, _ in string.Formatter().parse(self.shot_template) if f}
        return names


STYLES: dict[str, Style] = {s.name: s for s in (
    Style("input_only", "{context}", description="the input alone, continued (no instruction)"),
    Style("definition_first", "{definition}\n{context}", description="task definition, then the input"),
    Style("definition_last", "{input}\n{definition}\n{cue}", description="the input, then the definition"),
    Style("paraphrase", "{paraphrase}\n{context}", description="a paraphrased definition, then the input"),
    Style("question_answer", "{input}\nQuestion: {question}\nAnswer:", description="Question:/Answer: lines"),
    Style("instruction", "{input}\nInstruction: {instruction}\nResponse:",
          description="Instruction:/Response: lines, the chat-like form the -it models were tuned on"),
    Style("one_shot", "{shots}\n{context}", shots=1, description="one solved example first"),
    Style("three_shot", "{shots}\n{context}", shots=3, description="three solved examples first"),
    Style("definition_contrast", "{definition}\nRight: {example}\nWrong: {counterexample}\n{context}",
          shots=1, description="definition plus one right and one wrong example"),
)}


def style_registry(task: GenTask | None = None, extra: dict | None = None) -> dict[str, Style]:
    """The built-in styles plus the task file's `styles:` (name -> template) and `extra` (name -> Style or str).

    A user template may use `{shots}` with a `k_shot:` prefix in its name ("3_shot:terse") to ask for k examples.
    """
    out = dict(STYLES)
    for name, spec in {**((task.styles if task else None) or {}), **(extra or {})}.items():
        if isinstance(spec, Style):
            out[spec.name] = spec
            continue
        k = int(name.split("_shot:")[0]) if "_shot:" in name else (1 if "{shots}" in spec or "{example}" in spec
                                                                    else 0)
        out[name] = Style(name, spec, shots=k, description="from the task file")
    return out


def _join(a: str, b: str) -> str:
    """a + " " + b, without the space when either is empty or `a` ends in white space (a program's newline)."""
    return a + b if not a or not b or a[-1].isspace() else f"{a} {b}"


def _values(task: GenTask, inst: Instance, answer: str | None = None) -> dict:
    values = {"definition": task.definition, "paraphrase": task.paraphrase, "cue": "", **inst.fields}
    if answer is not None:
        values["answer"] = answer
    values.setdefault("context", _join(values.get("input", ""), values["cue"]))
    values.setdefault("solved", _join(values["context"], values.get("answer", "")))
    return values


def _fmt(template: str, values: dict, style: str, task: str, what: str) -> str:
    try:
        return template.format(**values)
    except KeyError as e:
        have = ", ".join(sorted(values))
        raise StyleError(f"style {style!r} ({what}) uses the field {{{e.args[0]}}}, which task {task!r} does not "
                         f"have; its fields are: {have}. Add the field to every instance, or pick another "
                         f"style") from None


def _clean(text: str) -> str:
    """Trailing spaces off every line; a doubled space left by an empty field (not indentation) made single."""
    return "\n".join(_DOUBLE.sub(" ", line).rstrip(" ") for line in text.split("\n"))


def pick_shots(task: GenTask, inst: Instance, k: int, seed: int = 0) -> list[Instance]:
    """k pool instances for `inst`, drawn with a seed from (task, instance id, seed); never `inst` itself.

    Raises StyleError when the pool holds fewer than k usable examples.
    """
    pool = [p for p in task.pool if p.id != inst.id and p.fields.get("input") != inst.fields.get("input")]
    if k > len(pool):
        raise StyleError(f"task {task.name!r}: a style asks for {k} examples but the few-shot pool holds "
                         f"{len(pool)}; give the task a larger `pool` or use a style with fewer shots")
    return random.Random(f"{task.name}-{inst.id}-{seed}").sample(pool, k)


def render(task: GenTask, inst: Instance, style: Style | str, seed: int = 0) -> str:
    """The exact prompt text for `inst` under `style` (a Style or a built-in/task style name).

    Raises StyleError naming the field and the style when a field is missing, and KeyError-free ValueError
    for an unknown style name.
    """
    if isinstance(style, str):
        registry = style_registry(task)
        if style not in registry:
            raise ValueError(f"unknown prompt style {style!r}; valid: {', '.join(registry)}")
        style = registry[style]
    values = _values(task, inst)
    if style.shots or "{example}" in style.template:
        shots = pick_shots(task, inst, max(style.shots, 1), seed)
        done = [_clean(_fmt(style.shot_template, _values(task, s), style.name, task.name, "examples"))
                for s in shots]
        values["shots"] = "\n".join(done)
        values["example"] = done[0]
        wrong = _values(task, shots[0], answer=shots[0].fields.get("wrong", ""))
        if "{counterexample}" in style.template and not wrong["answer"]:
            raise StyleError(f"style {style.name!r} needs a wrong answer (field `wrong`) on the pool instances of "
                             f"task {task.name!r}")
        values["counterexample"] = _clean(_fmt(style.shot_template, wrong, style.name, task.name, "examples"))
    return _clean(_fmt(style.template, values, style.name, task.name, "template"))
