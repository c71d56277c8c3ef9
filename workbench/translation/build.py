"""Building the shipped translation study: train the models, score them, record their routing, write the tables.

`python -m workbench.translation.build --out data/translation [--device cuda] [--jobs 5]`:
1. data: translation pairs from RECIPE["stories"] training stories, Tuuli ("tuu") kept in RECIPE["low_share"] of
   the sentence tuples (the low-resource language); one tokenizer for every run; a held-out test set of
   RECIPE["test_per_direction"] pairs in each of the 12 directions (translation.data.test_pairs);
2. runs (same data, seed and steps): the dense twin, the NLLB-MoE, and the MoE with Expert Output Masking, with
   emulated Gating Dropout, and with both (RUNS);
3. each run: trained by workbench.train, its weights halved (float16 on disk, float32 on load), reloaded from the
   shipped files, decoded greedily and with beam 4 on the test set, scored per direction (BLEU, chrF++, spBLEU,
   exact judgement) and for high- vs low-resource directions with bootstrap CIs; MoE runs also get their
   routing (layer-wise language separation, expert load, capacity overflow); the light checkpoints of the
   dense and MoE runs decode the test set as further systems of lower quality for the metric-agreement study;
4. tables in <out>/results/, the dense and MoE models in <out>/mt-dense and <out>/mt-moe with model cards.
Here: `RECIPE`, `RUNS`, `build_data()`, `run_one()`, `card_markdown()`, `write_cards()`, `main()`.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

RECIPE = dict(stories=1500, low_lang="tuu", low_share=0.1, directions_per_tuple=4, test_per_direction=50, seed=0,
              steps=4000, batch_size=64, lr=2e-3, warmup=200, eval_every=500, checkpoint_steps=(150, 400, 1000),
              vocab_size=2048)
RUNS = {
    "mt-dense": ("mt-dense", {}),
    "mt-moe": ("mt-moe", {}),
    "mt-moe-eom": ("mt-moe", {"expert_output_mask_p": 0.2}),
    "mt-moe-gd": ("mt-moe", {"gating_dropout_p": 0.2}),
    "mt-moe-eom-gd": ("mt-moe", {"expert_output_mask_p": 0.2, "gating_dropout_p": 0.2}),
}
SHIPPED = ("mt-dense", "mt-moe")
HISTORY_EVERY = 10     # the shipped history keeps every 10th step (the full one is 3 MB per MoE run)


def build_data(work: Path):
    """(pairs, test pairs, tokenizer), the tokenizer saved under work/tokenizer."""
    from ..tokenizer import save_tokenizer
    from .data import parallel_pairs, test_pairs, train_mt_tokenizer
    r = RECIPE
    pairs = parallel_pairs(r["stories"], seed=r["seed"], low_resource={r["low_lang"]: r["low_share"]},
                           directions_per_tuple=r["directions_per_tuple"])
    test = test_pairs(pairs, r["test_per_direction"], seed=r["seed"])
    tok = train_mt_tokenizer(pairs, r["vocab_size"])
    save_tokenizer(tok, work / "tokenizer")
    return pairs, test, tok


def _decode_rows(name, model, tok, test, num_beams):
    from .decode import translate_pairs
    t0 = time.perf_counter()
    hyps = translate_pairs(model, tok, test, num_beams=num_beams, batch_size=128)
    dt = time.perf_counter() - t0
    return [{"system": name, "i": i, "src_lang": p.src_lang, "tgt_lang": p.tgt_lang, "src": p.src, "ref": p.tgt,
             "hyp": h} for i, (p, h) in enumerate(zip(test, hyps))], len(test) / dt


def run_one(name: str, work: str, device: str | None, steps: int) -> dict:
    """Train, halve, reload and measure one run; returns its record (written to work/<name>/record.json)."""
    import pandas as pd
    import torch

    from ..family.build import half_weights
    from ..tokenizer import load_tokenizer
    from ..train import train
    from .decode import load_translation_model
    from .evaluate import group_scores, score_directions
    from .routing import capacity_overflow, separation_by_layer, translation_routing
    work = Path(work)
    pairs, test, _ = build_data_cached(work)
    tok = load_tokenizer(work / "tokenizer")
    preset, settings = RUNS[name]
    r = RECIPE
    out = work / name
    t0 = time.perf_counter()
    res = train(preset, corpus=pairs, tokenizer=tok, out_dir=out, overwrite=True, steps=steps,
                batch_size=r["batch_size"], lr=r["lr"], warmup=r["warmup"], eval_every=r["eval_every"],
                checkpoint_steps=tuple(s for s in r["checkpoint_steps"] if s < steps), checkpoint_light=True,
                keep_checkpoints=None, seed=r["seed"], device=device, **settings)
    train_s = time.perf_counter() - t0
    half_weights(out)
    model, tok = load_translation_model(out)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rows, greedy_sps = _decode_rows(name, model, tok, test, 1)
    beam_rows, beam_sps = _decode_rows(f"{name}-beam4", model, tok, test, 4)
    low = r["low_lang"]
    groups = {"high-resource": lambda p: low not in (p.src_lang, p.tgt_lang),
              "low-resource": lambda p: low in (p.src_lang, p.tgt_lang)}
    hyps = [x["hyp"] for x in rows]
    per_dir = score_directions(test, hyps)
    grp = group_scores(test, hyps, groups, judgements=per_dir.attrs["segments"]["judge"].to_numpy())
    rec = {"name": name, "preset": preset, "settings": settings, "steps": steps, "train_s": round(train_s, 1),
           "params": sum(p.numel() for p in model.parameters()), "val_loss": float(res.final_val_loss),
           "tokens_per_s": float(res.history["tokens_per_s"].median()), "greedy_sentences_per_s": greedy_sps,
           "beam4_sentences_per_s": beam_sps, "signatures": per_dir.attrs["signatures"]}
    per_dir.insert(0, "system", name)
    grp.insert(0, "system", name)
    systems = rows + beam_rows
    if model.config.model_type == "nllb-moe":
        recs = translation_routing(model, tok, test)
        sep = separation_by_layer(recs)
        sep.insert(0, "system", name)
        over = pd.concat([capacity_overflow(recs, cf) for cf in (1.0, 1.25, 2.0)])
        over.insert(0, "system", name)
        sep.to_csv(out / "separation.csv", index=False)
        over.to_csv(out / "overflow.csv", index=False)
        from ..probes.routing_stats import expert_load
        load = [{"system": name, "side": side, "layer": li, "expert": e, "load": float(v)}
                for side, rc in recs.items() for li, row in enumerate(expert_load(rc)) for e, v in enumerate(row)]
        pd.DataFrame(load).to_csv(out / "load.csv", index=False)
    if name in ("mt-dense", "mt-moe"):        # earlier checkpoints: systems of lower quality
        from ..probes.routing_analyses import find_checkpoints
        for step, ck in find_checkpoints(out, include_final=False):
            m, _ = load_translation_model(ck)
            systems += _decode_rows(f"{name}@{step}", m.to(model.device), tok, test, 1)[0]
    per_dir.to_csv(out / "directions.csv", index=False)
    grp.to_csv(out / "groups.csv", index=False)
    pd.DataFrame(systems).to_csv(out / "systems.csv", index=False)
    (out / "record.json").write_text(json.dumps(rec, indent=1))
    return rec


_CACHE: dict = {}


def build_data_cached(work: Path):
    if str(work) not in _CACHE:
        _CACHE[str(work)] = build_data(work)
    return _CACHE[str(work)]


def _ship(work: Path, out: Path, name: str) -> None:
    """Copy the run's model files (no checkpoints) to out/name, history thinned to every HISTORY_EVERY-th step."""
    src, dst = work / name, out / name
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and f.suffix in (".json", ".safetensors", ".csv", ".md") and f.name != "record.json" \
                and f.name not in ("directions.csv", "groups.csv", "separation.csv", "overflow.csv", "load.csv",
                                   "systems.csv"):
            shutil.copy2(f, dst / f.name)
    lines = (src / "history.jsonl").read_text().splitlines()
    keep = [ln for ln in lines if json.loads(ln)["step"] % HISTORY_EVERY == 0 or ln is lines[-1]]
    (dst / "history.jsonl").write_text("\n".join(keep) + "\n")


def _merge(work: Path, out: Path, names) -> None:
    import pandas as pd
    res = out / "results"
    res.mkdir(parents=True, exist_ok=True)
    for table in ("directions", "groups", "separation", "overflow", "load"):
        parts = [pd.read_csv(work / n / f"{table}.csv") for n in names if (work / n / f"{table}.csv").exists()]
        if parts:
            pd.concat(parts).to_csv(res / f"{table}.csv", index=False, float_format="%.4f")
    pd.concat([pd.read_csv(work / n / "systems.csv") for n in names]).to_csv(res / "systems.csv.gz", index=False)
    records = [json.loads((work / n / "record.json").read_text()) for n in names]
    (res / "runs.json").write_text(json.dumps({"recipe": {k: list(v) if isinstance(v, tuple) else v
                                                          for k, v in RECIPE.items()}, "runs": records}, indent=1))


def card_markdown(name: str, results: dict) -> str:
    """The model card of shipped run `name`, every number read from the study's tables (`study.load_results`)."""
    run = next(r for r in results["runs"]["runs"] if r["name"] == name)
    rec = results["runs"]["recipe"]
    d = results["directions"][results["directions"].system == name]
    g = results["groups"][results["groups"].system == name]
    moe = run["preset"] == "mt-moe"
    arch = ("NLLB-MoE (`NllbMoeForConditionalGeneration`): 3 encoder + 3 decoder layers of width 128, every FFN a "
            "top-2 mixture of 8 experts of width 128 (capacity factor 1.0 in training, none at inference)"
            if moe else "the NLLB-200 dense architecture (`M2M100ForConditionalGeneration`): 3 encoder + 3 decoder "
            "layers of width 128, FFN width 256 (the MoE twin's active width)")
    lines = [f"# {name}: many-to-many translation among English, Velo, Korru and Tuuli", "",
             f"- Architecture: {arch}; {run['params']:,} parameters, float16 on disk, float32 on load.",
             f"- Data: {rec['stories']:,} training stories' sentences in all four languages, {rec['directions_per_tuple']}"
             f" random directions per sentence; Tuuli (`tuu`) kept in only {rec['low_share']:.0%} of the sentences "
             "(the low-resource language). Test: 50 held-out sentences per direction (evaluation-split stories, none "
             "seen in training).",
             f"- Training: {run['steps']:,} steps of {rec['batch_size']} pairs, AdamW lr {rec['lr']}, one H200, "
             f"{run['train_s']:.0f} s; validation loss {run['val_loss']:.3f} nats per target token.",
             "- Scope: sentences of the workbench's story grammar (the corpora's sentences, e.g. \"Mia lost her "
             "kite.\"), one sentence at a time, at most 128 tokens; other text gets fluent but wrong translations "
             "(the vocabulary is the stories').",
             "- Use: `model, tok = workbench.translation.load_translation_model(\"" + name + "\")`, then "
             "`translate(model, tok, \"Mia lost her kite.\", \"en\", \"vel\")` (the target-language token is "
             "forced as NLLB does).", "",
             "With plain transformers (" + ("after `from workbench.translation.models import patch_nllb_moe_experts; "
                                            "patch_nllb_moe_experts()`" if moe else "no workbench code needed") + "):",
             "", "```python", "import torch", "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer",
             f"model = AutoModelForSeq2SeqLM.from_pretrained(\"{name}\", trust_remote_code=False)",
             f"tok = AutoTokenizer.from_pretrained(\"{name}\", trust_remote_code=False)",
             "ids = [tok.convert_tokens_to_ids(\"__en__\")] + tok(\"Mia lost her kite.\", add_special_tokens=False)"
             "[\"input_ids\"] + [tok.eos_token_id]",
             "out = model.generate(input_ids=torch.tensor([ids]), forced_bos_token_id=tok.convert_tokens_to_ids("
             "\"__vel__\"))   # generation_config: max_length 128",
             "print(tok.decode(out[0], skip_special_tokens=True))", "```", ""]
    if moe:
        lines += ["**Load it through the workbench** (or call `workbench.translation.models.patch_nllb_moe_experts()` "
                  "first): transformers 5.x (up to at least 5.24) runs only experts 0 and 1 of every NLLB-MoE layer; "
                  "the workbench checks the library and installs the transformers 4.x expert dispatch.", ""]
    lines += ["| group | BLEU | spBLEU | chrF++ | exact judgement |", "|---|---:|---:|---:|---:|"]
    for grp in ("high-resource", "low-resource"):
        row = g[g.group == grp].set_index("metric")
        cell = {m: f"{row.loc[m, 'score']:.{3 if m == 'judge' else 1}f} [{row.loc[m, 'lo']:.{3 if m == 'judge' else 1}f}"
                   f", {row.loc[m, 'hi']:.{3 if m == 'judge' else 1}f}]" for m in ("BLEU", "spBLEU", "chrF++", "judge")}
        lines.append(f"| {grp} | {cell['BLEU']} | {cell['spBLEU']} | {cell['chrF++']} | {cell['judge']} |")
    lines += ["", "Greedy decoding; 95 % bootstrap intervals over segments. Per direction (BLEU / chrF++):", "",
              "| direction | BLEU | chrF++ | judge |", "|---|---:|---:|---:|"]
    lines += [f"| {r.src_lang}→{r.tgt_lang} | {r.BLEU:.1f} | {r['chrF++']:.1f} | {r.judge:.3f} |" for _, r in d.iterrows()]
    lines += ["", "Signatures: " + "; ".join(f"{m} `{s}`" for m, s in run["signatures"].items()),
              "(spBLEU uses the workbench's own SentencePiece model `spm-wb4k`, not FLORES-200's).", ""]
    return "\n".join(lines)


def write_cards(out: Path) -> None:
    from .study import load_results
    results = load_results(out / "results")
    for name in SHIPPED:
        if (out / name).is_dir():
            (out / name / "README.md").write_text(card_markdown(name, results))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m workbench.translation.build", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="data/translation")
    p.add_argument("--work", default=None, help="run folders (default: <out>/.work)")
    p.add_argument("--device", default=None)
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes")
    p.add_argument("--steps", type=int, default=RECIPE["steps"])
    p.add_argument("--runs", nargs="*", default=list(RUNS))
    a = p.parse_args(argv)
    out = Path(a.out)
    work = Path(a.work) if a.work else out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    build_data_cached(work)
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs, mp_context=get_context("spawn")) as ex:
            recs = list(ex.map(run_one, a.runs, [str(work)] * len(a.runs), [a.device] * len(a.runs),
                               [a.steps] * len(a.runs)))
    else:
        recs = [run_one(n, str(work), a.device, a.steps) for n in a.runs]
    for r in recs:
        print(json.dumps({k: r[k] for k in ("name", "train_s", "val_loss", "tokens_per_s")}))
    for n in SHIPPED:
        if n in a.runs:
            _ship(work, out, n)
    _merge(work, out, a.runs)
    write_cards(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
