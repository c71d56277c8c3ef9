"""The `Corpus` record list and `generate_corpus()` for the four kinds.

  stories   n English stories with labels
  parallel  n stories, each rendered in English and every constructed language: 4 records per story
            sharing a `pair_id` (translation pairs, language-routing studies)
  mixed     n documents interleaved (the mixture the model family is trained on): stories (55% of them
            English, 15% in each constructed language), stories switching language from sentence to sentence
            (5% of documents), arithmetic facts (10%) and code-like lines (10%); half the single-language
            documents end with a label line ("This text is a story in Velo.", "This text is code.")
  qa        n English stories, each followed by 3-5 questions about its own facts with their answers, and
            instruction/response lines (for instruction tuning; never part of a base model's mixture)
Every record: id, text, lang (en | vel | kor | tuu | mix | num | code), domain (story | arith | code | qa), and
spans [[start_char, end_char, lang], ...] (one per sentence for stories, one per document otherwise).
Story records add feeling, topic, ending, hero.
Splits: `split="train"` (default) or `"eval"`; every story and document belongs to one split by the hash of its
text (`stories.text_split`), so evaluation material never occurs in any training corpus.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field

from . import domains
from .languages import LANGUAGES
from . import vocab as V
from .stories import BY_GROUP, LABELS, PATTERNS, SPLITS, Story, draw_story, text_split

KINDS = ("stories", "parallel", "mixed", "qa")
CORPUS_VERSION = 2        # 2: verdict/summary sentences, label lines, held-out split, the qa kind
MIXTURE = {"arith": 0.10, "code": 0.10, "mix": 0.05, "story": 0.75}          # shares of `mixed` documents
STORY_LANG_WEIGHTS = {"en": 0.55, "vel": 0.15, "kor": 0.15, "tuu": 0.15}     # languages of its stories
LABEL_LINE_SHARE = 0.5    # share of single-language `mixed` documents that end with a label line
STORY_LANGS = ("en",) + tuple(LANGUAGES)
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")


@dataclass
class Corpus:
    """A list of record dicts (see the module docstring) plus how it was made."""
    records: list[dict]
    kind: str = "custom"
    seed: int | None = None
    meta: dict = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        return [r["text"] for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def stats(self) -> dict:
        """Size and variety: distinct ratio = distinct texts / n; tokens = whitespace words;
        vocabulary = distinct lower-cased alphabetic words; type_token = vocabulary / tokens;
        label balance = share of each class among records carrying that label."""
        texts = self.texts
        n = len(texts)
        lengths = [len(t.split()) for t in texts]
        vocab: set[str] = set()
        for t in texts:
            vocab.update(w.lower() for w in _WORD.findall(t))
        tokens = sum(lengths)
        balance = {}
        for label, classes in LABELS.items():
            counts = Counter(r[label] for r in self.records if label in r)
            total = sum(counts.values())
            if total:
                balance[label] = {c: round(counts[c] / total, 4) for c in classes}
        return {
            "n": n, "distinct_ratio": round(len(set(texts)) / n, 6) if n else 0.0,
            "tokens": tokens, "vocabulary": len(vocab), "type_token": round(len(vocab) / tokens, 6) if tokens else 0.0,
            "words_per_doc": {"mean": round(tokens / n, 1) if n else 0, "min": min(lengths, default=0),
                              "max": max(lengths, default=0)},
            "langs": dict(sorted(Counter(r.get("lang", "?") for r in self.records).items())),
            "domains": dict(sorted(Counter(r.get("domain", "?") for r in self.records).items())),
            "label_balance": balance,
        }


def _sentence_spans(sentences: list[str], langs: list[str]) -> tuple[str, list[list]]:
    """Join sentences with single spaces and return the text with [start, end, lang] per sentence."""
    spans, pos = [], 0
    for s, lang in zip(sentences, langs):
        spans.append([pos, pos + len(s), lang])
        pos += len(s) + 1
    return " ".join(sentences), spans


def _sentence(story: Story, i: int, lang: str) -> str:
    """Sentence i of `story` in `lang`."""
    if lang == "en":
        return story.sentences[i]
    pid, vals = story.plan[i]
    return LANGUAGES[lang].render_sentence(PATTERNS[pid], dict(vals))


def story_record(story: Story, rid: str, lang: str = "en", **extra) -> dict:
    """A story in one language as a record (`extra` fields, e.g. pair_id, go before the labels)."""
    return _record(story, rid, lang, [lang] * len(story.plan), extra)


def _switching_record(story: Story, rid: str, rng: random.Random) -> dict:
    """One story whose sentences each come in a randomly chosen language (code switching)."""
    return _record(story, rid, "mix", [rng.choice(STORY_LANGS) for _ in story.plan], {})


def _record(story: Story, rid: str, lang: str, langs: list[str], extra: dict) -> dict:
    text, spans = _sentence_spans([_sentence(story, i, x) for i, x in enumerate(langs)], langs)
    return {"id": rid, "text": text, "lang": lang, "domain": "story", **extra, "feeling": story.feeling,
            "topic": story.topic, "ending": story.ending, "hero": story.hero, "spans": spans}


def _domain_record(text: str, rid: str, domain: str) -> dict:
    lang = "num" if domain == "arith" else "code"
    return {"id": rid, "text": text, "lang": lang, "domain": domain, "spans": [[0, len(text), lang]]}


def translation_pairs(corpus: Corpus, src: str = "en", tgt: str = "vel") -> list[tuple[str, str]]:
    """(source text, target text) for every `pair_id` that has both languages, in corpus order."""
    by_key = {(r["pair_id"], r["lang"]): r["text"] for r in corpus.records if "pair_id" in r}
    if not by_key:
        raise ValueError("no records with a pair_id: use generate_corpus('parallel', n)")
    ids = list(dict.fromkeys(pid for pid, _ in by_key))
    pairs = [(by_key[(p, src)], by_key[(p, tgt)]) for p in ids if (p, src) in by_key and (p, tgt) in by_key]
    if not pairs:
        langs = sorted({lang for _, lang in by_key})
        raise ValueError(f"no pairs {src}->{tgt}; languages present: {', '.join(langs)}")
    return pairs


def _with_label_line(record: dict) -> dict:
    """`record` with its English label line appended ("This text is a story in Velo.", "This text is code.")."""
    from .grammar import fill
    domain = record["domain"]
    pattern = BY_GROUP[f"label.{domain}"][0]
    line = fill(pattern, {"language": V.LANGUAGE_NAMES.get(record["lang"], "")})
    start = len(record["text"]) + 1
    return {**record, "text": record["text"] + " " + line,
            "spans": record["spans"] + [[start, start + len(line), "en"]], "label_line": True}


def _doc(rng: random.Random, split: str, make) -> str:
    """A non-story document of `split`: `make(rng)` drawn again until its text belongs to the split."""
    while True:
        text = make(rng)
        if text_split(text) == split:
            return text


def _mixed_record(rng: random.Random, rid: str, split: str) -> dict:
    u, edge = rng.random(), 0.0
    for kind, share in MIXTURE.items():
        edge += share
        if u < edge:
            break
    if kind in ("arith", "code"):
        record = _domain_record(_doc(rng, split, domains.arith_doc if kind == "arith" else domains.code_doc),
                                rid, kind)
    elif kind == "mix":
        return _switching_record(draw_story(rng, split), rid, rng)
    else:
        lang = rng.choices(list(STORY_LANG_WEIGHTS), weights=list(STORY_LANG_WEIGHTS.values()))[0]
        record = story_record(draw_story(rng, split), rid, lang)
    return _with_label_line(record) if rng.random() < LABEL_LINE_SHARE else record


def generate_corpus(kind: str = "stories", n: int = 1000, seed: int = 0, split: str = "train") -> Corpus:
    """A corpus of `kind` with `n` stories (stories, parallel: 4 records per story, qa) or documents (mixed).

    `split` is "train" or "eval": the two never share a story or document (see the module docstring).
    Deterministic: the same (kind, n, seed, split) gives the same records, byte for byte once written.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown corpus kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer (number of stories/documents), got {n!r}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    rng = random.Random(f"{kind}-{seed}" if split == "train" else f"{kind}-{seed}-{split}")
    prefix = "" if split == "train" else "e"
    records: list[dict] = []
    if kind == "stories":
        for i in range(n):
            records.append(story_record(draw_story(rng, split), f"{prefix}s{i:06d}"))
    elif kind == "parallel":
        for i in range(n):
            story, pid = draw_story(rng, split), f"{prefix}p{i:06d}"
            records += [story_record(story, f"{pid}-{lang}", lang, pair_id=pid) for lang in STORY_LANGS]
    elif kind == "qa":
        from .qa import qa_record
        for i in range(n):
            records.append(qa_record(draw_story(rng, split), f"{prefix}q{i:06d}", rng))
    else:
        for i in range(n):
            records.append(_mixed_record(rng, f"{prefix}m{i:06d}", split))
    return Corpus(records, kind=kind, seed=seed, meta={"split": split, "version": CORPUS_VERSION})
