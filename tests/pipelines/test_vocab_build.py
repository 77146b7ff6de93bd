"""`build_vocab`: real Beam runs building English and Chinese artifacts from bundled corpora."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from pipelines.vocab_build import VocabConfig, build_vocab
from vocab.artifact import verify_artifact
from vocab.multigrained import MultiGrainedTokenizer, coarse_segments
from vocab.phrase_dictionary import read_phrase_tsv
from vocab.word_dictionary import read_word_tsv

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def zh_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("zh") / "zh.txt.gz"
    with (
        gzip.open(REPO / "data" / "zh" / "pku199801_sample.txt.gz", "rt", encoding="utf-8") as source,
        gzip.open(path, "wt", encoding="utf-8") as out,
    ):
        for _, line in zip(range(1500), source, strict=False):
            out.write(line)
    return path


def test_chinese_artifact_is_deterministic_across_workers(zh_corpus, tmp_path):
    cfg = VocabConfig(lang="zh", corpus=(str(zh_corpus),), out=str(tmp_path / "one"), min_count=2, max_words=3000)
    one = build_vocab(cfg)
    verify_artifact(str(tmp_path / "one"))
    two = build_vocab(
        VocabConfig(**{**cfg.__dict__, "out": str(tmp_path / "two")}),
        ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
    )
    assert one["id"] == two["id"]
    for name in ("coarse/vocab.txt", "words.tsv", "fine/tokenizer.json", "artifact.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    words = read_word_tsv(str(tmp_path / "one" / "words.tsv"))
    assert len(words) == 3000 and one["sizes"]["coarse_units"] <= 3000
    assert [c for _, c in words] == sorted((c for _, c in words), reverse=True) and min(c for _, c in words) >= 2
    assert one["segmenter"]["name"] == "jieba"
    stats = one["stats"]["corpus"]
    assert 0.2 < stats["coarse_ratio"] < 0.8 and stats["fine_tokens"] > 50_000
    tokenizer = MultiGrainedTokenizer.from_artifact(str(tmp_path / "one"))
    assert coarse_segments(tokenizer.encode("中国人民今天发展经济。"), "中国人民今天发展经济。") == [
        "中国",
        "人民",
        "今天",
        "发展",
        "经济",
        "。",
    ]


def test_english_artifact_from_the_phrase_pipeline(en_small_corpus, tmp_path):
    artifact = build_vocab(
        VocabConfig(lang="en", corpus=(str(en_small_corpus),), out=str(tmp_path / "en"), min_count=3, max_phrases=500)
    )
    verify_artifact(str(tmp_path / "en"))
    assert artifact["sizes"]["fine"] == 30522 and 0 < artifact["sizes"]["coarse_units"] <= 500
    assert artifact["stats"]["corpus"]["coarse_ratio"] > 0.01
    assert artifact["stats"]["dictionary"]["lines"]["read"] == 3000
    tokenizer = MultiGrainedTokenizer.from_artifact(str(tmp_path / "en"))
    assert "new york" in tokenizer.encode("They moved to New York.").coarse_tokens


def test_given_phrases_and_trained_fine_vocab(en_small_corpus, tmp_path):
    phrases = tmp_path / "phrases.tsv"
    phrases.write_text("new york\t2\t40\t6.0\nice cream\t2\t9\t3.0\n")
    artifact = build_vocab(
        VocabConfig(
            lang="en",
            corpus=(str(en_small_corpus),),
            out=str(tmp_path / "en"),
            phrases=str(phrases),
            fine_vocab="train",
            fine_size=3000,
        )
    )
    assert artifact["sizes"] == {"fine": 3000, "coarse": 3002, "coarse_units": 2}
    assert read_phrase_tsv(str(tmp_path / "en" / "phrases.tsv")) == read_phrase_tsv(str(phrases))


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--lang must be en or zh"):
        VocabConfig(lang="fr", corpus=("x",), out=str(tmp_path))
    with pytest.raises(ValueError, match="fine vocabulary not found: nope.txt"):
        VocabConfig(lang="en", corpus=("x",), out=str(tmp_path), fine_vocab="nope.txt")
    with pytest.raises(ValueError, match="--fine-vocab train needs --fine-size"):
        VocabConfig(lang="en", corpus=("x",), out=str(tmp_path), fine_vocab="train")
