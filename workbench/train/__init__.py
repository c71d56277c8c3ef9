"""Training tiny causal LMs: `train()` (notebooks) and `workbench train` (scripts), one implementation.

Here: TrainConfig (settings), train() -> TrainResult (model, history, evals, samples, checkpoints),
generate() (sampling), load_checkpoint(), the run-folder rules (`runfolder`: lock, resume/overwrite), and
data-parallel runs over several processes or GPUs (`distributed`: DDP inside the loop; `launch`: torchrun).
Not here: model presets (`workbench.config`), plots and the live notebook panel (`workbench.plots.training`,
`workbench.widgets.training`).
"""
from .callbacks import Callback, PrintProgress, StopAfter, StopAtLoss
from .checkpoint import CheckpointError, list_checkpoints, load_checkpoint, validate_checkpoint
from .config import TrainConfig
from .generate import generate
from .loop import TrainResult, TrainState, train
from .runfolder import RunFolderBusy, RunFolderError

__all__ = ["train", "TrainConfig", "TrainResult", "TrainState", "generate", "load_checkpoint", "Callback",
           "PrintProgress", "StopAfter", "StopAtLoss", "CheckpointError", "list_checkpoints", "validate_checkpoint",
           "RunFolderError", "RunFolderBusy"]


class _CallableModule(__import__("types").ModuleType):
    """`import workbench as wb; wb.train(...)` calls train() while `wb.train.TrainConfig` stays reachable."""

    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
