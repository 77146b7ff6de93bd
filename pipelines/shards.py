"""The shard pipeline: raw corpora → aligned fine/coarse examples → deterministic WebDataset shards.

    ambert shard build --vocab out/vocab-en --corpus data/en --out out/shards-en [--max-seq-len 128] [Beam flags]

OUT gets shard-00000.tar … (each `<key>.aex` member is one example; vocab/aligned_codec.py reads them),
beside each its index shard-00000.idx (the members' byte offsets: a resume seeks straight to a sample)
and manifest.json, written last (DESIGN.md, "Shard set"). Same input, options and seed give
byte-identical shards and manifest whatever the runner or the number of workers.

Two stages. CorpusToRuns: one task per corpus split (plain files cut every `split_bytes`, compressed
and Parquet files whole) reads its documents and tokenizes them (pipelines/documents.py), makes
examples (NSP pools: `pool_docs` consecutive documents of the split) and writes them encoded and
sorted by their 128-bit key to one run file per split in OUT/.work (pipelines/example_runs.py).
RunsToShards: ceil(examples / samples_per_shard) shards, shard i holding the i-th equal slice of the
key space, written in key order by groups of consecutive shards that read their key range of every
run once (file operations grow with runs + shards, not runs × shards). Only file names and counts
cross the runner's shuffles, so a local runner's memory does not grow with the corpus.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import posixpath
import tempfile
import time

import apache_beam as beam

from pipelines.accounting import Count, SplitCounters, WriteCounters, counter, with_prefix
from pipelines.configs import ShardConfig
from pipelines.corpus import read_in_batches
from pipelines.documents import (
    CorpusSplit,
    DocumentTokenizer,
    Tally,
    corpus_root,
    corpus_splits,
    document_bytes,
    documents_of,
)
from pipelines.example_runs import RunRecord, RunWriter, key_range, merged_key_range, read_index
from pipelines.files import (
    clear_previous_outputs,
    delete_paths,
    expand_corpus_paths,
    matching_paths,
    move_local_file,
    read_bytes,
    replace_file,
    write_atomically,
)
from pipelines.pretraining_examples import FullSentencePacker, Segment, contiguous_examples, pair_examples
from pipelines.runner import beam_pipeline
from vocab.aligned_codec import encode_example, member_index, write_encoded_tar
from vocab.shard_set import MANIFEST, index_name

_LOG = logging.getLogger(__name__)
MANIFEST_SCHEMA_VERSION = 1


# -- examples ---------------------------------------------------------------------------------
def count_examples(examples, tally: Tally) -> None:
    tally.add("examples", len(examples))
    tally.add("fine_tokens", sum(len(e.fine_ids) for e in examples))
    tally.add("coarse_tokens", sum(len(e.coarse_ids) for e in examples))
    for example in examples:
        if example.nsp_label >= 0:
            tally.add(f"nsp_label.{example.nsp_label}")


class _SplitToRuns(beam.DoFn):
    """A CorpusSplit → RunRecords of its examples, encoded and sorted by key, then its Counts.
    NSP pools are `pool_docs` consecutive kept documents of the split."""

    def __init__(self, cfg: ShardConfig, root: str, batch_bytes: int = 1 << 20):
        self._cfg = cfg
        self._root = root
        self._batch_bytes = batch_bytes
        self._tokenizer = None
        self._ids = (0, 0)

    def setup(self):
        self._tokenizer = DocumentTokenizer(self._cfg.vocab, self._cfg.max_seq_len - (3 if self._cfg.nsp else 2))
        self._ids = (self._tokenizer.cls_id, self._tokenizer.sep_id)

    def _pairs(self, pool: list[tuple[str, list[Segment]]], runs: RunWriter, tally: Tally) -> None:
        segments = dict(pool)
        pool_ids = sorted(segments)
        for doc_id, _segments in pool:
            examples, truncated, dropped = pair_examples(
                doc_id, segments[doc_id], segments, self._cfg.seed, self._cfg.max_seq_len, *self._ids, pool_ids=pool_ids
            )
            tally.add("pairs_truncated", truncated)
            tally.add("pairs_dropped", dropped)
            self._keep(examples, runs, tally)

    @staticmethod
    def _keep(examples, runs: RunWriter, tally: Tally) -> None:
        count_examples(examples, tally)
        for example in examples:
            runs.add(example.key, encode_example(example))

    def process(self, split: CorpusSplit):
        cfg, tally = self._cfg, Tally()
        runs = RunWriter(f"{cfg.work_dir}/runs/{split.index:06d}.run", cfg.run_bytes)
        pool: list[tuple[str, list[Segment]]] = []
        packer = FullSentencePacker(cfg.seed, cfg.max_seq_len, *self._ids) if cfg.packing == "full" else None
        documents = documents_of(split.path, self._root, cfg.docs_per_line, cfg.max_line_bytes, split.start, split.end)
        for batch in read_in_batches(documents, document_bytes, self._batch_bytes):
            if isinstance(batch, Count):
                if batch.name != "files_read" or split.last:  # a file is read when its last split is
                    tally.add(batch.name, batch.amount)
                continue
            for doc_id, segments in self._tokenizer.tokenize(batch, tally):
                if packer is not None:
                    self._keep(packer.add(doc_id, segments), runs, tally)
                    continue
                if not cfg.nsp:
                    self._keep(
                        contiguous_examples(doc_id, segments, cfg.seed, cfg.max_seq_len, *self._ids), runs, tally
                    )
                    continue
                pool.append((doc_id, segments))
                if len(pool) == cfg.pool_docs:
                    self._pairs(pool, runs, tally)
                    pool = []
        if pool:
            self._pairs(pool, runs, tally)
        if packer is not None:
            self._keep(packer.close(), runs, tally)
        record = runs.close()
        if record is not None:
            yield record
        yield from tally.counts()


class CorpusToRuns(beam.PTransform):
    """pbegin → RunRecords of every example (tokenized, paired or packed, encoded), plus Counts.
    One task per CorpusSplit; examples never cross the runner's shuffle."""

    def __init__(self, cfg: ShardConfig, splits: list[CorpusSplit], root: str):
        super().__init__()
        self._splits = splits
        self._fn = _SplitToRuns(cfg, root)

    def expand(self, pbegin):
        return (
            pbegin
            | "Splits" >> beam.Create(self._splits)
            | "Spread" >> beam.Reshuffle()
            | "ExamplesToRuns" >> beam.ParDo(self._fn)
            | "SplitCounters" >> SplitCounters()
        )


# -- writing ----------------------------------------------------------------------------------
def shard_name(index: int) -> str:
    return f"shard-{index:05d}.tar"


RANGE_READS_PER_SHARD = 8  # shard groups are sized so that assembly reads about this many run ranges per shard


def shard_groups(runs: int, shards: int) -> list[tuple[int, int]]:
    """[first, stop) shard numbers of each assembly task: ceil(runs / RANGE_READS_PER_SHARD) consecutive shards,
    so reading one key range of every run per group costs runs · ceil(shards / size) ≤ 8 · shards + runs
    ranged reads (the O(runs × shards) of one task per shard when runs are many)."""
    size = max(1, -(-runs // RANGE_READS_PER_SHARD))
    return [(first, min(first + size, shards)) for first in range(0, shards, size)]


class _PlanShards(beam.DoFn):
    """All RunRecords → WORK/runs.json and (first shard, stop, shard count) per shard group:
    ceil(examples / samples_per_shard) shards, each an equal slice of the key space."""

    def __init__(self, work_dir: str, samples_per_shard: int):
        self._work_dir = work_dir
        self._samples_per_shard = samples_per_shard

    def process(self, keyed):
        _key, records = keyed
        records = sorted(records)
        write_atomically(f"{self._work_dir}/runs.json", json.dumps([[r.path, r.count] for r in records]).encode())
        shards = -(-sum(r.count for r in records) // self._samples_per_shard)
        for first, stop in shard_groups(len(records), shards):
            yield first, stop, shards


class _Peekable:
    def __init__(self, iterator):
        self._iterator = iterator
        self.head = next(iterator, None)

    def take_below(self, hi: int):
        """The items (key, data) with int(key, 16) < hi, in order."""
        while self.head is not None and int(self.head[0], 16) < hi:
            yield self.head
            self.head = next(self._iterator, None)


class _WriteShardGroup(beam.DoFn):
    """(first, stop, shards) → shards first … stop - 1, from one merged read of their key range in every run."""

    def __init__(self, out: str, work_dir: str):
        self._out = out
        self._work_dir = work_dir
        self._runs: tuple[list[RunRecord], list] | None = None

    def _load_runs(self):
        """The run records and their indexes, read once per worker."""
        if self._runs is None:
            records = [RunRecord(path, count) for path, count in json.loads(read_bytes(f"{self._work_dir}/runs.json"))]
            self._runs = records, [read_index(record) for record in records]
        return self._runs

    def process(self, group):
        first, stop, shards = group
        records, indexes = self._load_runs()
        lo, hi = key_range(first, shards)[0], key_range(stop - 1, shards)[1]
        merged = _Peekable(merged_key_range(records, indexes, lo, hi))
        for index in range(first, stop):
            record = self._write_shard(index, merged.take_below(key_range(index, shards)[1]))
            write_atomically(f"{self._work_dir}/shards/{index:05d}.json", json.dumps(record).encode())
            yield counter("shards_written")
            yield counter("samples_written", record["samples"])

    def _write_shard(self, index: int, samples) -> dict:
        handle, local = tempfile.mkstemp(suffix=".tar")
        try:
            with os.fdopen(handle, "wb") as tar_file:
                offsets = write_encoded_tar(tar_file, samples)
            digest = hashlib.sha256()
            with open(local, "rb") as tar_file:
                for block in iter(lambda: tar_file.read(1 << 20), b""):
                    digest.update(block)
            size = os.path.getsize(local)
            move_local_file(local, f"{self._out}/{shard_name(index)}")
        finally:
            if os.path.exists(local):
                os.remove(local)
        write_atomically(f"{self._out}/{index_name(shard_name(index))}", member_index(offsets))
        return {
            "name": shard_name(index),
            "samples": len(offsets),
            "bytes": size,
            "sha256": digest.hexdigest(),
            "index": index_name(shard_name(index)),
        }


class RunsToShards(beam.PTransform):
    """RunRecords → shard-NNNNN.tar files (about `samples_per_shard` examples each, in key order; shard i
    holds the i-th slice of the key space), written by groups of consecutive shards (shard_groups), and a
    record per shard in WORK/shards; yields Counts."""

    def __init__(self, out: str, work_dir: str, samples_per_shard: int):
        super().__init__()
        self._plan = _PlanShards(work_dir, samples_per_shard)
        self._write = _WriteShardGroup(out, work_dir)

    def expand(self, runs):
        return (
            runs
            | "OneKey" >> beam.Map(lambda record: (None, record))
            | "GatherRuns" >> beam.GroupByKey()
            | "Plan" >> beam.ParDo(self._plan)
            | "Spread" >> beam.Reshuffle()
            | "Write" >> beam.ParDo(self._write)
        )


def build_pipeline(p: beam.Pipeline, cfg: ShardConfig, corpus_files: list[str], splits: list[CorpusSplit]) -> None:
    """Wire the stages: corpus splits → sorted runs of examples → shards; the counters file is last."""
    runs, example_counters = p | "CorpusToRuns" >> CorpusToRuns(cfg, splits, corpus_root(corpus_files))
    written = runs | "RunsToShards" >> RunsToShards(cfg.out, cfg.work_dir, cfg.samples_per_shard)
    # the one sink every branch feeds (the DaskRunner runs only what the last transform needs)
    (example_counters, written) | "WriteCounters" >> WriteCounters(f"{cfg.work_dir}/counters.json")


# -- the manifest -----------------------------------------------------------------------------
def build_manifest(
    counters: dict, shards: list[dict], cfg: ShardConfig, artifact: dict, corpus_files: list[str]
) -> dict:
    """The manifest.json document: everything in it is deterministic (no timings, no paths of OUT)."""
    root = corpus_root(corpus_files)
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "format": {"member": "<key>.aex", "codec": "vocab/aligned_codec.py", "magic": "AEX1"},
        "vocab": {"id": artifact["id"], "lang": artifact["lang"], "sizes": artifact["sizes"]},
        "options": {**cfg.manifest_options(), "corpus_files": [posixpath.relpath(f, root) for f in corpus_files]},
        "shards": shards,
        "totals": {
            "shards": len(shards),
            "samples": sum(s["samples"] for s in shards),
            "bytes": sum(s["bytes"] for s in shards),
            "fine_tokens": counters.get("fine_tokens", 0),
            "coarse_tokens": counters.get("coarse_tokens", 0),
            "nsp_labels": with_prefix(counters, "nsp_label."),
            "fill_ratio": fill_ratio(counters, cfg.max_seq_len),
        },
        "accounting": {
            "files": {
                "given": len(corpus_files),
                "read": counters.get("files_read", 0),
                "unreadable": counters.get("files_unreadable", 0),
                "errors": sorted(k.split(": ", 1)[1] for k in counters if k.startswith("read_error: ")),
            },
            "documents": {
                "read": counters.get("documents_read", 0),
                "kept": counters.get("documents_kept", 0),
                "dropped": with_prefix(counters, "documents_dropped."),
            },
            "lines": {"read": counters.get("lines_read", 0), "dropped": with_prefix(counters, "lines_dropped.")},
            "sentences": {
                "kept": counters.get("sentences", 0),
                "dropped": with_prefix(counters, "sentences_dropped."),
                "truncated": counters.get("sentences_truncated", 0),
                "fine_tokens_truncated": counters.get("fine_tokens_truncated", 0),
            },
            "examples": {
                "made": counters.get("examples", 0),
                "pairs_truncated": counters.get("pairs_truncated", 0),
                "pairs_dropped": counters.get("pairs_dropped", 0),
            },
        },
    }


def fill_ratio(counters: dict, max_seq_len: int) -> dict[str, float]:
    """Real tokens / max_seq_len per side over all examples (1.0: no padding at all)."""
    slots = counters.get("examples", 0) * max_seq_len
    return {side: round(counters.get(f"{side}_tokens", 0) / slots, 4) if slots else 0.0 for side in ("fine", "coarse")}


def drop_empty_shards(out: str, shards: list[dict]) -> list[dict]:
    """Delete the shards whose key slice held no example (possible when --samples-per-shard is small)
    and renumber the rest, so shard-00000 … are consecutive and none is empty. Runs before the
    manifest exists: a run killed here is redone whole."""
    kept: list[dict] = []
    for shard in shards:
        if not shard["samples"]:
            delete_paths([f"{out}/{shard['name']}", f"{out}/{shard['index']}"])
            continue
        name = shard_name(len(kept))
        if name != shard["name"]:
            replace_file(f"{out}/{shard['name']}", f"{out}/{name}")
            replace_file(f"{out}/{shard['index']}", f"{out}/{index_name(name)}")
        kept.append({**shard, "name": name, "index": index_name(name)})
    return kept


def run(cfg: ShardConfig, beam_args: list[str] | None = None) -> tuple[dict, float]:
    """Run the pipeline; returns (the manifest, also written to OUT/manifest.json, seconds taken)."""
    from vocab.artifact import verify_artifact

    artifact = verify_artifact(cfg.vocab)  # once, here: the workers' tokenizers trust it
    corpus_files = expand_corpus_paths(list(cfg.corpus))
    splits, split_bytes = corpus_splits(corpus_files, cfg.split_bytes)
    cfg = dataclasses.replace(cfg, split_bytes=split_bytes)  # the manifest records the size used
    # the manifest goes first (a reader then refuses the directory), then shards and work files
    clear_previous_outputs(cfg.out, MANIFEST, (".work/**", "shard-*.tar", "shard-*.idx", "shard-*.tmp-*"))
    started = time.monotonic()
    with beam_pipeline(beam_args) as pipeline:
        build_pipeline(pipeline, cfg, corpus_files, splits)
    counters = json.loads(read_bytes(f"{cfg.work_dir}/counters.json"))
    records = matching_paths(f"{cfg.work_dir}/shards/*.json")
    shards = sorted((json.loads(read_bytes(path)) for path in records), key=lambda s: s["name"])
    planned = -(-counters.get("examples", 0) // cfg.samples_per_shard)
    if [s["name"] for s in shards] != [shard_name(i) for i in range(planned)]:
        raise RuntimeError(f"the runner lost shards: records {[s['name'] for s in shards]}; rerun the command")
    manifest = build_manifest(counters, drop_empty_shards(cfg.out, shards), cfg, artifact, corpus_files)
    delete_paths([cfg.work_dir])
    write_atomically(f"{cfg.out}/{MANIFEST}", json.dumps(manifest, indent=2, ensure_ascii=False).encode())
    return manifest, time.monotonic() - started
