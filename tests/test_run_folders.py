"""Run folders: one run at a time (lock), no silent mixing or overwriting, resume only from a complete
checkpoint of the same model, records saved atomically with the weights, and the diverged step named right."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workbench.testing import TINY_DENSE, WORDS, tiny_model, tiny_tokenizer, word_stories
from workbench.train import CheckpointError, StopAfter, list_checkpoints, train, validate_checkpoint
from workbench.train import runfolder
from workbench.train.runfolder import RunFolderBusy, RunFolderError

TINY = TINY_DENSE
FAST = dict(batch_size=4, seq_len=32, warmup=2, lr=1e-2, eval_every=0, log_every=1, sample_n=1,
            sample_max_new_tokens=4)


stories = word_stories    # fixtures `tok` and `texts`: tests/conftest.py


def run(out, tok, texts, preset="dense-nano", steps=2, **kw):
    return train(preset, texts, tokenizer=tok, out_dir=out, steps=steps, **{**TINY, **FAST, **kw})


def snapshot(folder: Path) -> dict:
    """Relative path -> bytes of every file under `folder` except the lock file."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != runfolder.LOCK_FILE}


HOLDER = ("import importlib.util, sys\n"
          "spec = importlib.util.spec_from_file_location('runfolder', sys.argv[1])\n"
          "rf = importlib.util.module_from_spec(spec); spec.loader.exec_module(rf)\n"
          "with rf.lock(sys.argv[2]):\n"
          "    print('locked', flush=True)\n"
          "    sys.stdin.readline()\n")


@pytest.mark.skipif(sys.platform == "win32", reason="the lock test drives a POSIX subprocess")
def test_a_second_run_into_a_locked_folder_fails_and_leaves_the_first_intact(tok, texts, tmp_path):
    out = tmp_path / "run"
    run(out, tok, texts, checkpoint_every=1)
    before = snapshot(out)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, runfolder.__file__, str(out)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for flags in (dict(resume=True, steps=4), dict(overwrite=True), {}):
            with pytest.raises(RunFolderBusy, match=rf"{out}.*in use by another training run \(pid {holder.pid}\)"):
                run(out, tok, texts, **{"steps": 2, **flags})
        assert snapshot(out) == before                       # nothing deleted, nothing written
    finally:
        holder.communicate("\n", timeout=30)
    assert run(out, tok, texts, resume=True, steps=3).history["step"].tolist() == [1, 2, 3]   # released


def test_the_lock_is_taken_in_process_and_released_after_errors(tok, texts, tmp_path):
    out = tmp_path / "run"
    with runfolder.lock(out):
        with pytest.raises(RunFolderBusy, match=rf"pid {os.getpid()}, this same process"):
            run(out, tok, texts)
    with pytest.raises(ValueError, match="seq_len=500 exceeds"):      # fails inside the run, holding the lock
        run(out, tok, texts, seq_len=500)
    with runfolder.lock(out):                                        # ...and released it
        pass
    assert len(run(out, tok, texts).history) == 2                    # the failed run left the folder empty


def test_a_non_empty_folder_is_refused_without_resume_or_overwrite(tok, texts, tmp_path, capsys):
    from workbench.cli import main
    from workbench.tokenizer import save_tokenizer
    out = tmp_path / "run"
    run(out, tok, texts, checkpoint_every=1)
    before = snapshot(out)
    with pytest.raises(RunFolderError, match=rf"{out} is not empty: it holds a training run.*step-000002.*"
                                             r"--resume.*--overwrite"):
        run(out, tok, texts, preset="moe-nano")
    with pytest.raises(RunFolderError, match="contradict"):
        run(out, tok, texts, resume=True, overwrite=True)
    assert snapshot(out) == before
    corpus, tok_dir = tmp_path / "corpus.txt", tmp_path / "tok"
    corpus.write_text("\n".join(texts))
    save_tokenizer(tok, tok_dir)
    rc = main(["train", "--preset", "dense-nano", "--corpus", str(corpus), "--out", str(out), "--tokenizer",
               str(tok_dir), "--steps", "2"])
    assert rc == 2 and "is not empty" in capsys.readouterr().err
    assert snapshot(out) == before

    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="is not empty"):
        run(other, tok, texts)
    with pytest.raises(RunFolderError, match="does not look like a training run folder"):
        run(other, tok, texts, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_the_old_run_entirely(tok, texts, tmp_path):
    out = tmp_path / "run"
    run(out, tok, texts, steps=4, checkpoint_every=1)
    assert len(list_checkpoints(out)) == 4
    r = run(out, tok, texts, preset="moe-nano", steps=2, overwrite=True)
    assert [p.name for p in list_checkpoints(out)] == ["step-000002"]             # no dense leftovers
    assert json.loads((out / "config.json").read_text())["model_type"] == "mixtral"
    assert [json.loads(ln)["step"] for ln in (out / "history.jsonl").read_text().splitlines()] == [1, 2]
    assert r.history["step"].tolist() == [1, 2]
    corpus = out / "corpus.txt"                         # an input inside the folder is never deleted
    corpus.write_text("\n".join(texts))
    with pytest.raises(RunFolderError, match="an input of this run"):
        train("dense-nano", str(corpus), tokenizer=tok, out_dir=out, steps=2, overwrite=True, **TINY, **FAST)
    assert corpus.exists() and (out / "checkpoints/step-000002").is_dir()


def test_resume_with_nothing_to_resume_is_refused(tok, texts, tmp_path, capsys):
    empty = tmp_path / "empty"
    with pytest.raises(CheckpointError, match=rf"nothing to resume in {empty}: no checkpoint with a trainer state "
                                              rf".*{empty / 'checkpoints'}.*drop --resume"):
        run(empty, tok, texts, resume=True)
    assert not list_checkpoints(empty)
    light = tmp_path / "light"
    run(light, tok, texts, steps=2, checkpoint_every=1, checkpoint_light=True)
    with pytest.raises(CheckpointError, match="only light checkpoints step-000001"):
        run(light, tok, texts, resume=True, steps=4)
    from workbench.cli import main
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(texts))
    assert main(["train", "--corpus", str(corpus), "--out", str(empty), "--resume", "--steps", "2"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_resume_at_or_past_steps_trains_nothing_and_says_so(tok, texts, tmp_path, capsys):
    out = tmp_path / "run"
    run(out, tok, texts, steps=3, checkpoint_every=1)
    before = snapshot(out)
    r = run(out, tok, texts, resume=True, steps=2)
    assert r.stop_reason == ("nothing to train: the run is already at step 3 of --steps 2; "
                             "raise --steps to train further")
    assert r.history["step"].tolist() == [1, 2, 3] and snapshot(out) == before
    from workbench.cli import main
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(texts))
    capsys.readouterr()
    assert main(["train", "--corpus", str(corpus), "--out", str(out), "--resume", "--steps", "3",
                 "--batch-size", "4", "--seq-len", "32"]) == 0
    printed = capsys.readouterr().out
    assert "nothing to train: the run is already at step 3 of --steps 3" in printed and "trained" not in printed


def test_resume_with_a_different_model_names_the_fields(tok, texts, tmp_path):
    out = tmp_path / "run"
    run(out, tok, texts, steps=2)
    with pytest.raises(ValueError, match=r"differs from the saved one in hidden_size \(saved 32, requested 64\).*"
                                         r"drop --preset.*new --out"):
        run(out, tok, texts, resume=True, steps=3, hidden_size=64)
    with pytest.raises(ValueError, match=r"model_type \(saved 'llama', requested 'mixtral'\)"):
        run(out, tok, texts, preset="moe-nano", resume=True, steps=3)
    with pytest.raises(ValueError, match=r"num_hidden_layers \(saved 2, requested 3\)"):   # no preset: the saved one
        train(None, texts, out_dir=out, resume=True, steps=3, num_hidden_layers=3, **FAST)
    r = train(None, texts, out_dir=out, resume=True, steps=3, **FAST)      # as saved: tokenizer and model
    assert r.history["step"].tolist() == [1, 2, 3] and r.model.config.hidden_size == 32


@pytest.fixture(scope="module")
def uninterrupted(tok, texts, tmp_path_factory):
    return run(tmp_path_factory.mktemp("full"), tok, texts, steps=6, checkpoint_every=2)


def truncate_line(path, line):
    rows = path.read_text().splitlines()
    path.write_text("\n".join(rows[:line - 1] + [rows[line - 1][: len(rows[line - 1]) // 2]]))


@pytest.mark.parametrize("damage, named", [
    (lambda ck: (ck / "history.jsonl").unlink(), "history.jsonl .*is missing"),
    (lambda ck: truncate_line(ck / "history.jsonl", 3), "history.jsonl line 3 is corrupted"),
    (lambda ck: (ck / "history.jsonl").write_text("\n".join((ck / "history.jsonl").read_text().splitlines()[:2])),
     r"history.jsonl has steps 1..2 in 2 rows, expected steps 1..4"),
    (lambda ck: truncate_line(ck / "samples.json", 3), "samples.json line 3 is corrupted"),
    (lambda ck: truncate_line(ck / "evals.csv", 2), "evals.csv line 2 is corrupted"),
], ids=["history-missing", "history-truncated", "history-short", "samples-truncated", "evals-truncated"])
def test_a_checkpoint_with_broken_records_is_skipped(tok, texts, tmp_path, uninterrupted, damage, named):
    out = tmp_path / "run"
    part = run(out, tok, texts, steps=6, checkpoint_every=2, eval_every=2, callbacks=[StopAfter(4)])
    assert [p.name for p in part.checkpoints] == ["step-000002", "step-000004"]
    newest = out / "checkpoints/step-000004"
    damage(newest)
    with pytest.raises(CheckpointError, match=named):
        validate_checkpoint(newest)
    with pytest.warns(RuntimeWarning, match=rf"skipping checkpoint {newest}: .*{named}.*earlier step-000002"):
        resumed = run(out, tok, texts, steps=6, checkpoint_every=2, eval_every=2, resume=True)
    assert resumed.history["step"].tolist() == list(range(1, 7))
    assert resumed.history["loss"].tolist() == pytest.approx(uninterrupted.history["loss"].tolist(), abs=1e-6)
    assert resumed.evals["step"].tolist() == [2, 4, 6]
    validate_checkpoint(newest)                          # rewritten whole by the resumed run


def test_records_are_inside_the_checkpoint_before_it_is_renamed_into_place(tok, texts, tmp_path, monkeypatch):
    from workbench.train import checkpoint
    seen = []
    real = checkpoint.replace_dir

    def spy(src, dst):
        seen.append((dst.name, sorted(p.name for p in Path(src).iterdir())))
        real(src, dst)
    monkeypatch.setattr(checkpoint, "replace_dir", spy)
    run(tmp_path / "run", tok, texts, steps=2, checkpoint_every=1)
    assert [name for name, _ in seen] == ["step-000001", "step-000002"]
    assert all({"history.jsonl", "evals.csv", "samples.json", "trainer_state.pt"} <= set(files) for _, files in seen)


def test_non_finite_loss_names_the_step_that_diverged(tok, texts, tmp_path):
    model = tiny_model("dense", tokenizer=tok, max_position_embeddings=64).train()
    calls = {"n": 0}

    def poison(module, args, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 4 else output     # the 4th forward is the 4th step
    model.model.norm.register_forward_hook(poison)
    with pytest.warns(RuntimeWarning, match="non-finite loss at step 4"):
        r = train(model, texts, tokenizer=tok, out_dir=tmp_path, steps=10, checkpoint_every=3, **FAST)
    assert r.stopped_early and r.stop_reason.startswith("non-finite loss at step 4:")
    assert r.history["step"].tolist() == [1, 2, 3] and [p.name for p in r.checkpoints] == ["step-000003"]


def test_non_finite_loss_found_at_a_flush_names_the_step_too():
    """On CUDA the check happens when a window of steps is flushed to the history."""
    from types import SimpleNamespace
    from workbench.train.loop import NonFiniteLoss, _flush
    pending = [{"step": i, "t": 0.0, "loss": torch.tensor(float("nan") if i == 3 else 1.0),
                "lm_loss": torch.tensor(1.0)} for i in range(6)]          # 0-based indices, as the loop keeps them
    with pytest.raises(NonFiniteLoss, match="non-finite loss at step 4$") as err:
        _flush(SimpleNamespace(tokens_per_step=1, history=[]), pending, 0.0, [])
    assert err.value.step == 4


def test_a_staged_window_publishes_the_same_rows_as_a_flush():
    """The lagged log (one GPU) stages a window and publishes it later: the same rows as a flush, the next
    window starting at the staged window's last step, and a non-finite loss still named by its step."""
    from types import SimpleNamespace
    from workbench.train.records import NonFiniteLoss, flush, publish, stage

    def window(bad=None):
        return [{"step": i, "t": 10.0 + i, "loss": torch.tensor(float("nan") if i == bad else 1.0 + i),
                 "grad_norm": torch.tensor(0.5), "expert_load": torch.tensor([[0.25, 0.75]]), "lr": 1e-3}
                for i in range(4)]

    a, b = SimpleNamespace(tokens_per_step=8, history=[]), SimpleNamespace(tokens_per_step=8, history=[])
    seen = []
    cb = SimpleNamespace(on_log=lambda state, rows: seen.append([r["step"] for r in rows]))
    flush(a, window(), 5.0, [])
    pending = window()
    staged = stage(b, pending)
    assert pending == [] and b.history == [] and seen == []          # nothing published yet
    assert publish(b, None, 7.0, [cb]) == 7.0                        # no window: the start stays
    assert publish(b, staged, 5.0, [cb], lagged=True) == 13.0        # the next window starts at its last step
    assert b.history == a.history and seen == [[1, 2, 3, 4]]
    assert b.history[0]["tokens_per_s"] == 4 * 8 / (13.0 - 5.0)
    with pytest.raises(NonFiniteLoss, match="non-finite loss at step 3$"):
        publish(b, stage(b, window(bad=2)), 13.0, [cb], lagged=True)
