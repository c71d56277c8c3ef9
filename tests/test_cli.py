"""The `workbench` command: every subcommand is registered and errors are clean (exit 2, no traceback)."""
import subprocess
import sys

import pytest

from workbench.cli import build_parser, main

SUBCOMMANDS = ["corpus", "validate", "tokenizer", "models", "train", "generate", "score"]


def test_all_subcommands_registered():
    choices = build_parser()._subparsers._group_actions[0].choices
    assert set(SUBCOMMANDS) <= set(choices)


def test_models_lists_every_preset(capsys):
    from workbench.config import PRESETS
    from workbench.translation.models import MT_PRESETS
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert [ln.split()[0] for ln in lines] == list(PRESETS) + list(MT_PRESETS)
    assert "2.45M" in lines[-1] and "translation" in lines[-1]


def test_console_script_reports_errors_cleanly(tmp_path):
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "tokenizer", "--corpus", str(tmp_path / "nope.txt"),
                          "--out", str(tmp_path / "tok")], capture_output=True, text=True)
    assert out.returncode == 2
    assert "error" in out.stderr and "Traceback" not in out.stderr


def test_tokenizer_refuses_a_non_empty_out_without_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    corpus = tmp_path / "c.txt"
    corpus.write_text("Once upon a time a fox ran home.\n\nThe end came soon.\n" * 20)
    assert main(["tokenizer", "--corpus", str(corpus), "--vocab-size", "300", "--out", str(run)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]
    assert main(["tokenizer", "--corpus", str(corpus), "--vocab-size", "280", "--out", str(run), "--overwrite"]) == 0
    assert (run / "tokenizer.json").exists()


@pytest.mark.parametrize("bad", [["--nonsense"], []])
def test_bad_usage_exits_nonzero(bad):
    with pytest.raises(SystemExit) as exc:
        main(bad)
    assert exc.value.code != 0


def test_train_rejects_unknown_preset_before_touching_the_corpus(tmp_path, capsys):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("One short story.\n")       # far too small for a tokenizer: the preset error must come first
    assert main(["train", "--preset", "nope", "--corpus", str(corpus), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'" in err and "dense-tiny" in err


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_score_refuses_a_limit_below_one(limit, capsys):
    assert main(["score", "--model", "no-such-model-here", "--task", "ending", "--limit", limit]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err


def test_score_all_without_channel_pass(capsys):
    assert main(["score", "--model", "tiny-dense", "--task", "ending", "--limit", "4", "--no-channel", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"dcpmi"' in out and '"channel"' not in out
    assert main(["score", "--model", "tiny-dense", "--task", "ending", "--scoring", "channel", "--no-channel"]) == 2


def test_a_closed_pipe_is_not_an_error():
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-m", "workbench.cli", "models"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()                       # like `workbench models | head -1`
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0 and "error" not in err
