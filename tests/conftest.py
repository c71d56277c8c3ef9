import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(1)   # tiny models: one thread is faster than two (no synchronisation cost)


@pytest.fixture(scope="session")
def tiny_tok():
    from workbench.testing import tiny_tokenizer
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def tok(tiny_tok):
    """The tiny tokenizer, under the name the training tests use."""
    return tiny_tok


@pytest.fixture(scope="module")
def texts():
    """40 random-word stories for training-loop tests (a file may define its own `texts`)."""
    from workbench.testing import word_stories
    return word_stories()


@pytest.fixture(scope="session")
def tiny_dense(tiny_tok):
    from workbench.testing import tiny_model
    return tiny_model("dense", tokenizer=tiny_tok)


@pytest.fixture(scope="session")
def tiny_moe(tiny_tok):
    from workbench.testing import tiny_model
    return tiny_model("moe", tokenizer=tiny_tok)


@pytest.fixture(autouse=True)
def _tf32_restored():
    """train() turns on TF32 matmuls on CUDA for the rest of the process; a later test comparing float32
    results at tight tolerances must not inherit that."""
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
