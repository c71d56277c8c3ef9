"""Load configs, tokenizers and models without ever running code shipped with them.

Every `from_pretrained` in the workbench goes through `from_pretrained()` here. It passes
`trust_remote_code` to transformers explicitly (False unless the caller passed True), so transformers never
asks on stdin, and it refuses a local directory whose config.json or tokenizer_config.json has an `auto_map`
(custom code) before transformers reads it. A Hub model that needs custom code is refused by transformers
itself; that refusal is reported the same way. (`datasets.load_dataset` needs no guard: datasets >= 4
runs no loading scripts.)
Raises `RemoteCodeRefused` (a ValueError) naming the model, its `auto_map` entries (local directories) and
how to allow the code. When loading a local directory fails, the directory is checked and a missing,
truncated or corrupted file raises `ModelFileError` (a ValueError) naming that file and the fix.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import ModelFileError, model_dir_problem

CODE_FILES = ("config.json", "tokenizer_config.json")
HOW_TO_TRUST = ("pass --trust-remote-code (command line) or trust_remote_code=True (Python) only if you have "
                "read that code and trust its author")


class RemoteCodeRefused(ValueError):
    """A model, config or tokenizer needs code shipped with it, and trust_remote_code=True was not given."""


def auto_maps(where: str | Path) -> dict[str, dict]:
    """{file name: auto_map} for config.json / tokenizer_config.json of a local directory with a non-empty
    `auto_map`; {} for a Hub name or an unreadable file (transformers reports those)."""
    path = Path(where).expanduser()
    found = {}
    if path.is_dir():
        for name in CODE_FILES:
            try:
                data = json.loads((path / name).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("auto_map"):
                found[name] = data["auto_map"]
    return found


def check_remote_code(where: str | Path, trust_remote_code: bool = False) -> None:
    """Raise RemoteCodeRefused if the local directory `where` declares custom code and trust was not given."""
    found = {} if trust_remote_code is True else auto_maps(where)
    if found:
        entries = "; ".join(f"{name} has auto_map {json.dumps(m)}" for name, m in found.items())
        raise RemoteCodeRefused(f"the directory {Path(where)} ships its own Python code ({entries}); the "
                                f"workbench does not run it: {HOW_TO_TRUST}")


def from_pretrained(auto_class, where: str | Path, trust_remote_code: bool = False, **kw):
    """`auto_class.from_pretrained(where, trust_remote_code=..., **kw)` for AutoConfig, AutoTokenizer or an
    AutoModel* class; trust_remote_code is False unless it is exactly True. Raises RemoteCodeRefused, or
    ModelFileError when a local directory's file is missing or unreadable."""
    trust = trust_remote_code is True
    check_remote_code(where, trust)
    try:
        return auto_class.from_pretrained(where, trust_remote_code=trust, **kw)
    except Exception as err:
        if isinstance(err, ValueError) and not trust and "trust_remote_code" in str(err):
            raise RemoteCodeRefused(f"{where} needs its own Python code to load ({err}); the workbench does not "
                                    f"run it: {HOW_TO_TRUST}") from None
        name = getattr(auto_class, "__name__", "")
        found = model_dir_problem(where, "tokenizer" if "Tokenizer" in name else
                                  "config" if "Config" in name else "model")
        if found:
            raise ModelFileError(found) from err
        raise
