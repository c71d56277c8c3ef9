"""Fixtures for real-browser tests: `lab_server(*notebook_names, **env)` starts JupyterLab and stops it afterwards."""
import pytest

from .harness import NOTEBOOKS, require_browser, start_lab


@pytest.fixture
def lab_server(tmp_path):
    """Factory: lab_server("02_x.ipynb", WB_FAST="1") -> Lab serving fresh copies from notebooks/."""
    started = []

    def start(*names, **env):
        require_browser()
        lab = start_lab([NOTEBOOKS / n for n in names], root=tmp_path / "lab", env={"WB_FAST": "1", **env})
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.stop()
