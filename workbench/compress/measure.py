"""One measurement for every variant of a model (original, pruned, quantized, distilled, adapted).

`measure(model, tok, ...)` returns one row (a dict; `pd.DataFrame(rows)` for many):

- size: `disk_mb`, the files a user would keep (float16 safetensors for plain models, as the family ships;
  torchao's `torch.save` state for quantized ones); `weights_mb`, parameters and buffers as held in memory;
- parameters: `params` (total), `nonzero`, `active` (per token: MoE counts top-k experts);
- speed: `ms_per_token_1t`, `ms_per_token_2t`, greedy generation of `gen_tokens` tokens from a fixed prompt
  with 1 and 2 CPU threads, the median of `repeats` runs after one warm-up, divided by the tokens made;
- memory: `peak_mb`, peak resident memory (RSS, MB = 1e6 bytes) while generating, above the runtime's own:
  see `peak_memory_bytes` for the method;
- quality: `val_loss` (mean token cross-entropy in nats on held-out documents of the family's mixture,
  evaluation split) and `val_ppl` = exp(val_loss); `well_formed` (story validator on sampled stories);
  `acc:<task>` for each held-out task (plain log-likelihood scoring, `acc`).
`pareto_front(rows, x, y)` keeps the rows that no other row beats on both a cost and a quality.
Here: `measure()`, `val_loss()`, `disk_bytes()`, `ms_per_token()`, `peak_memory_bytes()`, `pareto_front()`.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

PROMPT = "Once upon a time, there was a little girl named Mia. She"


def _is_quantized(model) -> bool:
    return any(type(p).__name__ not in ("Parameter", "Tensor") or type(p.data).__name__ != "Tensor"
               for p in model.parameters())


@contextlib.contextmanager
def _no_progress_bars():
    from transformers.utils import logging as hf_logging
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def disk_bytes(model) -> int:
    """Bytes of the files that store `model`: float16 safetensors (plain) or torchao's saved state."""
    from .quantize import save_quantized
    with tempfile.TemporaryDirectory() as d, _no_progress_bars():
        if _is_quantized(model):
            save_quantized(model, d)
        else:                                   # a half copy keeps tied weights tied (saved once)
            copy.deepcopy(model).half().save_pretrained(d, safe_serialization=True)
        return sum(f.stat().st_size for f in Path(d).iterdir() if f.suffix in (".safetensors", ".pt"))


def _memory_bytes(model) -> int:
    from .quantize import tensor_bytes
    return sum(tensor_bytes(t) for t in list(model.parameters()) + list(model.buffers()))


@torch.no_grad()
def val_loss(model, tok, texts: list[str], max_tokens: int = 256) -> float:
    """Mean next-token cross-entropy (nats) over the first `max_tokens` tokens of each text (BOS prepended
    when the tokenizer has one). Raises ValueError when the texts hold no tokens."""
    total, n = 0.0, 0
    bos = tok.bos_token_id
    for t in texts:
        ids = ([bos] if bos is not None else []) + tok(t, add_special_tokens=False)["input_ids"][:max_tokens]
        if len(ids) < 2:
            continue
        x = torch.tensor([ids])
        logits = model(input_ids=x[:, :-1]).logits.float()
        total += F.cross_entropy(logits[0], x[0, 1:], reduction="sum").item()
        n += len(ids) - 1
    if n == 0:
        raise ValueError("val_loss: the texts hold no tokens")
    return total / n


@torch.no_grad()
def ms_per_token(model, tok, threads: int, gen_tokens: int = 32, repeats: int = 5, prompt: str = PROMPT) -> float:
    """Median wall time per generated token (ms), greedy, batch 1, `threads` CPU threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.tensor([tok(prompt)["input_ids"]])
        kw = dict(max_new_tokens=gen_tokens, min_new_tokens=gen_tokens, do_sample=False,
                  pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        model.generate(x, attention_mask=torch.ones_like(x), **kw)                    # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = model.generate(x, attention_mask=torch.ones_like(x), **kw)
            times.append((time.perf_counter() - t0) / max(1, out.shape[1] - x.shape[1]))
        return 1000 * statistics.median(times)
    finally:
        torch.set_num_threads(old)


# Run in a fresh interpreter by peak_memory_bytes: rebuild the model on the meta device, assign the saved tensors
# (no second copy), generate once, and print the RSS after the imports and the peak RSS while generating.
_PEAK_CHILD = r"""
import importlib, json, sys, threading
import psutil, torch
a = json.loads(sys.argv[2])
torch.set_num_threads(1)
if a["quantized"]:
    import torchao  # noqa: F401  (registers its tensor types for torch.load(weights_only=True))
cls = getattr(importlib.import_module(a["module"]), a["cls"])
config = cls.config_class.from_dict(a["config"])
proc = psutil.Process()
base = proc.memory_info().rss
saved = torch.load(sys.argv[1], weights_only=True, map_location="cpu")
with torch.device("meta"):
    model = cls._from_config(config)
model.load_state_dict(saved["state"], assign=True, strict=True)
mods = dict(model.named_modules())
for name, t in saved["extra"].items():                 # non-persistent buffers (rotary frequencies)
    owner, _, attr = name.rpartition(".")
    mods[owner]._buffers[attr] = t
del saved
model.eval()
x = torch.tensor([a["ids"]])
kw = dict(max_new_tokens=a["n"], min_new_tokens=a["n"], do_sample=False, pad_token_id=a["pad"])
try:                                                   # Linux: the kernel's high-water mark, reset here
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    kernel = True
except OSError:
    kernel = False
peak, done = [proc.memory_info().rss], threading.Event()
def sample():                                          # elsewhere: RSS sampled every millisecond
    while not done.wait(0.001):
        peak.append(proc.memory_info().rss)
if not kernel:
    threading.Thread(target=sample, daemon=True).start()
with torch.no_grad():
    model.generate(x, attention_mask=torch.ones_like(x), **kw)
done.set()
peak.append(proc.memory_info().rss)
if kernel:
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
    peak.append(int(hwm.split()[1]) * 1024)
print(json.dumps({"base": base, "peak": max(peak), "method": "VmHWM" if kernel else "psutil"}))
"""


def peak_memory_bytes(model, tok, gen_tokens: int = 32, prompt: str = PROMPT) -> int:
    """Peak resident memory (bytes) of greedy generation of `gen_tokens` tokens after `prompt`, batch 1, one
    thread, above the resident memory of the Python runtime with torch and transformers imported.

    Method: the model's tensors (quantized ones as torchao stores them) are saved to a temporary file; a fresh
    Python process imports torch, transformers (and torchao when needed), reads its RSS, loads the tensors into
    the model's class built on the meta device (so no second copy is ever made), generates once, and reports
    its peak RSS during the generation: on Linux the kernel's high-water mark (VmHWM after a reset through
    /proc/self/clear_refs), elsewhere psutil's RSS sampled every millisecond in a thread. The result is the
    weights as held in memory plus what generation allocates (activations, KV cache, dequantized temporaries),
    measured the same way for every variant; a fresh process keeps memory freed earlier in this one out of it.
    The child runs with glibc's mmap threshold fixed at its 128 KiB default (MALLOC_MMAP_THRESHOLD_): otherwise
    glibc raises the threshold after the first large free and keeps freed temporaries (torchao dequantizes
    weights per call) in its heap, so RSS would record the allocator's hoarding, not what the model needs (a
    34 MB float32 model quantized to int8 measured 56 MB that way, 32 MB with the fixed threshold, 53 MB in
    float32). About 16 MB of every result is the same for any model (modules generate() loads on first use,
    thread and allocator start-up): compare differences between variants, not ratios.
    Raises ValueError for a peft model with unmerged adapters (measure `merge(model)`), RuntimeError when the
    child process fails (its error output attached)."""
    return _peak_result(_start_peak(model, tok, gen_tokens, prompt))


def _start_peak(model, tok, gen_tokens: int, prompt: str):
    """Start peak_memory_bytes' measuring process (it runs on its own while the caller goes on); returns the
    handle `_peak_result` waits on. ValueError for a model with unmerged LoRA adapters."""
    if hasattr(model, "merge_and_unload"):
        raise ValueError("peak_memory_bytes: this model has unmerged LoRA adapters; measure "
                         "workbench.compress.merge(model), the plain model they fold into")
    state = model.state_dict()
    extra = {n: b for n, b in model.named_buffers() if n not in state}
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    args = {"module": type(model).__module__, "cls": type(model).__name__, "config": model.config.to_dict(),
            "quantized": _is_quantized(model), "ids": tok(prompt)["input_ids"], "n": gen_tokens, "pad": pad}
    folder = tempfile.TemporaryDirectory()
    path = Path(folder.name) / "tensors.pt"
    torch.save({"state": state, "extra": extra}, path)
    proc = subprocess.Popen([sys.executable, "-c", _PEAK_CHILD, str(path), json.dumps(args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"})
    return proc, folder


def _peak_result(handle, check: bool = True) -> int | None:
    """Wait for a measuring process from `_start_peak`; its peak minus its base RSS in bytes. RuntimeError when
    it failed (its error output attached) or ran over 10 minutes; with check=False only waits and cleans up."""
    proc, folder = handle
    try:
        stdout, stderr = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        stderr += "\n(stopped after 600 s)"
    finally:
        folder.cleanup()
    if not check:
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"peak_memory_bytes: the measuring process failed:\n{stderr[-2000:]}")
    out = json.loads(stdout.strip().splitlines()[-1])
    return int(out["peak"] - out["base"])


def measure(model, tok, name: str, method: str = "original", setting: str = "", *, tasks=("feeling/1", "ending/1"),
            n_task: int = 120, n_val: int = 60, n_stories: int = 20, gen_tokens: int = 32, repeats: int = 5,
            threads=(1, 2), seed: int = 0) -> dict:
    """One row of measurements for `model` (see the module docstring); `name`, `method`, `setting` label it."""
    from workbench.corpora import generate_corpus
    from workbench.family.checks import validator_scores
    from workbench.models import count_params
    from workbench.scoring import label_logprobs, load_task, predictions
    model = model.eval()
    total, active = count_params(model)
    nonzero = int(sum((p != 0).sum().item() for p in model.parameters() if type(p.data).__name__ == "Tensor"))
    row = {"model": name, "method": method, "setting": setting, "disk_mb": disk_bytes(model) / 1e6,
           "weights_mb": _memory_bytes(model) / 1e6, "params": total, "active": active,
           "nonzero": nonzero if not _is_quantized(model) else total}
    for t in threads:
        row[f"ms_per_token_{t}t"] = ms_per_token(model, tok, t, gen_tokens, repeats)
    peak = _start_peak(model, tok, gen_tokens, PROMPT)     # its own process: measured while the rest runs here
    row["peak_mb"] = None                                 # filled in when that process is done
    try:
        texts = generate_corpus("mixed", n_val, seed=seed, split="eval").texts
        row["val_loss"] = val_loss(model, tok, texts)
        row["val_ppl"] = math.exp(row["val_loss"])
        row["well_formed"] = validator_scores(model, tok, n=n_stories, seed=seed, max_new_tokens=160)["well_formed"]
        for spec in tasks:
            task = load_task(spec, n=n_task, seed=seed)
            rec = label_logprobs(model, tok, task, channel=False)
            row[f"acc:{spec}"] = float((predictions(rec, ["acc"])["acc"] == np.asarray(task.golds)).mean())
    except BaseException:                                 # stop the measuring process with the error
        peak[0].kill()
        _peak_result(peak, check=False)
        raise
    row["peak_mb"] = _peak_result(peak) / 1e6
    return row


# costs and losses: lower is better; every other column (accuracy, well_formed) higher is better
LOWER_IS_BETTER = {"disk_mb", "weights_mb", "params", "nonzero", "active", "ms_per_token_1t", "ms_per_token_2t",
                   "peak_mb", "val_loss", "val_ppl", "trainable", "adapter_kb"}


def pareto_front(df, x: str, y: str):
    """Rows of `df` not dominated on (x, y): no other row is at least as good on both and better on one
    (lower is better for LOWER_IS_BETTER columns, higher otherwise). Sorted by x. Rows without a value
    for x or y (a LoRA row has no validation loss) are left out."""
    df = df.dropna(subset=[x, y])
    sx = 1 if x in LOWER_IS_BETTER else -1
    sy = 1 if y in LOWER_IS_BETTER else -1
    a = df[[x, y]].to_numpy(dtype=float) * [sx, sy]
    keep = [i for i in range(len(a))
            if not any((a[j] <= a[i]).all() and (a[j] < a[i]).any() for j in range(len(a)) if j != i)]
    return df.iloc[keep].sort_values(x)
