"""The error boundary: every failure says what happened (naming the file or setting) and what to do.

One test per failure class of the hardening issue: a full disk while checkpointing, truncated weights, a
model folder without tokenizer files, a truncated tokenizer.json, a mistyped default name offline, MoE
settings on a dense preset, a model config error before any corpus work, a byte-order mark in task and
corpus files; then the boundary itself (CLI exit codes, --debug, widgets).
"""
import errno
import json
import shutil
import socket
import time

import pytest

from workbench.cli import main
from workbench.errors import DiskFull, ModelFileError, describe_error, explain
from workbench.models import load_model, resolve, save_model
from workbench.testing import TINY_DENSE, tiny_model, tiny_tokenizer, word_stories

TORCH_DISK_FULL = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1536 vs 1434")
TINY_SETS = [f"{k}={v}" for k, v in TINY_DENSE.items()]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny saved model folder (weights, config and tokenizer files)."""
    tok = tiny_tokenizer()
    path = tmp_path_factory.mktemp("saved") / "model"
    save_model(tiny_model("dense", tokenizer=tok), tok, path)
    return path


def copy_of(saved, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(saved, dst)
    return dst


def truncate(path, keep: int | None = None):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2 if keep is None else keep])


# ---- a full disk while checkpointing ------------------------------------------------------------------------

@pytest.mark.parametrize("failure", [TORCH_DISK_FULL, OSError(errno.ENOSPC, "No space left on device")],
                         ids=["torch-short-write", "ENOSPC"])
def test_full_disk_while_checkpointing_names_the_folder_and_keeps_the_previous_checkpoint(
        failure, tmp_path, monkeypatch):
    from workbench.train.checkpoint import checkpoint_problems, list_checkpoints, save_checkpoint, step_dir
    tok = tiny_tokenizer()
    model = tiny_model("dense", tokenizer=tok)
    first = save_checkpoint(step_dir(tmp_path, 2), model, tok, {"step": 2}, {})
    before = (first / "model.safetensors").read_bytes()

    def full(*a, **k):
        raise failure
    monkeypatch.setattr("workbench.train.checkpoint.torch.save", full)
    with pytest.raises(DiskFull) as err:
        save_checkpoint(step_dir(tmp_path, 4), model, tok, {"step": 4}, {})
    msg = str(err.value)
    assert f"no space left on the disk holding {tmp_path / 'checkpoints'}" in msg
    assert "step-000004" in msg and "step-000002 is kept" in msg and "--resume" in msg and "Free some space" in msg
    assert describe_error(err.value) == msg and explain(err.value)[1]
    assert err.value.errno == errno.ENOSPC
    assert list_checkpoints(tmp_path) == [first]                      # no half-written step-000004
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".tmp")]
    assert (first / "model.safetensors").read_bytes() == before and not checkpoint_problems(first, False)


def test_full_disk_during_a_cli_run_exits_2_with_the_kept_checkpoint(tmp_path, monkeypatch, capsys):
    import torch
    tok = tiny_tokenizer()
    tok.save_pretrained(tmp_path / "tok")
    corpus = tmp_path / "stories.txt"
    corpus.write_text("\n\n".join(word_stories()))
    real_save, calls = torch.save, []

    def save_then_fill(*a, **k):                                       # the first checkpoint fits, then none
        calls.append(1)
        if len(calls) > 1:
            raise TORCH_DISK_FULL
        return real_save(*a, **k)
    monkeypatch.setattr("workbench.train.checkpoint.torch.save", save_then_fill)
    out = tmp_path / "run"
    rc = main(["train", "--preset", "dense-nano", "--corpus", str(corpus), "--tokenizer", str(tmp_path / "tok"),
               "--out", str(out), "--steps", "4", "--checkpoint-every", "2", "--batch-size", "2", "--seq-len", "16",
               "--eval-every", "0", "--set", *TINY_SETS])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "no space left on the disk holding" in err and "step-000002 is kept" in err and "Traceback" not in err
    assert [p.name for p in (out / "checkpoints").iterdir() if not p.name.startswith(".")] == ["step-000002"]


def test_a_raw_full_disk_error_is_recognised():
    msg, known = explain(OSError(errno.ENOSPC, "No space left on device", "/data/run/x.bin"))
    assert known and "no space left on the disk holding /data/run/x.bin" in msg and "Free some space" in msg
    msg, known = explain(TORCH_DISK_FULL)
    assert known and msg.startswith("no space left on the disk")


# ---- model and tokenizer files ------------------------------------------------------------------------------

def test_truncated_weights_name_the_file(saved, tmp_path, capsys):
    model_dir = copy_of(saved, tmp_path)
    truncate(model_dir / "model.safetensors")
    with pytest.raises(ModelFileError) as err:
        load_model(model_dir)
    msg = str(err.value)
    assert str(model_dir / "model.safetensors") in msg and "truncated or corrupted" in msg and "re-save" in msg
    assert main(["generate", "--model", str(model_dir), "--n", "1", "--max-new-tokens", "2"]) == 2
    err = capsys.readouterr().err
    assert str(model_dir / "model.safetensors") in err and "Traceback" not in err


def test_a_folder_without_tokenizer_files_says_so(saved, tmp_path):
    model_dir = copy_of(saved, tmp_path)
    for f in model_dir.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            f.unlink()
    with pytest.raises(ModelFileError) as err:
        load_model(model_dir)
    msg = str(err.value)
    assert f"the tokenizer files are missing in {model_dir}" in msg and "sentencepiece" not in msg
    assert "save_pretrained" in msg and "workbench tokenizer" in msg


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json"])
def test_a_truncated_tokenizer_file_is_named(saved, tmp_path, name):
    from workbench.tokenizer import load_tokenizer
    model_dir = copy_of(saved, tmp_path)
    truncate(model_dir / name, keep=60)
    for load in (load_model, load_tokenizer):
        with pytest.raises(ModelFileError) as err:
            load(model_dir)
        msg = str(err.value)
        assert f"{model_dir / name} is truncated or corrupted" in msg and "re-save the tokenizer" in msg


def test_a_truncated_config_is_named(saved, tmp_path):
    model_dir = copy_of(saved, tmp_path)
    truncate(model_dir / "config.json", keep=40)
    with pytest.raises(ModelFileError, match="config.json is truncated or corrupted"):
        load_model(model_dir)


# ---- model names ---------------------------------------------------------------------------------------------

@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the network was contacted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("offline", [True, False])
def test_a_mistyped_default_fails_at_once_with_suggestions(offline, monkeypatch, no_network, capsys):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if offline:
            monkeypatch.setenv(var, "1")
        else:
            monkeypatch.delenv(var, raising=False)
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        resolve("tiny-dens")
    assert "Did you mean 'tiny-dense'?" in str(err.value) and "a folder holding a saved model" in str(err.value)
    assert main(["generate", "--model", "tiny-dens", "--n", "1"]) == 2
    assert "Did you mean 'tiny-dense'?" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 5


def test_model_name_errors_list_only_the_defaults_present(monkeypatch, tmp_path):
    import workbench.models as wm
    (tmp_path / "tiny-dense").mkdir()
    (tmp_path / "tiny-dense" / "config.json").write_text("{}")
    monkeypatch.setattr(wm, "DEFAULT_MODELS", {n: tmp_path / n for n in ("tiny-dense", "tiny-moe", "dense-4m")})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as err:
        resolve("tiny-dens")
    assert "Did you mean 'tiny-dense'?" in str(err.value) and "workbench default (tiny-dense)," in str(err.value)
    with pytest.raises(FileNotFoundError) as err:
        resolve("dense-4n")
    assert "'dense-4m' is part of the model family, trained by `make models`" in str(err.value)
    assert "Did you mean" not in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"model family's 'dense-4m', trained by `make models` \(needs a GPU\), "
                                                r"or restore data/models/dense-4m .*; the defaults present: tiny-dense$"):
        resolve("dense-4m")
    with pytest.raises(FileNotFoundError, match=r"the model family's 'moe-1m'"):
        resolve("tiny-moe")                                  # an alias names the member it stands for


def test_offline_a_hub_id_outside_the_cache_fails_at_once(monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not a Hub model in the local cache while offline"):
        resolve("nobody-here/no-such-model")
    with pytest.raises(FileNotFoundError, match="no local folder"):
        resolve("./no/such/folder")                     # a path cannot be a Hub id: refused online too
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert resolve("gpt2") == "gpt2" and resolve("owner/model") == "owner/model"   # online: left to the Hub


# ---- model settings ------------------------------------------------------------------------------------------

def test_moe_settings_on_a_dense_preset_are_refused(tmp_path, capsys):
    from workbench.config import get_preset
    with pytest.raises(ValueError) as err:
        get_preset("dense-nano", num_local_experts=4, num_experts_per_tok=5)
    msg = str(err.value)
    assert "['num_experts_per_tok', 'num_local_experts']" in msg and "apply only to moe presets" in msg
    assert "kind=moe" in msg
    assert get_preset("moe-nano", num_local_experts=4).num_local_experts == 4          # fine on an moe preset
    assert get_preset("dense-nano", kind="moe", num_local_experts=4).kind == "moe"
    rc = main(["train", "--preset", "dense-nano", "--corpus", str(tmp_path / "absent.txt"), "--out",
               str(tmp_path / "run"), "--set", "num_local_experts=4", "num_experts_per_tok=5"])
    err = capsys.readouterr().err
    assert rc == 2 and "apply only to moe presets" in err and "absent.txt" not in err


@pytest.mark.parametrize("bad, says", [
    (dict(hidden_size=30), "must divide hidden_size=30"),
    (dict(num_local_experts=4), "apply only to moe presets"),
    (dict(seq_len=1024), "seq_len=1024 exceeds the model's context window"),
])
def test_model_settings_are_checked_before_the_folder_or_the_corpus(bad, says, tmp_path):
    from workbench.train import train
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=says):
        train("dense-nano", tmp_path / "absent.txt", out_dir=out, **bad)   # the corpus would fail otherwise
    assert not out.exists()


def test_cli_reports_the_model_error_before_tokenizer_training(tmp_path, capsys):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("One short story.\n")          # far too small for a tokenizer: that error must not come first
    rc = main(["train", "--preset", "dense-nano", "--corpus", str(corpus), "--out", str(tmp_path / "run"),
               "--set", "hidden_size=30"])
    err = capsys.readouterr().err
    assert rc == 2 and "hidden_size=30" in err and "corpus too small" not in err


# ---- byte-order marks -----------------------------------------------------------------------------------------

def test_task_files_saved_with_a_byte_order_mark_read_cleanly(tmp_path):
    from workbench.scoring import load_task_file
    rows = [("Lily was happy.", "happy"), ("Tom was sad.", "sad")]
    (tmp_path / "t.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8-sig")
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows),
                                      encoding="utf-8-sig")
    for data in ("t.csv", "t.jsonl"):
        spec = tmp_path / f"{data}.yaml"
        spec.write_text(f"data: {data}\nchoices: [happy, sad]\n", encoding="utf-8-sig")
        task = load_task_file(spec)
        assert task.texts == ("Lily was happy.", "Tom was sad.") and task.golds == (0, 1)


def test_corpora_saved_with_a_byte_order_mark_read_cleanly(tmp_path):
    from workbench.corpora import load_corpus, read_texts
    (tmp_path / "c.jsonl").write_text('{"text": "One story."}\n{"text": "Two."}\n', encoding="utf-8-sig")
    (tmp_path / "c.txt").write_text("One story.\n\nTwo.\n", encoding="utf-8-sig")
    assert load_corpus(tmp_path / "c.jsonl").texts == ["One story.", "Two."]
    assert read_texts(tmp_path / "c.txt") == ["One story.", "Two."]


# ---- the boundary ---------------------------------------------------------------------------------------------

def test_unknown_errors_give_one_line_and_point_at_debug(monkeypatch, capsys):
    def broken(args):
        raise TypeError("something unexpected\nsecond line")
    monkeypatch.setattr("workbench.models._cli_models", broken)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert "workbench models: error: TypeError: something unexpected" in err and "second line" not in err
    assert "run again with --debug for the traceback" in err and "Traceback" not in err
    for argv in (["--debug", "models"], ["models", "--debug"]):
        with pytest.raises(TypeError, match="something unexpected"):
            main(argv)


@pytest.mark.parametrize("exc, says, known", [
    (KeyError("no record for model 'x'"), "no record for model 'x'", True),
    (FileNotFoundError("task file t.yaml does not exist"), "task file t.yaml does not exist", True),
    (json.JSONDecodeError("Expecting value", "{", 1), "JSON file is truncated or corrupted", False),
    (ValueError("You need to have sentencepiece or tiktoken installed"), "lacks a tokenizer.json", False),
    (MemoryError(), "out of memory", True),
    (OSError("We couldn't connect to 'https://huggingface.co' to load the files"), "Give a local model folder",
     True),
    (RuntimeError("boom"), "RuntimeError: boom", False),
])
def test_known_failures_map_to_their_fix(exc, says, known):
    msg, is_known = explain(exc)
    assert says in msg and is_known is known


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def stop(args):
        raise KeyboardInterrupt
    monkeypatch.setattr("workbench.models._cli_models", stop)
    assert main(["models"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_widgets_show_the_same_messages():
    from workbench.widgets.routing import _error_box
    from workbench.widgets.scoring import _error
    full = DiskFull("/data/run", "checkpoint step-000004", "the previous checkpoint step-000002 is kept")
    assert "no space left on the disk holding /data/run" in _error(full)
    assert "TypeError: bad" in _error_box(TypeError("bad")).value

