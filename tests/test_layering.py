"""The architecture promise: compute never imports UI; plots never import widgets."""
import subprocess
import sys

COMPUTE = ["workbench", "workbench.models", "workbench.tokenizer", "workbench.moe", "workbench.corpora",
           "workbench.train", "workbench.probes.attention", "workbench.probes.routing", "workbench.scoring"]


def _loaded(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_compute_does_not_import_ui():
    code = ("import importlib, sys\n"
            f"for m in {COMPUTE!r}: importlib.import_module(m)\n"
            "print([m for m in ('plotly', 'ipywidgets', 'matplotlib') if m in sys.modules])")
    assert _loaded(code) == "[]"


def test_plots_do_not_import_widgets():
    code = ("import pkgutil, importlib, sys, workbench.plots as p\n"
            "for m in pkgutil.iter_modules(p.__path__): importlib.import_module('workbench.plots.' + m.name)\n"
            "print('ipywidgets' in sys.modules)")
    assert _loaded(code) == "False"


def test_production_code_never_imports_the_test_helpers():
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "workbench"
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "testing.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [f"{'.' * node.level}{node.module or ''}"] if isinstance(node, ast.ImportFrom) else [])
            if any(n.endswith("testing") and ("workbench" in n or n.startswith(".")) for n in names):
                offenders.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert not offenders, f"production code imports workbench.testing: {offenders}"
