"""Notebook set-up in one call: seeds, torch threads, plotly renderer, hub-offline defaults."""
from __future__ import annotations

import os
import random


def setup_notebook(seed: int = 0, threads: int | None = None, offline: bool = True) -> None:
    """Seed python/numpy/torch, use all cores (or `threads`), render plotly offline in JupyterLab."""
    import numpy as np
    import torch

    if offline:  # the default path never reaches a hub; load_model(local_only=False) still can when asked
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ.setdefault(var, "1")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    import plotly.io as pio
    pio.renderers.default = "plotly_mimetype"   # drawn by JupyterLab's bundled plotly extension: no CDN script
