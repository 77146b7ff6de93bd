"""Counting terms (n-grams, words) over batches of lines on any Beam runner.

A `TermCounter` turns one batch into a Counter (loading what it needs once per worker in
`setup`); `CountTerms` writes each batch's Counter, split into shards by a stable hash of the
term, as partial count files under a work directory, merges each shard's files, prunes by minimum
count and yields (shard, sorted [(term, count)]). Only file paths cross Beam's shuffle, so a local
runner's memory does not grow with the corpus (it holds what crosses a shuffle).
"""

from __future__ import annotations

import pickle
import zlib
from collections import Counter

import apache_beam as beam

from pipelines.accounting import SplitCounters, counter
from pipelines.files import read_bytes, write_atomically


class TermCounter:
    """What to count in a batch. Subclasses are picklable; `setup` runs once per worker."""

    name = "terms"  # prefix of the counters: {name}_distinct.{kind}, {name}_kept.{kind}

    def setup(self) -> None:
        return None

    def count(self, batch) -> Counter[str]:
        raise NotImplementedError

    def kind(self, term: str) -> str:
        """The counter category of a term (e.g. its n-gram order)."""
        return "all"


def shard_of(term: str, num_shards: int) -> int:
    """The shard a term belongs to: a stable hash, identical in every process and run."""
    return zlib.crc32(term.encode("utf-8")) % num_shards


class _CountBatch(beam.DoFn):
    """A batch → (shard, path of a partial count file) per shard it has terms of: its Counter split by shard_of,
    each part a pickled {term: count} file under `directory`, named by the batch's file_stem and the shard (a
    retried batch rewrites the same files). Only the paths cross the shuffle: a local runner keeps what
    crosses it in memory. (Per batch, not per bundle: Beam's DaskRunner drops what finish_bundle emits.)"""

    def __init__(self, term_counter: TermCounter, num_shards: int, directory: str):
        self._term_counter = term_counter
        self._num_shards = num_shards
        self._directory = directory

    def setup(self):
        self._term_counter.setup()

    def process(self, batch):
        shards: list[dict[str, int]] = [{} for _ in range(self._num_shards)]
        for term, count in self._term_counter.count(batch).items():
            shards[shard_of(term, self._num_shards)][term] = count
        for shard, partial in enumerate(shards):
            if partial:
                path = f"{self._directory}/{batch.file_stem}-{shard:05d}.pickle"
                write_atomically(path, pickle.dumps(partial, protocol=pickle.HIGHEST_PROTOCOL))
                yield shard, path


class _MergeShard(beam.DoFn):
    def __init__(self, term_counter: TermCounter, min_count: int):
        self._term_counter = term_counter
        self._min_count = min_count

    def process(self, keyed):
        shard, paths = keyed
        merged: Counter[str] = Counter()
        for path in sorted(paths):
            if path:  # "": the placeholder that makes every shard appear
                merged.update(pickle.loads(read_bytes(path)))
        distinct: Counter[str] = Counter()
        kept: Counter[str] = Counter()
        rows = []
        for term, count in merged.items():
            kind = self._term_counter.kind(term)
            distinct[kind] += 1
            if count >= self._min_count:
                kept[kind] += 1
                rows.append((term, count))
        rows.sort()
        name = self._term_counter.name
        for kind in sorted(distinct):
            yield counter(f"{name}_distinct.{kind}", distinct[kind])
            yield counter(f"{name}_kept.{kind}", kept[kind])
        yield shard, rows


class CountTerms(beam.PTransform):
    """Batches → (shard, sorted [(term, count)]) with count ≥ min_count for every shard, + Counts. `directory`: where
    the partial count files go (a pipeline's work directory, deleted with it)."""

    def __init__(self, term_counter: TermCounter, min_count: int, num_shards: int, directory: str):
        super().__init__()
        self._term_counter = term_counter
        self._min_count = min_count
        self._num_shards = num_shards
        self._directory = directory

    def expand(self, batches):
        partials = batches | "CountPerBatch" >> beam.ParDo(
            _CountBatch(self._term_counter, self._num_shards, self._directory)
        )
        every_shard = batches.pipeline | "EveryShard" >> beam.Create([(shard, "") for shard in range(self._num_shards)])
        return (
            (partials, every_shard)
            | "WithEveryShard" >> beam.Flatten()
            | "GroupShards" >> beam.GroupByKey()
            | "MergeAndPrune" >> beam.ParDo(_MergeShard(self._term_counter, self._min_count))
            | "SplitCounters" >> SplitCounters()
        )
