"""The shard pipeline: raw corpora → aligned fine/coarse examples → deterministic WebDataset shards.

    ambert shard build --vocab out/vocab-en --corpus data/en --out out/shards-en [--max-seq-len 128] [Beam flags]

OUT gets shard-00000.tar … (each `<key>.aex` member is one example; vocab/aligned_codec.py reads them)
and manifest.json, written last (DESIGN.md, "Shard set"). Same input, options and seed give
byte-identical shards and manifest whatever the runner or the number of workers.
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
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.accounting import Count, SplitCounters, WriteCounters, counter, with_prefix
from pipelines.corpus import decode_line, read_in_batches
from pipelines.files import (
    ReadFailure,
    clear_previous_outputs,
    expand_corpus_paths,
    move_local_file,
    read_bytes,
    read_lines,
    record_format,
    write_atomically,
)
from pipelines.pretraining_examples import (
    contiguous_examples,
    pack_segments,
    pair_examples,
    segment_of,
    stable_hash,
    truncate_segment,
    unpack_segments,
)
from pipelines.runner import beam_pipeline
from vocab.aligned_codec import encode_example, write_encoded_tar
from vocab.sentences import split_sentences
from vocab.shard_set import MANIFEST

_LOG = logging.getLogger(__name__)
MANIFEST_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ShardConfig:
    vocab: str
    corpus: tuple[str, ...]
    out: str
    max_seq_len: int = 128
    nsp: bool = True
    samples_per_shard: int = 10_000
    seed: int = 12345
    docs_per_line: bool = False
    pool_docs: int = 1000  # documents that share a pool of random next segments (NSP)
    max_line_bytes: int = 1 << 20

    def __post_init__(self):
        if not 8 <= self.max_seq_len <= 65_535:
            raise ValueError(f"--max-seq-len must be between 8 and 65535, got {self.max_seq_len}")
        if self.samples_per_shard < 1 or self.pool_docs < 1:
            raise ValueError("--samples-per-shard and --pool-docs must be positive")

    @property
    def work_dir(self) -> str:
        return f"{self.out}/.work"

    def manifest_options(self) -> dict:
        """The options that decide the shards' bytes (not where they go)."""
        options = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("vocab", "corpus", "out")}
        return {**options, "corpus": list(self.corpus)}


@dataclass(frozen=True)
class RawDocument:
    doc_id: str  # "<path relative to the corpus root>:<first line>"
    fmt: str
    lines: tuple[bytes | None, ...]


@dataclass(frozen=True)
class TokenizedDocument:
    doc_id: str
    packed: bytes  # pretraining_examples.pack_segments of its sentences

    @property
    def segments(self) -> list:
        return unpack_segments(self.packed)


# -- reading ----------------------------------------------------------------------------------
def corpus_root(paths: list[str]) -> str:
    """The directory every corpus file is under: document ids are relative to it."""
    return posixpath.dirname(paths[0]) if len(paths) == 1 else posixpath.commonpath(paths)


def documents_of(path: str, root: str, docs_per_line: bool, max_line_bytes: int):
    """RawDocuments of one file: a line each (jsonl, parquet rows, or `docs_per_line`), else blank-line separated
    paragraphs. Raises ReadFailure after yielding what was readable."""
    fmt = record_format(path)
    name = posixpath.relpath(path, root) if root else path
    one_per_line = docs_per_line or fmt in ("jsonl", "parquet")
    lines: list[bytes | None] = []
    first = 0
    try:
        for line in read_lines(path, max_line_bytes):
            if one_per_line:
                yield RawDocument(f"{name}:{line.number}", fmt, (line.data,))
            elif line.data is not None and not line.data.strip():
                if lines:
                    yield RawDocument(f"{name}:{first}", fmt, tuple(lines))
                lines = []
            else:
                first = first if lines else line.number
                lines.append(line.data)
    except ReadFailure:
        if lines:  # the paragraph read before the damage
            yield RawDocument(f"{name}:{first}", fmt, tuple(lines))
        raise
    if lines:
        yield RawDocument(f"{name}:{first}", fmt, tuple(lines))


def _document_bytes(document: RawDocument) -> int:
    return sum(len(line) for line in document.lines if line is not None)


class _ReadDocuments(beam.DoFn):
    def __init__(self, root: str, docs_per_line: bool, max_line_bytes: int, batch_bytes: int):
        self._args = (root, docs_per_line, max_line_bytes)
        self._batch_bytes = batch_bytes

    def process(self, path: str):
        documents = documents_of(path, *self._args)
        for batch in read_in_batches(documents, _document_bytes, self._batch_bytes):
            yield batch if isinstance(batch, Count) else tuple(batch)


class ReadDocuments(beam.PTransform):
    """Corpus file paths → batches (tuples) of RawDocuments of about `batch_bytes`, spread over
    workers, plus Counts."""

    def __init__(self, paths: list[str], docs_per_line: bool, max_line_bytes: int, batch_bytes: int = 1 << 20):
        super().__init__()
        self._paths = paths
        self._fn = _ReadDocuments(corpus_root(paths), docs_per_line, max_line_bytes, batch_bytes)

    def expand(self, pbegin):
        documents, counts = (
            pbegin
            | "Paths" >> beam.Create(self._paths)
            | "Read" >> beam.ParDo(self._fn)
            | "SplitCounters" >> SplitCounters()
        )
        return documents | "Spread" >> beam.Reshuffle(), counts


# -- tokenizing -------------------------------------------------------------------------------
def document_sentences(document: RawDocument) -> tuple[list[tuple[int, str]], dict[str, int], int]:
    """(sentences as (start character in the document, text), dropped line reasons, lines kept).
    The document's text is its kept lines joined by "\n"; offsets point into it."""
    sentences, dropped, kept, position = [], {}, 0, 0
    for data in document.lines:
        text, reason = decode_line(data, document.fmt)
        if text is None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        kept += 1
        sentences += [(position + start, text[start:end]) for start, end in split_sentences(text)]
        position += len(text) + 1
    return sentences, dropped, kept


class _TokenizeDocuments(beam.DoFn):
    def __init__(self, vocab: str, max_segment_tokens: int):
        self._vocab = vocab
        self._max_segment_tokens = max_segment_tokens
        self._tokenizer = None

    def setup(self):
        from vocab.multigrained import MultiGrainedTokenizer

        self._tokenizer = MultiGrainedTokenizer.from_artifact(self._vocab)

    def _encode(self, texts: list[str]):
        """Encoded sentences; a sentence the tokenizer refuses is None (counted, never a crash)."""
        from vocab.artifact import ArtifactError
        from vocab.chinese_segmentation import SegmenterError

        try:
            return self._tokenizer.encode_batch(texts)
        except (ArtifactError, SegmenterError):
            encoded = []
            for text in texts:
                try:
                    encoded.append(self._tokenizer.encode(text))
                except (ArtifactError, SegmenterError) as error:
                    _LOG.warning("sentence not tokenized: %s", error)
                    encoded.append(None)
            return encoded

    def process(self, batch: tuple[RawDocument, ...]):
        counts: dict[str, int] = {"documents_read": len(batch)}
        add = lambda name, amount=1: counts.__setitem__(name, counts.get(name, 0) + amount)  # noqa: E731
        split = [document_sentences(document) for document in batch]
        encoded = iter(self._encode([text for sentences, _d, _k in split for _s, text in sentences]))
        for document, (sentences, dropped, kept_lines) in zip(batch, split, strict=True):
            add("lines_read", len(document.lines))
            for reason, amount in dropped.items():
                add(f"lines_dropped.{reason}", amount)
            segments = []
            for start, _text in sentences:
                sentence = next(encoded)
                if sentence is None:
                    add("sentences_dropped.tokenizer_error")
                    continue
                segment = segment_of(sentence, start)
                if segment is None:
                    continue
                cut = truncate_segment(segment, self._max_segment_tokens)
                if len(cut.coarse_ids) < len(segment.coarse_ids):
                    add("sentences_truncated")
                    add("fine_tokens_truncated", len(segment) - len(cut))
                if len(cut):
                    segments.append(cut)
            if not segments:
                worst = min(dropped, key=lambda r: (-dropped[r], r)) if dropped else ""
                add(f"documents_dropped.{'empty' if kept_lines or not dropped else f'all_lines_{worst}'}")
                continue
            add("documents_kept")
            add("sentences", len(segments))
            yield TokenizedDocument(document.doc_id, pack_segments(segments))
        for name, amount in counts.items():
            yield counter(name, amount)


class TokenizeDocuments(beam.PTransform):
    """Batches of RawDocuments → TokenizedDocument (sentences as aligned Segments), plus Counts."""

    def __init__(self, vocab: str, max_segment_tokens: int):
        super().__init__()
        self._fn = _TokenizeDocuments(vocab, max_segment_tokens)

    def expand(self, documents):
        return documents | "Tokenize" >> beam.ParDo(self._fn) | "SplitCounters" >> SplitCounters()


# -- examples ---------------------------------------------------------------------------------
def _example_counts(examples, truncated: int = 0, dropped: int = 0):
    counts = {"examples": len(examples), "fine_tokens": sum(len(e.fine_ids) for e in examples),
              "coarse_tokens": sum(len(e.coarse_ids) for e in examples), "pairs_truncated": truncated,
              "pairs_dropped": dropped}
    for example in examples:
        if example.nsp_label >= 0:
            name = f"nsp_label.{example.nsp_label}"
            counts[name] = counts.get(name, 0) + 1
    return [counter(name, amount) for name, amount in counts.items() if amount]


def _contiguous(document: TokenizedDocument, seed: int, max_seq_len: int, cls_id: int, sep_id: int):
    examples = contiguous_examples(document.doc_id, document.segments, seed, max_seq_len, cls_id, sep_id)
    yield from _example_counts(examples)
    yield from examples


class _PairsFromPool(beam.DoFn):
    def __init__(self, seed: int, max_seq_len: int, cls_id: int, sep_id: int):
        self._args = (seed, max_seq_len, cls_id, sep_id)

    def process(self, keyed):
        _pool, documents = keyed
        pool = {document.doc_id: document.segments for _order, document in documents}
        pool_ids = sorted(pool)
        for doc_id in pool_ids:
            examples, truncated, dropped = pair_examples(doc_id, pool[doc_id], pool, *self._args, pool_ids=pool_ids)
            yield from _example_counts(examples, truncated, dropped)
            yield from examples


class DealIntoChunks(beam.PTransform):
    """(sort key, element) → (chunk index, (sort key, element)): the elements in sort-key order dealt into
    consecutive chunks of `size`. Exact and runner-independent: the sort keys (short strings) are
    gathered on one worker and joined back, with no side inputs (the DaskRunner miscounts those)."""

    def __init__(self, size: int):
        super().__init__()
        self._size = size

    def expand(self, keyed):
        size = self._size
        chunk_of_key = (
            keyed
            | "SortKeys" >> beam.Map(lambda kv: (None, kv[0]))
            | "GatherKeys" >> beam.GroupByKey()
            | "Rank" >> beam.FlatMap(lambda kv: ((key, rank // size) for rank, key in enumerate(sorted(kv[1]))))
        )
        return (
            {"chunk": chunk_of_key, "element": keyed}
            | "Join" >> beam.CoGroupByKey()
            | "WithChunk" >> beam.FlatMap(lambda kv: ((kv[1]["chunk"][0], (kv[0], e)) for e in kv[1]["element"]))
        )


class MakeExamples(beam.PTransform):
    """TokenizedDocument → ShardExample, plus Counts. With NSP, documents are dealt into pools of
    `pool_docs` in the order of a hash of (seed, document id); random next segments come from the pool."""

    def __init__(self, cfg: ShardConfig, cls_id: int, sep_id: int):
        super().__init__()
        self._cfg = cfg
        self._ids = (cls_id, sep_id)

    def expand(self, documents):
        cfg = self._cfg
        if not cfg.nsp:
            return (
                documents
                | "Contiguous" >> beam.FlatMap(_contiguous, cfg.seed, cfg.max_seq_len, *self._ids)
                | "SplitCounters" >> SplitCounters()
            )
        seed = cfg.seed
        return (
            documents
            | "PoolOrder" >> beam.Map(lambda d: (stable_hash("pool", seed, d.doc_id).hex()[:16] + d.doc_id, d))
            | "DealIntoPools" >> DealIntoChunks(cfg.pool_docs)
            | "GatherPools" >> beam.GroupByKey()
            | "Pairs" >> beam.ParDo(_PairsFromPool(cfg.seed, cfg.max_seq_len, *self._ids))
            | "SplitCounters" >> SplitCounters()
        )


# -- writing ----------------------------------------------------------------------------------
def shard_name(index: int) -> str:
    return f"shard-{index:05d}.tar"


class _WriteShard(beam.DoFn):
    def __init__(self, out: str, work_dir: str):
        self._out = out
        self._work_dir = work_dir

    def process(self, keyed):
        index, samples = keyed
        samples = sorted(samples)  # (key, bytes): sample-key order
        handle, local = tempfile.mkstemp(suffix=".tar")
        try:
            with os.fdopen(handle, "wb") as tar_file:
                count = write_encoded_tar(tar_file, samples)
            digest = hashlib.sha256()
            with open(local, "rb") as tar_file:
                for block in iter(lambda: tar_file.read(1 << 20), b""):
                    digest.update(block)
            size = os.path.getsize(local)
            move_local_file(local, f"{self._out}/{shard_name(index)}")
        finally:
            if os.path.exists(local):
                os.remove(local)
        record = {"name": shard_name(index), "samples": count, "bytes": size, "sha256": digest.hexdigest()}
        write_atomically(f"{self._work_dir}/shards/{index:05d}.json", json.dumps(record).encode())
        yield counter("shards_written")
        yield counter("samples_written", count)


class WriteShards(beam.PTransform):
    """ShardExample → shard-NNNNN.tar files of `samples_per_shard` examples each (the last one fewer),
    in sample-key order, and a record per shard in WORK/shards; yields Counts. Examples travel
    encoded (bytes shuffle cheaply)."""

    def __init__(self, out: str, work_dir: str, samples_per_shard: int):
        super().__init__()
        self._fn = _WriteShard(out, work_dir)
        self._samples_per_shard = samples_per_shard

    def expand(self, examples):
        return (
            examples
            | "Encode" >> beam.Map(lambda example: (example.key, encode_example(example)))
            | "DealIntoShards" >> DealIntoChunks(self._samples_per_shard)
            | "GatherShards" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(self._fn)
        )


def build_pipeline(p: beam.Pipeline, cfg: ShardConfig, corpus_files: list[str], cls_id: int, sep_id: int) -> None:
    """Wire the stages: read documents → tokenize → examples → shards; the counters file is last."""
    documents, read_counters = p | "ReadDocuments" >> ReadDocuments(corpus_files, cfg.docs_per_line,
                                                                     cfg.max_line_bytes)
    tokenized, tokenize_counters = documents | "TokenizeDocuments" >> TokenizeDocuments(
        cfg.vocab, cfg.max_seq_len - (3 if cfg.nsp else 2))
    examples, example_counters = tokenized | "MakeExamples" >> MakeExamples(cfg, cls_id, sep_id)
    written = examples | "WriteShards" >> WriteShards(cfg.out, cfg.work_dir, cfg.samples_per_shard)
    # the one sink every branch feeds (the DaskRunner runs only what the last transform needs)
    (read_counters, tokenize_counters, example_counters, written) | "WriteCounters" >> WriteCounters(
        f"{cfg.work_dir}/counters.json")


# -- the manifest -----------------------------------------------------------------------------
def build_manifest(counters: dict, shards: list[dict], cfg: ShardConfig, artifact: dict,
                   corpus_files: list[str]) -> dict:
    """The manifest.json document: everything in it is deterministic (no timings, no paths of OUT)."""
    root = corpus_root(corpus_files)
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "format": {"member": "<key>.aex", "codec": "vocab/aligned_codec.py", "magic": "AEX1"},
        "vocab": {"id": artifact["id"], "lang": artifact["lang"], "sizes": artifact["sizes"]},
        "options": {**cfg.manifest_options(), "corpus_files": [posixpath.relpath(f, root) for f in corpus_files]},
        "shards": shards,
        "totals": {
            "shards": len(shards), "samples": sum(s["samples"] for s in shards),
            "bytes": sum(s["bytes"] for s in shards),
            "fine_tokens": counters.get("fine_tokens", 0), "coarse_tokens": counters.get("coarse_tokens", 0),
            "nsp_labels": with_prefix(counters, "nsp_label."),
        },
        "accounting": {
            "files": {"given": len(corpus_files), "read": counters.get("files_read", 0),
                      "unreadable": counters.get("files_unreadable", 0),
                      "errors": sorted(k.split(": ", 1)[1] for k in counters if k.startswith("read_error: "))},
            "documents": {"read": counters.get("documents_read", 0), "kept": counters.get("documents_kept", 0),
                          "dropped": with_prefix(counters, "documents_dropped.")},
            "lines": {"read": counters.get("lines_read", 0), "dropped": with_prefix(counters, "lines_dropped.")},
            "sentences": {"kept": counters.get("sentences", 0),
                          "dropped": with_prefix(counters, "sentences_dropped."),
                          "truncated": counters.get("sentences_truncated", 0),
                          "fine_tokens_truncated": counters.get("fine_tokens_truncated", 0)},
            "examples": {"made": counters.get("examples", 0), "pairs_truncated": counters.get("pairs_truncated", 0),
                         "pairs_dropped": counters.get("pairs_dropped", 0)},
        },
    }


def run(cfg: ShardConfig, beam_args: list[str] | None = None) -> tuple[dict, float]:
    """Run the pipeline; returns (the manifest, also written to OUT/manifest.json, seconds taken)."""
    from vocab.artifact import verify_artifact
    from vocab.multigrained import MultiGrainedTokenizer

    artifact = verify_artifact(cfg.vocab)
    tokenizer = MultiGrainedTokenizer.from_artifact(cfg.vocab, verify=False)  # fails early on a bad artifact
    corpus_files = expand_corpus_paths(list(cfg.corpus))
    # the manifest goes first (a reader then refuses the directory), then shards and work files
    clear_previous_outputs(cfg.out, MANIFEST, (".work/**", "shard-*.tar", "shard-*.tar.tmp-*"))
    started = time.monotonic()
    with beam_pipeline(beam_args) as pipeline:
        build_pipeline(pipeline, cfg, corpus_files, tokenizer.cls_id, tokenizer.sep_id)
    counters = json.loads(read_bytes(f"{cfg.work_dir}/counters.json"))
    records = [m.path for r in FileSystems.match([f"{cfg.work_dir}/shards/*.json"]) for m in r.metadata_list]
    shards = sorted((json.loads(read_bytes(path)) for path in records), key=lambda s: s["name"])
    if [s["name"] for s in shards] != [shard_name(i) for i in range(len(shards))]:
        raise RuntimeError(f"the runner lost shards: records {[s['name'] for s in shards]}; rerun the command")
    manifest = build_manifest(counters, shards, cfg, artifact, corpus_files)
    FileSystems.delete([cfg.work_dir])
    write_atomically(f"{cfg.out}/{MANIFEST}", json.dumps(manifest, indent=2, ensure_ascii=False).encode())
    return manifest, time.monotonic() - started
