"""File access for pipelines through Beam's FileSystems (local paths, gs://, s3://, ...).

Corpus path expansion with clear errors, line reading that survives bad bytes and truncated
archives, and atomic writes (temporary name, then rename) so readers never see partial files.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import shutil
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

CORPUS_SUFFIXES = (".txt", ".jsonl", ".txt.gz", ".jsonl.gz", ".txt.bz2", ".jsonl.bz2", ".parquet")
PARQUET_TEXT_COLUMN = "text"


class CorpusError(ValueError):
    """A corpus path that cannot be used, with what to do about it."""


def expand_corpus_paths(patterns: list[str]) -> list[str]:
    """Expand files, directories and globs into a sorted list of corpus files."""
    if not patterns:
        raise CorpusError("no corpus given: pass --corpus PATH (a file, a directory or a glob)")
    found: set[str] = set()
    for pattern in patterns:
        if pattern.endswith("/") or os.path.isdir(pattern):
            pattern = FileSystems.join(pattern.rstrip("/"), "**")
        metadata = [m for r in FileSystems.match([pattern]) for m in r.metadata_list]
        files = [m.path for m in metadata if m.path.endswith(CORPUS_SUFFIXES)]
        if not metadata:
            raise CorpusError(f"corpus path not found: {pattern} (check the path or the glob)")
        if not files:
            raise CorpusError(
                f"no corpus files under {pattern}: expected names ending in "
                f"{', '.join(CORPUS_SUFFIXES)}"
            )
        found.update(files)
    return sorted(found)


def record_format(path: str) -> str:
    """'jsonl' (a `text` field per line), 'parquet' (a `text` column, a row per unit) or 'text'
    (a line per unit)."""
    if path.endswith(".parquet"):
        return "parquet"
    name = path.removesuffix(".gz").removesuffix(".bz2")
    return "jsonl" if name.endswith(".jsonl") else "text"


@dataclass(frozen=True)
class LineRead:
    """One physical line: its bytes (None when longer than the limit) and its 1-based number."""

    number: int
    data: bytes | None


class ReadFailure(Exception):
    """A corpus file stopped being readable part-way (truncated or corrupt archive)."""


def read_lines(path: str, max_line_bytes: int) -> Iterator[LineRead]:
    """Yield the lines of `path` (decompressed by suffix), without line endings.

    Lines over `max_line_bytes` are yielded with data=None and never held in memory whole.
    A truncated or corrupt archive raises ReadFailure after the lines read before the damage.
    A Parquet file yields its `text` column, a row per line (null → empty).
    """
    if record_format(path) == "parquet":
        yield from _parquet_rows(path, max_line_bytes)
        return
    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    if path.endswith(".gz"):
        reader: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb")
    elif path.endswith(".bz2"):
        reader = bz2.BZ2File(raw, mode="rb")
    else:
        reader = io.BufferedReader(raw, buffer_size=1 << 20)
    number = 0
    try:
        while True:
            line = reader.readline(max_line_bytes + 1)
            if not line:
                return
            number += 1
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):  # skip the rest of the giant line
                    line = reader.readline(1 << 20)
                yield LineRead(number, None)
                continue
            yield LineRead(number, line.rstrip(b"\r\n"))
    except (EOFError, OSError, zlib.error) as error:
        raise ReadFailure(f"{path}: unreadable after line {number}: {error}") from error
    finally:
        reader.close()


def _parquet_rows(path: str, max_line_bytes: int) -> Iterator[LineRead]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    number = 0
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        try:
            parquet = pq.ParquetFile(handle)
            columns = parquet.schema_arrow.names
            if PARQUET_TEXT_COLUMN not in columns:
                raise ReadFailure(f"{path}: no {PARQUET_TEXT_COLUMN!r} column (columns: {', '.join(columns)})")
            for batch in parquet.iter_batches(columns=[PARQUET_TEXT_COLUMN], batch_size=4096):
                for value in batch.column(0).to_pylist():
                    number += 1
                    data = b"" if value is None else str(value).encode("utf-8")
                    yield LineRead(number, data if len(data) <= max_line_bytes else None)
        except (pa.ArrowException, OSError) as error:
            raise ReadFailure(f"{path}: unreadable Parquet after row {number}: {error}") from error


def _replace(tmp: str, path: str) -> None:
    """Put the finished file `tmp` in place of `path`. On a local disk os.replace swaps it in one
    step, so a concurrent reader sees the old or the new file, never none (runners may run a
    step more than once, concurrently: retries, speculative execution; Beam's DaskRunner
    evaluates side inputs apart from the main graph)."""
    if FileSystems.get_scheme(path) is None:
        os.replace(tmp, path)
        return
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def write_atomically(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary name and a rename (no partial file)."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with FileSystems.create(tmp) as handle:
        handle.write(data)
    _replace(tmp, path)


def move_local_file(local: str, path: str) -> None:
    """Move a finished local file to `path` (local or remote), atomically at the destination."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    if FileSystems.get_scheme(path) is None and os.path.isdir(os.path.dirname(path) or "."):
        shutil.move(local, tmp)
    else:
        with open(local, "rb") as source, FileSystems.create(tmp) as handle:
            shutil.copyfileobj(source, handle, 1 << 20)
        os.remove(local)
    _replace(tmp, path)


def clear_previous_outputs(out: str, marker: str, stale_patterns: tuple[str, ...]) -> None:
    """Make `out` if missing; delete its completion `marker` first (readers then refuse the
    directory), then what a previous run left (globs relative to `out`), so reruns are safe."""
    if not FileSystems.exists(out):
        FileSystems.mkdirs(out)
    stale = [f"{out}/{marker}"]
    for pattern in stale_patterns:
        stale += [m.path for r in FileSystems.match([f"{out}/{pattern}"]) for m in r.metadata_list]
    FileSystems.delete([path for path in stale if FileSystems.exists(path)])


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read()
