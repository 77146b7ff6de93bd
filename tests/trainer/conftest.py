"""Trainer test fixtures: real shard sets (the shard pipeline, Beam in-process, over bundled samples) and the
tokenizers of the small test artifacts, once per session."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from pipelines.shards import ShardConfig, run
from tests.vocab.conftest import build_en, build_zh
from vocab.multigrained import MultiGrainedTokenizer

REPO = Path(__file__).resolve().parents[2]


def write_first_lines(source: Path, out: Path, count: int) -> Path:
    with gzip.open(source, "rt", encoding="utf-8") as lines, open(out, "w", encoding="utf-8") as target:
        for _, line in zip(range(count), lines, strict=False):
            target.write(line)
    return out


def make_shard_set(artifact: Path, corpus: Path, out: Path, samples_per_shard: int, max_seq_len: int = 64) -> Path:
    cfg = ShardConfig(
        vocab=str(artifact),
        corpus=(str(corpus),),
        out=str(out),
        max_seq_len=max_seq_len,
        nsp=True,
        samples_per_shard=samples_per_shard,
        seed=5,
        docs_per_line=True,
    )
    run(cfg, [])
    return out


@pytest.fixture(scope="session")
def trainer_data(tmp_path_factory) -> dict[str, Path]:
    """{"en_vocab", "zh_vocab": artifacts; "en_shards": ~8 shards, "zh_shards": ~4 shards (seq 64, NSP)}."""
    root = tmp_path_factory.mktemp("trainer-data")
    build_en(root / "en_vocab")
    build_zh(root / "zh_vocab")
    en_corpus = write_first_lines(REPO / "data" / "en" / "enwiki_sample.txt.gz", root / "en.txt", 300)
    zh_corpus = write_first_lines(REPO / "data" / "zh" / "pku199801_sample.txt.gz", root / "zh.txt", 200)
    return {
        "en_vocab": root / "en_vocab",
        "zh_vocab": root / "zh_vocab",
        "en_shards": make_shard_set(root / "en_vocab", en_corpus, root / "en_shards", samples_per_shard=64),
        "zh_shards": make_shard_set(root / "zh_vocab", zh_corpus, root / "zh_shards", samples_per_shard=96),
    }


@pytest.fixture(scope="session")
def tokenizers(tmp_path_factory) -> dict[str, MultiGrainedTokenizer]:
    """{"en", "zh"}: tokenizers of the small test artifacts (bundled BERT vocabularies + a few phrases / words)."""
    root = tmp_path_factory.mktemp("tokenizer-vocab")
    build_en(root / "en")
    build_zh(root / "zh")
    return {lang: MultiGrainedTokenizer.from_artifact(str(root / lang)) for lang in ("en", "zh")}
