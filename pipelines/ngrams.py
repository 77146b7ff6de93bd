"""Counting 1..N-grams of normalized lines and writing them as Parquet.

N-grams never cross a line or a punctuation token. Each batch of lines is pre-aggregated into
one Counter (so Beam moves a few large dicts, not one element per n-gram), split into shards
by a stable hash of the n-gram, merged per shard, pruned by minimum count and written as
`ngrams/part-SSSSS-of-NNNNN.parquet` (columns ngram, n, count; rows sorted by n-gram).
"""

from __future__ import annotations

import io
import zlib
from collections import Counter
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.accounting import SplitCounters, counter
from pipelines.files import write_atomically
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


def shard_of(ngram: str, num_shards: int) -> int:
    """The shard an n-gram belongs to: a stable hash, identical in every process and run."""
    return zlib.crc32(ngram.encode("utf-8")) % num_shards


class _CountBatch(beam.DoFn):
    def __init__(self, order: int, num_shards: int):
        self._order = order
        self._num_shards = num_shards

    def process(self, batch):
        counts = count_ngrams(batch.lines, self._order)
        shards: list[dict[str, int]] = [{} for _ in range(self._num_shards)]
        for ngram, count in counts.items():
            shards[shard_of(ngram, self._num_shards)][ngram] = count
        for shard, partial in enumerate(shards):
            if partial:
                yield shard, partial


class _MergeShard(beam.DoFn):
    def __init__(self, order: int, min_count: int):
        self._order = order
        self._min_count = min_count

    def process(self, keyed):
        shard, partials = keyed
        merged: Counter[str] = Counter()
        for partial in partials:
            merged.update(partial)
        distinct = [0] * (self._order + 1)
        kept = [0] * (self._order + 1)
        rows = []
        for ngram, count in merged.items():
            n = ngram.count(" ") + 1
            distinct[n] += 1
            if count >= self._min_count:
                kept[n] += 1
                rows.append((ngram, n, count))
        rows.sort()
        for n in range(1, self._order + 1):
            yield counter(f"ngrams_distinct.{n}", distinct[n])
            yield counter(f"ngrams_kept.{n}", kept[n])
        yield shard, rows


class CountNgrams(beam.PTransform):
    """NormalizedBatch → (shard, sorted [(ngram, n, count)]) with count ≥ min_count, + counters."""

    def __init__(self, order: int, min_count: int, num_shards: int):
        super().__init__()
        self._order = order
        self._min_count = min_count
        self._num_shards = num_shards

    def expand(self, batches):
        partials = batches | "CountPerBatch" >> beam.ParDo(
            _CountBatch(self._order, self._num_shards)
        )
        every_shard = batches.pipeline | "EveryShard" >> beam.Create(
            [(shard, {}) for shard in range(self._num_shards)]
        )
        return (
            (partials, every_shard)
            | "WithEveryShard" >> beam.Flatten()
            | "GroupShards" >> beam.GroupByKey()
            | "MergeAndPrune" >> beam.ParDo(_MergeShard(self._order, self._min_count))
            | "SplitCounters" >> SplitCounters()
        )


def ngram_table(rows: list[tuple[str, int, int]]) -> pa.Table:
    return pa.table(
        {
            "ngram": pa.array([r[0] for r in rows], pa.string()),
            "n": pa.array([r[1] for r in rows], pa.int8()),
            "count": pa.array([r[2] for r in rows], pa.int64()),
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
