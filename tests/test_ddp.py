"""Data-parallel training through torchrun (gloo on CPU, 2 processes): the same run as one process, rank 0 alone
writes, checkpoints resume with another number of processes, and bad requests are refused before any start."""
import re
import shutil
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from workbench.testing import TINY_DENSE, tiny_tokenizer, word_stories
from workbench.train import PrintProgress, list_checkpoints, train
from workbench.train.data import TokenData
from workbench.train.distributed import check_devices
from workbench.train.launch import torchrun_command

# global batch 4 = 2 micro-batches of 2 rows per step; each of 2 processes takes 1 row of every micro-batch
RUN = dict(steps=6, batch_size=2, grad_accum=2, seq_len=32, warmup=2, lr=1e-2, eval_every=0, log_every=1,
           checkpoint_every=3, sample_max_new_tokens=8, seed=0)
RTOL = 1e-5      # losses and gradient norms, relative
# weights (|w| ~ 0.01..1): AdamW's update m/sqrt(v) is ~lr per element whatever the gradient's size, so where a
# gradient element is near zero float rounding of the gradient average (all-reduce, or FSDP2's reduce-scatter:
# divide, then sum) moves it by far more than the rounding itself: seen 2e-6 (AVX-512) to 2.3e-5 (AVX2 CPU) in
# 1 of 2048 elements. A real fault (a missing average, a wrong shard) moves weights by ~lr = 1e-2 per step.
WEIGHT_ATOL = 1e-4
FSDP_ATOL = WEIGHT_ATOL

# Installed as sitecustomize in the torchrun processes: logs which rank calls the checkpoint and final-model writers,
# and how many rows each rank's training batches have; or makes rank 1 die when it asks for step WB_CRASH_AT's batch.
RECORDER = textwrap.dedent('''
    import os
    if os.environ.get("LOCAL_RANK") == "1" and os.environ.get("WB_CRASH_AT"):
        from workbench.train.data import TokenData
        real = TokenData.batch

        def batch(self, step, *args, **kwargs):
            if step == int(os.environ["WB_CRASH_AT"]):
                os._exit(3)
            return real(self, step, *args, **kwargs)
        TokenData.batch = batch
    if os.environ.get("LOCAL_RANK") is not None and os.environ.get("WB_SAVE_LOG"):
        import workbench.train.checkpoint as ckpt
        import workbench.train.loop as loop
        from workbench.train.data import TokenData

        def rows(fn):
            def call(*args, **kwargs):
                x, y = fn(*args, **kwargs)
                with open(os.environ["WB_SAVE_LOG"], "a") as f:
                    f.write(f"rank {os.environ['RANK']} batch of {x.shape[0]}\\n")
                return x, y
            return call
        TokenData.batch = rows(TokenData.batch)

        def recording(what, fn):
            def call(*args, **kwargs):
                with open(os.environ["WB_SAVE_LOG"], "a") as f:
                    f.write(f"rank {os.environ['RANK']} {what}\\n")
                return fn(*args, **kwargs)
            return call
        ckpt.save_checkpoint = recording("checkpoint", ckpt.save_checkpoint)
        loop.save_final = recording("final", loop.save_final)
        import workbench.train.fsdp as fsdp
        fsdp.shard = recording("shard", fsdp.shard)
''')


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A corpus file, a tokenizer folder and the model settings, shared by the CLI, Python and torchrun runs."""
    root = tmp_path_factory.mktemp("ddp-inputs")
    (root / "corpus.txt").write_text("\n\n".join(word_stories()))
    tiny_tokenizer().save_pretrained(root / "tok")
    return root


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """The single-process run everything is compared with."""
    out = tmp_path_factory.mktemp("ddp-ref")
    r = train("dense-nano", str(inputs / "corpus.txt"), tokenizer=str(inputs / "tok"), out_dir=out, **RUN, **TINY_DENSE)
    return r, out


def _cli_two_processes(inputs, root, *extra, **env) -> int:
    """`workbench train --nproc-per-node 2` of the RUN into root/out, with RECORDER in its processes."""
    from workbench.cli import main
    (root / "hooks").mkdir()
    (root / "hooks" / "sitecustomize.py").write_text(RECORDER)
    sets = [f"{k}={v}" for k, v in TINY_DENSE.items()]
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in RUN.items() if k != "sample_max_new_tokens"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(root / "hooks"))
        for k, v in env.items():
            mp.setenv(k, v)
        return main(["train", "--preset", "dense-nano", "--corpus", str(inputs / "corpus.txt"), "--tokenizer",
                     str(inputs / "tok"), "--out", str(root / "out"), *flags, "--device", "cpu", "--set", *sets,
                     "sample_max_new_tokens=8", "--nproc-per-node", "2", *extra])


@pytest.fixture(scope="module")
def two_processes(inputs, tmp_path_factory, reference):
    """The RUN in 2 processes, every save and batch recorded, run once for the tests below."""
    root = tmp_path_factory.mktemp("ddp-two")
    return _cli_two_processes(inputs, root, WB_SAVE_LOG=str(root / "saves.log")), root


def _history(result_or_dir):
    import pandas as pd
    if hasattr(result_or_dir, "history"):
        return result_or_dir.history
    return pd.read_json(result_or_dir / "history.jsonl", lines=True)


def _assert_same_run(history, weights, reference, weight_atol=WEIGHT_ATOL):
    ref, _ = reference
    for col in ("loss", "grad_norm", "lr"):
        torch.testing.assert_close(torch.tensor(history[col].to_list()), torch.tensor(ref.history[col].to_list()),
                                   rtol=RTOL, atol=0, msg=lambda m, col=col: f"history column {col}: {m}")
    assert history["step"].to_list() == list(range(1, RUN["steps"] + 1))
    ref_w = ref.model.state_dict()
    assert set(weights) <= set(ref_w) and "model.embed_tokens.weight" in weights
    for k, v in weights.items():
        torch.testing.assert_close(v, ref_w[k], rtol=RTOL, atol=weight_atol, msg=lambda m, k=k: f"weight {k}: {m}")


def test_two_processes_train_as_one_and_only_rank_0_writes(two_processes, reference):
    rc, root = two_processes
    out = root / "out"
    assert rc == 0
    _assert_same_run(_history(out), load_file(out / "model.safetensors"), reference)
    assert [p.name for p in list_checkpoints(out)] == ["step-000003", "step-000006"]
    assert not list((out / "checkpoints").glob(".tmp-*"))
    log = (root / "saves.log").read_text().splitlines()
    # step 3, the final checkpoint (step 6) and the final model: written once each, by rank 0
    assert [line for line in log if "batch" not in line] == ["rank 0 checkpoint", "rank 0 checkpoint", "rank 0 final"]
    # each rank trained on half of every global micro-batch of 2 rows: 6 steps x 2 micro-batches of 1 row
    assert sorted(line for line in log if "batch" in line) == ["rank 0 batch of 1"] * 12 + ["rank 1 batch of 1"] * 12
    ref_val = reference[0].evals["val_loss"].iloc[-1]
    assert abs(float((out / "evals.csv").read_text().splitlines()[-1].split(",")[1]) - ref_val) < 1e-5 * ref_val


def test_a_dying_rank_stops_the_run_and_its_checkpoint_resumes_in_one_process(reference, inputs, tmp_path):
    rc = _cli_two_processes(inputs, tmp_path, WB_CRASH_AT="3")     # rank 1 dies asking for step 4 (0-based 3)
    out = tmp_path / "out"
    assert rc != 0 and not (out / "model.safetensors").exists()       # torchrun stopped rank 0 too
    assert [p.name for p in list_checkpoints(out)] == ["step-000003"]
    r = train(None, str(inputs / "corpus.txt"), out_dir=out, resume=True, **RUN)     # 2-process state, 1 process
    _assert_same_run(r.history, r.model.state_dict(), reference)


def test_devices_from_python_resume_a_one_process_checkpoint_in_two(reference, inputs, tmp_path, capsys):
    _, ref_out = reference
    step3 = tmp_path / "from-one" / "step-000003"
    shutil.copytree(ref_out / "checkpoints" / "step-000003", step3)
    r = train(None, str(inputs / "corpus.txt"), out_dir=tmp_path / "two", resume=step3, devices=2,
              callbacks=[PrintProgress(every_s=0)], **RUN)
    _assert_same_run(r.history, r.model.state_dict(), reference)
    assert r.out_dir == tmp_path / "two" and [p.name for p in r.checkpoints] == ["step-000006"]
    assert capsys.readouterr().err.count("step      6/6 loss") == 1       # callbacks run on rank 0 only


def test_fsdp_shards_train_as_one_and_checkpoints_resume_sharded_or_not(reference, inputs, tmp_path):
    rc = _cli_two_processes(inputs, tmp_path, "--fsdp", WB_SAVE_LOG=str(tmp_path / "saves.log"))
    out = tmp_path / "out"
    assert rc == 0
    _assert_same_run(_history(out), load_file(out / "model.safetensors"), reference, FSDP_ATOL)
    log = [line for line in (tmp_path / "saves.log").read_text().splitlines() if "batch" not in line]
    assert sorted(log[:2]) == ["rank 0 shard", "rank 1 shard"]           # sharded (FSDP2), not replicated
    assert log[2:] == ["rank 0 checkpoint", "rank 0 checkpoint", "rank 0 final"]
    ref_val = reference[0].evals["val_loss"].iloc[-1]
    assert abs(float((out / "evals.csv").read_text().splitlines()[-1].split(",")[1]) - ref_val) < 1e-5 * ref_val
    # the sharded run's step-3 checkpoint (gathered optimizer state) resumes in one process ...
    r = train(None, str(inputs / "corpus.txt"), out_dir=tmp_path / "one", resume=out / "checkpoints" / "step-000003",
              **RUN)
    _assert_same_run(r.history, r.model.state_dict(), reference, FSDP_ATOL)
    # ... and a single-process checkpoint resumes sharded in two
    step3 = tmp_path / "from-one" / "step-000003"
    shutil.copytree(reference[1] / "checkpoints" / "step-000003", step3)
    r = train(None, str(inputs / "corpus.txt"), out_dir=tmp_path / "two", resume=step3, devices=2, fsdp=True, **RUN)
    _assert_same_run(r.history, r.model.state_dict(), reference, FSDP_ATOL)
    assert type(r.model).__name__ == "LlamaForCausalLM"                 # rank 0 returns a plain model


def test_more_processes_than_gpus_is_refused(capsys):
    with pytest.raises(ValueError, match=r"4 processes on cuda need 4 GPUs .* has only 2 GPUs: use "
                                         r"--nproc-per-node 2"):
        check_devices(4, "cuda", n_gpus=2)
    with pytest.raises(ValueError, match="has no GPU: train on CPU with --device cpu"):
        check_devices(2, "cuda", n_gpus=0)
    with pytest.raises(ValueError, match=r"device='cuda:1' names one GPU.*--device cuda"):
        check_devices(2, "cuda:1", n_gpus=2)
    check_devices(2, "cuda", n_gpus=2)
    check_devices(8, "cpu", n_gpus=0)
    check_devices(3, None, n_gpus=0)              # no GPU: CPU processes
    if torch.cuda.device_count() < 64:            # the command line refuses before starting anything
        from workbench.cli import main
        rc = main(["train", "--corpus", "none.txt", "--out", "none", "--device", "cuda", "--nproc-per-node", "64"])
        assert rc == 2 and "64 processes on cuda need 64 GPUs" in capsys.readouterr().err


def test_refusals_before_launch(tmp_path, capsys):
    from workbench.cli import main
    rc = main(["train", "--corpus", "none.txt", "--out", str(tmp_path / "none"), "--device", "cpu", "--batch-size",
               "3", "--nproc-per-node", "2"])
    assert rc == 2 and "batch_size=3 is the global batch" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()                          # refused before any process started
    texts = word_stories()
    with pytest.raises(ValueError, match=r"callbacks\[0\] \(Unpicklable\) does not pickle"):
        class Unpicklable(PrintProgress):
            def __init__(self):
                super().__init__()
                self.hook = lambda: None
        train("dense-nano", texts, devices=2, callbacks=[Unpicklable()], **TINY_DENSE)
    with pytest.raises(ValueError, match=r"batch_size=3 is the global batch and must split evenly among the 2 "
                                         r"processes: use a multiple of 2"):
        train("dense-nano", texts, devices=2, batch_size=3, **TINY_DENSE)


def test_an_error_inside_the_processes_is_said_once_without_torchrun_report(inputs, tmp_path, capfd):
    from workbench.cli import main
    rc = main(["train", "--preset", "dense-nano", "--corpus", str(inputs / "corpus.txt"), "--out", str(tmp_path / "o"),
               "--device", "cpu", "--steps", "2", "--warmup", "1", "--batch-size", "2", "--nproc-per-node", "2",
               "--set", "tokenizer_vocab_size=100000"])
    err = capfd.readouterr().err
    assert rc == 2                                          # a bad setting, as in one process
    assert err.count("error: corpus too small for vocab_size=100000") == 1, err
    assert re.search(r"the training processes stopped \(exitcode: 2, local rank [01]\)", err)   # whichever exits first
    assert "Traceback" not in err and "ChildFailedError" not in err


def test_shards_make_up_the_global_batch():
    data = TokenData(torch.arange(2000), torch.arange(100), seq_len=8)
    x, y = data.batch(5, 1, 6, 2, seed=3)
    parts = [data.batch(5, 1, 6, 2, seed=3, shard=(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
    with pytest.raises(ValueError, match="batch_size=6 must split evenly among 4 processes"):
        data.batch(0, 0, 6, 1, seed=0, shard=(0, 4))


def test_torchrun_command_is_standalone_unless_given_a_rendezvous():
    one = torchrun_command(2, ["-m", "workbench.train", "--steps", "3"])
    assert one[1:5] == ["-m", "torch.distributed.run", "--nproc-per-node=2", "--standalone"]
    assert one[-4:] == ["-m", "workbench.train", "--steps", "3"]
    many = torchrun_command(8, ["-m", "workbench.train"], {"nnodes": "2", "node_rank": "1",
                                                             "rdzv_endpoint": "head:29500", "rdzv_backend": "c10d"})
    assert "--standalone" not in many
    assert {"--nnodes=2", "--node-rank=1", "--rdzv-endpoint=head:29500", "--rdzv-backend=c10d"} <= set(many)
    with pytest.raises(ValueError, match=r"unknown torchrun setting\(s\) \['nproc'\]"):
        torchrun_command(2, [], {"nproc": 3})


def test_compile_wraps_ddp_around_the_lean_forward_not_inside_it(tmp_path):
    """Under torch.compile the DDP wrapper is compiled, not a compiled forward wrapped: dynamo then splits the
    graph at DDP's gradient buckets (DDPOptimizer), so the all-reduce overlaps the backward. A compiled forward
    inside DDP is one autograd node whose gradients all arrive at the end (no overlap)."""
    import torch.distributed as dist
    from torch._dynamo.eval_frame import OptimizedModule
    from torch.nn.parallel import DistributedDataParallel as DDP

    from workbench.testing import tiny_model
    from workbench.train import distributed
    from workbench.train.kernels import gpu_forward
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = tiny_model("dense")
        lean = gpu_forward(model, "torch")
        step = distributed.train_forward(model, lean, True, False, distributed.Ranks(0, 2))
        assert isinstance(step.ddp, DDP) and isinstance(step.call, OptimizedModule)
        assert step.call._orig_mod is step.ddp and step.ddp.module._lean is lean      # compiled outside DDP
        plain = distributed.train_forward(model, lean, False, False, distributed.Ranks(0, 2))
        assert plain.call is plain.ddp                                                 # eager: DDP itself
    finally:
        dist.destroy_process_group()
