"""Notebook set-up in one call: seeds, torch threads, plotly renderer, hub-offline defaults."""
from __future__ import annotations

import os
import random


def setup_notebook(seed: int = 0, threads: int | None = None, offline: bool = True) -> None:
    """Seed python/numpy/torch, set torch's CPU threads, render plotly offline in JupyterLab, and turn off
    transformers' progress bars (in a notebook each is a widget).

    `threads`: None for one per core that other processes leave free. A core counts as busy when other processes
    use at least 0.75 of it over a quarter of a second (`train.setup._busy_cores`); then the notebook computes
    with fewer threads and prints a line saying so, because oversubscribed cores slow every thread down (notebook
    04 at full settings with one of 2 cores kept busy: 12.1 min on 2 threads against 3.2 min quiet). `train()`
    checks again at the start of each run."""
    import numpy as np
    import torch

    if offline:  # the default path never reaches a hub; load_model(local_only=False) still can when asked
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ.setdefault(var, "1")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    threads = threads or _free_cores()
    torch.set_num_threads(threads)
    import plotly.io as pio
    pio.renderers.default = "plotly_mimetype"   # drawn by JupyterLab's bundled plotly extension: no CDN script
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()           # "Loading weights" bars are widgets: state to save, nothing to learn


def _free_cores() -> int:
    """Cores other processes leave free (at least 1); prints a line when that is fewer than the machine has."""
    from .train.setup import _busy_cores
    cores = os.cpu_count() or 1
    if cores == 1:
        return 1
    busy = int(_busy_cores() + 0.25)
    free = max(1, cores - busy)
    if free < cores:
        print(f"Other processes keep about {busy} of this machine's {cores} cores busy: this notebook computes with "
              f"{free} torch thread(s) (oversubscribed cores slow every thread down); "
              f"wb.setup_notebook(threads={cores}) insists.")
    return free
