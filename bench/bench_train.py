"""Training throughput benchmark: workbench.train vs a plain PyTorch loop, Hugging Face Trainer and nanoGPT.

    python bench/bench_train.py            # CPU: 4 setups, contenders side by side, writes bench/results/train.{md,json}
    python bench/bench_train.py --gpu      # CUDA: bf16 tokens/s and model FLOPs utilisation of the largest presets

The transformers contenders train the same model from the same initial weights on the same batches (the
workbench's seeded window order), with the same AdamW settings and schedule; nanoGPT's GPT-2 model
(bench/nanogpt.py) trains on the same batches at nanoGPT's dimensions. Reported: tokens/s, time to a target
validation loss, page faults per step, peak RSS, and the workbench's time outside forward/backward/optimizer.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench.models import build_model, count_params  # noqa: E402
from workbench.train import TrainConfig, train  # noqa: E402

RESULTS = ROOT / "bench" / "results"
GPU_ROWS: list[dict] = []


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token (PaLM appendix B): 6 * N_active + 12 * layers * width * seq_len (attention)."""
    _, active = count_params(model)
    c = model.config
    return 6 * active + 12 * c.num_hidden_layers * c.hidden_size * seq_len


def peak_flops(name: str) -> float:
    """Dense bf16 peak of the GPU (no sparsity), FLOP/s."""
    table = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "4090": 165e12}
    return next((v for k, v in table.items() if k in name), math.nan)


def gpu_bench(presets, steps: int, batch: int, seq_len: int, compile_: bool, texts, out: Path,
              experts=("grouped_mm",)) -> list[dict]:
    from workbench.tokenizer import train_tokenizer
    tok = train_tokenizer(texts, vocab_size=2048)
    name = torch.cuda.get_device_name()
    rows = GPU_ROWS     # accumulates over calls so one file holds every row
    for preset in presets:
        for comp, impl in [(c, e) for c in ([True] if compile_ else [False])
                           for e in (experts if preset.startswith("moe") else (None,))]:
            t0 = time.perf_counter()
            r = train(preset, texts, tokenizer=tok, steps=steps, batch_size=batch, seq_len=seq_len, eval_every=0,
                      sample_every=0, log_every=10, device="cuda", compile=comp, eval_batches=1,
                      sample_max_new_tokens=4, experts_implementation=impl)
            wall = time.perf_counter() - t0
            h = r.history
            tps = float(h[h["step"] > steps // 3]["tokens_per_s"].median())
            fpt = flops_per_token(r.model, seq_len)
            total, active = count_params(r.model)
            rows.append({"preset": preset, "compile": comp, "experts": impl or "-", "device": name, "params_total": total,
                         "params_active": active, "batch": batch, "seq_len": seq_len, "tokens_per_s": tps,
                         "tflops": tps * fpt / 1e12, "mfu": tps * fpt / peak_flops(name), "wall_s": wall,
                         "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30})
            print(json.dumps(rows[-1]), flush=True)
            (out / "train_gpu.json").write_text(json.dumps(rows, indent=1))
            write_gpu_md(rows, out / "train_gpu.md")
            torch.cuda.reset_peak_memory_stats()
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--presets", nargs="+")
    ap.add_argument("--steps", type=int, default=0, help="steps per run (0: each setup's own)")
    ap.add_argument("--rounds", type=int, default=3, help="fresh processes per contender and setup")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--experts", nargs="+", default=["grouped_mm"], help="GPU: MoE experts implementations to compare")
    ap.add_argument("--no-compile", action="store_true", help="GPU: skip the torch.compile row")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.gpu:
        from workbench.corpora import generate_corpus
        texts = generate_corpus("stories", 6000, seed=1).texts
        gpu_bench(args.presets or ["dense-base", "moe-base"], args.steps or 60, 64, 512, False, texts, out,
                  args.experts)
        if not args.no_compile:
            gpu_bench(["dense-base"], args.steps or 60, 64, 512, True, texts, out)
        return 0
    return cpu_bench(args, out)


def write_gpu_md(rows, path: Path) -> None:
    lines = ["# Training on GPU (bf16 autocast, fused AdamW, TF32)", "",
             f"Device: {rows[0]['device'] if rows else '-'}. MFU = tokens/s x (6 N_active + 12 L d T) / dense bf16 peak.",
             "", "| preset | compile | experts | params (total / active) | batch x seq | tokens/s | TFLOP/s | MFU | peak GPU mem |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['compile']} | {r.get('experts', '-')} | "
                     f"{r['params_total'] / 1e6:.1f}M / {r['params_active'] / 1e6:.1f}M "
                     f"| {r['batch']} x {r['seq_len']} | {r['tokens_per_s']:,.0f} | {r['tflops']:.1f} | "
                     f"{100 * r['mfu']:.1f}% | {r['peak_mem_gb']:.1f} GiB |")
    path.write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- CPU contenders

CPU_SETUPS = {   # name -> preset, its overrides, batch, seq_len, steps, eval_every, contenders
    "dense-tiny": dict(preset="dense-tiny", batch=12, seq_len=64, steps=200, eval_every=25,
                       contenders=["workbench", "plain", "trainer"]),
    # the live panel on its own: with four or more processes taking turns, one coming back from its wait
    # sometimes stalls for about a second (with or without the panel), charged to whichever it hits
    "live-plot": dict(preset="dense-tiny", batch=12, seq_len=64, steps=200, eval_every=25,
                      contenders=["workbench", "workbench+live-plot"]),
    # nanoGPT's dimensions (4 layers, 4 heads, width 128) with its parameter count: the SwiGLU MLP's 3 matrices
    # of 128 x 344 hold as many weights as GPT-2's 2 of 128 x 512.
    "dense-tiny@nanoGPT": dict(preset="dense-tiny", overrides={"intermediate_size": 344}, batch=12, seq_len=64,
                               steps=600, eval_every=50, contenders=["workbench", "plain", "nanoGPT", "nanoGPT+fused AdamW",
                                           "workbench, fast_path=False"]),
    "moe-tiny": dict(preset="moe-tiny", batch=12, seq_len=64, steps=100, eval_every=20,
                     contenders=["workbench", "plain", "trainer", "trainer+aux"]),
    "dense-small": dict(preset="dense-small", batch=8, seq_len=128, steps=60, eval_every=20,
                        contenders=["workbench", "plain", "trainer"]),
}
LARGEST = dict(preset="dense-base", batch=8, seq_len=256, steps=10, eval_every=10, contenders=["workbench"])
LR, WARMUP = 3e-3, 20


def _setup(setup, texts):
    from workbench.tokenizer import train_tokenizer
    from workbench.train.data import prepare
    tok = train_tokenizer(texts, vocab_size=2048)
    return tok, prepare(texts, tok, setup["seq_len"], setup["batch"], 0.05, seed=0)


def _usage() -> tuple[float, int]:
    """(peak RSS in MB, minor page faults so far) of this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_maxrss / 1024, r.ru_minflt


class Pacer:
    """Takes turns with the other contenders: after every `chunk` steps it hands the CPU back to the coordinator
    and blocks until its next turn. Contenders measure only their own training time, so all of them see the same
    machine (a noisy neighbour or a clock change hits every contender within seconds, not one whole run)."""

    def __init__(self, conn, chunk: int):
        self.conn, self.chunk = conn, chunk

    def wait_turn(self):
        if self.conn is not None:
            self.conn.send("turn")
            self.conn.recv()

    def tick(self, steps_done: int):
        if steps_done % self.chunk == 0:
            self.wait_turn()


def run_one(contender: str, name: str, steps: int, texts, pacer: Pacer) -> dict:
    """Train setup `name` with one contender; returns tokens/s, eval curve (step, val loss), RSS, faults.

    Speed is the median over turns of seconds per step (a turn is 10 steps): a stall of the machine lands in
    one turn of one contender and would otherwise be charged to it whole. The mean is kept as mean_ms_per_step."""
    torch.manual_seed(0)
    setup = LARGEST if name == "largest" else CPU_SETUPS[name]
    tok, data = _setup(setup, texts)
    steps = steps or setup["steps"]
    cfg = TrainConfig(steps=steps, batch_size=setup["batch"], seq_len=setup["seq_len"], lr=LR, warmup=WARMUP,
                      eval_every=setup["eval_every"], eval_batches=4, sample_every=0, log_every=pacer.chunk,
                      device="cpu", sample_max_new_tokens=1)
    fn = {"workbench": _workbench, "workbench+live-plot": _workbench_live, "workbench, fast_path=False": _wb_slow, "plain": _plain, "trainer": _trainer,
          "trainer+aux": _trainer_aux, "nanoGPT": _nanogpt, "nanoGPT+fused AdamW": _nanogpt_fused}
    build = lambda: build_model(setup["preset"], tokenizer=tok, seed=0, **setup.get("overrides", {}))  # noqa: E731
    faults0 = _usage()[1]
    res = fn[contender](build, tok, data, texts, cfg, pacer)
    rss, faults1 = _usage()
    res.update(contender=contender, setup=name, preset=setup["preset"], steps=steps, batch=setup["batch"],
               seq_len=setup["seq_len"], peak_rss_mb=rss, threads=torch.get_num_threads(),
               params=res.get("params") or sum(p.numel() for p in build().parameters()))
    res.setdefault("faults_per_step", (faults1 - faults0) / steps)
    per_step = _median([secs / n for n, secs in res["segments"] if n])
    res["tokens_per_s"] = setup["batch"] * setup["seq_len"] / per_step
    res["ms_per_step"] = 1000 * per_step
    res["mean_ms_per_step"] = 1000 * res["train_s"] / steps
    return res


class _Clock:
    """Workbench callback: training time between its own flushes (excluding turns given away and evaluations),
    the eval curve on that clock, page faults, and the time spent in `inner` (e.g. the live plot)."""

    def __init__(self, pacer: Pacer, inner=None):
        self.pacer, self.inner = pacer, inner
        self.train_s, self.inner_s, self.curve, self.segments, self.last_step = 0.0, 0.0, [], [], 0

    def _call(self, name, *a):
        if self.inner is not None:
            t0 = time.perf_counter()
            getattr(self.inner, name)(*a)
            self.inner_s += time.perf_counter() - t0

    def on_start(self, state):
        self._call("on_start", state)
        self.faults0 = _usage()[1]
        self.pacer.wait_turn()
        self.t = time.perf_counter()

    def on_log(self, state, rows):
        self._call("on_log", state, rows)
        dt = time.perf_counter() - self.t
        self.segments.append((state.step - self.last_step, dt))
        self.train_s, self.last_step = self.train_s + dt, state.step
        self.pacer.wait_turn()
        self.t = time.perf_counter()

    def on_eval(self, state, row):
        self.curve.append((state.step, float(row["val_loss"])))
        spent = self.inner_s
        self._call("on_eval", state, row)
        self.t = time.perf_counter() - (self.inner_s - spent)   # the evaluation is not training time; redrawing is

    def on_sample(self, state, *a):
        self._call("on_sample", state, *a)

    def on_checkpoint(self, state, path):
        self._call("on_checkpoint", state, path)

    def on_end(self, state):
        self.faults_per_step = (_usage()[1] - self.faults0) / max(state.step, 1)
        self._call("on_end", state)


def _workbench(build, tok, data, texts, cfg, pacer, inner=None):
    clock = _Clock(pacer, inner)
    r = train(build(), texts, tokenizer=tok, config=cfg, callbacks=[clock])
    return {"train_s": clock.train_s, "compute_s": r.timing["compute"],
            "overhead_fraction": 1 - r.timing["compute"] / clock.train_s,
            "callback_fraction": clock.inner_s / clock.train_s, "faults_per_step": clock.faults_per_step,
            "curve": clock.curve, "segments": clock.segments}


def _wb_slow(build, tok, data, texts, cfg, pacer):
    """The workbench without its CPU fast path (model's own forward, default allocator): what the path buys."""
    return _workbench(build, tok, data, texts, cfg.override(fast_path=False), pacer)


def _workbench_live(build, tok, data, texts, cfg, pacer):
    from workbench.widgets.training import TrainingPanel
    panel = TrainingPanel(display_now=False)
    return _workbench(build, tok, data, texts, cfg, pacer, inner=panel.callback())


def _loop(model, forward, opt, data, cfg, params, pacer) -> dict:
    """A bare training loop: the same batches, schedule, clipping; `forward(x)` gives logits."""
    from workbench.train.schedule import lr_at
    curve, segments, train_s, chunk_s = [], [], 0.0, 0.0
    pacer.wait_turn()
    for step in range(cfg.steps):
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.lr, cfg.warmup, cfg.steps, 0.1)
        x, y = data.batch(step, 0, cfg.batch_size, 1, cfg.seed)
        logits = forward(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        train_s, chunk_s = train_s + dt, chunk_s + dt
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            curve.append((step + 1, _val_loss(model, forward, data, cfg)))
        if (step + 1) % pacer.chunk == 0:
            segments.append((pacer.chunk, chunk_s))
            chunk_s = 0.0
        pacer.tick(step + 1)
    return {"train_s": train_s, "curve": curve, "segments": segments}


@torch.no_grad()
def _val_loss(model, forward, data, cfg) -> float:
    model.eval()
    total, n = 0.0, 0
    for x, y in data.val_batches(cfg.batch_size, cfg.eval_batches):
        logits = forward(x)
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                   reduction="sum").item()
        n += y.numel()
    model.train()
    return total / n


def _plain(build, tok, data, texts, cfg, pacer):
    """What a user would write: the same model, batches, AdamW, schedule and clipping, in a bare loop."""
    model = build().train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    moe = bool(getattr(model.config, "num_local_experts", None))
    fwd = (lambda x: model(input_ids=x, output_router_logits=True).logits) if moe else (lambda x: model(input_ids=x).logits)
    return _loop(model, fwd, opt, data, cfg, list(model.parameters()), pacer)


def _nanogpt(build, tok, data, texts, cfg, pacer, fused=None):
    """nanoGPT's GPT-2 model (bench/nanogpt.py) at 4 layers, 4 heads, width 128, trained by the same loop, with
    nanoGPT's optimizer choice (on CPU, torch's default AdamW: nanoGPT fuses it only on CUDA)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from nanogpt import GPT
    torch.manual_seed(0)
    model = GPT(len(tok), cfg.seq_len).train()
    opt = model.optimizer(cfg.lr, 0.1, (0.9, 0.95), fused=fused)
    res = _loop(model, model, opt, data, cfg, list(model.parameters()), pacer)
    res["params"] = sum(p.numel() for p in model.parameters())
    return res


def _nanogpt_fused(build, tok, data, texts, cfg, pacer):
    """nanoGPT's model with fused AdamW, as the workbench uses on CPU: the two differ only in their model code."""
    return _nanogpt(build, tok, data, texts, cfg, pacer, fused=True)


def _trainer_aux(build, tok, data, texts, cfg, pacer):
    """Trainer asked for router logits, so transformers adds router_aux_loss_coef * aux: the workbench's work."""
    def with_aux():
        model = build()
        model.config.output_router_logits = True
        return model
    return _trainer(with_aux, tok, data, texts, cfg, pacer)


def _trainer(build, tok, data, texts, cfg, pacer):
    """Hugging Face Trainer on the same batches in the same order (sequential sampler), same optimiser settings."""
    from torch.utils.data import Dataset, SequentialSampler
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Windows(Dataset):
        def __len__(self):
            return cfg.steps * cfg.batch_size

        def __getitem__(self, i):
            x, y = data.batch(i // cfg.batch_size, 0, cfg.batch_size, 1, cfg.seed)
            w = torch.cat([x[i % cfg.batch_size], y[i % cfg.batch_size, -1:]])
            return {"input_ids": w[:-1], "labels": w[:-1].clone()}   # HF shifts labels itself

    class Seq(Trainer):
        def _get_train_sampler(self, *a, **k):
            return SequentialSampler(self.train_dataset)

    model = build()
    times = {"train": 0.0, "t0": None, "chunk": 0.0}
    segments = []
    curve = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            times["t0"] = time.perf_counter()

        def on_train_begin(self, args, state, control, **kw):
            pacer.wait_turn()

        def on_step_end(self, args, state, control, **kw):
            dt = time.perf_counter() - times["t0"]
            times["train"] += dt
            times["chunk"] += dt
            if state.global_step % cfg.eval_every == 0 or state.global_step == cfg.steps:
                curve.append((state.global_step, _val_loss(model, lambda x: model(input_ids=x).logits, data, cfg)))
            if state.global_step % pacer.chunk == 0:
                segments.append((pacer.chunk, times["chunk"]))
                times["chunk"] = 0.0
            pacer.tick(state.global_step)

    import tempfile
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), max_steps=cfg.steps, per_device_train_batch_size=cfg.batch_size,
                             learning_rate=cfg.lr, warmup_steps=cfg.warmup, lr_scheduler_type="cosine_with_min_lr",
                             lr_scheduler_kwargs={"min_lr_rate": 0.1}, weight_decay=0.1, adam_beta2=0.95,
                             max_grad_norm=1.0, optim="adamw_torch_fused", logging_steps=cfg.log_every,
                             save_strategy="no", logging_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
                             disable_tqdm=True, seed=0)
    Seq(model=model, args=args, train_dataset=Windows(), callbacks=[Clock()]).train()
    return {"train_s": times["train"], "curve": curve, "segments": segments}


def _contender_main(contender, name, steps, conn, chunk):
    """A contender's process: set up, then train taking turns; sends ("result", dict) or ("error", text)."""
    os.environ["TQDM_DISABLE"] = "1"
    try:
        from workbench.corpora import generate_corpus
        texts = generate_corpus("stories", 6000, seed=1).texts
        conn.send(("result", run_one(contender, name, steps, texts, Pacer(conn, chunk))))
    except Exception:
        import traceback
        conn.send(("error", traceback.format_exc()))


def interleaved(name: str, contenders, steps: int = 0, chunk: int = 10) -> list[dict]:
    """Run every contender of setup `name` in its own process, round-robin `chunk` steps at a time."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    procs = {}
    for c in contenders:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_contender_main, args=(c, name, steps, child, chunk))
        proc.start()
        procs[c] = (proc, parent)
    results, waiting = {}, {c: conn.recv() for c, (_, conn) in procs.items()}   # each is set up, or failed
    active = [c for c, msg in waiting.items() if msg == "turn"]
    results.update({c: msg for c, msg in waiting.items() if msg != "turn"})
    while active:
        for c in list(active):
            conn = procs[c][1]
            conn.send("go")
            msg = conn.recv()
            if msg != "turn":
                results[c] = msg
                active.remove(c)
    rows = []
    for c in contenders:
        procs[c][0].join()
        kind, payload = results[c]
        rows.append(payload if kind == "result" else {"contender": c, "setup": name, "error": payload})
    return rows


def time_to(curve, target, ms_per_step):
    """Seconds of training until the val loss first reaches `target`: its step times the median step time."""
    return next((step * ms_per_step / 1000 for step, v in curve if v <= target), math.nan)


def cpu_bench(args, out: Path) -> int:
    """Each setup runs `rounds` times; a round starts a fresh process per contender (a process can run several
    percent faster or slower than an identical one for its whole life, so one process per contender is not enough)."""
    rows = []
    for name in args.presets or list(CPU_SETUPS):
        for rnd in range(args.rounds):
            for r in interleaved(name, CPU_SETUPS[name]["contenders"], args.steps):
                rows.append({**r, "round": rnd})
                print(json.dumps({k: v for k, v in r.items() if k not in ("curve", "segments")}), flush=True)
    rss = interleaved("largest", ["workbench"])[0]
    previous = out / "train.json"
    if args.presets and previous.exists():     # re-running some setups keeps the other setups' rows
        rows += [r for r in json.loads(previous.read_text())["rows"] if r["setup"] not in args.presets
                 and r["setup"] in CPU_SETUPS and r["contender"] in CPU_SETUPS[r["setup"]]["contenders"]]
        rows.sort(key=lambda r: list(CPU_SETUPS).index(r["setup"]))
    summary = summarise(rows)
    (out / "train.json").write_text(json.dumps({"rows": rows, "largest_preset_rss": rss, "summary": summary,
                                                "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores"}, indent=1))
    write_cpu_md(rows, rss, summary, out / "train.md")
    print((out / "train.md").read_text())
    return 0


def _median(xs):
    xs = sorted(x for x in xs if x == x)
    return (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2 if xs else math.nan


def summarise(rows) -> dict:
    """Per setup and contender, medians over rounds: tokens/s, ms/step, time to a common target val loss, page
    faults, peak RSS; ratios workbench / contender are taken within each round, then their median."""
    s = {}
    for name in dict.fromkeys(r["setup"] for r in rows):
        ok = [r for r in rows if r["setup"] == name and "error" not in r]
        rounds = {}
        for r in ok:
            rounds.setdefault(r["round"], {})[r["contender"]] = r
        finals = [min(v for _, v in r["curve"]) for r in ok if r.get("curve")]
        target = max(finals) if finals else math.nan
        per = {}
        for c in dict.fromkeys(r["contender"] for r in ok):
            mine = [r for r in ok if r["contender"] == c]
            per[c] = {k: _median([r[k] for r in mine]) for k in ("tokens_per_s", "ms_per_step", "faults_per_step",
                                                                   "peak_rss_mb", "params")}
            per[c]["time_to_target_s"] = _median([time_to(r["curve"], target, r["ms_per_step"]) for r in mine])
            per[c]["steps_to_target"] = _median([next((st for st, v in r["curve"] if v <= target), math.nan)
                                                 for r in mine])
            per[c]["ratio"] = _median([rd["workbench"]["tokens_per_s"] / rd[c]["tokens_per_s"]
                                       for rd in rounds.values() if "workbench" in rd and c in rd])
            per[c]["ratio_of_means"] = _median([rd[c]["mean_ms_per_step"] / rd["workbench"]["mean_ms_per_step"]
                                                for rd in rounds.values() if "workbench" in rd and c in rd])
            per[c]["ratio_range"] = [f([rd["workbench"]["tokens_per_s"] / rd[c]["tokens_per_s"]
                                        for rd in rounds.values() if "workbench" in rd and c in rd] or [math.nan])
                                     for f in (min, max)]
        wb = [r for r in ok if r["contender"] == "workbench"]
        live = [r for r in ok if r["contender"] == "workbench+live-plot"]
        s[name] = {"target_val_loss": target, "rounds": len(rounds), "contenders": per,
                   "overhead_fraction": _median([r["overhead_fraction"] for r in wb]),
                   "callback_fraction": _median([r["callback_fraction"] for r in live])}
    return s


def write_cpu_md(rows, rss, summary, path: Path) -> None:
    f = lambda v, fmt: format(v, fmt) if isinstance(v, (int, float)) and v == v else "-"   # noqa: E731
    n_rounds = max((s["rounds"] for s in summary.values()), default=0)
    lines = ["# Training throughput on CPU: workbench vs plain PyTorch loop, Hugging Face Trainer and nanoGPT", "",
             f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPU cores, {torch.get_num_threads()} torch "
             f"threads. {n_rounds} rounds per setup. In a round the contenders run at the same time in separate, "
             "fresh processes and take turns, 10 training steps each, so a slower or faster spell of the machine "
             "hits all of them alike. A run's speed is its median seconds per step over its turns (a stall of the "
             "machine lands in one turn and is not charged whole to whoever had it); figures are medians over "
             "rounds, and a ratio is workbench / contender within a round (median, with the range over rounds). "
             "Time to target = steps to the target val loss x median step time. Every contender trains on the same batches with "
             "the same warm-up + cosine schedule (peak lr 3e-3: the best for both the workbench and nanoGPT in "
             "bench/results/train_lr.md) and clipping, with fused AdamW, except `nanoGPT`, which keeps nanoGPT's own "
             "choice (fused only on CUDA, so torch's default AdamW on CPU); `nanoGPT+fused AdamW` is nanoGPT's model "
             "with fused AdamW, so it differs from the workbench only in model code. The transformers contenders "
             "start from the same weights. tokens/s counts training steps only (evaluations and waiting for a turn "
             "excluded).", "",
             "| setup | contender | params | tokens/s | ms/step | workbench / it (range) | steps to target val loss "
             "| time to target | page faults / step | peak RSS |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        for c, r in s["contenders"].items():
            lo, hi = r["ratio_range"]
            ratio = "1.00" if c == "workbench" else f"{f(r['ratio'], '.2f')} ({f(lo, '.2f')}-{f(hi, '.2f')})"
            lines.append(f"| {name} | {c} | {r['params'] / 1e6:.2f}M | {r['tokens_per_s']:,.0f} | "
                         f"{r['ms_per_step']:.1f} | {ratio} | {f(r['steps_to_target'], '.0f')} | {f(r['time_to_target_s'], '.1f')} s | "
                         f"{r['faults_per_step']:,.0f} | {r['peak_rss_mb']:.0f} MB |")
    lines += [f"\nFailed: {r['setup']} {r['contender']}: {r['error'].strip().splitlines()[-1][:120]}"
              for r in rows if "error" in r]
    lines += ["", "| setup | target val loss | workbench time outside fwd/bwd/opt | live-plot slowdown (median; mean) "
              "| live-plot callbacks' share of training time |", "|---|---|---|---|---|"]
    for name, s in summary.items():
        live = s["contenders"].get("workbench+live-plot", {})
        slow = (f"{f(100 * (live['ratio'] - 1), '.1f')}%; {f(100 * (live['ratio_of_means'] - 1), '.1f')}%"
                if live else "-")
        lines.append(f"| {name} | {f(s['target_val_loss'], '.3f')} | {f(100 * s['overhead_fraction'], '.1f')}% | "
                     f"{slow} | {f(100 * s['callback_fraction'], '.2f')}% |")
    if "error" not in rss:
        lines += ["", f"Peak RSS of a process training the largest preset (dense-base, batch {rss['batch']} x "
                      f"{rss['seq_len']}, corpus and tokenizer set-up included): {rss['peak_rss_mb']:.0f} MB."]
    lines += ["", "Target val loss: the highest of the contenders' best validation losses, so every contender "
                  "reaches it. `trainer` on the MoE does not request router logits, so it skips the load-balancing "
                  "loss; `trainer+aux` asks for them and does the same work as the workbench. Live-plot slowdown: "
                  "(ms/step with the live panel) / (ms/step without) - 1 within each round, from median and from "
                  "mean step times (redraws happen at most once a second, so the mean is the one that sees them), "
                  "in a setup of its own with two processes: with four or more taking turns, a process coming "
                  "back from its wait sometimes stalls for about a second (without the panel too; not seen with "
                  "two processes), which the mean would charge to whichever contender it hits."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
