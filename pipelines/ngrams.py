"""Counting 1..N-grams of normalized lines and writing them as Parquet.

N-grams never cross a line or a punctuation token. Counting, sharding and pruning are
pipelines/term_counts.py's (partial counts in files: Beam moves their paths only); each shard is
written as `ngrams/part-SSSSS-of-NNNNN.parquet` (columns ngram, n, count; sorted by n-gram).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.accounting import counter
from pipelines.files import write_atomically
from pipelines.term_counts import CountTerms, TermCounter
from vocab.normalization import phrase_segments


def count_ngrams(lines: Iterable[str], order: int) -> Counter[str]:
    """Counts of every 1..`order`-gram (space-joined) within the punctuation-free runs of lines."""
    counts: Counter[str] = Counter()
    for line in lines:
        for segment in phrase_segments(line.split(" ")):
            counts.update(segment)
            for n in range(2, min(order, len(segment)) + 1):
                counts.update(" ".join(segment[i : i + n]) for i in range(len(segment) - n + 1))
    return counts


def ngram_order(ngram: str) -> int:
    return ngram.count(" ") + 1


class NgramCounter(TermCounter):
    """Counts 1..order-grams of a NormalizedBatch (counters ngrams_distinct.N, ngrams_kept.N)."""

    name = "ngrams"

    def __init__(self, order: int):
        self.order = order

    def count(self, batch) -> Counter[str]:
        return count_ngrams(batch.lines, self.order)

    def kind(self, term: str) -> str:
        return str(ngram_order(term))


def CountNgrams(order: int, min_count: int, num_shards: int, directory: str) -> CountTerms:  # noqa: N802
    """NormalizedBatch → (shard, sorted [(ngram, count)]) with count ≥ min_count, + Counts; partial counts under
    `directory`."""
    return CountTerms(NgramCounter(order), min_count, num_shards, directory)


def ngram_table(rows: list[tuple[str, int]]) -> pa.Table:
    return pa.table(
        {
            "ngram": pa.array([r[0] for r in rows], pa.string()),
            "n": pa.array([ngram_order(r[0]) for r in rows], pa.int8()),
            "count": pa.array([r[1] for r in rows], pa.int64()),
        }
    )


class _WriteShard(beam.DoFn):
    def __init__(self, directory: str, num_shards: int):
        self._directory = directory
        self._num_shards = num_shards

    def process(self, keyed):
        shard, rows = keyed
        buffer = io.BytesIO()
        pq.write_table(ngram_table(rows), buffer, compression="zstd")
        name = f"part-{shard:05d}-of-{self._num_shards:05d}.parquet"
        path = f"{self._directory}/{name}"
        write_atomically(path, buffer.getvalue())
        yield counter("ngram_files_written")


class WriteNgramParquet(beam.PTransform):
    """(shard, rows) → one Parquet file per shard under `directory`; yields Count elements."""

    def __init__(self, directory: str, num_shards: int):
        super().__init__()
        self._directory = directory
        self._num_shards = num_shards

    def expand(self, shards):
        return shards | "WriteShards" >> beam.ParDo(_WriteShard(self._directory, self._num_shards))
