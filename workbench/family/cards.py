"""Model cards: a README.md beside each family member's weights, written from its measured record.

The record (one dict per member, also collected in family.json) holds what the card states: architecture,
parameters (total / active per token), tokens seen, hardware and time, validation loss, validator scores,
the expert-share check for MoE members and held-out zero-shot accuracy. Nothing on a card is typed by hand.
Here: `card_markdown()`, `write_card()`, `family_table()`.
"""
from __future__ import annotations

from pathlib import Path

_ARCH = {"dense": "decoder-only, dense (Llama)", "moe": "decoder-only, mixture of experts (Mixtral, top-2 of 4)",
         "encdec": "encoder-decoder (T5 v1.1 layout, prefix-LM objective)"}


def _tokens(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n:,.0f}"


def _best(zero_shot: list[dict]) -> dict[str, dict]:
    best: dict[str, dict] = {}
    for r in zero_shot:
        if r["task"] not in best or r["acc"] > best[r["task"]]["acc"]:
            best[r["task"]] = r
    return best


def card_markdown(rec: dict) -> str:
    """The card of one member's record (see the module docstring)."""
    cfg = rec["config"]
    lines = [f"# {rec['name']}", "",
             f"A small {_ARCH[cfg['kind']]} language model of the SLM Workbench model family"
             + (f", instruction-tuned from `{rec['base']}` on the `qa` corpus" if rec.get("base") else "") + ".",
             "It loads with plain `transformers`: "
             + ("`AutoModelForSeq2SeqLM.from_pretrained(dir)`" if cfg["kind"] == "encdec"
                else "`AutoModelForCausalLM.from_pretrained(dir)`") + " and `AutoTokenizer.from_pretrained(dir)`.",
             "", "| | |", "|---|---|",
             f"| architecture | {cfg['kind']}: {cfg['num_hidden_layers']} layers"
             + (" (encoder) + as many (decoder)" if cfg["kind"] == "encdec" else "")
             + f", width {cfg['hidden_size']}, {cfg['num_attention_heads']} heads, MLP {cfg['intermediate_size']}"
             + (f" per expert, {cfg['num_local_experts']} experts, top-{cfg['num_experts_per_tok']}"
                if cfg["kind"] == "moe" else "") + " |",
             f"| parameters | {rec['params_total'] / 1e6:.2f}M total, {rec['params_active'] / 1e6:.2f}M active per token |",
             f"| training data | {rec['data']} |",
             f"| tokens seen | {_tokens(rec['tokens_seen'])} ({rec['steps']} steps of {rec['tokens_per_step']:,} tokens)"
             + (f", after the {_tokens(rec['base_tokens_seen'])} of `{rec['base']}`" if rec.get("base_tokens_seen") else "")
             + " |",
             f"| hardware, time | {rec['hardware']}"
             + (f" shared by {rec['concurrent_jobs']} trainings at once" if rec.get("concurrent_jobs", 1) > 1 else "")
             + f", {rec['train_seconds']:.0f} s ({rec['tokens_per_s']:,.0f} tokens/s) |",
             f"| validation loss | {rec['val_loss']:.4f} nats/token"
             + (" (second half of each window given the first)" if cfg["kind"] == "encdec" else "")
             + (" on held-out qa documents (base members: on mixed text; not comparable)" if rec.get("base") else "")
             + " |"]
    v = rec.get("validator")
    if v:
        lines.append(f"| story validator ({v['samples']} samples) | well_formed {v['well_formed']:.3f}, hero consistency "
                     f"{v['hero_consistency']:.3f}, plot complete {v['plot_complete']:.3f} |")
    if rec.get("expert_min_ratio") is not None:
        lines.append(f"| experts | smallest share {rec['expert_min_ratio']:.2f} x uniform on held-out text; "
                     f"dead experts (< 0.10 x uniform): {len(rec.get('dead_experts', []))} |")
    rows = rec.get("zero_shot", [])
    best = _best(rows)
    if best:
        plain = {r["task"]: r for r in rows if r["scoring"] == "acc"}
        n = rows[0].get("n", "")
        lines += ["", f"Held-out zero-shot accuracy on the built-in tasks ({n} examples each, evaluation split).",
                  "`acc` is the plain log-likelihood of the label; the best of all scoring functions is picked on the",
                  "same examples, so it is optimistic: read it against its interval and the majority baseline.", "",
                  "| task | acc [95% CI] | best function [95% CI] | majority | ceiling |", "|---|---|---|---:|---:|"]
        for task, r in best.items():
            a = plain.get(task)
            acc = f"{a['acc']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}]" if a else "–"
            lines.append(f"| {task} | {acc} | {r['scoring']} {r['acc']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | "
                         f"{r['majority']:.2f} | {r['ceiling']:.2f} |")
    lines += ["", f"Recipe: `{rec['command']}` (workbench.family.recipe).", ""]
    return "\n".join(lines)


def write_card(rec: dict, model_dir: str | Path) -> Path:
    path = Path(model_dir) / "README.md"
    path.write_text(card_markdown(rec), encoding="utf-8")
    return path


def family_table(records: list[dict]) -> str:
    """One markdown row per member: params, tokens, time, val loss, validator, experts check."""
    from .recipe import FAMILY
    order = {name: i for i, name in enumerate(FAMILY)}
    lines = ["| model | params (active) | tokens | time | val loss | well_formed | dead experts |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in sorted(records, key=lambda r: order.get(r["name"], len(order))):
        v = r.get("validator") or {}
        dead = "–" if r.get("expert_min_ratio") is None else str(len(r.get("dead_experts", [])))
        lines.append(f"| {r['name']} | {r['params_total'] / 1e6:.2f}M ({r['params_active'] / 1e6:.2f}M) | "
                     f"{_tokens(r['tokens_seen'])} | {r['train_seconds']:.0f} s | {r['val_loss']:.3f} | "
                     f"{v.get('well_formed', float('nan')):.3f} | {dead} |")
    return "\n".join(lines) + "\n"
