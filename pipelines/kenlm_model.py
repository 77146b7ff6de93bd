"""Training the KenLM model of a normalized corpus inside a Beam pipeline.

`WriteNormalizedCorpus` writes the normalized lines of each batch to its own text file (named by
a stable hash of the batch's key; lines keep their order), and `TrainKenLM` streams those files,
in name order, into `lmplz` and converts the ARPA file with `build_binary`, on one worker.
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


class _WriteBatchText(beam.DoFn):
    def __init__(self, directory: str):
        self._directory = directory

    def process(self, batch):
        path = f"{self._directory}/batch-{batch.file_stem}.txt"
        write_atomically(path, "".join(line + "\n" for line in batch.lines).encode("utf-8"))
        yield path


class WriteNormalizedCorpus(beam.PTransform):
    """NormalizedBatch → one text file per batch under `directory` (one normalized line per line, named by a stable
    hash of the batch's key); their paths. Only paths cross a shuffle, so a local runner never holds the corpus."""

    def __init__(self, directory: str):
        super().__init__()
        self._directory = directory

    def expand(self, batches):
        return batches | "WriteBatchText" >> beam.ParDo(_WriteBatchText(self._directory))


def train_kenlm(
    corpus_paths: list[str],
    order: int,
    arpa_path: str,
    binary_path: str,
    memory: str = "20%",
    temp_dir: str | None = None,
) -> float:
    """Run lmplz over the normalized corpus files (in name order), then build_binary. `memory` is lmplz's -S,
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
            raise KenLMError(f"lmplz failed (exit {status}) on {len(corpus_paths)} corpus files:\n{tail}")
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
    """Normalized corpus file paths → the KenLM binary's path (a single element), + counters."""

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
