"""Scale benchmark: a deterministic corpus of N MB from ../shared/data → `ambert phrases` → `ambert vocab build` →
`ambert shard build` on 2 Beam workers; MB/s, peak RSS of the largest process, peak temporary disk, the shard
assembly's file operations, and a projection to the paper's corpora (47 GB English, 57 GB Chinese).

    .venv/bin/python -m benchmarks.bench_scale --megabytes 1000 --work /tmp/ambert-scale    # from the repository root
    .venv/bin/python -m benchmarks.bench_scale --megabytes 50 --work /tmp/ambert-scale-50 --workers-projected 64

Resumable: every step writes into WORK and a rerun skips the steps whose result (and measurement) is there, so a
long run can be killed and restarted. The corpus repeats the English files of ../shared/data (one document per
line, in 100 MB plain files, so every copy has its own document ids `<file>:<offset>`): repeated text makes the
n-gram statistics and phrases unrealistic, so this measures throughput, memory and I/O, not quality.

Each step runs as its own `ambert` process; its peak RSS is the largest of that process and its Beam workers
(RUSAGE_CHILDREN, measured in a fresh wrapper process per step); disk is the peak of what
the step's output directory and its own TMPDIR (KenLM's -T files, runs spilled, shards before their move)
hold at the peak, sampled every second, beside what the output holds at the end.

File operations: the shard step is run a second time under `strace -f` (Debian: `apt-get install strace`), into
WORK/shard-io, and the opens, read calls and seeks of the assembly on the run files (OUT/.work/runs/) are counted
from the trace, beside the old design's one ranged read per (run, shard); the timed run is not traced.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SOURCES = ["en/linux_doc.txt.gz", "en/enwiki_sample.txt.gz", "en/austen.txt.gz", "en/kjv.txt.gz"]
PART_BYTES = 100_000_000
PAPER_MB = {"en (47 GB)": 47_000, "zh (57 GB)": 57_000}
AMBERT = str(Path(sys.executable).parent / "ambert")
TWO_WORKERS = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]


def build_corpus(megabytes: float, out: Path) -> float:
    """The source files' non-blank lines, over and over, into part-NNNNN.txt files of PART_BYTES; MB written."""
    marker = out / "DONE"
    if marker.exists():
        return float(marker.read_text())
    missing = [str(SHARED / name) for name in SOURCES if not (SHARED / name).exists()]
    if missing:
        raise SystemExit(f"bench_scale needs ../shared/data beside the repository; not found: {', '.join(missing)}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    lines = []
    for name in SOURCES:
        with gzip.open(SHARED / name, "rt", encoding="utf-8") as handle:
            lines += [line for line in handle if line.strip()]
    target, size, part = None, 0, 0
    try:
        while size < megabytes * 1e6:
            for line in lines:
                if target is None or target.tell() >= PART_BYTES:
                    if target is not None:
                        target.close()
                    target = open(out / f"part-{part:05d}.txt", "w", encoding="utf-8")  # noqa: SIM115
                    part += 1
                target.write(line)
                size += len(line.encode("utf-8"))
                if size >= megabytes * 1e6:
                    break
    finally:
        if target is not None:
            target.close()
    marker.write_text(str(size / 1e6))
    return size / 1e6


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # deleted while walking
                continue
    return total


class DiskWatch:
    """Peak bytes in the given directories (the step's output and its own TMPDIR), sampled every second."""

    def __init__(self, directories: list[Path]):
        self._directories = directories
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._stop.wait(1.0):
            self.peak = max(self.peak, sum(tree_bytes(d) for d in self._directories))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_step(name: str, command: list[str], work: Path) -> dict:
    """Run one `ambert` command in a fresh wrapper process; cached in WORK/measure-<name>.json."""
    cached = work / f"measure-{name}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    output, temp = work / name, work / f"tmp-{name}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    with DiskWatch([output, temp]) as disk:
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_scale", "--wrap", json.dumps(command)],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "TMPDIR": str(temp)},
        )
    if child.returncode:
        raise SystemExit(f"{name} failed:\n{child.stdout[-3000:]}\n{child.stderr[-3000:]}")
    result = {
        **json.loads(child.stdout.strip().splitlines()[-1]),
        "peak_disk_mb": round(disk.peak / 1e6),  # output + work files + temporary files, at the peak
        "output_mb": round(tree_bytes(output) / 1e6),
    }
    shutil.rmtree(temp, ignore_errors=True)
    cached.write_text(json.dumps(result))
    return result


def wrapped(command: list[str]) -> dict:
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.stderr.write(done.stdout[-5000:])
        raise SystemExit(done.returncode)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(peak)}


RUN_FILE = re.compile(r"^\d+ +(openat|read|pread64|lseek)\((?:AT_FDCWD<[^>]*>, \"|\d+<)([^\">]*/\.work/runs/[^\">]*)")


def traced_run_io(command: list[str], work: Path) -> dict:
    """The shard step again under strace: the opens for reading, read calls and seeks on its run files (the
    assembly's input; the split tasks only write them). Cached in WORK/measure-shard-io.json."""
    cached = work / "measure-shard-io.json"
    if cached.exists():
        return json.loads(cached.read_text())
    strace = shutil.which("strace")
    if strace is None:
        return {"run_file_io": "not measured: strace is not installed (Debian: apt-get install strace)"}
    output, trace = work / "shard-io", work / "shard-io.strace"
    shutil.rmtree(output, ignore_errors=True)
    out_at = command.index("--out") + 1
    traced = [*command[:out_at], str(output), *command[out_at + 1 :]]
    syscalls = "openat,read,pread64,lseek"
    done = subprocess.run(
        [strace, "-f", "-qq", "-y", "--seccomp-bpf", "-e", f"trace={syscalls}", "-o", str(trace), *traced],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    if done.returncode:
        raise SystemExit(f"the traced shard step failed:\n{done.stdout[-3000:]}")
    counts = {"opens": 0, "reads": 0, "seeks": 0}
    files = set()
    with open(trace, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            found = RUN_FILE.match(line)
            if found is None:
                continue
            call, path = found.groups()
            if call == "openat":
                if "O_WRONLY" in line or "O_RDWR" in line:
                    continue  # a split task writing its run
                counts["opens"] += 1
                files.add(path)
            else:
                counts["reads" if call in ("read", "pread64") else "seeks"] += 1
    trace.unlink()
    shutil.rmtree(output, ignore_errors=True)
    result = {"run_files_read": len(files), **{f"run_file_{k}_measured": v for k, v in counts.items()}}
    cached.write_text(json.dumps(result))
    return result


def resume_seconds(shards: str, vocab: str, fraction: float, seek: bool, batch_size: int = 32) -> dict:
    """Seconds from making a loader that resumes at `fraction` of an epoch (2 DataLoader workers) to its first
    batch. seek: skip_batches (trainer/data.py seeks, so this should not grow with the fraction); else the
    baseline, reading every batch before the position (an upper bound of resuming by re-reading)."""
    from trainer.data import pretraining_loader
    from trainer.masking import BatchShape, MaskingCollator
    from trainer.masking_strategies import Corruption, UnitRules
    from vocab.shard_set import read_manifest

    manifest = read_manifest(shards)
    batches = manifest["totals"]["samples"] // batch_size
    started = time.perf_counter()
    loader = pretraining_loader(
        shards,
        expect_vocab_id=manifest["vocab"]["id"],
        collator=MaskingCollator(
            Corruption(UnitRules.from_artifact(vocab)),
            1,
            0,
            BatchShape.for_run(batch_size, int(manifest["options"]["max_seq_len"]), "ambert"),
        ),
        batch_size=batch_size,
        num_workers=2,
        shuffle_buffer=1000,
        seed=1,
        epoch=0,
        rank=0,
        world_size=1,
        skip_batches=int(batches * fraction) if seek else 0,
    )
    batches_read = 1 if seek else int(batches * fraction) + 1
    for _batch in itertools.islice(loader, batches_read):
        pass
    return {
        "fraction": fraction,
        "how": "seek" if seek else "read from the start (baseline)",
        "seconds": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=1000.0, help="corpus size (the issue: ≥ 1000)")
    parser.add_argument("--work", default="/tmp/ambert-scale", help="kept between reruns (resumable)")
    parser.add_argument("--workers-projected", type=int, nargs="+", default=[16, 64], help="N for the projection")
    parser.add_argument(
        "--samples-per-shard", type=int, help="passed to `ambert shard build` (smaller: many shards on a small corpus)"
    )
    parser.add_argument("--wrap", help=argparse.SUPPRESS)  # internal: run and measure one command
    args = parser.parse_args()
    if args.wrap:
        print(json.dumps(wrapped(json.loads(args.wrap))))
        return

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    megabytes = build_corpus(args.megabytes, work / "corpus")
    corpus = str(work / "corpus")
    steps = {
        "phrases": [
            AMBERT,
            "phrases",
            "--corpus",
            corpus,
            "--out",
            str(work / "phrases"),
            "--kenlm-temp-dir",
            str(work / "tmp-phrases"),
            *TWO_WORKERS,
        ],
        "vocab": [
            AMBERT,
            "vocab",
            "build",
            "--lang",
            "en",
            "--corpus",
            corpus,
            "--out",
            str(work / "vocab"),
            "--phrases",
            str(work / "phrases" / "phrases.tsv"),
            *TWO_WORKERS,
        ],
        "shard": [
            AMBERT,
            "shard",
            "build",
            "--vocab",
            str(work / "vocab"),
            "--corpus",
            corpus,
            "--out",
            str(work / "shard"),
            "--docs-per-line",
            "--no-nsp",
            "--packing",
            "full",
            *(["--samples-per-shard", str(args.samples_per_shard)] if args.samples_per_shard else []),
            *TWO_WORKERS,
        ],
    }
    rows = []
    for name, command in steps.items():
        result = run_step(name, command, work)
        row = {
            "step": name,
            "megabytes": round(megabytes),
            **result,
            "mb_per_s": round(megabytes / result["seconds"], 3),
        }
        if name == "phrases":
            stats = json.loads((work / "phrases" / "stats.json").read_text())
            row["kenlm_seconds_serial"] = round(stats["timings_seconds"]["kenlm"], 1)
        if name == "shard":
            manifest = json.loads((work / "shard" / "manifest.json").read_text())
            io = traced_run_io(command, work)
            # runs: the run files the assembly read (traced), else one per split piece of the plain files
            runs = io.get("run_files_read") or -(-int(megabytes * 1e6) // manifest["options"]["split_bytes"])
            shards = manifest["totals"]["shards"]
            row.update(
                samples=manifest["totals"]["samples"],
                shard_gb=round(manifest["totals"]["bytes"] / 1e9, 2),
                fill_ratio=manifest["totals"]["fill_ratio"],
                runs=runs,
                shards=shards,
                assembly_range_reads_bound=8 * shards + runs,  # shard_groups: ≤ 8 per shard + one per run
                assembly_range_reads_before=runs * shards,  # one per (run, shard)
                **io,  # read calls are buffered reads (64 KiB or less each), so at least the ranged reads
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
    for seek in (True, False):
        resumes = [resume_seconds(str(work / "shard"), str(work / "vocab"), f, seek) for f in (0.1, 0.9)]
        ratio = round(resumes[1]["seconds"] / resumes[0]["seconds"], 2)
        print(json.dumps({"resume": resumes, "ratio_90_to_10": ratio}), flush=True)
    for corpus_name, paper_mb in PAPER_MB.items():
        for workers in args.workers_projected:
            projected = {"corpus": corpus_name, "workers": workers}
            for row in rows:
                serial = row.get("kenlm_seconds_serial", 0.0)
                parallel = (row["seconds"] - serial) * paper_mb / megabytes * 2 / workers  # measured on 2 workers
                projected[f"{row['step']}_hours"] = round((parallel + serial * paper_mb / megabytes) / 3600, 1)
            print(json.dumps({"projection": projected}), flush=True)


if __name__ == "__main__":
    main()
