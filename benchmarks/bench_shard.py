"""Throughput of `ambert shard build` (1 and 2 workers) against a bare single-process loop, in one run.

    .venv/bin/python -m benchmarks.bench_shard [--megabytes 10] [--nsp]     # from the repository root

Run it at two sizes (e.g. --megabytes 5 and 20) to see whether peak RSS grows with the corpus.

Baseline: one Python loop doing the same work with the same functions (read lines, split sentences,
MultiGrainedTokenizer.encode_batch, make examples (NSP: one pool of all documents), encode, write one tar).
Artifact: the small real English test artifact (bundled BERT vocab + a few phrases). Read the ratios.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EN_FILES = ["en/linux_doc.txt.gz", "en/enwiki_sample.txt.gz", "en/austen.txt.gz"]


def take(megabytes: float, out: Path) -> float:
    size = 0
    with open(out, "w", encoding="utf-8") as target:
        for name in EN_FILES:
            with gzip.open(SHARED / name, "rt", encoding="utf-8") as handle:
                for line in handle:
                    target.write(line)
                    size += len(line.encode("utf-8"))
                    if size >= megabytes * 1e6:
                        return size / 1e6
    return size / 1e6


def baseline(artifact: str, corpus: Path, out: Path, max_seq_len: int, nsp: bool) -> int:
    from pipelines.pretraining_examples import contiguous_examples, pair_examples, segment_of, truncate_segment
    from pipelines.shards import document_sentences, documents_of
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
            examples += contiguous_examples(document.doc_id, segments, 1, max_seq_len, tokenizer.cls_id,
                                            tokenizer.sep_id)
    pool_ids = sorted(documents)
    for doc_id in pool_ids:  # NSP: Google's way, every document in one pool
        examples += pair_examples(doc_id, documents[doc_id], documents, 1, max_seq_len, tokenizer.cls_id,
                                  tokenizer.sep_id, pool_ids)[0]
    with open(out, "wb") as handle:
        return write_tar(handle, sorted(examples, key=lambda e: e.key))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=10.0)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--nsp", action="store_true", help="sentence pairs (NSP) instead of contiguous examples")
    args = parser.parse_args()

    from pipelines.shards import ShardConfig, run
    from tests.vocab.conftest import build_en

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        build_en(work / "vocab")
        corpus = work / "corpus.txt"
        megabytes = take(args.megabytes, corpus)
        started = time.perf_counter()
        count = baseline(str(work / "vocab"), corpus, work / "baseline.tar", args.max_seq_len, args.nsp)
        baseline_s = time.perf_counter() - started
        print(json.dumps({"figure": "bare loop, 1 process", "nsp": args.nsp, "megabytes": round(megabytes, 1),
                          "examples": count,
                          "mb_per_s": round(megabytes / baseline_s, 2),
                          "examples_per_s": round(count / baseline_s)}), flush=True)
        digests = {}
        for workers in (1, 2):
            beam_args = ["--direct_num_workers", str(workers)]
            if workers > 1:
                beam_args += ["--direct_running_mode", "multi_processing"]
            cfg = ShardConfig(vocab=str(work / "vocab"), corpus=(str(corpus),), out=str(work / f"out{workers}"),
                              max_seq_len=args.max_seq_len, nsp=args.nsp, docs_per_line=True, seed=1)
            started = time.perf_counter()
            manifest, _ = run(cfg, beam_args)
            seconds = time.perf_counter() - started
            samples = manifest["totals"]["samples"]
            digests[workers] = [shard["sha256"] for shard in manifest["shards"]]
            print(json.dumps({"figure": f"ambert shard build, {workers} worker(s)", "nsp": args.nsp,
                              "examples": samples, "mb_per_s": round(megabytes / seconds, 2),
                              "examples_per_s": round(samples / seconds),
                              "ratio_to_baseline": round(baseline_s / seconds, 3),
                              # high-water marks: this process (driver; the 1-worker runner runs in it)
                              # and the largest worker subprocess (2 workers)
                              "peak_rss_mib_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                              "peak_rss_mib_workers": round(
                                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
                              "shards_identical_to_1_worker": digests[workers] == digests[1]}), flush=True)


if __name__ == "__main__":
    main()
