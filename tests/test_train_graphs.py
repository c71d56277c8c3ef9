"""CUDA graph steps (workbench.train.graphs): when they apply, the settings that turn them off, and, on a CUDA
device, that a graphed run trains exactly as an eager one (dense and MoE, gradient accumulation, resume), falls
back to eager steps when the capture fails, and that Liger's fused MoE experts equal the grouped GEMMs."""
import pytest
import torch

from workbench.testing import TINY_DENSE
from workbench.train import TrainConfig, train
from workbench.train import graphs
from workbench.train.callbacks import Callback

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
FAST = dict(batch_size=4, seq_len=32, warmup=2, lr=1e-2, eval_every=0, log_every=1, sample_every=0,
            sample_max_new_tokens=4)


def _eligible(**change):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))])
    opt.defaults["fused"] = True                      # a CPU machine cannot build a fused AdamW: as if it were
    kw = dict(cfg=TrainConfig(), device=torch.device("cuda"), lean=object(), world=1, teacher=None, pairs=False,
              optimizer=opt)
    return graphs.ineligible(**{**kw, **change})


@pytest.mark.parametrize("change,why", [
    (dict(device=torch.device("cpu")), "CUDA device"),
    (dict(world=2), "data-parallel"),
    (dict(lean=None), "lean forward"),
    (dict(teacher=object()), "teacher"),
    (dict(pairs=True), "pairs"),
    (dict(optimizer=torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))])), "fused AdamW"),
])
def test_each_reason_a_run_cannot_have_a_graph_is_named(change, why):
    assert _eligible() == "" and _eligible(cfg=TrainConfig(compile=True)) == ""
    assert why in _eligible(**change)


def test_cuda_graph_setting_is_checked_and_reaches_the_cli(tok, texts):
    with pytest.raises(ValueError, match="cuda_graph must be True, False or None"):
        TrainConfig(cuda_graph="yes")
    with pytest.raises(ValueError, match="cuda_graph=True: it needs a CUDA device"):
        train("dense-nano", texts, tokenizer=tok, steps=3, device="cpu", cuda_graph=True, **TINY_DENSE, **FAST)
    from workbench.cli import build_parser
    args = build_parser().parse_args(["train", "--corpus", "x.txt", "--out", "r", "--no-cuda-graph"])
    assert args.cuda_graph is False
    assert build_parser().parse_args(["train", "--corpus", "x.txt", "--out", "r"]).cuda_graph is None


def test_a_cpu_run_with_the_automatic_setting_trains_without_a_graph(tok, texts):
    r = train("dense-nano", texts, tokenizer=tok, steps=5, device="cpu", **TINY_DENSE, **FAST)
    assert len(r.history) == 5 and all(p.grad is None for p in r.model.parameters())


# ----------------------------------------------------------------------------- on a CUDA device

def _run(preset, tok, texts, **kw):
    return train(preset, texts, tokenizer=tok, device="cuda", kernels="torch", **{**TINY_DENSE, **FAST, **kw})


def _same_run(a, b, exact=True, weights=True):
    """Equal (or close) histories, and with `weights` equal (or close) final weights. Runs on different kernels
    compare histories only: AdamW's normalised update moves a weight by about lr whatever the size of its
    gradient, so a gradient near zero that rounds to the other sign parts the weights by ~2 lr a step."""
    tol = dict(rtol=0, atol=0) if exact else dict(rtol=2e-2, atol=2e-3)
    assert list(a.history["step"]) == list(b.history["step"])
    for col in ("loss", "lm_loss", "grad_norm"):
        torch.testing.assert_close(torch.tensor(a.history[col].tolist()), torch.tensor(b.history[col].tolist()),
                                   **tol, msg=col)
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        if not weights:
            break
        torch.testing.assert_close(p, q, **tol, msg=name)


@CUDA
@pytest.mark.parametrize("preset,extra", [("dense-nano", {}), ("moe-nano", {}), ("dense-nano", {"grad_accum": 2})])
def test_a_graphed_run_trains_exactly_as_an_eager_one(tok, texts, preset, extra, monkeypatch):
    captured = []
    real = graphs.StepGraph._capture
    monkeypatch.setattr(graphs.StepGraph, "_capture", lambda self: captured.append(real(self)) or captured[-1])
    eager = _run(preset, tok, texts, steps=10, cuda_graph=False, **extra)
    assert captured == []
    graphed = _run(preset, tok, texts, steps=10, **extra)
    assert captured == [True]                       # captured once, after the warm-up steps, then replayed
    _same_run(graphed, eager)
    assert all(p.grad is None for p in graphed.model.parameters())    # the graph's pool is released
    if preset == "moe-nano":
        for col in ("aux_loss", "z_loss", "expert_load"):
            assert graphed.history[col].tolist() == eager.history[col].tolist()


@CUDA
def test_the_lagged_log_on_a_gpu_gives_the_same_history_one_window_late(tok, texts, monkeypatch):
    """On one GPU the log publishes each window after the next one has run (workbench.train.records); the
    history equals a run logged at once, and the callbacks get every step once, in order."""
    from workbench.train import loop

    class Seen(Callback):
        def __init__(self):
            self.calls = []

        def on_log(self, state, rows):
            self.calls.append((state.step, [r["step"] for r in rows]))

    runs = {}
    for lag in (False, True):
        monkeypatch.setattr(loop, "LAGGED_LOG", lag)
        seen = Seen()
        runs[lag] = (_run("dense-nano", tok, texts, steps=20, log_every=5, callbacks=[seen]), seen.calls)
    _same_run(runs[True][0], runs[False][0])
    windows = [list(range(s, s + 5)) for s in (1, 6, 11, 16)]
    assert runs[False][1] == list(zip((5, 10, 15, 20), windows))
    assert runs[True][1] == list(zip((10, 15, 20, 20), windows))    # the last step flushes both


@CUDA
@pytest.mark.parametrize("preset", ["dense-nano", "moe-nano"])
def test_a_compiled_run_is_graphed_and_trains_as_a_compiled_eager_one(tok, texts, preset, monkeypatch):
    captured = []
    real = graphs.StepGraph._capture
    monkeypatch.setattr(graphs.StepGraph, "_capture", lambda self: captured.append(real(self)) or captured[-1])
    eager = _run(preset, tok, texts, steps=8, compile=True, cuda_graph=False)
    graphed = _run(preset, tok, texts, steps=8, compile=True)
    assert captured == [True]
    _same_run(graphed, eager, exact=False)          # the same compiled kernels; rounding may differ by fusion


@CUDA
def test_the_liger_kernels_run_graphed_close_to_eager(tok, texts, monkeypatch):
    pytest.importorskip("liger_kernel")
    from workbench.train import kernels
    # the experts as the graph has them (grouped GEMMs; the fused MoE equals them by its own test below): a router
    # choice flipped by other rounding would move this tiny model's trajectory further than the kernels do
    monkeypatch.setattr(kernels, "FUSED_MOE", False)
    eager = train("moe-nano", texts, tokenizer=tok, device="cuda", steps=8, cuda_graph=False, **TINY_DENSE, **FAST)
    graphed = train("moe-nano", texts, tokenizer=tok, device="cuda", steps=8, cuda_graph=True, **TINY_DENSE, **FAST)
    _same_run(graphed, eager, exact=False, weights=False)   # the graph's output layer: plain ops, not Liger's


@CUDA
def test_a_graphed_run_resumes_from_its_checkpoint_exactly(tok, texts, tmp_path):
    class StopAfter(Callback):
        def on_log(self, state, rows):
            if state.step >= 6:
                state.request_stop("enough")
    kw = dict(steps=10, checkpoint_every=6)
    full = _run("dense-nano", tok, texts, out_dir=tmp_path / "full", **kw)
    _run("dense-nano", tok, texts, out_dir=tmp_path / "part", callbacks=[StopAfter()], **kw)
    resumed = _run("dense-nano", tok, texts, out_dir=tmp_path / "part", resume=True, **kw)
    _same_run(resumed, full)


@CUDA
def test_a_failed_capture_warns_and_the_run_goes_on_eagerly(tok, texts, monkeypatch):
    real = graphs.compute_loss

    def syncing(*a, **k):              # a host sync, which a CUDA graph capture refuses
        out = real(*a, **k)
        out["loss"].item()
        return out
    monkeypatch.setattr(graphs, "compute_loss", syncing)
    eager = _run("dense-nano", tok, texts, steps=8, cuda_graph=False)
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        fallback = _run("dense-nano", tok, texts, steps=8)
    _same_run(fallback, eager)


@CUDA
def test_liger_fused_moe_experts_equal_the_grouped_gemms():
    from workbench.train import kernels as K
    torch.manual_seed(0)
    e, d, inner, n, k = 4, 64, 48, 256, 2
    gate_up = (torch.randn(e, 2 * inner, d, device="cuda") * 0.05).requires_grad_()
    down = (torch.randn(e, d, inner, device="cuda") * 0.05).requires_grad_()
    x = torch.randn(n, d, device="cuda", requires_grad=True)
    index = torch.rand(n, e, device="cuda").topk(k, -1).indices
    weights = torch.rand(n, k, device="cuda").softmax(-1).requires_grad_()
    moe = K._fused_moe(x)
    if moe is None:
        pytest.skip("this Liger-Kernel has no fused MoE")
    grads = []
    for fn in (K.grouped_experts, lambda *a: K.fused_experts(moe, *a)):
        for t in (gate_up, down, x, weights):
            t.grad = None
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = fn(gate_up, down, x, index, weights)
        out.float().square().sum().backward()
        grads.append([out.float(), gate_up.grad, down.grad, x.grad, weights.grad])
    for a, b in zip(*grads):
        assert ((a - b).abs().max() / b.abs().max()).item() < 2e-2


def test_the_loop_steps_eagerly_then_checks_then_replays(tok, texts, monkeypatch):
    """The loop's wiring of StepGraph, on CPU with CUDA's part stood in: WARMUP_STEPS eager steps, one checked
    step through the graph's body, then replays (here: the body run again); the history equals an eager run's."""
    calls = []

    class Replay:                          # a "graph" whose replay runs the body, as the real one replays it
        def __init__(self, sg):
            self.sg = sg

        def replay(self):
            calls.append("replay")
            self.sg.optimizer.zero_grad(set_to_none=True)  # a captured backward writes its gradients afresh
            self.sg.out = self.sg._body(self.sg.cfg)

    def capture(self):
        calls.append("capture")
        self.graph = Replay(self)
        return True
    real_check = graphs.StepGraph._check
    monkeypatch.setattr(graphs, "ineligible", lambda *a: "")
    monkeypatch.setattr(graphs.StepGraph, "_capture", capture)
    monkeypatch.setattr(graphs.StepGraph, "_check", lambda self: calls.append("check") or real_check(self))
    monkeypatch.setattr(torch.cuda, "get_sync_debug_mode", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", lambda mode: None)
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: self)
    kw = dict(steps=8, device="cpu", fast_path=False, **TINY_DENSE, **FAST)
    eager = train("dense-nano", texts, tokenizer=tok, cuda_graph=False, **kw)
    assert calls == []
    graphed = train("dense-nano", texts, tokenizer=tok, **kw)
    assert calls == ["check", "capture"] + ["replay"] * (8 - graphs.WARMUP_STEPS - 1)
    # the body's forward is the lean one in plain ops, the eager run's the model's own: equal up to rounding
    assert graphed.history["loss"].tolist() == pytest.approx(eager.history["loss"].tolist(), abs=1e-4)
    assert list(graphed.history["step"]) == list(range(1, 9))
    assert all(p.grad is None for p in graphed.model.parameters())
