"""`python -m workbench.train ARGS` is `workbench train ARGS`: the module torchrun starts in each process,
    torchrun --nproc-per-node N -m workbench.train --preset dense-tiny --corpus DIR --out DIR ...
(`--spec FILE` is the form `train(..., devices=N)` uses; see workbench.train.launch)."""
import sys

if len(sys.argv) == 3 and sys.argv[1] == "--spec":
    from workbench.train.launch import worker
    sys.exit(worker(sys.argv[2]))

from workbench.cli import main  # noqa: E402

sys.exit(main(["train", *sys.argv[1:]]))
