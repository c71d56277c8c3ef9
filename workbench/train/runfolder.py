"""Run folders (`train(out_dir=...)`, `workbench train --out`): one run at a time, never mixed with another.

`lock(out_dir)` holds an exclusive lock on out_dir/.lock for the whole run; it is released when the run ends
or its process dies. A second run into the same folder fails at once with RunFolderBusy naming the holder.
`prepare()` applies the rules, under that lock:
  - a new or empty folder (the lock file aside): any run;
  - a non-empty folder: only resume=True (continue its run), resume=<one of its checkpoints>, or
    overwrite=True, which deletes the old run's files first. Overwrite is refused for a folder that does not
    look like a run folder and for one holding an input of this run (corpus, tokenizer);
  - resume=True with overwrite=True is refused: they contradict.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:          # Windows
    fcntl = None

LOCK_FILE = ".lock"


class RunFolderError(ValueError):
    """The run folder cannot take this run; the message names the folder and what to do."""


class RunFolderBusy(RunFolderError):
    """Another run holds the run folder's lock."""


def _try_lock(f) -> bool:
    """Take an exclusive non-blocking lock on the open file `f`; False when another holder has it."""
    try:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            import msvcrt
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        return True
    except BlockingIOError:
        return False
    except PermissionError:       # msvcrt reports a held lock this way
        if fcntl is None:
            return False
        raise
    except OSError as err:        # e.g. a file system without locks: run, but say the folder is unprotected
        warnings.warn(f"could not lock {f.name} ({err}); nothing stops a second run into the same folder",
                      RuntimeWarning, stacklevel=4)
        return True


@contextlib.contextmanager
def lock(out_dir: str | Path):
    """Hold the exclusive lock of run folder `out_dir` (created if missing) for the `with` block."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(f"{out_dir} is a file, not a folder: give a folder as --out (out_dir)")
    out_dir.mkdir(parents=True, exist_ok=True)
    f = open(out_dir / LOCK_FILE, "a+")
    try:
        if not _try_lock(f):
            try:
                f.seek(0)
                holder = f.read().strip()
            except OSError:
                holder = ""
            who = f"pid {holder}" if holder else "pid unknown"
            if holder == str(os.getpid()):
                who += ", this same process: another train() call, e.g. a background TrainingPanel"
            raise RunFolderBusy(f"{out_dir} is in use by another training run ({who}): wait for it to end, "
                                f"or choose another --out (out_dir). The lock ({out_dir / LOCK_FILE}) is "
                                "released when that run ends.")
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield out_dir
    finally:
        f.close()             # releases the lock


def contents(out_dir: str | Path) -> list[Path]:
    """What the folder holds besides the lock file (empty for a missing folder)."""
    out_dir = Path(out_dir)
    return sorted(p for p in out_dir.iterdir() if p.name != LOCK_FILE) if out_dir.is_dir() else []


def prepare(out_dir: str | Path, resume=False, overwrite: bool = False, reads=()) -> None:
    """Check that a run may write into `out_dir` (see the module docstring) and, with `overwrite`, delete the
    old run there. Call it holding lock(out_dir). `reads`: the run's inputs (paths are never deleted)."""
    out_dir = Path(out_dir)
    if resume is True and overwrite:
        raise RunFolderError(f"resume and overwrite contradict each other: --resume (resume=True) continues the run "
                             f"in {out_dir}, --overwrite (overwrite=True) deletes it; pass one of them")
    entries = contents(out_dir)
    if not entries or resume is True:
        return
    if resume and _inside(resume, out_dir):
        if overwrite:
            raise RunFolderError(f"overwrite would delete {resume}, the checkpoint to resume from; drop --overwrite "
                                 "(overwrite=True)")
        return
    if not overwrite:
        raise RunFolderError(f"{out_dir} is not empty: it holds {describe(out_dir, entries)}. To continue that run "
                             "pass --resume (resume=True); to replace it pass --overwrite (overwrite=True); "
                             "or choose a new --out (out_dir).")
    _clear(out_dir, entries, reads)


def describe(out_dir: Path, entries: list[Path]) -> str:
    """A short account of a folder's contents, for messages."""
    ckpts = sorted(p.name for p in (out_dir / "checkpoints").glob("step-*")) if (out_dir / "checkpoints").is_dir() \
        else []
    if ckpts or (out_dir / "train_config.json").exists():
        shown = ", ".join(ckpts[-3:]) if ckpts else "none"
        final = "; a final model" if (out_dir / "model.safetensors").exists() else ""
        return f"a training run (checkpoints: {'..., ' if len(ckpts) > 3 else ''}{shown}{final})"
    names = ", ".join(p.name for p in entries[:5]) + (", ..." if len(entries) > 5 else "")
    return f"{len(entries)} file(s) or folder(s) ({names})"


def _clear(out_dir: Path, entries: list[Path], reads) -> None:
    run_like = any(p.name in ("checkpoints", "train_config.json") for p in entries) \
        or all(p.name.startswith(".tmp-") for p in entries)
    if not run_like:
        raise RunFolderError(f"refusing to overwrite {out_dir}: it holds {describe(out_dir, entries)} and does not "
                             "look like a training run folder (no train_config.json or checkpoints/); choose a new "
                             "or empty --out (out_dir)")
    for r in reads:
        if isinstance(r, (str, os.PathLike)) and _inside(r, out_dir):
            raise RunFolderError(f"refusing to overwrite {out_dir}: it holds {r}, an input of this run; move that "
                                 "out of the folder or choose another --out (out_dir)")
    for p in entries:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _inside(path, folder: Path) -> bool:
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents
