"""Sorted runs of encoded examples on disk: how the shard pipeline moves examples from the tokenizing
step to the shard writers without passing them through the runner's shuffle.

    writer = RunWriter(f"{work}/runs/000003", run_bytes)   # one per corpus split
    writer.add(key, data) ...; records = writer.close()     # RunRecords, sorted runs of ≤ run_bytes
    read_key_range(record, index, lo, hi)                   # (key, data) with lo ≤ int(key, 16) < hi

A run file is `<16-hex key><u32 length><data>` records in (key, data) order; its `.idx` beside it
holds (key as an integer, byte offset) of every INDEX_EVERY-th record, so a shard writer reads only
its key range from each run. Local runners (FnApiRunner) keep everything that crosses a shuffle in the
driver's memory; runs keep that memory bounded by one run per worker, whatever the corpus size.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass

import numpy as np

from pipelines.files import move_local_file, open_to_read, read_bytes, write_atomically

KEY_BYTES = 16  # example keys are 16 hex digits (pipelines/pretraining_examples.example_key)
KEY_SPACE = 1 << 64
INDEX_EVERY = 64
_HEADER = struct.Struct(f"<{KEY_BYTES}sI")


@dataclass(frozen=True, order=True)
class RunRecord:
    """A finished run file (its index is `path + ".idx"`) and how many examples it holds."""

    path: str
    count: int


def key_range(shard: int, shards: int) -> tuple[int, int]:
    """Shard `shard` of `shards` holds the keys k with lo ≤ int(k, 16) < hi: equal slices of the key space."""
    return shard * KEY_SPACE // shards, (shard + 1) * KEY_SPACE // shards


class RunWriter:
    """Collects (key, data) pairs; every `run_bytes` of data, and at close, writes them sorted as
    `<prefix>-NNNN.run` (+ `.idx`). Names depend only on the prefix and the order of runs, so a retried
    task rewrites the same files."""

    def __init__(self, prefix: str, run_bytes: int):
        self._prefix = prefix
        self._run_bytes = run_bytes
        self._pending: list[tuple[str, bytes]] = []
        self._size = 0
        self.records: list[RunRecord] = []

    def add(self, key: str, data: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"example key {key!r} is not {KEY_BYTES} hex digits")
        self._pending.append((key, data))
        self._size += len(data) + _HEADER.size
        if self._size >= self._run_bytes:
            self._flush()

    def close(self) -> list[RunRecord]:
        self._flush()
        return self.records

    def _flush(self) -> None:
        if not self._pending:
            return
        self._pending.sort()
        path = f"{self._prefix}-{len(self.records):04d}.run"
        index, offset = [], 0
        handle, local = tempfile.mkstemp(suffix=".run")
        try:
            with os.fdopen(handle, "wb") as run_file:
                for number, (key, data) in enumerate(self._pending):
                    if number % INDEX_EVERY == 0:
                        index.append((int(key, 16), offset))
                    run_file.write(_HEADER.pack(key.encode("ascii"), len(data)))
                    run_file.write(data)
                    offset += _HEADER.size + len(data)
            move_local_file(local, path)
        finally:
            if os.path.exists(local):
                os.remove(local)
        write_atomically(f"{path}.idx", np.asarray(index, dtype=np.uint64).reshape(-1, 2).tobytes())
        self.records.append(RunRecord(path, len(self._pending)))
        self._pending, self._size = [], 0


def read_index(record: RunRecord) -> np.ndarray:
    """[n, 2] uint64: (key as an integer, byte offset) of every INDEX_EVERY-th record of the run."""
    return np.frombuffer(read_bytes(f"{record.path}.idx"), dtype=np.uint64).reshape(-1, 2)


def read_key_range(record: RunRecord, index: np.ndarray, lo: int, hi: int) -> list[tuple[str, bytes]]:
    """The run's (key, data) pairs with lo ≤ int(key, 16) < hi, in run order."""
    first = int(np.searchsorted(index[:, 0], np.uint64(lo), side="left"))  # the first indexed key ≥ lo
    start = int(index[first - 1, 1]) if first else 0
    found = []
    with open_to_read(record.path) as handle:
        handle.seek(start)
        while True:
            header = handle.read(_HEADER.size)
            if not header:
                break
            if len(header) < _HEADER.size:
                raise OSError(f"run file {record.path} is cut short at byte {handle.tell()}; rerun the command")
            key_bytes, length = _HEADER.unpack(header)
            value = int(key_bytes, 16)
            if value >= hi:
                break
            data = handle.read(length)
            if len(data) < length:
                raise OSError(f"run file {record.path} is cut short at byte {handle.tell()}; rerun the command")
            if value >= lo:
                found.append((key_bytes.decode("ascii"), data))
    return found
