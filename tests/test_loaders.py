"""Loaders: corpus dirs, .jsonl, .txt, and the `hf:` path exercised on local files (never the network)."""
import json

import pytest

from workbench.corpora import generate_corpus, load_corpus, read_texts, split_txt, write_corpus


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return write_corpus(generate_corpus("stories", 30, seed=2), tmp_path_factory.mktemp("c") / "corpus")


def test_dir_jsonl_and_txt_give_the_same_texts(corpus_dir):
    c = load_corpus(corpus_dir)
    assert c.kind == "stories" and c.seed == 2 and len(c) == 30
    assert read_texts(corpus_dir) == c.texts
    assert read_texts(corpus_dir / "corpus.jsonl") == c.texts
    assert read_texts(corpus_dir / "corpus.txt") == c.texts
    assert load_corpus(corpus_dir / "corpus.jsonl").records[0]["feeling"] == c.records[0]["feeling"]


def test_txt_blocks_or_lines(tmp_path):
    assert split_txt("one\ntwo\nthree\n") == ["one", "two", "three"]
    assert split_txt("a b\nc\n\n\nd\n  \ne\r\n") == ["a b\nc", "d", "e"]
    f = tmp_path / "t.txt"
    f.write_text("first story.\n\nsecond story.\n", encoding="utf-8")
    c = load_corpus(f)
    assert c.texts == ["first story.", "second story."] and c.records[0]["lang"] == "en"


def test_mixed_corpus_txt_keeps_code_documents_whole(tmp_path):
    c = generate_corpus("mixed", 80, seed=0)
    d = write_corpus(c, tmp_path / "m")
    assert read_texts(d / "corpus.txt") == [t.strip() for t in c.texts]


def test_jsonl_missing_field_names_the_line(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"text": "ok"}\n\n{"txt": "typo"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 3: missing field 'text'"):
        load_corpus(f)
    f.write_text('{"text": "ok"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        read_texts(f)
    f.write_text('{"text": 5}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: field 'text' must be a string"):
        read_texts(f)


@pytest.mark.parametrize("name", ["e.txt", "e.jsonl"])
def test_empty_and_non_utf8_files_are_refused(tmp_path, name):
    f = tmp_path / name
    f.write_text("  \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        read_texts(f)
    f.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8.*offset 3"):
        read_texts(f)


def test_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_texts(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="workbench corpus"):
        load_corpus(tmp_path)                     # a directory without a corpus
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="expected a corpus directory"):
        load_corpus(tmp_path / "x.csv")


def test_hf_path_on_local_json_and_parquet(tmp_path):
    """`hf:` goes through `datasets.load_dataset`; here on local files in the Hub's formats."""
    datasets = pytest.importorskip("datasets")
    rows = [{"text": f"Story number {i}.", "label": i % 2} for i in range(5)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert read_texts(f"hf:{tmp_path / 'train.jsonl'}") == [r["text"] for r in rows]
    pq = tmp_path / "pq" / "validation.parquet"
    pq.parent.mkdir()
    datasets.Dataset.from_list([{"story": r["text"]} for r in rows]).to_parquet(str(pq))
    assert read_texts(f"hf:{pq}") == [r["text"] for r in rows]                 # the only string column
    ds_dir = tmp_path / "tinystories"                                           # a dataset directory, by split
    ds_dir.mkdir()
    (ds_dir / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]), encoding="utf-8")
    (ds_dir / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert read_texts(f"hf:{ds_dir}:validation") == [r["text"] for r in rows[:2]]


def test_hf_bad_specs(tmp_path):
    pytest.importorskip("datasets")
    with pytest.raises(ValueError, match="needs a dataset name"):
        read_texts("hf:")
    with pytest.raises(ValueError, match="cannot load dataset"):
        read_texts("hf:nobody-xyz/no-such-dataset")                # offline in tests: a clear error, no hang
    f = tmp_path / "nums.jsonl"
    f.write_text('{"a": 1, "b": 2}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="no 'text' column"):
        read_texts(f"hf:{f}")
