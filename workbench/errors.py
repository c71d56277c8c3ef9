"""One error boundary: every failure becomes a message saying what happened and what to do.

Here: `explain(exc)` -> (message, known) and `describe_error(exc)` -> message, used by the `workbench`
command (`cli.main`) and the widgets; `DiskFull` and `disk_full_guard()` (a full disk while writing, named by
folder); `ModelFileError` and `model_dir_problem()` (which file of a local model folder is missing or
unreadable, and how to fix it), used by `workbench.loading`.

Known failures (message names the file or setting and the fix; `known` is True):
  DiskFull, or any write that failed for lack of space  -> "no space left on <path> ..."
  the workbench's own errors (ValueError and its subclasses such as ModelFileError, CheckpointError,
  RunFolderError, RemoteCodeRefused; FileNotFoundError, FileExistsError and other OSErrors; KeyError)
                                                         -> their message, which names the file or field
  Hugging Face Hub unreachable or offline                -> the model is not local; give a folder or a default
  out of memory (CPU or GPU)                             -> lower the batch size / sequence length
  KeyboardInterrupt                                      -> "interrupted"
Failures without a file to name (a bare safetensors or JSON decoding error, transformers' "install
sentencepiece or tiktoken") get a corrected cause with known=False; anything else is summarised in one line
as "Type: message" with known=False (the command then points at --debug for the traceback).
"""
from __future__ import annotations

import contextlib
import errno
import json
from pathlib import Path

DISK_FULL_SIGNS = ("no space left on device", "os error 28", "storagefull", "disk quota exceeded",
                   "pytorchstreamwriter failed writing")
HUB_ERRORS = {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "RepositoryNotFoundError", "GatedRepoError",
              "RevisionNotFoundError", "HfHubHTTPError"}
NETWORK_MODULES = ("requests", "httpx", "httpcore", "urllib3")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model")


class DiskFull(OSError):
    """A write failed because the disk is full; the message names the folder, what survived and the fix."""

    def __init__(self, folder, what: str, kept: str = ""):
        super().__init__(errno.ENOSPC, "No space left on device", str(folder))
        kept = kept or "files written before are untouched"
        self.message = (f"no space left on the disk holding {folder} while writing {what}; {kept}. Free some "
                        "space (or write to another disk) and run again")

    def __str__(self) -> str:
        return self.message


class ModelFileError(ValueError):
    """A file of a local model or tokenizer folder is missing, truncated or corrupted; the message names it."""


def is_disk_full(exc: BaseException) -> bool:
    """True when `exc` (or an exception it was raised from) reports a full disk or a write cut short."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc).lower()
        torch_short_write = "inline_container.cc" in text and "unexpected pos" in text     # torch.save
        if torch_short_write or any(sign in text for sign in DISK_FULL_SIGNS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def disk_full_guard(folder, what: str, kept: str = ""):
    """Turn a full-disk failure inside the block into DiskFull naming `folder`, `what` and what was `kept`."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as err:
        if is_disk_full(err):
            raise DiskFull(folder, what, kept) from err
        raise


# ---- local model folders ------------------------------------------------------------------------------------

_RESAVE = ("copy or download the model again, or re-save it (workbench.save_model, or save_pretrained); a "
           "training run keeps earlier copies under checkpoints/")


def _json_problem(path: Path) -> str | None:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        return (f"{path} is truncated or corrupted (invalid JSON at line {err.lineno} column {err.colno}: "
                f"{err.msg}): {_RESAVE}")
    except (OSError, UnicodeDecodeError) as err:
        return f"{path} cannot be read ({err}): {_RESAVE}"
    return None


def _weights_problem(path: Path) -> str | None:
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open
            with safe_open(path, "pt") as f:
                keys = list(f.keys())
                if keys:
                    f.get_tensor(keys[-1])          # the last tensor: catches a file cut short
        else:
            import torch
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:                        # noqa: BLE001 - any failure means an unreadable file
        return f"{path} is truncated or corrupted ({type(err).__name__}: {err}); {_RESAVE}"
    return None


def model_dir_problem(folder, what: str = "model") -> str | None:
    """What is wrong with the local folder `folder` for loading `what` ("config", "tokenizer" or "model"),
    as a message naming the file and the fix; None when nothing is found (or `folder` is not a directory)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return None
    if what in ("config", "model"):
        if not (folder / "config.json").exists():
            return f"{folder} holds no model: config.json is missing; give the folder a model was saved to"
        found = _json_problem(folder / "config.json")
        if found:
            return found
    if what == "model":
        for name in ("generation_config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json"):
            if (folder / name).exists() and (found := _json_problem(folder / name)):
                return found
        weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
        if not weights:
            return (f"{folder} holds no weights (model.safetensors is missing): copy the model's weights there "
                    "or re-save it (workbench.save_model, or save_pretrained)")
        for path in weights:
            if found := _weights_problem(path):
                return found
    if what == "tokenizer":
        present = [n for n in TOKENIZER_FILES if (folder / n).exists()]
        if not set(present) - {"tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"}:
            return (f"the tokenizer files are missing in {folder} (no tokenizer.json or vocabulary files"
                    f"{'; only ' + ', '.join(present) if present else ''}): copy them from the model or tokenizer "
                    f"this one was trained with (tokenizer.save_pretrained('{folder}')), or train one with "
                    f"`workbench tokenizer --corpus CORPUS --out {folder}`")
        for name in present:
            if name.endswith(".json") and (found := _json_problem(folder / name)):
                return found.replace(_RESAVE, "copy the tokenizer files again, or re-save the tokenizer "
                                              f"(tokenizer.save_pretrained('{folder}'))")
        if "tokenizer.json" in present:
            try:
                from tokenizers import Tokenizer
                Tokenizer.from_file(str(folder / "tokenizer.json"))
            except Exception as err:                # noqa: BLE001
                return (f"{folder / 'tokenizer.json'} cannot be read by the tokenizers library ({err}): copy "
                        f"the tokenizer files again, or re-save the tokenizer (tokenizer.save_pretrained)")
    return None


# ---- the boundary -------------------------------------------------------------------------------------------

def _first_line(text: str, limit: int = 300) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[:limit] + "..."


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def explain(exc: BaseException) -> tuple[str, bool]:
    """(message, known) for `exc`; see the module docstring for the mapping. `known` is False when the
    message cannot name the file or cause (the traceback would help)."""
    if isinstance(exc, DiskFull):
        return str(exc), True
    if is_disk_full(exc):
        where = getattr(exc, "filename", None)
        return (f"no space left on {'the disk holding ' + str(where) if where else 'the disk'} (a write stopped "
                f"short: {_first_line(str(exc), 160)}); complete files written before are kept. Free some space "
                "(or write to another disk) and run again"), True
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", True
    names, text = _names(exc), str(exc)
    network = any(c.__module__.split(".")[0] in NETWORK_MODULES for c in type(exc).__mro__)
    if names & HUB_ERRORS or network or "couldn't connect to 'https://huggingface.co'" in text:
        return (f"could not get the model from the Hugging Face Hub ({_first_line(text, 200)}): it is not in "
                "the local cache and the Hub cannot be reached. Give a local model folder or a workbench default "
                "(tiny-dense, tiny-moe), or connect and run again"), True
    if "SafetensorError" in names:
        return (f"a .safetensors weights file is truncated or corrupted ({_first_line(text)}): copy or download "
                "the model again, or re-save it"), False
    if isinstance(exc, json.JSONDecodeError):
        return (f"a JSON file is truncated or corrupted ({exc.msg} at line {exc.lineno} column {exc.colno}): "
                "copy or re-save the file"), False
    if isinstance(exc, ValueError) and "sentencepiece or tiktoken" in text:
        return ("the tokenizer could not be built: the folder lacks a tokenizer.json (or vocabulary files), or "
                "holds only a sentencepiece/tiktoken model; copy the tokenizer files next to the model"), False
    if "OutOfMemoryError" in names or isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return (f"out of memory ({_first_line(text, 160) or type(exc).__name__}): lower the batch size "
                "(--batch-size) or sequence length (--seq-len), or use a smaller preset or model"), True
    if isinstance(exc, KeyError):
        arg = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else text
        return arg, True
    if isinstance(exc, (ValueError, OSError)):
        return text or type(exc).__name__, True
    return f"{type(exc).__name__}: {_first_line(text)}".rstrip(": "), False


def describe_error(exc: BaseException) -> str:
    """What happened and what to do, for any exception (see `explain`)."""
    return explain(exc)[0]
