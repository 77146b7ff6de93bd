"""Throughput and peak memory of `ambert shard build` (1 and 2 workers) against a bare single-process loop,
in one run.

    .venv/bin/python -m benchmarks.bench_shard --lang en --megabytes 20 [--nsp]     # from the repository root
    .venv/bin/python -m benchmarks.bench_shard --lang zh --megabytes 10 [--nsp]

    .venv/bin/python -m benchmarks.bench_shard --io --runs 200 --shards 400   # assembly file operations only

Run it at two sizes (e.g. --megabytes 5 and 20) to see whether peak RSS grows with the corpus.
Each figure is measured in a fresh process, so its peak RSS is its own: the process (driver; the
1-worker runner runs in it) and the largest of its children (the 2-worker runner's workers).

Baseline: one Python loop doing the same work with the same functions (read lines, split sentences,
MultiGrainedTokenizer.encode_batch, make examples (NSP: one pool of all documents), encode, write one tar).
Corpus: the first megabytes of ../shared/data/<lang> (one document per line), in one plain file.
Artifact: the small real test artifact of that language (bundled BERT vocab + a few phrases or words).
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {
    "en": ["en/linux_doc.txt.gz", "en/enwiki_sample.txt.gz", "en/austen.txt.gz", "en/kjv.txt.gz"],
    "zh": ["zh/pku199801_raw.txt.gz", "zh/manpages_zh.txt.gz", "zh/lohelp_zh.txt.gz", "zh/fortunes_zh.txt.gz"],
}


def take(lang: str, megabytes: float, out: Path) -> float:
    size = 0
    with open(out, "w", encoding="utf-8") as target:
        for name in FILES[lang]:
            with gzip.open(SHARED / name, "rt", encoding="utf-8") as handle:
                for line in handle:
                    target.write(line)
                    size += len(line.encode("utf-8"))
                    if size >= megabytes * 1e6:
                        return size / 1e6
    return size / 1e6


def baseline(artifact: str, corpus: Path, out: Path, max_seq_len: int, nsp: bool) -> int:
    from pipelines.documents import document_sentences, documents_of
    from pipelines.pretraining_examples import contiguous_examples, pair_examples, segment_of, truncate_segment
    from vocab.aligned_codec import write_tar
    from vocab.multigrained import MultiGrainedTokenizer

    tokenizer = MultiGrainedTokenizer.from_artifact(artifact)
    examples, documents = [], {}
    for document in documents_of(str(corpus), str(corpus.parent), True, 1 << 20):
        sentences, _dropped, _kept = document_sentences(document)
        encoded = tokenizer.encode_batch([text for _start, text in sentences])
        found = [segment_of(e, start) for (start, _text), e in zip(sentences, encoded, strict=True)]
        segments = [truncate_segment(s, max_seq_len - (3 if nsp else 2)) for s in found if s is not None]
        if nsp and segments:
            documents[document.doc_id] = segments
        elif segments:
            examples += contiguous_examples(
                document.doc_id, segments, 1, max_seq_len, tokenizer.cls_id, tokenizer.sep_id
            )
    pool_ids = sorted(documents)
    for doc_id in pool_ids:  # NSP: Google's way, every document in one pool
        examples += pair_examples(
            doc_id, documents[doc_id], documents, 1, max_seq_len, tokenizer.cls_id, tokenizer.sep_id, pool_ids
        )[0]
    with open(out, "wb") as handle:
        return len(write_tar(handle, sorted(examples, key=lambda e: e.key)))


def measure(figure: str, work: Path, max_seq_len: int, nsp: bool) -> dict:
    """One figure, in this (fresh) process: seconds, examples, peak RSS."""
    started = time.perf_counter()
    if figure == "bare":
        examples = baseline(str(work / "vocab"), work / "corpus.txt", work / "baseline.tar", max_seq_len, nsp)
        digests = []
    else:
        from pipelines.shards import ShardConfig, run

        beam_args = ["--direct_num_workers", figure]
        if figure != "1":
            beam_args += ["--direct_running_mode", "multi_processing"]
        cfg = ShardConfig(
            vocab=str(work / "vocab"),
            corpus=(str(work / "corpus.txt"),),
            out=str(work / f"out{figure}"),
            max_seq_len=max_seq_len,
            nsp=nsp,
            docs_per_line=True,
            seed=1,
        )
        manifest, _ = run(cfg, beam_args)
        examples, digests = manifest["totals"]["samples"], [shard["sha256"] for shard in manifest["shards"]]
    return {
        "seconds": time.perf_counter() - started,
        "examples": examples,
        "digests": digests,
        "peak_rss_mib_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_mib_workers": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }


def io_row(runs: int, shards: int, per_run: int) -> list[dict]:
    """Shard assembly's file operations over `runs` sorted runs of random 128-bit keys, on a counting filesystem
    over the local disk: one ranged read per (run, shard) (the assembly before, the baseline) against one per
    (run, shard group) (pipelines/shards.shard_groups), in the same run. Both must deal out the same examples."""
    import collections
    import random

    import fsspec
    from fsspec.implementations.local import LocalFileOpener, LocalFileSystem

    from pipelines.example_runs import RunWriter, key_range, merged_key_range, read_index, read_key_range
    from pipelines.shards import shard_groups

    counts = collections.Counter()

    class Counted(LocalFileOpener):
        def read(self, *args):
            counts["reads"] += 1
            return super().read(*args)

    class CountingFileSystem(LocalFileSystem):
        protocol = "countlocal"

        @classmethod
        def _strip_protocol(cls, path):
            return super()._strip_protocol(str(path).removeprefix("countlocal://"))

        def _open(self, path, mode="rb", **kwargs):
            handle = super()._open(path, mode, **kwargs)
            if "r" in mode:
                counts["opens"] += 1
                handle.__class__ = Counted
            return handle

    fsspec.register_implementation("countlocal", CountingFileSystem, clobber=True)
    rng = random.Random(1)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        records = []
        for run in range(runs):
            writer = RunWriter(f"countlocal://{work}/runs/{run:06d}.run", 1 << 26)
            for _ in range(per_run):
                writer.add(f"{rng.getrandbits(128):032x}", rng.randbytes(200))
            records.append(writer.close())
        for name in ("one read per (run, shard): before", "one read per (run, shard group): now"):
            counts.clear()
            started = time.perf_counter()
            indexes = [read_index(record) for record in records]
            dealt = 0
            if name.endswith("before"):
                for shard in range(shards):
                    lo, hi = key_range(shard, shards)
                    dealt += sum(
                        1
                        for record, index in zip(records, indexes, strict=True)
                        for _ in read_key_range(record, index, lo, hi)
                    )
            else:
                for first, stop in shard_groups(runs, shards):
                    lo, hi = key_range(first, shards)[0], key_range(stop - 1, shards)[1]
                    dealt += sum(1 for _ in merged_key_range(records, indexes, lo, hi))
            assert dealt == runs * per_run
            rows.append(
                {
                    "figure": f"assembly io, {name}",
                    "runs": runs,
                    "shards": shards,
                    "examples": dealt,
                    "opens": counts["opens"],
                    "reads": counts["reads"],
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )
    rows[1]["ops_ratio_to_baseline"] = round(
        (rows[0]["opens"] + rows[0]["reads"]) / (rows[1]["opens"] + rows[1]["reads"]), 1
    )
    rows[1]["speed_ratio_to_baseline"] = round(rows[0]["seconds"] / rows[1]["seconds"], 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=sorted(FILES), default="en")
    parser.add_argument("--megabytes", type=float, default=10.0)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--nsp", action="store_true", help="sentence pairs (NSP) instead of contiguous examples")
    parser.add_argument("--io", action="store_true", help="only the assembly's file operations, before vs now")
    parser.add_argument("--runs", type=int, default=200, help="--io: sorted run files")
    parser.add_argument("--shards", type=int, default=400, help="--io: shards")
    parser.add_argument("--per-run", type=int, default=500, help="--io: examples per run")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one figure in a child process
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.io:
        for row in io_row(args.runs, args.shards, args.per_run):
            print(json.dumps(row), flush=True)
        return
    if args.measure:
        print(json.dumps(measure(args.measure, Path(args.work), args.max_seq_len, args.nsp)))
        return

    from tests.vocab.conftest import build_en, build_zh

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        (build_en if args.lang == "en" else build_zh)(work / "vocab")
        megabytes = take(args.lang, args.megabytes, work / "corpus.txt")
        results = {}
        for figure in ("bare", "1", "2"):
            child = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.bench_shard",
                    "--measure",
                    figure,
                    "--work",
                    str(work),
                    "--max-seq-len",
                    str(args.max_seq_len),
                    *(["--nsp"] * args.nsp),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            result = results[figure] = json.loads(child.stdout.strip().splitlines()[-1])
            name = "bare loop, 1 process" if figure == "bare" else f"ambert shard build, {figure} worker(s)"
            line = {
                "figure": name,
                "lang": args.lang,
                "nsp": args.nsp,
                "megabytes": round(megabytes, 1),
                "examples": result["examples"],
                "mb_per_s": round(megabytes / result["seconds"], 2),
                "examples_per_s": round(result["examples"] / result["seconds"]),
                "peak_rss_mib_process": result["peak_rss_mib_process"],
                "peak_rss_mib_workers": result["peak_rss_mib_workers"],
            }
            if figure != "bare":
                line["ratio_to_baseline"] = round(results["bare"]["seconds"] / result["seconds"], 3)
                line["shards_identical_to_1_worker"] = result["digests"] == results["1"]["digests"]
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
