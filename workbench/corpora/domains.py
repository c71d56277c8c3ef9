"""Small non-story domains for routing studies: arithmetic facts and code-like lines.

arith  a few true facts per document: "3 + 4 = 7. 9 - 2 = 7. 2 * 5 = 10."
code   a tiny straight-line program: "x = 3\\ny = x + 4\\nprint(y)" (values stay small, results exact)
Here: `arith_doc()`, `code_doc()`. Deterministic given the `random.Random` passed in.
"""
from __future__ import annotations

import random

_OPS = ("+", "-", "*")
_VARS = ("a", "b", "c", "x", "y", "z", "n", "m", "total", "count", "apples", "cats", "score", "steps")
_FUNCS = ("add", "double", "half", "square", "inc")


def arith_fact(rng: random.Random) -> str:
    """One true fact with small numbers; subtraction never goes below zero."""
    op = rng.choice(_OPS)
    if op == "*":
        a, b = rng.randint(0, 10), rng.randint(0, 10)
        return f"{a} * {b} = {a * b}."
    a, b = rng.randint(0, 20), rng.randint(0, 20)
    if op == "-":
        a, b = max(a, b), min(a, b)
        return f"{a} - {b} = {a - b}."
    return f"{a} + {b} = {a + b}."


def arith_doc(rng: random.Random) -> str:
    return " ".join(arith_fact(rng) for _ in range(rng.randint(3, 8)))


def code_doc(rng: random.Random) -> str:
    """A short program whose printed value is computed as it is written."""
    names = rng.sample(_VARS, 3)
    env: dict[str, int] = {}
    lines = []
    for name in names[:2]:
        env[name] = rng.randint(0, 9)
        lines.append(f"{name} = {env[name]}")
    a, b, c = names
    op = rng.choice(_OPS)
    env[c] = eval(f"{env[a]} {op} {env[b]}")   # noqa: S307 - two small ints and a fixed operator
    lines.append(f"{c} = {a} {op} {b}")
    if rng.random() < 0.5:
        f = rng.choice(_FUNCS)
        body = {"add": "return n + 1", "double": "return n * 2", "half": "return n // 2", "square": "return n * n",
                "inc": "return n + 1"}[f]
        lines = [f"def {f}(n):", f"    {body}"] + lines + [f"print({f}({c}))"]
    else:
        lines.append(f"print({c})")
    return "\n".join(lines)
