"""Documents of a corpus and their tokenized sentences: the reading half of the shard pipeline
(pipelines/shards.py makes examples and shards of them).

    splits, split_bytes = corpus_splits(files, split_bytes)         # tasks: plain files in pieces, others whole
    for document in documents_of(split.path, root, docs_per_line, max_line_bytes, split.start, split.end): ...
    tokenizer = DocumentTokenizer(vocab, max_segment_tokens)        # in a worker: cls_id, sep_id, tokenize()
    for doc_id, segments in tokenizer.tokenize(batch, tally): ...   # aligned sentence Segments, drops counted

Every line, sentence and document dropped is counted in the task's Tally (lines_dropped.*,
sentences_dropped.{tokenizer_error,no_tokens}, documents_dropped.*), for the manifest's accounting.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass

from pipelines.accounting import counter
from pipelines.corpus import decode_line
from pipelines.files import ReadFailure, file_size, line_before_is_blank, read_lines, record_format, splittable
from pipelines.pretraining_examples import Segment, segment_of, truncate_segment
from vocab.sentences import split_sentences

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawDocument:
    doc_id: str  # "<path relative to the corpus root>:<byte offset of its first line>" (Parquet: row index)
    fmt: str
    lines: tuple[bytes | None, ...]


@dataclass(frozen=True)
class CorpusSplit:
    """The documents of `path` whose first line starts in [start, end) (end None: to the end)."""

    index: int  # its place in the list of splits: names its run files
    path: str
    start: int = 0
    end: int | None = None

    @property
    def last(self) -> bool:
        return self.end is None


# -- reading ----------------------------------------------------------------------------------
def corpus_root(paths: list[str]) -> str:
    """The directory every corpus file is under: document ids are relative to it."""
    return posixpath.dirname(paths[0]) if len(paths) == 1 else posixpath.commonpath(paths)


def auto_split_bytes(plain_bytes: int) -> int:
    """About 256 pieces of the plain files, each 1 MiB to 1 GiB: enough tasks to keep workers evenly
    busy, few enough that run files (one per piece) stay few."""
    return min(max(-(-plain_bytes // 256), 1 << 20), 1 << 30)


def corpus_splits(paths: list[str], split_bytes: int) -> tuple[list[CorpusSplit], int]:
    """(splits, split_bytes used): plain files in pieces of `split_bytes` (0: auto_split_bytes);
    compressed and Parquet files whole (they cannot be entered part-way). Depends only on the files
    and `split_bytes`, never on the runner."""
    sizes = {path: file_size(path) if splittable(path) else 0 for path in paths}
    split_bytes = split_bytes or auto_split_bytes(sum(sizes.values()))
    splits: list[CorpusSplit] = []
    for path in paths:
        starts = list(range(0, sizes[path], split_bytes)) or [0]
        for number, start in enumerate(starts):
            end = starts[number + 1] if number + 1 < len(starts) else None
            splits.append(CorpusSplit(len(splits), path, start, end))
    return splits, split_bytes


def documents_of(
    path: str, root: str, docs_per_line: bool, max_line_bytes: int, start: int = 0, end: int | None = None
):
    """RawDocuments of one file, or of its split [start, end): a line each (jsonl, parquet rows, or
    `docs_per_line`), else blank-line separated paragraphs. A document belongs to the split where its
    first line starts. Raises ReadFailure after yielding what was readable."""
    fmt = record_format(path)
    name = posixpath.relpath(path, root) if root else path
    one_per_line = docs_per_line or fmt in ("jsonl", "parquet")
    lines: list[bytes | None] = []
    first = 0
    after_blank = None  # paragraphs: whether the line before the current one is blank (None: not known yet)
    try:
        for line in read_lines(path, max_line_bytes, start):
            if one_per_line:
                if end is not None and line.offset >= end:
                    return
                yield RawDocument(f"{name}:{line.offset}", fmt, (line.data,))
                continue
            if after_blank is None:
                after_blank = line_before_is_blank(path, line.offset, max_line_bytes)
            blank = line.data is not None and not line.data.strip()
            if blank:
                if lines:
                    yield RawDocument(f"{name}:{first}", fmt, tuple(lines))
                lines = []
            elif lines:
                lines.append(line.data)
            elif after_blank:  # a document starts here
                if end is not None and line.offset >= end:
                    return
                first = line.offset
                lines.append(line.data)
            after_blank = blank  # a document started before `start` is skipped: the split before reads it
    except ReadFailure:
        if lines:  # the paragraph read before the damage
            yield RawDocument(f"{name}:{first}", fmt, tuple(lines))
        raise
    if lines:
        yield RawDocument(f"{name}:{first}", fmt, tuple(lines))


def document_bytes(document: RawDocument) -> int:
    return sum(len(line) for line in document.lines if line is not None)


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


class Tally(dict):
    """Counter name → amount for one task; emitted as Count elements when the task ends."""

    def add(self, name: str, amount: int = 1) -> None:
        if amount:
            self[name] = self.get(name, 0) + amount

    def counts(self):
        return [counter(name, amount) for name, amount in sorted(self.items())]


class DocumentTokenizer:
    """RawDocuments → (document id, aligned sentence Segments), counting lines, sentences and drops."""

    def __init__(self, vocab: str, max_segment_tokens: int):
        from vocab.multigrained import MultiGrainedTokenizer

        self._tokenizer = MultiGrainedTokenizer.from_artifact(vocab, verify=False)  # the driver verified it
        self._max_segment_tokens = max_segment_tokens
        self.cls_id, self.sep_id = self._tokenizer.cls_id, self._tokenizer.sep_id

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

    def tokenize(self, batch: list[RawDocument], tally: Tally) -> list[tuple[str, list[Segment]]]:
        tally.add("documents_read", len(batch))
        split = [document_sentences(document) for document in batch]
        encoded = iter(self._encode([text for sentences, _d, _k in split for _s, text in sentences]))
        documents = []
        for document, (sentences, dropped, kept_lines) in zip(batch, split, strict=True):
            tally.add("lines_read", len(document.lines))
            for reason, amount in dropped.items():
                tally.add(f"lines_dropped.{reason}", amount)
            segments = []
            for start, _text in sentences:
                sentence = next(encoded)
                if sentence is None:
                    tally.add("sentences_dropped.tokenizer_error")
                    continue
                segment = segment_of(sentence, start)
                if segment is None:  # only characters the tokenizer drops (controls, unusual spaces)
                    tally.add("sentences_dropped.no_tokens")
                    continue
                cut = truncate_segment(segment, self._max_segment_tokens)
                if not len(cut):  # its first coarse token alone is longer than an example
                    tally.add("sentences_dropped.first_token_too_long")
                    continue
                if len(cut.coarse_ids) < len(segment.coarse_ids):
                    tally.add("sentences_truncated")
                    tally.add("fine_tokens_truncated", len(segment) - len(cut))
                segments.append(cut)
            if not segments:
                worst = min(dropped, key=lambda r: (-dropped[r], r)) if dropped else ""
                tally.add(f"documents_dropped.{'empty' if kept_lines or not dropped else f'all_lines_{worst}'}")
                continue
            tally.add("documents_kept")
            tally.add("sentences", len(segments))
            documents.append((document.doc_id, segments))
        return documents
