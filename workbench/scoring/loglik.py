"""Batched continuation log-likelihoods for decoder-only and encoder-decoder models, with lm-eval's rules.

Here: `ContextScorer` (log p(continuation | context) for many (context, continuation) pairs) and
`label_logprobs()`, which runs every pass a task needs once and returns a `LabelLogprobs` record.
Not here: turning log-likelihoods into predictions (`functions.py`).

Rules copied from lm-evaluation-harness 0.4.13 so the numbers match it:
* trailing whitespace of the context moves to the start of the continuation;
* causal: encode context+continuation once and split at the length of the encoded context ("joint");
  when the continuation's first token merges with the end of the context ("Once upon a ti" + "me"), that
  split drops part of the continuation: a TokenMergeWarning names an example, and split_rule="separate"
  encodes context and continuation separately instead;
  seq2seq: encode both separately, the continuation without special tokens (no EOS scored);
* an empty context becomes [BOS] (EOS if there is none), split off the continuation if it starts with it;
* over-long inputs are left-truncated to max_length + 1 tokens (minus the last), with a warning.
Speed: each distinct context runs once; its key/value cache (decoder-only) or encoder states
(encoder-decoder) are reused by all its continuations, and many contexts share one padded batch.
Only for architectures checked to give the same numbers that way (`PACKABLE`), and for sliding-window models
only while a batch fits the window; the others (ALiBi, recurrent hybrids such as Jamba, unchecked types) take
the exact path: one plain forward per context+continuation (`ContextScorer.exact_reason` says why).
Premise terms (BOS, generic, domain, content-free) are computed once per label, not per example.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .tasks import Task

TOKENIZER_INFINITY = 1e29
SPLIT_RULES = ("joint", "separate")


class TokenMergeWarning(UserWarning):
    """Under the joint split rule, a continuation's first token merged with the end of its context."""


@dataclass(frozen=True)
class ContinuationLL:
    """log p(continuation | context) in nats, with its tokens."""
    total: float                 # sum of token log-probs (float32 sum, as lm-eval)
    token_ids: tuple[int, ...]   # continuation tokens
    logprobs: np.ndarray         # (n_tokens,) per-token log-probs
    greedy: bool                 # every continuation token is the argmax
    truncated: bool = False


def max_length_of(model, tokenizer, default: int = 2048) -> int:
    """The context window as lm-eval resolves it: config n_positions / max_position_embeddings / n_ctx,
    else the tokenizer's model_max_length, else `default`."""
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        v = getattr(model.config, attr, None)
        if v:
            return int(v)
    m = getattr(tokenizer, "model_max_length", None)
    return int(m) if m and m < TOKENIZER_INFINITY else default


class ContextScorer:
    """Scores (context, continuation) string pairs with one forward pass per distinct context."""

    def __init__(self, model, tokenizer, max_length: int | None = None, batch_tokens: int = 8192,
                 pack_tokens: int = 256, split_rule: str = "joint"):
        if split_rule not in SPLIT_RULES:
            raise ValueError(f"split_rule must be one of {SPLIT_RULES}, got {split_rule!r}")
        self.split_rule = split_rule          # joint: lm-eval's split of one encoding; separate: two encodings
        self.model, self.tok = model.eval(), tokenizer
        self.seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
        self.max_length = max_length or max_length_of(model, tokenizer)
        self.batch_tokens = batch_tokens      # padded tokens per forward pass
        self.pack_tokens = pack_tokens        # continuation tokens packed after one context in the second pass
        self.prefix_token_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None \
            else tokenizer.eos_token_id
        self._bos_text = tokenizer.decode([self.prefix_token_id]) if self.prefix_token_id is not None else None
        self.exact_reason = exact_only_reason(model.config)   # why this model is scored the slow exact way
        self.window = sliding_window(model.config)            # packed/cached only while it fits the window

    # ---- tokenisation (lm-eval's TemplateLM._encode_pair and loglikelihood) ----------------------------------
    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        if add_special_tokens is None and self._bos_text and text.startswith(self._bos_text):
            add_special_tokens = False          # the string already carries BOS: don't add a second one
        kw = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        return list(self.tok.encode(text, **kw))

    def encode_many(self, texts: list[str]) -> dict[str, list[int]]:
        """text -> ids (tokenizer defaults), for many texts in one batched tokenizer call."""
        plain = [t for t in dict.fromkeys(texts) if not (self._bos_text and t.startswith(self._bos_text))]
        out = dict(zip(plain, self.tok(plain)["input_ids"])) if plain else {}
        out.update({t: self.encode(t) for t in texts if t not in out})
        return out

    def encode_pairs(self, pairs: list[tuple[str, str]], where: str = "") -> list[tuple[list[int], list[int]]]:
        """`encode_pair` for many pairs: each distinct string is tokenised once, in batched calls. Under the
        joint rule, one TokenMergeWarning (prefixed by `where`) reports continuations that merge with their
        context."""
        out: list = [None] * len(pairs)
        split = {}
        for i, (c, x) in enumerate(pairs):
            c2, x2 = _move_space(c, x)
            if self.seq2seq or c2 == "" or self.split_rule == "separate":
                out[i] = self.encode_pair(c, x)
            else:
                split[i] = (c2, x2)
        ids = self.encode_many([s for c, x in split.values() for s in (c, c + x)])
        merged = []
        for i, (c, x) in split.items():
            ctx, whole = ids[c], ids[c + x]
            out[i] = (ctx, whole[len(ctx):])
            if whole[:len(ctx)] != ctx:
                merged.append((c, x, out[i][1]))
        self._warn_merged(merged, len(pairs), where)
        return out

    def _warn_merged(self, merged: list, n_pairs: int, where: str = "") -> None:
        if not merged:
            return
        c, x, kept = merged[0]
        warnings.warn(f"{where + ': ' if where else ''}{len(merged)} of {n_pairs} continuations merge with the "
                      f"end of their context, e.g. {c!r} + {x!r}: split at the context's token count (lm-eval's "
                      f"rule), only {self.tok.decode(kept)!r} is scored, not the whole continuation. Pass "
                      "split_rule='separate' to encode context and continuation separately", TokenMergeWarning,
                      stacklevel=4)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of (context, continuation); whitespace ending the context joins the continuation."""
        if context.strip() == "":
            cont = self.encode(context + continuation, add_special_tokens=False)
            if not cont:
                raise ValueError(f"continuation {continuation!r} encodes to no tokens")
            if cont[0] == self.prefix_token_id:
                return cont[:1], cont[1:]
            return [self.prefix_token_id], cont
        context, continuation = _move_space(context, continuation)
        if self.seq2seq or self.split_rule == "separate":
            return self.encode(context), self.encode(continuation, add_special_tokens=False)
        whole, ctx = self.encode(context + continuation), self.encode(context)
        if whole[:len(ctx)] != ctx:
            self._warn_merged([(context, continuation, whole[len(ctx):])], 1)
        return ctx, whole[len(ctx):]

    # ---- scoring ---------------------------------------------------------------------------------------------
    def score(self, pairs: list[tuple[str, str]]) -> list[ContinuationLL]:
        """log p(continuation | context) for each (context, continuation) string pair."""
        return self.score_tokens(self.encode_pairs(pairs))

    def score_tokens(self, encoded: list[tuple[list[int], list[int]]]) -> list[ContinuationLL]:
        """Same, on token ids; requests sharing a context share its forward pass."""
        groups: dict[tuple[int, ...], list[tuple[int, tuple[int, ...]]]] = {}
        truncated = set()
        for r, (ctx, cont) in enumerate(encoded):
            if not cont:
                raise ValueError("a continuation encodes to no tokens: check the label and the delimiter")
            if len(cont) > self.max_length:
                raise ValueError(f"a label of {len(cont)} tokens is longer than the model's context window "
                                 f"({self.max_length} tokens): shorten the verbalizer")
            ctx = self._truncate(ctx, cont)
            if len(ctx) < len(encoded[r][0]) or (self.seq2seq and len(encoded[r][0]) > self.max_length):
                truncated.add(r)
            groups.setdefault(tuple(ctx), []).append((r, tuple(cont)))
        if truncated:
            warnings.warn(f"{len(truncated)} of {len(encoded)} inputs exceed the model's context window "
                          f"({self.max_length} tokens) and were truncated from the left, as lm-eval does",
                          stacklevel=3)
        out: list[ContinuationLL | None] = [None] * len(encoded)
        items = [(ctx, chunk) for ctx, conts in sorted(groups.items(), key=lambda g: -len(g[0]))
                 for chunk in self._chunks(conts)]
        for batch in self._batches(items):
            run = (self._run_exact if not self._can_pack(batch) else
                   self._run_seq2seq if self.seq2seq else self._run_causal)
            for r, res in run(batch):
                out[r] = ContinuationLL(res.total, res.token_ids, res.logprobs, res.greedy, r in truncated)
        return out

    def _chunks(self, conts):
        """Split one context's continuations so that each packed row stays short (<= pack_tokens)."""
        chunk, size = [], 0
        for r, cont in conts:
            if chunk and size + len(cont) > self.pack_tokens:
                yield chunk
                chunk, size = [], 0
            chunk.append((r, cont))
            size += len(cont)
        if chunk:
            yield chunk

    def _truncate(self, ctx: list[int], cont: list[int]) -> list[int]:
        if self.seq2seq:
            return ctx[-self.max_length:]
        if len(ctx) + len(cont) > self.max_length + 1:      # lm-eval: (ctx+cont)[-(max_length+1):][:-1]
            return (ctx + cont)[-(self.max_length + 1):][:-len(cont)]
        return ctx

    def _batches(self, items):
        """Group (context, continuations) items so that rows x padded width stays under batch_tokens."""
        batch, width = [], 0
        for item in items:
            w = len(item[0]) + sum(len(c) for _, c in item[1])
            if batch and max(width, w) * (len(batch) + 1) > self.batch_tokens:
                yield batch
                batch, width = [], 0
            batch.append(item)
            width = max(width, w)
        if batch:
            yield batch

    @torch.inference_mode()
    def _run_causal(self, batch):
        """One padded forward over the contexts, then one over all continuations on the reused KV cache.

        The second pass packs every continuation of a context into one row: a 4D mask lets each continuation
        token see its context (the cache) and the earlier tokens of its own continuation only.
        """
        dev = self.model.device
        B, lens = len(batch), [len(ctx) for ctx, _ in batch]
        L = max(lens)
        ids = torch.zeros(B, L, dtype=torch.long)
        mask = torch.zeros(B, L, dtype=torch.long)
        for b, (ctx, _) in enumerate(batch):                          # right padding: real tokens unaffected
            ids[b, :len(ctx)], mask[b, :len(ctx)] = torch.tensor(ctx), 1
        out = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), use_cache=True)
        rows = [out.logits[torch.arange(B), torch.tensor(lens) - 1]]  # (B, V): predicts each first token
        P = max(sum(len(c) - 1 for _, c in conts) for _, conts in batch)
        src, tgt, counts, order = [], [], [], []                      # per scored token: row of `rows`, target
        if P > 0:
            pid = torch.zeros(B, P, dtype=torch.long)
            pos = torch.zeros(B, P, dtype=torch.long)
            allowed = torch.zeros(B, P, L + P, dtype=torch.bool)
            for b, (_, conts) in enumerate(batch):
                allowed[b, :, :lens[b]] = True                        # the real context, not its padding
                off = 0
                for _, cont in conts:
                    n = len(cont) - 1
                    if n:
                        pid[b, off:off + n] = torch.tensor(cont[:-1])
                        pos[b, off:off + n] = lens[b] + torch.arange(n)
                        allowed[b, off:off + n, L + off:L + off + n] = torch.ones(n, n, dtype=torch.bool).tril()
                    off += n
                idx = torch.arange(off, P)
                allowed[b, idx, L + idx] = True                        # padding queries: any finite row
            mask4 = torch.zeros(B, 1, P, L + P, dtype=self.model.dtype)
            mask4.masked_fill_(~allowed[:, None], torch.finfo(self.model.dtype).min)
            cout = self.model(input_ids=pid.to(dev), attention_mask=mask4.to(dev), position_ids=pos.to(dev),
                              past_key_values=out.past_key_values, use_cache=True)
            rows.append(cout.logits.reshape(B * P, -1))                # (B*P, V)
        for b, (_, conts) in enumerate(batch):
            off = 0
            for r, cont in conts:
                n = len(cont) - 1
                src += [b] + [B + b * P + off + j for j in range(n)]
                tgt += list(cont)
                counts.append(len(cont))
                order.append((r, cont))
                off += n
        yield from _gather_many(torch.cat(rows), src, tgt, counts, order)

    @torch.no_grad()
    def _run_seq2seq(self, batch):
        """Encoder once per context; the decoder scores all continuations on the shared encoder states."""
        dev = self.model.device
        L = max(len(ctx) for ctx, _ in batch)
        ids = torch.full((len(batch), L), self.tok.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros(len(batch), L, dtype=torch.long)
        for b, (ctx, _) in enumerate(batch):
            ids[b, :len(ctx)], mask[b, :len(ctx)] = torch.tensor(ctx), 1
        enc = self.model.get_encoder()(input_ids=ids.to(dev), attention_mask=mask.to(dev))
        rows = [(b, r, cont) for b, (_, conts) in enumerate(batch) for r, cont in conts]
        sel = torch.tensor([b for b, _, _ in rows], device=dev)
        start = self.model.config.decoder_start_token_id
        C = max(len(c) for _, _, c in rows)
        dec = torch.full((len(rows), C), self.tok.pad_token_id or 0, dtype=torch.long)
        for j, (_, _, cont) in enumerate(rows):                       # decoder input: [start] + cont[:-1]
            dec[j, :len(cont)] = torch.tensor([start, *cont[:-1]])
        enc.last_hidden_state = enc.last_hidden_state[sel]
        out = self.model(encoder_outputs=enc, attention_mask=mask.to(dev)[sel], decoder_input_ids=dec.to(dev))
        lp = out.logits.float().log_softmax(-1)                       # (rows, C, V)
        for j, (_, r, cont) in enumerate(rows):
            yield r, _gather(lp[j, :len(cont)], cont)

    def _can_pack(self, batch) -> bool:
        """The fast paths (shared context pass, cache reuse, packed continuations) give the exact result for
        this batch: an architecture checked to pack, and within its sliding window (cache and mask included)."""
        if self.exact_reason:
            return False
        if self.window and not self.seq2seq:
            width = max(len(ctx) for ctx, _ in batch) + max(sum(len(c) - 1 for _, c in conts) for _, conts in batch)
            return width <= self.window
        return True

    @torch.inference_mode()
    def _run_exact(self, batch):
        """The slow exact path: one plain forward per context+continuation, no cache, no padding, no packing
        (sequences of equal shape share a forward pass, which changes nothing)."""
        dev = self.model.device
        shapes: dict = {}
        for ctx, conts in batch:
            for r, cont in conts:
                shapes.setdefault((len(ctx), len(cont)), []).append((r, ctx, cont))
        start = self.model.config.decoder_start_token_id if self.seq2seq else None
        for (n_ctx, n_cont), reqs in shapes.items():
            if self.seq2seq:
                enc = torch.tensor([ctx for _, ctx, _ in reqs], device=dev)
                dec = torch.tensor([[start, *cont[:-1]] for _, _, cont in reqs], device=dev)
                logits = self.model(input_ids=enc, decoder_input_ids=dec, use_cache=False).logits
                first, width = 0, n_cont
            else:
                ids = torch.tensor([(ctx + cont)[:-1] for _, ctx, cont in reqs], device=dev)
                logits = self.model(input_ids=ids, use_cache=False).logits
                first, width = n_ctx - 1, n_ctx + n_cont - 1
            src = [j * width + first + t for j in range(len(reqs)) for t in range(n_cont)]
            tgt = [t for _, _, cont in reqs for t in cont]
            yield from _gather_many(logits.reshape(-1, logits.shape[-1]), src, tgt, [n_cont] * len(reqs),
                                    [(r, cont) for r, _, cont in reqs])


# Architectures whose batched paths (right padding, KV-cache reuse, continuations packed with position_ids and
# a 4D mask; encoder states shared by padded decoder rows) are checked to equal one plain forward per example
# (tests/test_architectures.py). Any other model_type is scored the slow exact way.
PACKABLE = frozenset({"gpt2", "gpt_neox", "gptj", "opt", "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3",
                      "phi", "phi3", "gemma", "gemma2", "gemma3_text", "falcon", "olmoe", "deepseek_v2",
                      "deepseek_v3", "granitemoe", "gpt_oss", "t5", "bart"})
RECURRENT = frozenset({"jamba", "mamba", "mamba2", "falcon_mamba", "zamba", "zamba2", "bamba", "rwkv",
                       "recurrent_gemma", "granitemoehybrid", "nemotron_h", "lfm2", "qwen3_next", "falcon_h1"})


def exact_only_reason(config) -> str:
    """Why `config`'s model must be scored one example at a time ("" when the batched paths are exact).

    ALiBi biases are built from the attention mask and ignore position_ids (packing scores wrong); padding and
    packing change a recurrent layer's state (hybrids such as Jamba); other architectures are unchecked.
    """
    mt = getattr(config, "model_type", "")
    if getattr(config, "alibi", False) or getattr(config, "use_alibi", False) or mt in ("bloom", "mpt") \
            or getattr(config, "position_embedding_type", "") == "alibi":
        return f"{mt}: ALiBi position biases follow the attention mask, not position_ids"
    if mt in RECURRENT or getattr(config, "layers_block_type", None) or getattr(config, "attn_layer_period", None):
        return f"{mt}: recurrent (state-space) layers carry padding and packed tokens in their state"
    if mt not in PACKABLE:
        return f"{mt or type(config).__name__}: not among the architectures checked to score correctly when packed"
    return ""


def sliding_window(config) -> int | None:
    """The attention window of a sliding-window model (Mistral, Gemma-2/3, gpt-oss), None when attention is full."""
    w = getattr(config, "sliding_window", None)
    if not w or getattr(config, "use_sliding_window", True) is False:
        return None
    types = getattr(config, "layer_types", None)
    if types is not None and "sliding_attention" not in types:
        return None
    return int(w)


def _move_space(context: str, continuation: str) -> tuple[str, str]:
    """lm-eval's rule: whitespace ending the context moves to the start of the continuation."""
    n = len(context) - len(context.rstrip())
    return (context[:-n], context[-n:] + continuation) if n else (context, continuation)


def _gather_many(logits: torch.Tensor, src: list[int], tgt: list[int], counts: list[int], order):
    """Log-softmax the needed rows once; split the gathered token log-probs back per request."""
    lp = logits[torch.tensor(src, device=logits.device)].float().log_softmax(-1)   # (tokens, V)
    target = torch.tensor(tgt, device=lp.device)
    tok_lp = lp.gather(1, target[:, None])[:, 0].cpu().numpy()
    greedy = (lp.argmax(-1) == target).cpu().numpy()
    ends = np.cumsum(counts)
    for (r, cont), end, n in zip(order, ends, counts):
        x = tok_lp[end - n:end]
        yield r, ContinuationLL(float(torch.from_numpy(x).sum()), tuple(cont), x, bool(greedy[end - n:end].all()))


def _gather(logprobs: torch.Tensor, cont) -> ContinuationLL:
    """logprobs: (n, V) distributions predicting each continuation token."""
    target = torch.tensor(cont, device=logprobs.device)
    tok_lp = logprobs.gather(1, target[:, None])[:, 0]
    greedy = bool((logprobs.argmax(-1) == target).all())
    return ContinuationLL(float(tok_lp.sum()), tuple(cont), tok_lp.cpu().numpy(), greedy)


# ---- a task's log-likelihoods ----------------------------------------------------------------------------

@dataclass(frozen=True)
class LabelLogprobs:
    """Every log-likelihood the scoring functions need for one (model, task), in nats.

    Columns are the task's flat verbalizer list `task.choices` (V of them); rows are examples (N).
    Premise terms are per label: computed once, not per example.
    """
    task: Task
    model_name: str
    cond: np.ndarray          # (N, V) LL(delim+v | prompt_i)
    first: np.ndarray         # (N, V) log p(first continuation token | prompt_i)
    n_tokens: np.ndarray      # (N, V) continuation tokens scored
    greedy: np.ndarray        # (N, V) bool: the continuation is the greedy one
    uncond: np.ndarray        # (V,) LL(delim+v | BOS): lm-eval's acc_mutual_info term
    generic: np.ndarray       # (V,) LL(delim+v | generic premise)
    domain: np.ndarray        # (V,) LL(delim+v | domain premise)
    content_free: np.ndarray  # (C, V) LL(delim+v | template(content-free input))
    channel: np.ndarray       # (N, V) LL(delim+x_i | channel_template(v)); NaN when not computed
    channel_tokens: np.ndarray  # (N, V) tokens of the input scored for channel
    cont_tokens: tuple        # [i][v] continuation token strings (leading-space marker kept)
    cont_logprobs: tuple      # [i][v] (n,) per-token log-probs
    ctx_tokens: tuple         # [i] context token strings, as the model saw them (BOS included)
    truncated: np.ndarray     # (N,) bool: the prompt was left-truncated

    @property
    def golds(self) -> np.ndarray:
        return np.asarray(self.task.golds)

    @property
    def verbalizers(self) -> list[str]:
        return [v for _, v in self.task.choices]


def label_logprobs(model, tokenizer, task: Task, model_name: str = "", channel: bool = True,
                   batch_tokens: int = 8192, max_length: int | None = None, split_rule: str = "joint") -> LabelLogprobs:
    """Run every pass the scoring functions need, once: conditional (N*V), premises (3V), content-free (CV),
    channel (N*V, optional). `split_rule`: "joint" (lm-eval's, the default) or "separate" (see the module
    docstring); under "joint" a continuation merging with its context gives one TokenMergeWarning."""
    sc = ContextScorer(model, tokenizer, max_length=max_length, batch_tokens=batch_tokens, split_rule=split_rule)
    N, choices, d = len(task.texts), task.choices, task.target_delimiter
    V = len(choices)
    pairs = [(task.prompt(i), d + v) for i in range(N) for _, v in choices]
    premises = ["", task.generic_premise, task.domain_premise]
    pairs += [(p, d + v) for p in premises for _, v in choices]
    pairs += [(task.template.format(text=cf), d + v) for cf in task.content_free for _, v in choices]
    n_main = len(pairs)
    if channel:
        pairs += [(task.channel_template.format(label=v), d + task.texts[i]) for i in range(N) for _, v in choices]
    encoded = sc.encode_pairs(pairs, where=f"task {task.name!r}")
    encoded[n_main:] = [_fit_input(sc, ctx, cont) for ctx, cont in encoded[n_main:]]
    first_tokens_warning(task, [encoded[j][1] for j in range(V)] if N else [])
    res = sc.score_tokens(encoded)
    cond = res[:N * V]
    m = np.array([r.total for r in res], dtype=np.float64)
    prem = m[N * V:N * V + 3 * V].reshape(3, V)
    chan = np.full((N, V), np.nan)
    chan_n = np.zeros((N, V), dtype=int)
    if channel:
        chan = m[n_main:].reshape(N, V)
        chan_n = np.array([len(r.token_ids) for r in res[n_main:]]).reshape(N, V)
    grid = lambda f: np.array([f(r) for r in cond]).reshape(N, V)   # noqa: E731
    ctx_tokens = tuple(tuple(tokenizer.convert_ids_to_tokens(sc._truncate(encoded[i * V][0], encoded[i * V][1])))
                       for i in range(N))
    return LabelLogprobs(
        task=task, model_name=model_name or getattr(model.config, "_name_or_path", "") or "model",
        cond=grid(lambda r: r.total), first=grid(lambda r: float(r.logprobs[0])),
        n_tokens=grid(lambda r: len(r.token_ids)), greedy=grid(lambda r: r.greedy),
        uncond=prem[0], generic=prem[1], domain=prem[2],
        content_free=m[N * V + 3 * V:n_main].reshape(len(task.content_free), V),
        channel=chan, channel_tokens=chan_n,
        cont_tokens=tuple(tuple(tuple(tokenizer.convert_ids_to_tokens(list(cond[i * V + v].token_ids)))
                                for v in range(V)) for i in range(N)),
        cont_logprobs=tuple(tuple(cond[i * V + v].logprobs for v in range(V)) for i in range(N)),
        ctx_tokens=ctx_tokens,
        truncated=np.array([any(cond[i * V + v].truncated for v in range(V)) for i in range(N)], dtype=bool))


def _fit_input(sc: ContextScorer, ctx: list[int], cont: list[int]) -> tuple[list[int], list[int]]:
    """Channel pass: an input longer than the window is scored on its last tokens (the label context kept)."""
    room = sc.max_length + (0 if sc.seq2seq else 1) - (0 if sc.seq2seq else len(ctx))
    if len(cont) > room:
        warnings.warn(f"channel scoring: an input of {len(cont)} tokens is scored on its last {room} tokens "
                      f"(context window {sc.max_length})", stacklevel=3)
        return ctx, cont[-room:]
    return ctx, cont


def first_tokens_warning(task: Task, conts: list[list[int]]) -> list[tuple[str, str]]:
    """Warn when two classes' verbalizers start with the same token: first-token scoring cannot tell them apart."""
    seen, clashes = {}, []
    for (k, v), ids in zip(task.choices, conts):
        if not ids:
            continue
        other = seen.get(ids[0])
        if other is not None and other[0] != k:
            clashes.append((other[1], v))
        seen.setdefault(ids[0], (k, v))
    if clashes:
        warnings.warn(f"task {task.name!r}: labels {clashes} share their first token; `first_token` scoring "
                      "cannot tell them apart (ties go to the first label)", stacklevel=3)
    return clashes
