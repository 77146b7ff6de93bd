"""`build_vocab`: real Beam runs building English and Chinese artifacts from bundled corpora."""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from pipelines.vocab_build import VocabConfig, build_vocab
from tests.cli.test_cli import AMBERT, ambert
from vocab.artifact import verify_artifact
from vocab.chinese_segmentation import read_word_model
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
        for _, line in zip(range(1000), source, strict=False):
            out.write(line)
    return path


def test_chinese_artifact_is_deterministic_across_workers(zh_corpus, tmp_path):
    # the ngram segmenter: its word model is a statistic of the corpus (counted on Beam, then stored)
    cfg = VocabConfig(
        lang="zh",
        corpus=(str(zh_corpus),),
        out=str(tmp_path / "one"),
        min_count=2,
        max_words=2000,
        segmenter="ngram",
        ngram_initial_segmenter="jieba",
    )
    one = build_vocab(cfg)
    verify_artifact(str(tmp_path / "one"))
    two = build_vocab(
        VocabConfig(**{**cfg.__dict__, "out": str(tmp_path / "two")}),
        ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
    )
    assert one["id"] == two["id"]
    for name in ("coarse/vocab.txt", "words.tsv", "segmenter/word_model.tsv", "artifact.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    words = read_word_tsv(str(tmp_path / "one" / "words.tsv"))
    assert len(words) == 2000 and one["sizes"]["coarse_units"] <= 2000
    assert [c for _, c in words] == sorted((c for _, c in words), reverse=True) and min(c for _, c in words) >= 2
    assert one["segmenter"]["name"] == "ngram"
    model = dict(read_word_model(str(tmp_path / "one" / "segmenter" / "word_model.tsv")))
    assert model["中国"] >= 2 and all(len(word) == 1 or count >= 2 for word, count in model.items())
    stats = one["stats"]["corpus"]
    assert 0.2 < stats["coarse_ratio"] < 0.8 and stats["fine_tokens"] > 30_000
    tokenizer = MultiGrainedTokenizer.from_artifact(str(tmp_path / "two"))
    assert coarse_segments(tokenizer.encode("中国人民今天发展经济。"), "中国人民今天发展经济。") == [
        "中国",
        "人民",
        "今天",
        "发展",
        "经济",
        "。",
    ]


@pytest.fixture(scope="module")
def small_zh_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("zh_small") / "zh.txt"
    with gzip.open(REPO / "data" / "zh" / "pku199801_sample.txt.gz", "rt", encoding="utf-8") as source:
        path.write_text("".join(line for _, line in zip(range(100), source, strict=False)), encoding="utf-8")
    return path


@pytest.mark.parametrize("segmenter", ["thulac", "jieba", "pkuseg", "ngram"])
def test_each_segmenter_through_vocab_build_and_tokenize(small_zh_corpus, tmp_path, segmenter):
    if segmenter == "pkuseg" and importlib.util.find_spec("pkuseg") is None:
        pytest.skip("pkuseg is an optional extra (it builds from source; see README)")
    out = tmp_path / "vocab"
    built = ambert(
        "vocab", "build", "--lang", "zh", "--corpus", str(small_zh_corpus), "--out", str(out), "--segmenter", segmenter
    )
    assert built.returncode == 0, built.stderr
    assert json.loads((out / "artifact.json").read_text())["segmenter"]["name"] == segmenter
    text = "中国人民今天在北京发展经济，记者报道。\n国家主席江泽民发表新年讲话 iPhone12\n"
    result = subprocess.run(
        [AMBERT, "tokenize", "--vocab", str(out), "--format", "segments"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.replace(" ", "") for line in lines] == [line.replace(" ", "") for line in text.splitlines()]
    assert {"中国", "人民", "北京", "经济"} <= set(lines[0].split(" "))


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
    with pytest.raises(ValueError, match="--segmenter must be one of thulac, jieba, pkuseg, ngram, got 'ltp'"):
        VocabConfig(lang="zh", corpus=("x",), out=str(tmp_path), segmenter="ltp")
    with pytest.raises(ValueError, match="--ngram-initial-segmenter must be one of thulac, jieba, pkuseg, got 'ngram'"):
        VocabConfig(lang="zh", corpus=("x",), out=str(tmp_path), segmenter="ngram", ngram_initial_segmenter="ngram")
