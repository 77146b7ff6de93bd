"""Training the KenLM model of a normalized corpus inside a Beam pipeline.

`WriteNormalizedCorpus` writes the normalized lines as deterministic text shards (a stable hash
of each batch's key picks the shard; lines keep their source order), and `TrainKenLM` streams
those shards into `lmplz` and converts the ARPA file with `build_binary`, on one worker.
The binaries come from the project's set-up (`make setup` builds them into .venv/bin).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

import apache_beam as beam

from pipelines.accounting import SplitCounters, counter
from pipelines.files import move_local_file, open_to_read, write_atomically

_LOG = logging.getLogger(__name__)


class KenLMError(RuntimeError):
    """lmplz or build_binary is missing or failed."""


def kenlm_binary(name: str) -> str:
    """Path of a KenLM command-line tool: next to this Python, else on PATH."""
    beside_python = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(beside_python, os.X_OK):
        return beside_python
    found = shutil.which(name)
    if found is None:
        raise KenLMError(
            f"KenLM's `{name}` was not found next to {sys.executable} or on PATH; "
            "run `make setup` (it builds lmplz and build_binary into .venv/bin)"
        )
    return found


class _WriteCorpusShard(beam.DoFn):
    def __init__(self, directory: str):
        self._directory = directory

    def process(self, keyed):
        shard, batches = keyed
        ordered = sorted(batches, key=lambda batch: batch.key)
        text = "".join(line + "\n" for batch in ordered for line in batch.lines)
        path = f"{self._directory}/part-{shard:05d}.txt"
        write_atomically(path, text.encode("utf-8"))
        yield path


class WriteNormalizedCorpus(beam.PTransform):
    """NormalizedBatch → text shards under `directory` (one normalized line per line); paths."""

    def __init__(self, directory: str, num_shards: int):
        super().__init__()
        self._directory = directory
        self._num_shards = num_shards

    def expand(self, batches):
        num_shards = self._num_shards
        return (
            batches
            | "KeyByShard" >> beam.Map(lambda b: (zlib.crc32(repr(b.key).encode()) % num_shards, b))
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(_WriteCorpusShard(self._directory))
        )


def train_kenlm(
    corpus_paths: list[str],
    order: int,
    arpa_path: str,
    binary_path: str,
    memory: str = "20%",
    temp_dir: str | None = None,
) -> float:
    """Run lmplz over the concatenated corpus shards, then build_binary. `memory` is lmplz's -S,
    `temp_dir` the directory for its -T files and the intermediate files. Returns seconds taken."""
    lmplz, build_binary = kenlm_binary("lmplz"), kenlm_binary("build_binary")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ambert-kenlm-", dir=temp_dir) as work:
        arpa_local = os.path.join(work, "lm.arpa")
        binary_local = os.path.join(work, "lm.binary")
        command = [lmplz, "-o", str(order), "--discount_fallback", "-S", memory, "-T", work]
        with open(arpa_local, "wb") as arpa, open(os.path.join(work, "lmplz.log"), "wb") as log:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=arpa, stderr=log)
            assert process.stdin is not None
            try:
                for path in sorted(corpus_paths):
                    with open_to_read(path) as f:
                        shutil.copyfileobj(f, process.stdin, 1 << 20)
            except BrokenPipeError:
                pass  # lmplz exited early; its status and log say why
            finally:
                process.stdin.close()
            status = process.wait()
        if status != 0:
            with open(os.path.join(work, "lmplz.log"), errors="replace") as log:
                tail = "".join(log.readlines()[-15:])
            raise KenLMError(f"lmplz failed (exit {status}) on {len(corpus_paths)} shards:\n{tail}")
        done = subprocess.run([build_binary, arpa_local, binary_local], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise KenLMError(f"build_binary failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        move_local_file(arpa_local, arpa_path)
        move_local_file(binary_local, binary_path)
    return time.monotonic() - started


class _TrainKenLM(beam.DoFn):
    def __init__(self, order: int, arpa_path: str, binary_path: str, memory: str, temp_dir: str | None):
        self._args = (order, arpa_path, binary_path, memory, temp_dir)

    def process(self, keyed):
        _key, corpus_paths = keyed
        order, arpa_path, binary_path, memory, temp_dir = self._args
        seconds = train_kenlm(list(corpus_paths), order, arpa_path, binary_path, memory, temp_dir)
        _LOG.info("KenLM order %d trained in %.1f s", order, seconds)
        yield counter("seconds.kenlm", round(seconds, 3))
        yield binary_path


class TrainKenLM(beam.PTransform):
    """Corpus shard paths → the KenLM binary's path (a single element), + counters."""

    def __init__(self, order: int, arpa_path: str, binary_path: str, memory: str = "20%", temp_dir: str | None = None):
        super().__init__()
        self._fn = _TrainKenLM(order, arpa_path, binary_path, memory, temp_dir)

    def expand(self, corpus_paths):
        return (
            corpus_paths
            | "OneKey" >> beam.Map(lambda path: (None, path))
            | "Gather" >> beam.GroupByKey()
            | "Train" >> beam.ParDo(self._fn)
            | "SplitCounters" >> SplitCounters()
        )
