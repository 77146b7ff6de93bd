"""Small real vocab artifacts (bundled BERT vocabularies + a few phrases / words)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vocab.artifact import read_vocab_lines, write_artifact
from vocab.chinese_segmentation import make_segmenter, segmenter_spec
from vocab.phrase_dictionary import PhraseEntry, format_phrase_tsv
from vocab.word_dictionary import format_word_tsv

BERT = Path(__file__).resolve().parents[2] / "vocab" / "bert"
PHRASES = ["new york", "new york city", "ice cream", "united states", "at least", "as well as", "sir john"]
WORDS = ["北京", "天安门", "我们", "中国", "人民", "经济", "发展", "今天", "记者", "工作"]


def build_en(directory: Path, similar_words: bytes | None = None) -> str:
    """The English test artifact; `similar_words`: its similar.tsv (none by default)."""
    entries = [PhraseEntry(p, len(p.split()), 10, 1.0) for p in PHRASES]
    return write_artifact(
        str(directory),
        lang="en",
        fine_vocab_lines=read_vocab_lines(str(BERT / "uncased_30522.txt")),
        coarse_units=PHRASES,
        dictionary_file_name="phrases.tsv",
        dictionary_bytes=format_phrase_tsv(entries).encode(),
        segmenter_spec=None,
        created_from={"test": True},
        stats={"note": "test"},
        similar_words_bytes=similar_words,
    )


def build_zh(directory: Path, similar_words: bytes | None = None, segmenter: str = "jieba") -> str:
    """The Chinese test artifact (jieba unless `segmenter` says); `similar_words`: its similar.tsv (none by default)."""
    return write_artifact(
        str(directory),
        lang="zh",
        fine_vocab_lines=read_vocab_lines(str(BERT / "chinese_21128.txt")),
        coarse_units=WORDS,
        dictionary_file_name="words.tsv",
        dictionary_bytes=format_word_tsv([(w, 5) for w in WORDS]).encode(),
        segmenter_spec=segmenter_spec(make_segmenter(segmenter)),
        created_from={"test": True},
        stats={"note": "test"},
        similar_words_bytes=similar_words,
    )


@pytest.fixture(scope="session")
def en_artifact(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("artifacts") / "en"
    build_en(directory)
    return directory


@pytest.fixture(scope="session")
def zh_artifact(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("artifacts") / "zh"
    build_zh(directory)
    return directory
