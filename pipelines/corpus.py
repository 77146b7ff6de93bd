"""Reading raw corpora into batches of normalized lines, accounting for every line.

`ReadCorpus` turns corpus files (.txt/.jsonl, optionally .gz/.bz2) into batches of raw lines
spread over workers; `NormalizeLines` decodes and normalizes them, dropping bad lines with a
named reason. `normalize_line` / `clean_line` are the per-line logic, callable without Beam.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import apache_beam as beam

from pipelines.accounting import Count, SplitCounters, counter
from pipelines.files import ReadFailure, read_lines, record_format
from vocab.normalization import basic_words, clean_text

_LOG = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class LineBatch:
    """Consecutive lines of one file; `key` (path, first line number) is stable across runs."""

    key: tuple[str, int]
    fmt: str
    lines: tuple[bytes | None, ...]


def read_in_batches(records: Iterable[T], size_of: Callable[[T], int], batch_bytes: int) -> Iterator[list[T] | Count]:
    """Group the records of one file into lists of about `batch_bytes`, then Count files_read.

    A ReadFailure (truncated or corrupt file) keeps what was read before it and is reported as
    Counts files_unreadable and "read_error: <path: what happened>" instead of failing the run.
    """
    batch: list[T] = []
    size = 0
    try:
        for record in records:
            batch.append(record)
            size += size_of(record)
            if size >= batch_bytes:
                yield batch
                batch, size = [], 0
    except ReadFailure as failure:
        _LOG.warning("%s", failure)
        yield counter("files_unreadable")
        yield counter(f"read_error: {failure}")
    if batch:
        yield batch
    yield counter("files_read")


class _ReadLineBatches(beam.DoFn):
    def __init__(self, batch_bytes: int, max_line_bytes: int):
        self._batch_bytes = batch_bytes
        self._max_line_bytes = max_line_bytes

    def process(self, path: str):
        fmt = record_format(path)
        lines = read_lines(path, self._max_line_bytes)
        for batch in read_in_batches(lines, lambda line: len(line.data or b""), self._batch_bytes):
            if isinstance(batch, Count):
                yield batch
            else:
                yield LineBatch((path, batch[0].number), fmt, tuple(line.data for line in batch))


class ReadCorpus(beam.PTransform):
    """Corpus file paths → LineBatch elements, redistributed so workers share the work."""

    def __init__(self, paths: list[str], batch_bytes: int = 1 << 20, max_line_bytes: int = 1 << 20):
        super().__init__()
        self._paths = paths
        self._batch_bytes = batch_bytes
        self._max_line_bytes = max_line_bytes

    def expand(self, pbegin):
        batches, counts = (
            pbegin
            | "Paths" >> beam.Create(self._paths)
            | "ReadBatches" >> beam.ParDo(_ReadLineBatches(self._batch_bytes, self._max_line_bytes))
            | "SplitCounters" >> SplitCounters()
        )
        return batches | "Spread" >> beam.Reshuffle(), counts


def decode_line(data: bytes | None, fmt: str) -> tuple[str | None, str | None]:
    """One raw line → (its text, None) or (None, the reason it is dropped)."""
    if data is None:
        return None, "too_long"
    if b"\x00" in data:
        return None, "binary"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "invalid_utf8"
    if fmt == "jsonl":
        if not text.strip():
            return None, "empty"
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            return None, "invalid_json"
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            return None, "no_text_field"
        text = record["text"]
    return text, None


def normalize_line(data: bytes | None, fmt: str) -> tuple[str | None, str | None]:
    """One raw line → (space-joined BERT words, None) or (None, the reason it is dropped)."""
    text, reason = decode_line(data, fmt)
    if text is None:
        return None, reason
    words = basic_words(text)
    if not words:
        return None, "empty"
    return " ".join(words), None


def clean_line(data: bytes | None, fmt: str) -> tuple[str | None, str | None]:
    """One raw line → (its text with BERT's cleaning: no control characters, collapsed
    whitespace, None) or (None, the reason it is dropped). Case and accents are kept."""
    text, reason = decode_line(data, fmt)
    if text is None:
        return None, reason
    text = " ".join(clean_text(text).split())
    if not text:
        return None, "empty"
    return text, None


LINE_MODES = {"bert_words": normalize_line, "clean_text": clean_line}


@dataclass(frozen=True)
class NormalizedBatch:
    key: tuple[str, int]
    lines: tuple[str, ...]

    @property
    def file_stem(self) -> str:
        """A stable name for a file written from this batch (a hash of its key): the same on every worker and run,
        so a retried batch rewrites its own files and their name order does not depend on the runner."""
        return hashlib.sha256(repr(self.key).encode("utf-8")).hexdigest()[:32]


class _NormalizeBatch(beam.DoFn):
    def __init__(self, mode: str):
        self._mode = mode

    def process(self, batch: LineBatch):
        normalize = LINE_MODES[self._mode]
        kept: list[str] = []
        dropped: dict[str, int] = {}
        tokens = 0
        for data in batch.lines:
            words, reason = normalize(data, batch.fmt)
            if words is None:
                dropped[reason] = dropped.get(reason, 0) + 1
            else:
                kept.append(words)
                tokens += words.count(" ") + 1
        yield counter("lines_read", len(batch.lines))
        yield counter("lines_kept", len(kept))
        yield counter("tokens", tokens)
        for reason, amount in dropped.items():
            yield counter(f"lines_dropped.{reason}", amount)
        if kept:
            yield NormalizedBatch(batch.key, tuple(kept))


class NormalizeLines(beam.PTransform):
    """LineBatch → NormalizedBatch, plus Counts. Modes: "bert_words" (BERT uncased words joined
    by spaces; English statistics) and "clean_text" (cleaned text; Chinese segmentation)."""

    def __init__(self, mode: str = "bert_words"):
        super().__init__()
        if mode not in LINE_MODES:
            raise ValueError(f"unknown line mode {mode!r}; expected one of {sorted(LINE_MODES)}")
        self._mode = mode

    def expand(self, batches):
        return batches | "Normalize" >> beam.ParDo(_NormalizeBatch(self._mode)) | "SplitCounters" >> SplitCounters()
