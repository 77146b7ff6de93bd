"""Labeled data for fine-tuning: classification and sentence-pair files read, then encoded as aligned examples.

    rows = read_labeled("data/labeled/zh_sentiment_train.tsv.gz")       # or .tsv, .jsonl, .jsonl.gz
    labels = label_vocabulary(rows); examples = encode_labeled(tokenizer, rows, max_seq_len=128)

TSV: `label<TAB>text[<TAB>text_b]` without a header (the format of ../shared/data/labeled), or with a header
line naming the columns `label`, `text` and optionally `text_b` in any order. JSONL: one object per line with
the same keys. Errors name the file and the line.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass

import numpy as np

from vocab.aligned_codec import ShardExample

COLUMNS = ("label", "text", "text_b")
_HEADER_FIELD = re.compile(r"[a-z_]+")


class LabeledDataError(ValueError):
    """A labeled file that cannot be read as labeled examples (names the file and the line)."""


@dataclass(frozen=True)
class LabeledExample:
    """One labeled text (or pair). line: 1-based line in the file it came from (0 when built in code)."""

    text: str
    label: str
    text_b: str | None = None
    line: int = 0


def read_labeled(path: str) -> list[LabeledExample]:
    """The examples of a `.tsv`, `.tsv.gz`, `.jsonl` or `.jsonl.gz` file, in file order."""
    stem = path[:-3] if path.endswith(".gz") else path
    if not stem.endswith((".tsv", ".jsonl")):
        raise LabeledDataError(f"{path}: unsupported file type; use .tsv, .jsonl (optionally .gz)")
    lines = list(_decoded_lines(path))
    if not lines:
        raise LabeledDataError(f"{path} holds no examples")
    return _read_tsv(path, lines) if stem.endswith(".tsv") else _read_jsonl(path, lines)


def label_vocabulary(examples: list[LabeledExample]) -> list[str]:
    """The distinct labels, sorted as strings (so "10" sorts before "2"): label id = index in this list."""
    return sorted({example.label for example in examples})


def encode_labeled(
    tokenizer, examples: list[LabeledExample], max_seq_len: int, split: str = "train"
) -> list[ShardExample]:
    """[CLS] text [SEP] (text_b [SEP]) at both granularities, truncated to ≤ max_seq_len tokens on each side.

    `tokenizer` is a vocab.multigrained.MultiGrainedTokenizer. Keys are f"{split}-{index}" (index in
    `examples`). Truncation drops whole coarse tokens from the end (of the longer segment first for pairs).
    """
    if max_seq_len < 4:
        raise ValueError(f"max_seq_len {max_seq_len} leaves no room for text besides [CLS] and two [SEP]")
    singles = [index for index, example in enumerate(examples) if example.text_b is None]
    encoded = dict(zip(singles, tokenizer.encode_batch([examples[i].text for i in singles]), strict=True))
    result = []
    for index, example in enumerate(examples):
        aligned = encoded[index] if example.text_b is None else tokenizer.encode_pair(example.text, example.text_b)
        result.append(truncate_aligned(aligned, max_seq_len, key=f"{split}-{index}"))
    return result


def truncate_aligned(aligned, max_seq_len: int, key: str = "") -> ShardExample:
    """An AlignedExample ([CLS] a [SEP] (b [SEP])) as a ShardExample of ≤ max_seq_len fine (hence coarse) tokens.

    Like BERT's truncate_seq_pair but cutting between coarse tokens only: drop the last coarse token of
    the longer segment (b on ties) until the fine tokens fit. A minimal cousin of
    pipelines/pretraining_examples.truncate_pair (trainer/ must not import pipelines/). A single coarse
    token longer than the budget is dropped whole, which can leave a segment empty.
    """
    align = np.asarray(aligned.align, dtype=np.int32)
    coarse_type = np.asarray(aligned.coarse_type)
    first_b = int(np.sum(coarse_type == 0))  # coarse index of segment b's first token ([SEP] of a is first_b - 1)
    total = len(aligned.coarse_ids)
    segments = [[1, first_b - 1]] + ([[first_b, total - 1]] if first_b < total else [])
    widths = align[:, 1] - align[:, 0]
    lengths = [int(widths[start:stop].sum()) for start, stop in segments]
    budget = max_seq_len - 1 - len(segments)
    while sum(lengths) > budget:
        side = 0 if len(segments) == 1 or lengths[0] > lengths[1] else 1
        segments[side][1] -= 1
        lengths[side] -= int(widths[segments[side][1]])
    kept = [0]  # coarse indices: [CLS], each segment's kept tokens and its [SEP]
    for (start, stop), sep in zip(segments, (first_b - 1, total - 1), strict=False):
        kept += [*range(start, stop), sep]
    coarse = np.asarray(kept, dtype=np.int64)
    fine = np.concatenate([np.arange(align[j, 0], align[j, 1]) for j in kept])
    ends = np.cumsum(widths[coarse]).astype(np.int32)
    pairs = lambda values: np.asarray(values, dtype=np.int32).reshape(-1, 2)  # noqa: E731
    return ShardExample(
        key=key,
        doc_id="",
        fine_ids=np.asarray(aligned.fine_ids, dtype=np.int32)[fine],
        coarse_ids=np.asarray(aligned.coarse_ids, dtype=np.int32)[coarse],
        align=np.stack([np.concatenate([[0], ends[:-1]]), ends], axis=1).astype(np.int32),
        fine_type=np.asarray(aligned.fine_type, dtype=np.uint8)[fine],
        coarse_type=coarse_type.astype(np.uint8)[coarse],
        fine_offsets=pairs(aligned.fine_offsets)[fine],
        coarse_offsets=pairs(aligned.coarse_offsets)[coarse],
        nsp_label=-1,
    )


# -- reading ----------------------------------------------------------------------------------------
def _decoded_lines(path: str):
    """(line number, text) of every line, strict UTF-8, without its line ending; a final newline ends the file."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except FileNotFoundError as error:
        raise LabeledDataError(f"{path} not found") from error
    except (OSError, EOFError, zlib.error) as error:
        raise LabeledDataError(
            f"{path} is not readable as {'gzip' if path.endswith('.gz') else 'a file'}: {error}"
        ) from error
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for number, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise LabeledDataError(
                f"{path}, line {number}: invalid UTF-8 at byte {error.start} ({error.reason}); "
                "convert the file to UTF-8"
            ) from error
        line = line.removesuffix("\r")
        yield number, line.removeprefix("\ufeff") if number == 1 else line


def _read_tsv(path: str, lines: list[tuple[int, str]]) -> list[LabeledExample]:
    first = lines[0][1].split("\t")
    if all(_HEADER_FIELD.fullmatch(field) for field in first) and {"label", "text"} & set(first):
        missing = [name for name in ("label", "text") if name not in first]
        unknown = [name for name in first if name not in COLUMNS]
        if missing or unknown or len(set(first)) != len(first):
            raise LabeledDataError(
                f"{path}, line 1: header {first} must name the columns label and text (and "
                f"optionally text_b) once each; missing {missing}, unknown {unknown}"
            )
        columns, rows = first, lines[1:]
    else:
        columns, rows = None, lines
    examples = []
    for number, line in rows:
        fields = line.split("\t")
        names = columns or COLUMNS[: len(fields)]
        if len(fields) != len(names) or len(fields) < 2:
            expected = (
                f"{len(columns)} tab-separated fields ({', '.join(columns)})"
                if columns
                else "label<TAB>text or label<TAB>text<TAB>text_b"
            )
            raise LabeledDataError(f"{path}, line {number}: {len(fields)} tab-separated fields; expected {expected}")
        examples.append(_example(path, number, dict(zip(names, fields, strict=True))))
    if not examples:
        raise LabeledDataError(f"{path} has a header but no examples")
    return examples


def _read_jsonl(path: str, lines: list[tuple[int, str]]) -> list[LabeledExample]:
    examples = []
    for number, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise LabeledDataError(
                f"{path}, line {number}: invalid JSON ({error.msg} at column {error.colno})"
            ) from error
        if not isinstance(record, dict):
            raise LabeledDataError(
                f"{path}, line {number}: expected a JSON object with label and text, got {type(record).__name__}"
            )
        for name in ("label", "text"):
            if record.get(name) is None:
                raise LabeledDataError(f"{path}, line {number}: missing field {name!r} (has {sorted(record)})")
        for name in ("text", "text_b"):
            if record.get(name) is not None and not isinstance(record[name], str):
                raise LabeledDataError(f"{path}, line {number}: field {name!r} must be a string")
        if isinstance(record["label"], dict | list):
            raise LabeledDataError(f"{path}, line {number}: label must be a string or a number")
        examples.append(
            _example(
                path, number, {"label": str(record["label"]), "text": record["text"], "text_b": record.get("text_b")}
            )
        )
    return examples


def _example(path: str, number: int, fields: dict[str, str | None]) -> LabeledExample:
    for name in ("label", "text", "text_b"):
        value = fields.get(name)
        if value is not None and not value.strip():
            raise LabeledDataError(f"{path}, line {number}: empty {name}; remove the line or fill it in")
    return LabeledExample(text=fields["text"], label=fields["label"].strip(), text_b=fields.get("text_b"), line=number)
