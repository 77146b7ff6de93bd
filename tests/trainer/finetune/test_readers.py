"""Labeled files (TSV / JSONL, errors naming file and line) and their encoding into aligned, truncated examples."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainer.finetune.readers import LabeledDataError, LabeledExample, encode_labeled, label_vocabulary, read_labeled
from vocab.aligned_codec import alignment_faults

REPO = Path(__file__).resolve().parents[3]
LABELED = REPO / "data" / "labeled"


def write(path: Path, content: str | bytes) -> str:
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return str(path)


# -- reading ----------------------------------------------------------------------------------------
def test_bundled_samples_read_with_their_sizes_and_labels():
    sizes = {"zh_sentiment": (2000, 500, 500), "en_reuters_grain": (1454, 334, 362)}
    for name, counts in sizes.items():
        for split, count in zip(("train", "dev", "test"), counts, strict=True):
            rows = read_labeled(str(LABELED / f"{name}_{split}.tsv.gz"))
            assert len(rows) == count
            assert [row.line for row in rows[:3]] == [1, 2, 3]
            assert all(row.text_b is None and row.text.strip() for row in rows)
            assert label_vocabulary(rows) == (["neg", "pos"] if name == "zh_sentiment" else ["0", "1"])


def test_bundled_splits_are_disjoint():
    for name in ("zh_sentiment", "en_reuters_grain"):
        texts = [
            {row.text for row in read_labeled(str(LABELED / f"{name}_{split}.tsv.gz"))}
            for split in ("train", "dev", "test")
        ]
        assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


def test_headerless_tsv_with_pairs_and_crlf(tmp_path):
    path = write(tmp_path / "pairs.tsv", "yes\tA man sleeps.\tSomeone rests.\r\nno\t天很蓝\t下雨了\r\n")
    assert read_labeled(path) == [
        LabeledExample("A man sleeps.", "yes", "Someone rests.", 1),
        LabeledExample("天很蓝", "no", "下雨了", 2),
    ]


def test_tsv_header_in_any_order(tmp_path):
    path = write(tmp_path / "pairs.tsv.gz", "text_b\tlabel\ttext\nsecond\tentail\tfirst\nb2\tneutral\ta2\n")
    rows = read_labeled(path)
    assert rows == [LabeledExample("first", "entail", "second", 2), LabeledExample("a2", "neutral", "b2", 3)]
    assert label_vocabulary(rows) == ["entail", "neutral"]


def test_jsonl_and_gzip_jsonl(tmp_path):
    lines = [{"label": 1, "text": "good"}, {"text": "x", "text_b": "y", "label": "pair"}, {"label": 0, "text": "bad"}]
    content = "".join(json.dumps(line) + "\n" for line in lines)
    for name in ("rows.jsonl", "rows.jsonl.gz"):
        rows = read_labeled(write(tmp_path / name, content))
        assert rows == [
            LabeledExample("good", "1", None, 1),
            LabeledExample("x", "pair", "y", 2),
            LabeledExample("bad", "0", None, 3),
        ]
        assert label_vocabulary(rows) == ["0", "1", "pair"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("header.tsv", "label\ttext_b\nx\ty\n", r"header.tsv, line 1: .*missing \['text'\]"),
        ("empty.tsv", "pos\tgood\nneg\t   \n", r"empty.tsv, line 2: empty text"),
        ("fields.tsv", "pos\tgood\nneg\n", r"fields.tsv, line 2: 1 tab-separated fields"),
        ("blank.tsv", "pos\tgood\n\npos\tfine\n", r"blank.tsv, line 2: 1 tab-separated fields"),
        ("utf8.tsv.gz", b"pos\tgood\nneg\tbad\npos\t\xff\xfe\n", r"utf8.tsv.gz, line 3: invalid UTF-8"),
        ("json.jsonl", '{"label": "a", "text": "x"}\n{"label": "a", "text": \n', r"json.jsonl, line 2: invalid JSON"),
        ("field.jsonl", '{"text": "x"}\n', r"field.jsonl, line 1: missing field 'label'"),
        ("emptyj.jsonl", '{"label": "a", "text": ""}\n', r"emptyj.jsonl, line 1: empty text"),
        ("array.jsonl", '["a", "x"]\n', r"array.jsonl, line 1: expected a JSON object"),
        ("nothing.tsv", "", r"nothing.tsv holds no examples"),
        ("rows.csv", "label,text\n", r"rows.csv: unsupported file type"),
    ],
)
def test_errors_name_file_and_line(tmp_path, name, content, message):
    with pytest.raises(LabeledDataError, match=message):
        read_labeled(write(tmp_path / name, content))


def test_missing_file_and_broken_gzip(tmp_path):
    with pytest.raises(LabeledDataError, match=r"absent.tsv not found"):
        read_labeled(str(tmp_path / "absent.tsv"))
    (tmp_path / "broken.tsv.gz").write_bytes(b"pos\tnot gzip at all\n")
    with pytest.raises(LabeledDataError, match=r"broken.tsv.gz is not readable as gzip"):
        read_labeled(str(tmp_path / "broken.tsv.gz"))


# -- encoding ---------------------------------------------------------------------------------------
def assert_well_formed(example, max_seq_len: int, cls_id: int, sep_id: int) -> None:
    assert alignment_faults(example) == []
    assert len(example.fine_ids) <= max_seq_len and len(example.coarse_ids) <= max_seq_len
    assert example.fine_ids[0] == example.coarse_ids[0] == cls_id
    assert example.fine_ids[-1] == example.coarse_ids[-1] == sep_id
    assert example.doc_id == "" and example.nsp_label == -1


def test_long_single_texts_are_cut_on_coarse_boundaries(tokenizers):
    tokenizer = tokenizers["en"]
    rows = read_labeled(str(LABELED / "en_reuters_grain_dev.tsv.gz"))[:40]
    encoded = encode_labeled(tokenizer, rows, max_seq_len=32, split="dev")
    assert [e.key for e in encoded[:2]] == ["dev-0", "dev-1"]
    for row, example in zip(rows, encoded, strict=True):
        assert_well_formed(example, 32, tokenizer.cls_id, tokenizer.sep_id)
        full = tokenizer.encode(row.text)
        kept, fine = len(example.coarse_ids) - 1, len(example.fine_ids) - 1  # all but [SEP]: a prefix of `full`
        assert example.coarse_ids[:kept].tolist() == list(full.coarse_ids[:kept])
        assert example.fine_ids[:fine].tolist() == list(full.fine_ids[:fine])
        assert example.align[:kept].tolist() == [list(span) for span in full.align[:kept]]
        assert example.fine_offsets[:fine].tolist() == [list(span) for span in full.fine_offsets[:fine]]
        assert len(full.fine_ids) <= 32 or len(example.fine_ids) >= 32 - 3  # cut close to the limit (phrases ≤ 3)


def test_phrase_straddling_the_limit_is_dropped_whole(tokenizers):
    tokenizer = tokenizers["en"]
    full = tokenizer.encode("we saw new york city")
    assert full.coarse_tokens[3] == "new york city"  # fine: [CLS] we saw new york city [SEP]
    example = encode_labeled(tokenizer, [LabeledExample("we saw new york city", "x")], max_seq_len=6)[0]
    assert example.fine_ids.tolist() == [full.fine_ids[0], *full.fine_ids[1:3], full.fine_ids[-1]]
    assert alignment_faults(example) == []


def test_pairs_truncate_the_longer_segment_first(tokenizers):
    tokenizer = tokenizers["zh"]
    short, long = "今天北京天气很好", "我们在中国人民大学工作，经济发展很快，记者今天去了天安门。" * 3
    for a, b in ((short, long), (long, short)):
        example = encode_labeled(tokenizer, [LabeledExample(a, "l", b)], max_seq_len=24, split="test")[0]
        assert_well_formed(example, 24, tokenizer.cls_id, tokenizer.sep_id)
        assert len(example.fine_ids) >= 24 - 2  # Chinese words here are ≤ 3 characters: the cut is tight
        first_b = int(np.sum(example.fine_type == 0))
        lengths = (first_b - 2, len(example.fine_ids) - first_b - 1)
        short_side = 0 if a == short else 1
        assert lengths[short_side] == len(tokenizer.encode(short).fine_ids) - 2  # the short text stays whole
        assert example.fine_type.tolist() == [0] * first_b + [1] * (len(example.fine_ids) - first_b)
        assert example.coarse_type.tolist() == example.fine_type[example.align[:, 0]].tolist()


def test_pairs_of_equal_length_lose_from_b_first(tokenizers):
    row = LabeledExample("a " * 10, "l", "b " * 10)  # 10 fine tokens each; room for 19 at max_seq_len 22
    example = encode_labeled(tokenizers["en"], [row], max_seq_len=22)[0]
    assert int(np.sum(example.fine_type == 0)) == 12 and int(np.sum(example.fine_type == 1)) == 10  # a+2, b-1+1


def test_pairs_keep_both_segments_when_they_fit(tokenizers):
    tokenizer = tokenizers["en"]
    example = encode_labeled(tokenizer, [LabeledExample("ice cream", "l", "new york")], max_seq_len=16)[0]
    full = tokenizer.encode_pair("ice cream", "new york")
    assert example.fine_ids.tolist() == list(full.fine_ids)
    assert example.coarse_ids.tolist() == list(full.coarse_ids)
    assert example.align.tolist() == [list(span) for span in full.align]


WORDS = [
    "new",
    "york",
    "city",
    "ice",
    "cream",
    "at",
    "least",
    "unbelievably",
    "北京",
    "天安门",
    "我们",
    "的",
    ",",
    "2019",
    "x",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    a=st.lists(st.sampled_from(WORDS), min_size=1, max_size=30),
    b=st.one_of(st.none(), st.lists(st.sampled_from(WORDS), min_size=1, max_size=30)),
    max_seq_len=st.integers(4, 40),
    lang=st.sampled_from(["en", "zh"]),
)
def test_encoded_examples_always_fit_and_stay_aligned(tokenizers, a, b, max_seq_len, lang):
    tokenizer = tokenizers[lang]
    row = LabeledExample(" ".join(a), "l", None if b is None else " ".join(b))
    example = encode_labeled(tokenizer, [row], max_seq_len)[0]
    assert_well_formed(example, max_seq_len, tokenizer.cls_id, tokenizer.sep_id)
    assert int(np.sum(example.fine_ids == tokenizer.sep_id)) == (1 if b is None else 2)


def test_max_seq_len_too_small_is_refused(tokenizers):
    with pytest.raises(ValueError, match="max_seq_len 3"):
        encode_labeled(tokenizers["en"], [LabeledExample("x", "l")], max_seq_len=3)
