"""Sorted runs of encoded examples: how the shard pipeline moves examples from the tokenizing step to the
shard writers without passing them through the runner's shuffle, in O(runs + shards) file operations.

    writer = RunWriter(f"{work}/runs/000003.run", run_bytes)   # one per corpus split
    writer.add(key, data) ...; record = writer.close()          # one RunRecord (None: no example)
    for key, data in merged_key_range(records, indexes, lo, hi): ...   # every run's keys in [lo, hi), in order

A task keeps at most `run_bytes` of examples in memory: past that it spills them, sorted, to a local
temporary file, and at the end merges its spills into ONE run file per task. A run file is
`<32-hex key><u32 length><data>` records in (key, data) order; its `.idx` beside it holds (top 64 bits of
the key, byte offset) of every INDEX_EVERY-th record, so a reader fetches any key range with one open and
one ranged read (in CHUNK_BYTES pieces). The shard writers take groups of consecutive shards (a key range)
and read that range of every run once: R runs and S shards cost about R·ceil(S / group) + S operations
(pipelines/shards.py picks the group size). Local runners (FnApiRunner) keep what crosses a shuffle in the
driver's memory; runs keep that memory bounded whatever the corpus size.
"""

from __future__ import annotations

import heapq
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pipelines.files import move_local_file, open_to_read, read_bytes, write_atomically

KEY_BYTES = 32  # example keys are 32 hex digits, 128 bits (pipelines/pretraining_examples.example_key)
KEY_SPACE = 1 << 128
INDEX_EVERY = 64
CHUNK_BYTES = 1 << 20  # one ranged read of a run brings at most this much
MERGE_BUFFER_BYTES = 256 << 20  # a merged read of many runs holds at most about this much (≥ 64 KiB per run)
_HEADER = struct.Struct(f"<{KEY_BYTES}sI")


class DuplicateKeyError(RuntimeError):
    """Two examples with the same key (a 128-bit hash collision, or a corpus file given twice)."""


@dataclass(frozen=True, order=True)
class RunRecord:
    """A finished run file (its index is `path + ".idx"`) and how many examples it holds."""

    path: str
    count: int


def key_range(shard: int, shards: int) -> tuple[int, int]:
    """Shard `shard` of `shards` holds the keys k with lo ≤ int(k, 16) < hi: equal slices of the key space."""
    return shard * KEY_SPACE // shards, (shard + 1) * KEY_SPACE // shards


def _records(handle, limit: int | None = None, piece_bytes: int = CHUNK_BYTES) -> Iterator[tuple[bytes, bytes]]:
    """(key bytes, data) records from a binary file object positioned at a record boundary, read in
    `piece_bytes` pieces; stops at the end (or after `limit` bytes)."""
    buffer, position, left = b"", 0, limit
    while True:
        need = _HEADER.size
        if len(buffer) - position >= _HEADER.size:
            need += _HEADER.unpack_from(buffer, position)[1]
        if len(buffer) - position < need:
            want = piece_bytes if left is None else min(piece_bytes, left)
            chunk = handle.read(want) if want > 0 else b""
            if not chunk:
                if position < len(buffer):
                    raise OSError(f"run file cut short ({len(buffer) - position} stray bytes); rerun the command")
                return
            if left is not None:
                left -= len(chunk)
            buffer, position = buffer[position:] + chunk, 0
            continue
        key, length = _HEADER.unpack_from(buffer, position)
        start = position + _HEADER.size
        position = start + length
        yield key, buffer[start:position]


class RunWriter:
    """Collects (key, data) pairs; every `run_bytes` of data it spills them sorted to a local temporary
    file; close() merges the spills into the run file `path` (+ `.idx`). The name depends only on the
    task, so a retried task rewrites the same file."""

    def __init__(self, path: str, run_bytes: int):
        self._path = path
        self._run_bytes = run_bytes
        self._pending: list[tuple[bytes, bytes]] = []
        self._size = 0
        self._spills: list[str] = []

    def add(self, key: str, data: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"example key {key!r} is not {KEY_BYTES} hex digits")
        self._pending.append((key.encode("ascii"), data))
        self._size += len(data) + _HEADER.size
        if self._size >= self._run_bytes:
            self._spill()

    def _spill(self) -> None:
        if not self._pending:
            return
        self._pending.sort()
        handle, local = tempfile.mkstemp(suffix=".spill")
        self._spills.append(local)
        with os.fdopen(handle, "wb") as spill:
            for key, data in self._pending:
                spill.write(_HEADER.pack(key, len(data)))
                spill.write(data)
        self._pending, self._size = [], 0

    def close(self) -> RunRecord | None:
        try:
            if self._spills:
                self._spill()
                handles = [open(spill, "rb") for spill in self._spills]  # noqa: SIM115 (closed below)
                try:
                    return self._write(heapq.merge(*(_records(h) for h in handles)))
                finally:
                    for handle in handles:
                        handle.close()
            self._pending.sort()
            return self._write(iter(self._pending)) if self._pending else None
        finally:
            for spill in self._spills:
                os.remove(spill)
            self._spills, self._pending = [], []

    def _write(self, records: Iterator[tuple[bytes, bytes]]) -> RunRecord:
        index, offset, count, previous = [], 0, 0, None
        handle, local = tempfile.mkstemp(suffix=".run")
        try:
            with os.fdopen(handle, "wb") as run_file:
                for key, data in records:
                    if key == previous:
                        raise DuplicateKeyError(f"two examples with key {key.decode()} in {self._path}")
                    if count % INDEX_EVERY == 0:
                        index.append((int(key[:16], 16), offset))
                    run_file.write(_HEADER.pack(key, len(data)))
                    run_file.write(data)
                    offset += _HEADER.size + len(data)
                    count, previous = count + 1, key
            move_local_file(local, self._path)
        finally:
            if os.path.exists(local):
                os.remove(local)
        write_atomically(f"{self._path}.idx", np.asarray(index, dtype=np.uint64).reshape(-1, 2).tobytes())
        return RunRecord(self._path, count)


def read_index(record: RunRecord) -> np.ndarray:
    """[n, 2] uint64: (top 64 bits of the key, byte offset) of every INDEX_EVERY-th record of the run."""
    return np.frombuffer(read_bytes(f"{record.path}.idx"), dtype=np.uint64).reshape(-1, 2)


def read_key_range(
    record: RunRecord, index: np.ndarray, lo: int, hi: int, chunk: int = CHUNK_BYTES
) -> Iterator[tuple[str, bytes]]:
    """The run's (key, data) pairs with lo ≤ int(key, 16) < hi, in key order: one open, then reads of
    `chunk` bytes from the last indexed record before lo up to the first indexed record at or past hi."""
    keys = index[:, 0]
    first = int(np.searchsorted(keys, np.uint64(lo >> 64), side="left"))  # indexed keys before it are < lo
    start = int(index[first - 1, 1]) if first else 0
    past = int(np.searchsorted(keys, np.uint64(min(hi >> 64, (1 << 64) - 1)), side="right"))
    limit = int(index[past, 1]) - start if past < len(index) and hi < KEY_SPACE else None
    with open_to_read(record.path) as handle:
        handle.seek(start)
        for key_bytes, data in _records(handle, limit, chunk):
            value = int(key_bytes, 16)
            if value >= hi:
                return
            if value >= lo:
                yield key_bytes.decode("ascii"), data


def merged_key_range(records: list[RunRecord], indexes: list[np.ndarray], lo: int, hi: int):
    """Every run's (key, data) pairs with lo ≤ int(key, 16) < hi, merged in key order; DuplicateKeyError
    names a key two runs share. Memory: one read buffer per run, MERGE_BUFFER_BYTES in all (many small runs,
    such as one per small compressed file, get smaller reads)."""
    chunk = max(64 << 10, min(CHUNK_BYTES, MERGE_BUFFER_BYTES // max(len(records), 1)))
    previous = None
    for key, data in heapq.merge(
        *(read_key_range(record, index, lo, hi, chunk) for record, index in zip(records, indexes, strict=True))
    ):
        if key == previous:
            raise DuplicateKeyError(f"two examples with key {key} (a corpus file given twice?)")
        previous = key
        yield key, data
