"""Benchmark `ambert phrases` against a single-process Counter baseline plus lmplz, in one run.

    .venv/bin/python benchmarks/bench_phrases.py [--corpus PATH ...] [--order 4] [--min-count 5]

Prints one JSON line per figure: wall seconds and peak RSS of the baseline (same normalization
and n-gram counting with collections.Counter), of lmplz alone on the same tokens, and of the
pipeline on 1 and 2 local workers; then the ratio the target is about
(2-worker pipeline / (baseline + lmplz), target <= 2.0).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = sorted(glob.glob(str(REPO.parent / "shared" / "data" / "en" / "*.txt.gz")))

BASELINE = r"""
import gzip, sys, time
from collections import Counter
from vocab.normalization import basic_words, phrase_segments
order, out_path, paths = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
counts = Counter()
with open(out_path, "w", encoding="utf-8") as out:
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8", errors="strict") as lines:
            for line in lines:
                words = basic_words(line)
                if not words:
                    continue
                out.write(" ".join(words) + "\n")
                for segment in phrase_segments(words):
                    counts.update(segment)
                    for n in range(2, min(order, len(segment)) + 1):
                        counts.update(" ".join(segment[i:i + n]) for i in range(len(segment) - n + 1))
print(len(counts))
"""


MEASURE = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
)


def timed(command: list[str], **kwargs) -> tuple[float, float]:
    """Run a command; (wall seconds, peak RSS in MiB of its largest process).

    A fresh Python parent per command reports the largest RSS among that command's processes.
    """
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], check=True, stderr=subprocess.PIPE, text=True, **kwargs
    )
    seconds = time.monotonic() - started
    return seconds, int(done.stderr.strip().splitlines()[-1]) / 1024


def emit(figure: str, **values) -> dict:
    record = {"figure": figure, **values}
    print(json.dumps(record), flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        nargs="+",
        action="extend",
        help="Corpus paths (--corpus A B or --corpus A --corpus B; default: ../shared/data/en/*.txt.gz).",
    )
    parser.add_argument("--order", type=int, default=4)
    parser.add_argument("--min-count", type=int, default=5)
    args = parser.parse_args()
    args.corpus = args.corpus or list(DEFAULT_CORPUS)
    bin_dir = Path(sys.executable).parent
    megabytes = sum(_uncompressed_size(p) for p in args.corpus) / 1e6
    emit("corpus", files=len(args.corpus), megabytes=round(megabytes, 1))
    with tempfile.TemporaryDirectory(prefix="bench-phrases-") as work:
        tokens = os.path.join(work, "tokens.txt")
        base_s, base_rss = timed(
            [sys.executable, "-c", BASELINE, str(args.order), tokens, *args.corpus], cwd=REPO, stdout=subprocess.DEVNULL
        )
        emit("counter_baseline", seconds=round(base_s, 2), peak_rss_mib=round(base_rss))
        with open(tokens, "rb") as stdin, open(os.devnull, "wb") as devnull:
            lm_s, lm_rss = timed(
                [str(bin_dir / "lmplz"), "-o", str(args.order), "--discount_fallback", "-S", "20%", "-T", work],
                stdin=stdin,
                stdout=devnull,
            )
        emit("lmplz_alone", seconds=round(lm_s, 2), peak_rss_mib=round(lm_rss))
        results = {}
        for workers in (1, 2):
            flags = ["--direct_num_workers", str(workers)]
            if workers > 1:
                flags += ["--direct_running_mode", "multi_processing"]
            out = os.path.join(work, f"out{workers}")
            corpus_flags = [flag for path in args.corpus for flag in ("--corpus", path)]
            command = [
                str(bin_dir / "ambert"),
                "phrases",
                *corpus_flags,
                "--out",
                out,
                "--order",
                str(args.order),
                "--min-count",
                str(args.min_count),
                *flags,
            ]
            seconds, rss = timed(command, stdout=subprocess.DEVNULL)
            stats = json.loads(Path(out, "stats.json").read_text())
            results[workers] = emit(
                f"ambert_phrases_{workers}_worker{'s' if workers > 1 else ''}",
                seconds=round(seconds, 2),
                peak_rss_mib=round(rss),
                megabytes_per_second=round(megabytes / seconds, 2),
                kenlm_seconds=stats["timings_seconds"]["kenlm"],
                phrases=stats["phrases"]["written"],
            )
        same = Path(work, "out1", "phrases.tsv").read_bytes() == Path(work, "out2", "phrases.tsv").read_bytes()
        emit("identical_phrases_1_vs_2_workers", value=same)
        emit(
            "ratio_2_workers_vs_baseline_plus_lmplz",
            value=round(results[2]["seconds"] / (base_s + lm_s), 3),
            target="<= 2.0",
        )


def _uncompressed_size(path: str) -> int:
    import gzip

    with gzip.open(path, "rb") as handle:
        return sum(len(chunk) for chunk in iter(lambda: handle.read(1 << 20), b""))


if __name__ == "__main__":
    main()
