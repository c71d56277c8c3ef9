"""Generated corpora (stories with labels, constructed-language renderings, other domains) and loaders.

Here: `generate_corpus()`, `Corpus`, `LABELS`, `write_corpus()`, `load_corpus()`, `read_texts()`,
`validate_text()`, `validate_texts()`, `validate_records()`, `corrupt_text()`, `translation_pairs()`;
modules `vocab`, `grammar`, `stories`, `languages`, `domains`.
Not here: tokenizers (`workbench.tokenizer`), plots of corpora (`workbench.plots.data`).
"""
from .corpus import KINDS, Corpus, generate_corpus, translation_pairs
from .io import load_corpus, read_texts, split_txt, write_corpus
from .languages import LANGUAGES, to_english, translate
from .stories import LABELS
from .validate import corrupt_text, validate_records, validate_text, validate_texts

__all__ = ["KINDS", "LABELS", "LANGUAGES", "Corpus", "generate_corpus", "load_corpus", "read_texts", "split_txt",
           "to_english", "translate", "translation_pairs", "validate_text", "validate_texts", "validate_records",
           "corrupt_text", "write_corpus"]
