"""Similar words on Beam: deterministic across workers, same shape only, in the artifact and its id, user tables."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest

from pipelines.similar_words import SimilarWordsConfig, compute_similar_words
from pipelines.vocab_build import VocabConfig, build_vocab
from tests.cli.test_cli import AMBERT
from tests.vocab.conftest import build_zh
from vocab.artifact import read_artifact, verify_artifact
from vocab.similar_words import SimilarWordsError, SimilarWordTable, WordIds, parse_similar_tsv

REPO = Path(__file__).resolve().parents[2]
TWO_WORKERS = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]


@pytest.fixture(scope="module")
def zh_lines(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("zh") / "zh.txt.gz"
    with (
        gzip.open(REPO / "data" / "zh" / "pku199801_sample.txt.gz", "rt", encoding="utf-8") as source,
        gzip.open(path, "wt", encoding="utf-8") as out,
    ):
        for _, line in zip(range(1200), source, strict=False):
            out.write(line)
    return path


def test_chinese_table_is_deterministic_across_workers_and_keeps_shapes(zh_lines, tmp_path):
    build_zh(tmp_path / "vocab")  # 10 words (北京, 中国, 人民, ...) over the BERT characters
    cfg = SimilarWordsConfig(top_k=4, contexts=500, dimensions=32)
    for work in ("one", "two"):
        (tmp_path / work).mkdir()
    one, stats = compute_similar_words(str(tmp_path / "vocab"), [str(zh_lines)], cfg, [], str(tmp_path / "one"))
    two, _ = compute_similar_words(str(tmp_path / "vocab"), [str(zh_lines)], cfg, TWO_WORKERS, str(tmp_path / "two"))
    assert one == two
    entries = parse_similar_tsv(one.decode(), "similar.tsv")
    assert stats["words"] == len(entries) > 1000 and stats["dimensions"] == 32
    assert all(1 <= len(similar) <= 4 for _, similar in entries)
    assert all([s for _, s in similar] == sorted((s for _, s in similar), reverse=True) for _, similar in entries)
    ids = WordIds.from_artifact(str(tmp_path / "vocab"))
    for word, similar in entries:
        units = ids.of([word, *(other for other, _ in similar)])
        shapes = {(len(fine), len(coarse)) for fine, coarse in units}
        assert len(shapes) == 1, (word, similar, shapes)  # a replacement keeps both sides' lengths
    table = dict(entries)
    assert {"人民", "中国", "经济", "发展"} & {other for other, _ in table["北京"]}  # the other two-character words
    assert {"二", "三", "四", "五", "六"} & {other for other, _ in table["一"]}


def test_english_artifact_with_similar_words_and_vocab_info(en_small_corpus, tmp_path):
    phrases = tmp_path / "phrases.tsv"
    phrases.write_text("at least\t2\t40\t6.0\nsir john\t2\t9\t3.0\nas well as\t3\t30\t3.0\nof course\t2\t9\t3.0\n")
    base = dict(lang="en", corpus=(str(en_small_corpus),), phrases=str(phrases))
    artifact = build_vocab(VocabConfig(**base, out=str(tmp_path / "en"), similar_words=3))
    verify_artifact(str(tmp_path / "en"))
    assert "similar.tsv" in artifact["files"] and artifact["stats"]["similar_words"]["source"] == "corpus"
    table = dict(parse_similar_tsv((tmp_path / "en" / "similar.tsv").read_text(), "similar.tsv"))
    assert {other for other, _ in table["at least"]} <= {"sir john", "of course"}  # phrases of two words only
    assert "she" in {other for other, _ in table["he"]}
    loaded = SimilarWordTable.from_artifact(str(tmp_path / "en"))
    assert all(len(fine) == len(key) for key, units in loaded.neighbours.items() for fine, _ in units)

    user = tmp_path / "user.tsv"
    user.write_text("He\tshe\t0.9\nat least\tof course\t0.5\n")
    given = build_vocab(VocabConfig(**base, out=str(tmp_path / "user"), similar_words_file=str(user)))
    assert (tmp_path / "user" / "similar.tsv").read_text() == "he\tshe\t0.9000\nat least\tof course\t0.5000\n"
    assert given["stats"]["similar_words"] == {"source": "file", "words": 2, "pairs": 2}
    assert given["id"] != artifact["id"] == read_artifact(str(tmp_path / "en"))["id"]

    info = subprocess.run([AMBERT, "vocab", "info", str(tmp_path / "en")], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and "similar words" in info.stdout and "the " in info.stdout  # 'the' → its, a, ...

    user.write_text("he\tat least\t0.5\n")
    with pytest.raises(SimilarWordsError, match="'he' is 1 fine / 1 coarse tokens but 'at least' is 2 / 1"):
        build_vocab(VocabConfig(**base, out=str(tmp_path / "refused"), similar_words_file=str(user)))
    assert not (tmp_path / "refused").exists()


def test_similar_word_options_are_checked_before_any_pipeline(tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text("he\tshe\n")
    both = subprocess.run(
        [AMBERT, "vocab", "build", "--lang", "en", "--corpus", "x", "--out", str(tmp_path / "o")]
        + ["--similar-words", "3", "--similar-words-file", str(table)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert both.returncode == 2 and "give --similar-words K" in both.stderr
    with pytest.raises(ValueError, match="similar-word table not found: nope.tsv"):
        VocabConfig(lang="en", corpus=("x",), out=str(tmp_path), similar_words_file="nope.tsv")
    with pytest.raises(ValueError, match="--similar-words must be 0"):
        VocabConfig(lang="en", corpus=("x",), out=str(tmp_path), similar_words=-1)
    corpus = tmp_path / "c.txt"
    corpus.write_text("he said so.\n")
    with pytest.raises(SimilarWordsError, match="t.tsv:1: expected word<TAB>similar<TAB>score"):
        build_vocab(
            VocabConfig(lang="en", corpus=(str(corpus),), out=str(tmp_path / "o"), similar_words_file=str(table))
        )
