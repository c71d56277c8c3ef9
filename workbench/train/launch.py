"""Starting a data-parallel run: torchrun (torch.distributed.run) launches the processes, never this module.

Three ways in, one engine:
    torchrun --nproc-per-node N -m workbench.train ARGS            # ARGS: those of `workbench train`
    workbench train ARGS --nproc-per-node N [--nnodes M --node-rank R --rdzv-endpoint HOST:PORT ...]
    train(..., devices=N)                                          # Python: waits, returns rank 0's result
`workbench train --nproc-per-node` runs `python -m torch.distributed.run` with the same command line (its
rendezvous flags passed on; `--standalone`, a free local port, when none are given); `train(devices=N)` does
the same with its arguments pickled to a temporary file that each worker reads (`python -m workbench.train
--spec FILE`), and reads rank 0's model and records back from there. The processes themselves run
`train()` as one rank each: see `workbench.train.distributed`. When one process dies, torchrun stops the
others; checkpoints are written atomically, so the newest complete one stays usable by --resume.
"""
from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from .distributed import check_batch, check_devices, env_ranks, under_torchrun

# `workbench train` flags passed on to torchrun as they are (several machines). Not --max-restarts: a restarted
# process reruns the same command line, which a run folder already holding the run refuses without --resume.
RENDEZVOUS_FLAGS = ("nnodes", "node_rank", "rdzv_backend", "rdzv_endpoint", "rdzv_id", "master_addr", "master_port")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class DistributedRunError(RuntimeError):
    """The torchrun processes of a `train(devices=N)` call failed; the message ends with their last lines."""


def add_arguments(parser) -> None:
    """Add --nproc-per-node and torchrun's rendezvous flags (RENDEZVOUS_FLAGS) to a `workbench train` parser."""
    g = parser.add_argument_group("several processes (data parallel, through torchrun)")
    g.add_argument("--nproc-per-node", dest="nproc_per_node", type=int, metavar="N",
                   help="train in N processes on this machine (one per GPU on CUDA, gloo on CPU) started by torchrun;"
                        " --batch-size stays the global batch")
    for name in RENDEZVOUS_FLAGS:
        g.add_argument(f"--{name.replace('_', '-')}", dest=name, help="passed on to torchrun (see torchrun --help)")


def torchrun_command(nproc: int, target: list[str], rendezvous: dict | None = None) -> list[str]:
    """The command line that starts `nproc` processes per machine running `target` (e.g. ["-m", "workbench.train",
    "--preset", ...]) under torchrun. `rendezvous`: {flag name in RENDEZVOUS_FLAGS: value or None}; with no
    rendezvous set (one machine) torchrun runs --standalone, on a free port. ValueError for an unknown flag."""
    flags = {k: v for k, v in (rendezvous or {}).items() if v is not None}
    unknown = sorted(set(flags) - set(RENDEZVOUS_FLAGS))
    if unknown:
        raise ValueError(f"unknown torchrun setting(s) {unknown}; known: {list(RENDEZVOUS_FLAGS)}")
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={int(nproc)}"]
    if not flags or (set(flags) == {"nnodes"} and str(flags["nnodes"]) == "1"):
        cmd.append("--standalone")
    cmd += [f"--{k.replace('_', '-')}={v}" for k, v in flags.items()]
    return cmd + list(target)


def _env() -> dict:
    """The workers' environment: this one, with the workbench importable even when it is not installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    return env


def run_cli(args) -> int:
    """`workbench train ... --nproc-per-node N`: start the processes through torchrun with this very command line
    (`args.argv`, the workbench arguments; each process runs `python -m workbench.train` on them) and return 0
    when every process succeeded, else the failed process's exit status (2: a bad setting) or torchrun's. The
    processes print as they go; an error is printed once (rank 0's, which every rank raises), then one line
    saying that the processes stopped; torchrun's own report (its traceback and failure table) only with --debug."""
    rendezvous = {k: getattr(args, k, None) for k in RENDEZVOUS_FLAGS}
    i = args.argv.index("train")                      # before it only the global --debug
    rest = args.argv[i + 1:] + (["--debug"] if "--debug" in args.argv[:i] else [])
    cmd = torchrun_command(args.nproc_per_node, ["-m", "workbench.train", *rest], rendezvous)
    code, _, failed = _stream(cmd, keep_report="--debug" in rest, stdout=None)
    if code:
        sys.stderr.write(f"workbench train: error: the training processes stopped ({failed or f'status {code}'}); "
                         "the error is above (--debug shows torchrun's report)\n")
        return _exit_status(failed) or code
    return 0


def wants_launch(args) -> bool:
    """True when `workbench train` should start processes (--nproc-per-node above 1, or a multi-node flag) rather
    than train here. Inside torchrun's processes it is False; a --nproc-per-node there must match torchrun's own
    (ValueError otherwise: torchrun already started the processes). Raises ValueError, before anything starts,
    for more processes than GPUs on CUDA or a --batch-size the processes cannot split evenly."""
    n = getattr(args, "nproc_per_node", None)
    if under_torchrun():
        local = env_ranks().local_world
        if n is not None and n != local:
            raise ValueError(f"--nproc-per-node {n} given inside a torchrun run of {local} processes per node: "
                             "torchrun already started them; drop --nproc-per-node")
        return False
    multi = any(getattr(args, k, None) is not None for k in RENDEZVOUS_FLAGS)
    if n is None:
        if multi:
            raise ValueError("torchrun's rendezvous flags (--nnodes, --rdzv-endpoint, ...) need --nproc-per-node N "
                             "(processes on this machine)")
        return False
    check_devices(n, getattr(args, "device", None))
    nodes = str(getattr(args, "nnodes", None) or "1")
    if nodes.isdigit():              # a fixed number of machines (not an elastic range "MIN:MAX")
        from .config import TrainConfig
        check_batch(getattr(args, "batch_size", None) or TrainConfig.batch_size, n * int(nodes))
    return n > 1 or multi


def _picklable(name: str, value) -> None:
    try:
        pickle.dumps(value)
    except Exception as err:            # noqa: BLE001 - any pickling failure
        raise ValueError(f"devices=N sends train()'s arguments to the torchrun processes by pickling, and {name} "
                         f"({type(value).__name__}) does not pickle ({err}); pass a picklable value (a preset name "
                         f"or a corpus path), or drop it, or start the processes yourself with torchrun") from None


def train_processes(devices, model_or_preset, corpus, tokenizer, out_dir, config, callbacks, resume, overwrite,
                    trust_remote_code, model_kw):
    """train(..., devices=N): run the training in N processes started by torchrun (--standalone, this machine),
    wait, and return rank 0's TrainResult (model and tokenizer loaded back from what rank 0 saved). The workers'
    output lines are printed to sys.stderr as they arrive (visible in a notebook too). Raises ValueError for
    an argument that does not pickle, for more processes than GPUs on CUDA, or when already under torchrun;
    DistributedRunError when the processes fail."""
    if under_torchrun():
        raise ValueError(f"devices={devices} starts processes with torchrun, but this process already is one "
                         f"(WORLD_SIZE={os.environ.get('WORLD_SIZE')}); drop devices")
    check_devices(devices, config.device)
    check_batch(config.batch_size, devices)
    spec = {"model_or_preset": model_or_preset, "corpus": corpus, "tokenizer": tokenizer,
            "out_dir": None if out_dir is None else str(Path(out_dir).resolve()), "config": config,
            "callbacks": list(callbacks), "resume": resume, "overwrite": overwrite,
            "trust_remote_code": trust_remote_code, "model_kw": dict(model_kw)}
    for name, value in spec.items():
        if name == "callbacks":
            for i, cb in enumerate(value):
                _picklable(f"callbacks[{i}]", cb)
        else:
            _picklable(name, value)
    with tempfile.TemporaryDirectory(prefix="workbench-ddp-") as tmp:
        spec["result_dir"] = str(Path(tmp) / "result")
        (Path(tmp) / "spec.pkl").write_bytes(pickle.dumps(spec))
        cmd = torchrun_command(devices, ["-m", "workbench.train", "--spec", str(Path(tmp) / "spec.pkl")])
        code, tail, _ = _stream(cmd, keep_report=False)
        if code:
            raise DistributedRunError(f"the {devices} training processes failed; their last lines:\n" + "\n".join(tail))
        return _read_result(Path(spec["result_dir"]))


# torchrun's own log line when a process fails ("... api.py:1002] failed (exitcode: 2) local_rank: 0 ..."): what
# follows it is torchrun's report (its ChildFailedError traceback and failure table), not the workers' output
_FAILED = re.compile(r"\bfailed \((exitcode: -?\d+)\) local_rank: (\d+)")


def _stream(cmd: list[str], keep_report: bool, stdout=subprocess.PIPE) -> tuple[int, list[str], str | None]:
    """Run `cmd` (torchrun), copying its workers' lines to sys.stderr as they arrive, and drop torchrun's own
    failure report unless `keep_report`. `stdout=None` leaves the workers' stdout on this process's stdout (e.g.
    --json), PIPE merges it into the copied lines. Returns (exit status, the last 30 lines copied, the failure as
    "exitcode: N, local rank R" or None)."""
    lines: list[str] = []
    failed = None
    with subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE if stdout is None else subprocess.STDOUT,
                          text=True, env=_env(), bufsize=1) as proc:
        for line in proc.stderr if stdout is None else proc.stdout:
            hit = failed is None and _FAILED.search(line)
            if hit:
                failed = f"{hit.group(1)}, local rank {hit.group(2)}"
            if failed is None or keep_report:
                sys.stderr.write(line)
                lines = (lines + [line.rstrip("\n")])[-30:]
    return proc.returncode, lines, failed


def _exit_status(failed: str | None) -> int | None:
    """The failed worker's exit status from _stream's failure text (2: a bad setting, as one process's CLI)."""
    m = re.match(r"exitcode: (-?\d+)", failed or "")
    return int(m.group(1)) if m and int(m.group(1)) > 0 else None


def worker(spec_path: str) -> int:
    """One torchrun process of train(devices=N): train as its rank; rank 0 saves the result for the caller."""
    from .checkpoint import save_final
    from .loop import train
    spec = pickle.loads(Path(spec_path).read_bytes())
    result = train(spec["model_or_preset"], spec["corpus"], tokenizer=spec["tokenizer"], out_dir=spec["out_dir"],
                   config=spec["config"], callbacks=spec["callbacks"], resume=spec["resume"],
                   overwrite=spec["overwrite"], trust_remote_code=spec["trust_remote_code"], **spec["model_kw"])
    if env_ranks().main:
        out = Path(spec["result_dir"])
        save_final(result.model, result.tokenizer, out)
        fields = {k: getattr(result, k) for k in ("history", "evals", "samples", "checkpoints", "stopped_early",
                                                  "stop_reason", "timing", "tokens_per_step")}
        (out / "result.pkl").write_bytes(pickle.dumps({**fields, "out_dir": result.out_dir,
                                                       "tokenizer": result.tokenizer}))
    return 0


def _read_result(path: Path):
    """The TrainResult rank 0 left in `path` (written by `worker`, in this call's private temporary folder)."""
    from ..models import load_model
    from .loop import TrainResult
    saved = pickle.loads((path / "result.pkl").read_bytes())
    model, _ = load_model(path, trust_remote_code=False, local_only=True)
    return TrainResult(model=model, **saved)
