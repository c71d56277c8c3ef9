"""Busy machines: training takes fewer torch threads when other processes keep cores busy, and says so."""
import subprocess
import sys
import time
import warnings

import pytest
import torch

from workbench.train import setup
from workbench.train.setup import BusyMachineWarning, choose_threads

CPU = torch.device("cpu")


@pytest.fixture
def two_threads(monkeypatch):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    yield
    torch.set_num_threads(before)


def test_busy_core_takes_a_thread_away_with_a_warning(two_threads, monkeypatch):
    monkeypatch.setattr(setup, "_busy_cores", lambda interval=0.25: 0.9)
    with pytest.warns(BusyMachineWarning, match="about 1 of this machine's 2 cores busy: training with 1 torch"):
        assert choose_threads(None, CPU) == 1
    assert torch.get_num_threads() == 1


def test_quiet_machine_and_explicit_threads_are_left_alone(two_threads, monkeypatch):
    monkeypatch.setattr(setup, "_busy_cores", lambda interval=0.25: 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert choose_threads(None, CPU) == 2
        monkeypatch.setattr(setup, "_busy_cores", lambda interval=0.25: 2.0)
        assert choose_threads(2, CPU) == 2                      # the user insisted
        assert choose_threads(None, torch.device("cuda")) == 2  # GPU runs: threads do not matter
    assert torch.get_num_threads() == 2


def test_train_adapts_its_threads(two_threads, monkeypatch, tok, texts):
    from workbench.train import train
    monkeypatch.setattr(setup, "_busy_cores", lambda interval=0.25: 1.2)
    with pytest.warns(BusyMachineWarning):
        train("dense-nano", texts, tokenizer=tok, steps=2, batch_size=2, seq_len=16, eval_every=0, log_every=1,
              warmup=1, sample_max_new_tokens=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
              max_position_embeddings=32)
    assert torch.get_num_threads() == 1


def test_busy_cores_sees_another_process():
    spin = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 3: pass"])
    try:
        time.sleep(0.3)
        assert setup._busy_cores(0.5) >= 0.6
    finally:
        spin.kill()


def test_notebooks_take_fewer_threads_on_a_busy_machine(two_threads, monkeypatch, capsys):
    import workbench as wb
    monkeypatch.setattr(setup, "_busy_cores", lambda interval=0.25: 0.9)
    wb.setup_notebook(seed=0)
    assert torch.get_num_threads() == 1
    assert "keep about 1 of this machine's 2 cores busy: this notebook computes with 1 torch thread" in \
        capsys.readouterr().out
    monkeypatch.setattr(setup, "_busy_cores", lambda interval=0.25: 0.2)
    wb.setup_notebook(seed=0)
    assert torch.get_num_threads() == 2 and capsys.readouterr().out == ""
    wb.setup_notebook(seed=0, threads=1)                        # asked for: no measuring, no line
    assert torch.get_num_threads() == 1
