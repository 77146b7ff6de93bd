"""MultiGrainedTokenizer: alignment invariants, Hugging Face equality, mixed text, real text."""

from __future__ import annotations

import gzip
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers.implementations import BertWordPieceTokenizer
from transformers import PreTrainedTokenizerFast

from vocab.chinese_segmentation import SegmenterError
from vocab.multigrained import MultiGrainedTokenizer, coarse_segments
from vocab.normalization import clean_text

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def en(en_artifact):
    return MultiGrainedTokenizer.from_artifact(str(en_artifact))


@pytest.fixture(scope="module")
def zh(zh_artifact):
    return MultiGrainedTokenizer.from_artifact(str(zh_artifact))


@pytest.fixture(scope="module")
def references(en_artifact, zh_artifact):
    """Hugging Face tokenizers on the same vocabularies: BertWordPiece and the artifact's file."""
    return {
        lang: (BertWordPieceTokenizer(str(artifact / "fine" / "vocab.txt"), lowercase=True),
               PreTrainedTokenizerFast(tokenizer_file=str(artifact / "fine" / "tokenizer.json")))
        for lang, artifact in (("en", en_artifact), ("zh", zh_artifact))
    }


def check_example(example, text):
    fine, align = example.fine_ids, example.align
    assert len(example.coarse_ids) == len(align) == len(example.coarse_type) == len(example.coarse_offsets)
    assert len(fine) == len(example.fine_type) == len(example.fine_offsets) == len(example.fine_tokens)
    assert align[0] == (0, 1) and align[-1][1] == len(fine)
    for (start, end), (next_start, _) in zip(align, align[1:], strict=False):
        assert start < end == next_start  # monotone, contiguous, each fine token exactly once
    for (start, end) in (*example.fine_offsets, *example.coarse_offsets):
        assert 0 <= start <= end <= len(text)
    for j, (start, end) in enumerate(align):
        if example.coarse_offsets[j] == (0, 0) and example.coarse_tokens[j] in ("[CLS]", "[SEP]"):
            assert end - start == 1 and example.fine_tokens[start] == example.coarse_tokens[j]
            continue
        pieces = example.fine_offsets[start:end]
        assert example.coarse_offsets[j] == (pieces[0][0], pieces[-1][1])
        for (_, left_end), (right_start, _) in zip(pieces, pieces[1:], strict=False):
            assert clean_text(text[left_end:right_start]).strip() == ""  # only what BERT drops between
        assert len({example.fine_type[k] for k in range(start, end)} | {example.coarse_type[j]}) == 1


def test_english_phrases(en):
    text = "I live in New  York City, and ate ice-cream and Ice Cream, unaffable 東京 😀!"
    example = en.encode(text)
    assert "new york city" in example.coarse_tokens and "ice cream" in example.coarse_tokens
    assert "ice" in example.coarse_tokens  # "ice-cream" crosses punctuation: no phrase
    assert coarse_segments(example, text) == [
        "I", "live", "in", "New_York_City", ",", "and", "ate", "ice", "-", "cream", "and", "Ice_Cream", ",",
        "unaffable", "東", "京", "😀", "!"]
    check_example(example, text)


def test_chinese_words(zh):
    text = "我们在北京天安门, iPhone12 很好用！中国人民２０２０年。"
    example = zh.encode(text)
    assert {"我们", "北京", "天安门", "中国", "人民"} <= set(example.coarse_tokens)
    assert coarse_segments(example, text)[:5] == ["我们", "在", "北京", "天安门", ","]
    assert "iPhone12" in coarse_segments(example, text)
    check_example(example, text)


def test_pairs_have_segment_types(en):
    example = en.encode_pair("New York is big.", "Ice cream!")
    assert example.coarse_tokens == ("[CLS]", "new york", "is", "big", ".", "[SEP]", "ice cream", "!", "[SEP]")
    assert example.coarse_type == (0, 0, 0, 0, 0, 0, 1, 1, 1)
    assert example.fine_type == (0,) * 7 + (1,) * 4


mixed = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("New York ice cream at least as well 北京天安门我们中国人民的 ,.!?'-\t\n Ａ１😀é")),
        st.sampled_from(["\u0301", "\x07", "\u200b", "\u2028", "\x00", "\ufffd", "\u3000"]),
        st.characters(codec="utf-8").filter(lambda ch: unicodedata.category(ch) not in ("Cn", "Cs")),
    ),
    max_size=60,
)


@settings(max_examples=250, deadline=None)
@given(mixed)
def test_properties_and_hugging_face_equality(en, zh, references, text):
    for lang, tokenizer in (("en", en), ("zh", zh)):
        example = tokenizer.encode(text)
        check_example(example, text)
        wordpiece, fast = references[lang]
        assert list(example.fine_ids) == wordpiece.encode(text).ids
        assert list(example.fine_ids) == fast(text)["input_ids"]
        assert tokenizer.encode_batch([text, "x"]) == [example, tokenizer.encode("x")]


def real_lines(name: str, count: int) -> list[str]:
    with gzip.open(REPO / "data" / name, "rt", encoding="utf-8") as handle:
        return [line.rstrip("\n") for _, line in zip(range(count), handle, strict=False)]


@pytest.mark.parametrize("lang,sample", [("en", "en/enwiki_sample.txt.gz"), ("en", "en/austen_sample.txt.gz"),
                                         ("zh", "zh/pku199801_sample.txt.gz")])
def test_real_text(en, zh, references, lang, sample):
    tokenizer = {"en": en, "zh": zh}[lang]
    lines = real_lines(sample, 300)
    examples = tokenizer.encode_batch(lines)
    wordpiece, fast = references[lang]
    for text, example, reference in zip(lines, examples, wordpiece.encode_batch(lines), strict=True):
        check_example(example, text)
        assert list(example.fine_ids) == reference.ids
    assert [fast(t)["input_ids"] for t in lines[:50]] == [list(e.fine_ids) for e in examples[:50]]
    multi = sum(1 for e in examples for start, end in e.align if end - start > 1)
    assert multi > 0  # some phrases / words were found


def test_a_different_segmenter_is_refused(zh_artifact, en_artifact):
    with pytest.raises(SegmenterError, match="built with jieba; refusing to tokenize with pkuseg"):
        MultiGrainedTokenizer.from_artifact(str(zh_artifact), segmenter="pkuseg")
    with pytest.raises(SegmenterError, match="English artifacts use no word segmenter"):
        MultiGrainedTokenizer.from_artifact(str(en_artifact), segmenter="jieba")
