"""`ambert vocab ...` and `ambert tokenize` as a user runs them."""

from __future__ import annotations

import json
import subprocess

from tests.cli.test_cli import AMBERT, ambert
from tests.vocab.conftest import build_en, build_zh


def tokenize(artifact, lines: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [AMBERT, "tokenize", "--vocab", str(artifact), *args],
        input=lines,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_tokenize_segments_and_json(tmp_path):
    build_zh(tmp_path / "zh")
    build_en(tmp_path / "en")
    result = tokenize(tmp_path / "zh", "我们在北京天安门\n中国人民, iPhone12!\n", "--format", "segments")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["我们 在 北京 天安门", "中国 人民 , iPhone12 !"]
    result = tokenize(tmp_path / "en", "I love New York ice cream.\n", "--format", "segments")
    assert result.stdout == "I love New_York ice_cream .\n"
    record = json.loads(tokenize(tmp_path / "en", "New York!\n").stdout)
    assert record == {
        "fine": ["[CLS]", "new", "york", "!", "[SEP]"],
        "coarse": ["[CLS]", "new york", "!", "[SEP]"],
        "align": [[0, 1], [1, 3], [3, 4], [4, 5]],
    }


def test_tokenize_refuses_another_segmenter_and_missing_artifact(tmp_path):
    build_zh(tmp_path / "zh")
    result = tokenize(tmp_path / "zh", "中国\n", "--segmenter", "pkuseg")
    assert result.returncode == 2 and "built with jieba; refusing to tokenize with pkuseg" in result.stderr
    result = tokenize(tmp_path / "missing", "x\n")
    assert result.returncode == 2 and "no vocab artifact at" in result.stderr


def test_publish_pull_info(tmp_path):
    artifact_id = build_en(tmp_path / "en")
    published = ambert("vocab", "publish", str(tmp_path / "en"), f"file://{tmp_path}/store")
    assert published.returncode == 0 and published.stdout.strip().endswith(artifact_id)
    pulled = ambert("vocab", "pull", published.stdout.strip(), str(tmp_path / "copy"))
    assert pulled.returncode == 0, pulled.stderr
    info = ambert("vocab", "info", str(tmp_path / "copy"))
    assert info.returncode == 0 and artifact_id[:20] in info.stdout
    (tmp_path / "store" / artifact_id / "coarse" / "vocab.txt").write_text("tampered\n")
    refused = ambert("vocab", "pull", published.stdout.strip(), str(tmp_path / "copy2"))
    assert refused.returncode == 2 and "does not match its sha256" in refused.stderr


def test_vocab_build_cli(tmp_path):
    corpus = tmp_path / "zh.txt"
    corpus.write_text("我们在北京天安门。\n中国人民发展经济。\n" * 30)
    result = ambert(
        "vocab", "build", "--lang", "zh", "--corpus", str(corpus), "--out", str(tmp_path / "v"), "--min-count", "2"
    )
    assert result.returncode == 0, result.stderr
    assert "天安门" in (tmp_path / "v" / "words.tsv").read_text()
    printed = result.stderr.strip().splitlines()  # one headline line; `vocab info` shows the whole table
    assert len(printed) == 1 and printed[0].startswith("ambert vocab build (zh): ") and "coarse ratio" in printed[0]
    bad = ambert("vocab", "build", "--lang", "xx", "--corpus", str(corpus), "--out", str(tmp_path / "w"))
    assert bad.returncode == 2 and "--lang must be en or zh" in bad.stderr
