"""File access for pipelines: Beam's FileSystems (local paths, gs://, s3://, ... as Beam's extras
provide), and fsspec for any other URL (memory://, file://, az://, ...).

Corpus path expansion with clear errors, line reading that survives bad bytes and truncated
archives, and atomic writes (temporary name, then rename) so readers never see partial files.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import posixpath
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
            raise CorpusError(f"no corpus files under {pattern}: expected names ending in {', '.join(CORPUS_SUFFIXES)}")
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
    """One physical line: its bytes (None when longer than the limit), its 1-based number in this read
    (the file's line number when reading from the start) and the byte offset where it starts in the
    decompressed file (Parquet: the row index)."""

    number: int
    data: bytes | None
    offset: int = 0


class ReadFailure(Exception):
    """A corpus file stopped being readable part-way (truncated or corrupt archive)."""


def splittable(path: str) -> bool:
    """Whether reading can start part-way into `path` (plain, uncompressed text)."""
    return record_format(path) != "parquet" and not path.endswith((".gz", ".bz2"))


def file_size(path: str) -> int:
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def _skip_line(reader, max_line_bytes: int) -> int:
    """Read up to and including the next newline; returns the bytes consumed."""
    consumed = 0
    while True:
        part = reader.readline(max_line_bytes + 1)
        consumed += len(part)
        if not part or part.endswith(b"\n"):
            return consumed


def read_lines(path: str, max_line_bytes: int, start: int = 0) -> Iterator[LineRead]:
    """Yield the lines of `path` (decompressed by suffix), without line endings; with `start` > 0
    (plain files only), the lines that begin at or after byte `start`.

    Lines over `max_line_bytes` are yielded with data=None and never held in memory whole.
    A truncated or corrupt archive raises ReadFailure after the lines read before the damage.
    A Parquet file yields its `text` column, a row per line (null → empty).
    """
    if start and not splittable(path):
        raise ValueError(f"{path}: a compressed or Parquet file is read from its start only")
    if record_format(path) == "parquet":
        yield from _parquet_rows(path, max_line_bytes)
        return
    raw = open_to_read(path)
    if path.endswith(".gz"):
        reader: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb")
    elif path.endswith(".bz2"):
        reader = bz2.BZ2File(raw, mode="rb")
    else:
        reader = io.BufferedReader(raw, buffer_size=1 << 20)
    number, offset = 0, 0
    try:
        if start:  # the line that holds byte start - 1 belongs to the reader before
            reader.seek(start - 1)
            offset = start - 1 + _skip_line(reader, max_line_bytes)
        while True:
            line = reader.readline(max_line_bytes + 1)
            if not line:
                return
            number += 1
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                yield LineRead(number, None, offset)
                offset += len(line) + _skip_line(reader, max_line_bytes)  # the rest of the giant line
                continue
            yield LineRead(number, line.rstrip(b"\r\n"), offset)
            offset += len(line)
    except (EOFError, OSError, zlib.error) as error:
        raise ReadFailure(f"{path}: unreadable after line {number}: {error}") from error
    finally:
        reader.close()


def line_before_is_blank(path: str, offset: int, max_line_bytes: int) -> bool:
    """Whether the line that ends just before byte `offset` (a line start in a plain file) is blank
    as read_lines sees it (whitespace only, and not over `max_line_bytes`); True at the file's start."""
    if offset == 0:
        return True
    with open_to_read(path) as handle:
        position, scanned = offset - 1, 0  # byte offset - 1 is the line's newline
        while position > 0:
            step = min(4096, position)
            handle.seek(position - step)
            chunk = handle.read(step)
            for byte in reversed(chunk):
                if byte == 0x0A:
                    return True
                if byte not in b" \t\r\x0b\x0c" or scanned >= max_line_bytes:
                    return False
                scanned += 1
            position -= step
    return True


def _parquet_rows(path: str, max_line_bytes: int) -> Iterator[LineRead]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    number = 0
    with open_to_read(path) as handle:
        try:
            parquet = pq.ParquetFile(handle)
            columns = parquet.schema_arrow.names
            if PARQUET_TEXT_COLUMN not in columns:
                raise ReadFailure(f"{path}: no {PARQUET_TEXT_COLUMN!r} column (columns: {', '.join(columns)})")
            for batch in parquet.iter_batches(columns=[PARQUET_TEXT_COLUMN], batch_size=4096):
                for value in batch.column(0).to_pylist():
                    data = b"" if value is None else str(value).encode("utf-8")
                    yield LineRead(number + 1, data if len(data) <= max_line_bytes else None, number)
                    number += 1
        except (pa.ArrowException, OSError) as error:
            raise ReadFailure(f"{path}: unreadable Parquet after row {number}: {error}") from error


def _fsspec(path: str):
    """(fsspec filesystem, its path) for a URL Beam's FileSystems has no filesystem for; None otherwise."""
    try:
        FileSystems.get_filesystem(path)
        return None
    except ValueError:
        import fsspec

        return fsspec.core.url_to_fs(path)


def open_to_read(path: str):
    located = _fsspec(path)
    if located:
        return located[0].open(located[1], "rb")
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def open_to_write(path: str):
    located = _fsspec(path)
    if located:
        fs, inner = located
        fs.makedirs(posixpath.dirname(inner), exist_ok=True)
        return fs.open(inner, "wb")
    return FileSystems.create(path)


def path_exists(path: str) -> bool:
    located = _fsspec(path)
    return located[0].exists(located[1]) if located else FileSystems.exists(path)


def matching_paths(pattern: str) -> list[str]:
    """The files matching a glob, as full paths or URLs."""
    located = _fsspec(pattern)
    if located:
        fs, inner = located
        return [fs.unstrip_protocol(found) for found in fs.glob(inner) if fs.isfile(found)]
    return [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list]


def delete_paths(paths: list[str]) -> None:
    """Delete files and directories (with what they hold) that exist."""
    for path in paths:
        located = _fsspec(path)
        if located and located[0].exists(located[1]):
            located[0].rm(located[1], recursive=True)
        elif not located and FileSystems.exists(path):
            FileSystems.delete([path])


def replace_file(tmp: str, path: str) -> None:
    """Put the finished file `tmp` in place of `path`. On a local disk os.replace swaps it in one
    step, so a concurrent reader sees the old or the new file, never none (runners may run a
    step more than once, concurrently: retries, speculative execution; Beam's DaskRunner
    evaluates side inputs apart from the main graph)."""
    if FileSystems.get_scheme(path) is None:
        os.replace(tmp, path)
        return
    delete_paths([path])
    located = _fsspec(path)
    if located:
        located[0].mv(_fsspec(tmp)[1], located[1])
    else:
        FileSystems.rename([tmp], [path])


def write_atomically(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary name and a rename (no partial file)."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open_to_write(tmp) as handle:
        handle.write(data)
    replace_file(tmp, path)


def move_local_file(local: str, path: str) -> None:
    """Move a finished local file to `path` (local or remote), atomically at the destination."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    if FileSystems.get_scheme(path) is None and os.path.isdir(os.path.dirname(path) or "."):
        os.chmod(local, 0o644)  # mkstemp's files are 0600: outputs are world-readable, as open() makes them
        shutil.move(local, tmp)
    else:
        with open(local, "rb") as source, open_to_write(tmp) as handle:
            shutil.copyfileobj(source, handle, 1 << 20)
        os.remove(local)
    replace_file(tmp, path)


def clear_previous_outputs(out: str, marker: str, stale_patterns: tuple[str, ...]) -> None:
    """Make `out` if missing; delete its completion `marker` first (readers then refuse the
    directory), then what a previous run left (globs relative to `out`), so reruns are safe."""
    located = _fsspec(out)
    if located:
        located[0].makedirs(located[1], exist_ok=True)
    elif not FileSystems.exists(out):
        FileSystems.mkdirs(out)
    stale = [f"{out}/{marker}"]
    for pattern in stale_patterns:
        stale += matching_paths(f"{out}/{pattern}")
    delete_paths(stale)


def read_bytes(path: str) -> bytes:
    with open_to_read(path) as handle:
        return handle.read()
