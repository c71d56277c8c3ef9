"""Loading never runs code shipped with a model or tokenizer unless trust_remote_code=True is given.

A tiny saved model gets modules whose import writes a marker file, named by `auto_map` in config.json and
tokenizer_config.json. Every public path must refuse it with a message naming the flag, never execute it and
never prompt (the command-line runs have stdin closed).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, \
    PreTrainedTokenizerFast

import workbench as wb
from workbench.cli import main
from workbench.loading import RemoteCodeRefused, check_remote_code, from_pretrained
from workbench.testing import _SENTENCES, tiny_model, tiny_tokenizer
from workbench.tokenizer import BOS, EOS, PAD, load_tokenizer

ROOT = Path(__file__).resolve().parent.parent
FLAG = "--trust-remote-code"
MODEL_MAP = {"AutoConfig": "custom_model.CustomConfig", "AutoModelForCausalLM": "custom_model.CustomModel"}
TOKENIZER_MAP = {"AutoTokenizer": [None, "tokenization_custom.CustomTokenizer"]}
TRAIN_ARGS = ["--preset", "dense-nano", "--batch-size", "2", "--seq-len", "16", "--log-every", "1",
              "--set", "hidden_size=32", "intermediate_size=64"]


def _edit_json(path: Path, **fields) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def plant(d: Path, model_type: str = "custom") -> Path:
    """Give the saved model in `d` its own code (auto_map in both configs); importing it writes d/MARKER."""
    marker = d / "MARKER"
    ran = f"from pathlib import Path\nPath({str(marker)!r}).write_text('foreign code ran')\n"
    (d / "custom_model.py").write_text(ran + "from transformers import LlamaConfig, LlamaForCausalLM\n"
                                       "class CustomConfig(LlamaConfig):\n    model_type = 'custom'\n"
                                       "class CustomModel(LlamaForCausalLM):\n    config_class = CustomConfig\n")
    (d / "tokenization_custom.py").write_text(ran + "from transformers import PreTrainedTokenizerFast\n"
                                              "class CustomTokenizer(PreTrainedTokenizerFast):\n    pass\n")
    _edit_json(d / "config.json", model_type=model_type, auto_map=MODEL_MAP)
    _edit_json(d / "tokenizer_config.json", tokenizer_class="CustomTokenizer", auto_map=TOKENIZER_MAP)
    return marker


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    d = tmp_path_factory.mktemp("planted")
    tok = tiny_tokenizer()
    tiny_model("dense", tokenizer=tok).save_pretrained(d)
    tok.save_pretrained(d)
    plant(d)
    return d


@pytest.fixture(autouse=True)
def never_ran(request):
    yield
    for name in ("planted", "planted_run"):
        d = request.node.funcargs.get(name)
        if d is not None:
            assert not list(Path(d).rglob("MARKER")), "the planted module was executed"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    (d / "corpus.txt").write_text("\n".join(_SENTENCES * 3))
    tiny_tokenizer().save_pretrained(d / "tok")
    return d


@pytest.fixture(scope="module")
def planted_run(corpus, tmp_path_factory):
    """A finished run whose newest checkpoint then got foreign code (model_type kept: only code is added)."""
    run = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "--corpus", str(corpus / "corpus.txt"), "--out", str(run), "--tokenizer",
                 str(corpus / "tok"), "--steps", "2", *TRAIN_ARGS]) == 0
    ckpt = sorted(p.parent for p in (run / "checkpoints").glob("*/config.json"))[-1]
    plant(ckpt, model_type="llama")
    return run


def _expect_refusal(err: Exception, where) -> None:
    msg = str(err)
    assert isinstance(err, ValueError) and FLAG in msg and "trust_remote_code=True" in msg
    assert str(where) in msg and "auto_map" in msg


# ---- the shared helper --------------------------------------------------------------------------------------

@pytest.mark.parametrize("auto_class", [AutoConfig, AutoTokenizer, AutoModelForCausalLM, AutoModelForSeq2SeqLM])
def test_every_auto_class_refuses_a_directory_with_auto_map(planted, auto_class):
    with pytest.raises(RemoteCodeRefused) as info:
        from_pretrained(auto_class, planted)
    _expect_refusal(info.value, planted)
    assert "custom_model.CustomModel" in str(info.value) and "tokenization_custom.CustomTokenizer" in str(info.value)


def test_check_reads_either_config_and_only_trust_lifts_it(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"auto_map": TOKENIZER_MAP}))
    with pytest.raises(RemoteCodeRefused, match="tokenizer_config.json has auto_map"):
        check_remote_code(tmp_path)
    with pytest.raises(RemoteCodeRefused):
        check_remote_code(tmp_path, trust_remote_code="yes")          # only True itself trusts
    check_remote_code(tmp_path, trust_remote_code=True)
    check_remote_code(ROOT / "data" / "models" / "tiny-dense")         # a workbench model declares no code
    check_remote_code("some-org/some-hub-model")                         # Hub names: transformers refuses


def test_a_hub_refusal_by_transformers_names_the_flag():
    class HubModel:
        @staticmethod
        def from_pretrained(where, **kw):
            assert kw["trust_remote_code"] is False
            raise ValueError(f"{where} contains custom code. Please pass the argument `trust_remote_code=True`")
    with pytest.raises(RemoteCodeRefused, match=f"some-org/model needs its own Python code.*{FLAG}"):
        from_pretrained(HubModel, "some-org/model")


# ---- Python API paths ------------------------------------------------------------------------------------------

def test_load_model_and_load_tokenizer_refuse(planted):
    for load in (lambda: wb.load_model(planted), lambda: wb.load_model(str(planted), local_only=True),
                 lambda: wb.load_model(planted, attn_implementation="eager"), lambda: load_tokenizer(planted)):
        with pytest.raises(RemoteCodeRefused) as info:
            load()
        _expect_refusal(info.value, planted)


def test_probe_scoring_and_routing_paths_refuse(planted, tiny_tok):
    from workbench.probes.attention import load_or_tiny
    from workbench.probes.routing_analyses import checkpoint_records
    from workbench.scoring.cli import _load
    from workbench.scoring.study import default_or_tiny
    for load in (lambda: load_or_tiny(str(planted)),        # refused, not silently replaced by a random model
                 lambda: checkpoint_records([(1, planted)], tiny_tok, ["Once upon a time"]),
                 lambda: default_or_tiny(str(planted)), lambda: _load(str(planted))):
        with pytest.raises(RemoteCodeRefused) as info:
            load()
        _expect_refusal(info.value, planted)


def test_attention_widget_shows_the_refusal(planted, tiny_tok, tiny_dense):
    from workbench.widgets.attention import AttentionExplorer
    ex = AttentionExplorer(tiny_dense, tiny_tok, "Once upon a time", name="tiny")
    ex.model_dir.value = str(planted)
    ex.compute()
    assert "ships its own Python code" in ex.status.value and FLAG in ex.status.value


def test_train_api_refuses_a_tokenizer_with_code(planted, tmp_path):
    with pytest.raises(RemoteCodeRefused):
        wb.train("dense-nano", list(_SENTENCES * 3), tokenizer=planted, out_dir=tmp_path / "out", steps=1)
    assert not (tmp_path / "out" / "tokenizer_config.json").exists()


def test_a_dataset_script_never_runs(tmp_path):
    from workbench.corpora import read_texts
    d = tmp_path / "ds"
    d.mkdir()
    (d / "ds.py").write_text(f"from pathlib import Path\nPath({str(tmp_path / 'MARKER')!r}).write_text('ran')\n")
    with pytest.raises(ValueError, match="cannot load dataset"):
        read_texts(f"hf:{d}")
    assert not (tmp_path / "MARKER").exists()


# ---- the command line, stdin closed ----------------------------------------------------------------------------

DRIVER = """
import contextlib, io, json, sys
from workbench.cli import main
out = {}
for name, argv in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    out[name] = [rc, err.getvalue()]
print(json.dumps(out))
"""


def _run(args, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_refuses_with_exit_code_2(planted):
    r = _run(["-m", "workbench.cli", "generate", "--model", str(planted), "--n", "1"])
    assert r.returncode == 2, r.stderr
    assert FLAG in r.stderr and str(planted) in r.stderr and "Traceback" not in r.stderr
    assert "[y/N]" not in r.stdout + r.stderr


def test_every_command_that_loads_refuses(planted, planted_run, corpus, tmp_path):
    txt = str(corpus / "corpus.txt")
    commands = {
        "generate": ["generate", "--model", str(planted), "--n", "1", "--max-new-tokens", "2"],
        "score": ["score", "--model", str(planted), "--task", "topic", "--limit", "2"],
        "train --tokenizer": ["train", "--corpus", txt, "--out", str(tmp_path / "out"), "--tokenizer", str(planted),
                              "--steps", "1", *TRAIN_ARGS],
        "train --resume": ["train", "--corpus", txt, "--out", str(planted_run), "--resume", "--steps", "4",
                           *TRAIN_ARGS],
    }
    r = _run(["-c", DRIVER, json.dumps(commands)])
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout.strip().splitlines()[-1])
    for name, (rc, err) in results.items():
        assert rc == 2, (name, err)
        assert FLAG in err and "auto_map" in err and "[y/N]" not in err, (name, err)
    assert not (tmp_path / "out" / "tokenizer_config.json").exists()


# ---- an explicit trust_remote_code=True reaches transformers ---------------------------------------------------

class Captured(Exception):
    pass


@pytest.fixture
def capture(monkeypatch):
    """Replace from_pretrained of the Auto classes: record (class, trust_remote_code), then stop (configs are
    read as plain Llama configs, no code, so that the load goes on to the tokenizer and the model)."""
    from transformers import LlamaConfig

    from workbench.models import resolve
    calls = []
    for cls in (AutoConfig, AutoTokenizer, AutoModelForCausalLM, AutoModelForSeq2SeqLM):
        def fake(where, _name=cls.__name__, **kw):
            calls.append((_name, kw.get("trust_remote_code", "missing")))
            if _name == "AutoConfig" and os.path.isdir(resolve(where)):
                return LlamaConfig.from_json_file(os.path.join(resolve(where), "config.json"))
            raise Captured(_name)
        monkeypatch.setattr(cls, "from_pretrained", staticmethod(fake))
    return calls


def test_trust_is_false_unless_given_and_true_passes_through(planted, planted_run, corpus, tmp_path, capture):
    with pytest.raises(Captured):
        wb.load_model("tiny-dense")
    assert capture[-2:] == [("AutoConfig", False), ("AutoTokenizer", False)]   # explicit False: never asks
    with pytest.raises(Captured):
        wb.load_model(planted, trust_remote_code=True)
    assert capture[-2:] == [("AutoConfig", True), ("AutoTokenizer", True)]
    txt = str(corpus / "corpus.txt")
    for argv, first in [(["generate", "--model", str(planted)], "AutoConfig"),
                        (["score", "--model", str(planted), "--task", "topic", "--limit", "2"], "AutoConfig"),
                        (["train", "--corpus", txt, "--out", str(tmp_path / "o"), "--tokenizer", str(planted),
                          "--steps", "1", *TRAIN_ARGS], "AutoTokenizer"),
                        (["train", "--corpus", txt, "--out", str(planted_run), "--resume", "--steps", "4",
                          *TRAIN_ARGS], "AutoTokenizer")]:
        n0 = len(capture)
        with pytest.raises(Captured):
            main(argv + [FLAG, "--debug"])               # --debug: the CLI re-raises instead of reporting
        new = capture[n0:]
        assert new and new[0][0] == first and all(trust is True for _, trust in new), (argv, new)


class CustomTokenizer(PreTrainedTokenizerFast):
    """Stands for a tokenizer class loaded from a model's own code."""


def test_a_trusted_custom_tokenizer_is_saved_as_plain_files(planted, corpus, tmp_path, monkeypatch):
    def fake(where, **kw):
        assert kw["trust_remote_code"] is True
        backend = Tokenizer.from_str(tiny_tokenizer().backend_tokenizer.to_str())
        tok = CustomTokenizer(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD)
        tok.init_kwargs["auto_map"] = TOKENIZER_MAP
        tok._auto_class = "AutoTokenizer"
        return tok
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", staticmethod(fake))
    out = tmp_path / "out"
    assert main(["train", "--corpus", str(corpus / "corpus.txt"), "--out", str(out), "--tokenizer", str(planted),
                 "--steps", "2", *TRAIN_ARGS, FLAG]) == 0
    monkeypatch.undo()
    saved = list(out.rglob("tokenizer_config.json"))
    assert saved and not list(out.rglob("*.py"))
    for f in saved:
        cfg = json.loads(f.read_text())
        assert "auto_map" not in cfg and cfg.get("tokenizer_class") != "CustomTokenizer", f
    check_remote_code(out)
    assert load_tokenizer(out)("Once upon a time")["input_ids"]


def test_every_load_call_in_the_package_passes_trust_remote_code():
    """Source check: every from_pretrained/from_config call in workbench/ names trust_remote_code explicitly,
    so no new load path can fall back to transformers' interactive default."""
    import ast
    from pathlib import Path
    root = Path(wb.__file__).parent
    missing = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in ("from_pretrained", "from_config") and \
                        not any(k.arg == "trust_remote_code" for k in node.keywords):
                    missing.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not missing, f"load calls without an explicit trust_remote_code: {missing}"
