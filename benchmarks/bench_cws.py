"""Chinese word segmentation quality of `ambert tokenize --format segments` (word F1 vs PKU gold).

    .venv/bin/python benchmarks/bench_cws.py [--lines 4000] [--segmenters thulac jieba pkuseg ngram]

Gold: ../shared/data/cws/pku_dev_gold.txt.gz (raw text = gold with spaces removed). Rows, one
JSON line each: the bare segmenter on whole lines (the reference people use; for ngram, the word
model its artifact stores), our coarse units without a vocabulary cut-off (every segmented word
of the corpus in the coarse vocabulary), and with the default cut-off (72,635 words, min count 2:
a rarer word is split into in-vocabulary words, then characters). Throughput: characters per
second of one process (the bare segmenter; our whole encode_batch). Artifacts are built from
../shared/data/zh/pku199801_raw.txt.gz (which contains the raw lines) with 2 Beam workers.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def spans(words: list[str]) -> set[tuple[int, int]]:
    result, position = set(), 0
    for word in words:
        result.add((position, position + len(word)))
        position += len(word)
    return result


def f1(gold_lines: list[list[str]], predicted_lines: list[list[str]]) -> dict:
    correct = gold_total = predicted_total = 0
    for gold, predicted in zip(gold_lines, predicted_lines, strict=True):
        assert "".join(gold) == "".join(predicted), (gold, predicted)
        gold_spans, predicted_spans = spans(gold), spans(predicted)
        correct += len(gold_spans & predicted_spans)
        gold_total += len(gold_spans)
        predicted_total += len(predicted_spans)
    precision, recall = correct / predicted_total, correct / gold_total
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * precision * recall / (precision + recall), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=4000)
    parser.add_argument("--segmenters", nargs="+", default=["thulac", "jieba", "pkuseg", "ngram"])
    args = parser.parse_args()
    with gzip.open(SHARED / "cws" / "pku_dev_gold.txt.gz", "rt", encoding="utf-8") as handle:
        gold = [line.split() for _, line in zip(range(args.lines), handle, strict=False)]
    raw = ["".join(words) for words in gold]
    characters = sum(len(line) for line in raw)
    corpus = str(SHARED / "zh" / "pku199801_raw.txt.gz")
    workers = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]

    from pipelines.vocab_build import VocabConfig, build_vocab
    from vocab.chinese_segmentation import SegmenterError, make_segmenter
    from vocab.multigrained import MultiGrainedTokenizer, coarse_segments

    for name in args.segmenters:
        if name != "ngram":
            try:
                make_segmenter(name)
            except SegmenterError as error:
                print(json.dumps({"segmenter": name, "skipped": str(error)}), flush=True)
                continue
        with tempfile.TemporaryDirectory() as work:
            for number, (variant, options) in enumerate(
                (
                    ("coarse units, no vocabulary cut-off", {"min_count": 1, "max_words": 10**7}),
                    ("coarse units, default cut-off (72,635 words, min count 2)", {}),
                )
            ):
                out = f"{work}/{number}"
                started = time.monotonic()
                artifact = build_vocab(
                    VocabConfig(lang="zh", corpus=(corpus,), out=out, segmenter=name, **options), workers
                )
                build_seconds = time.monotonic() - started
                tokenizer = MultiGrainedTokenizer.from_artifact(out)
                if number == 0:
                    started = time.monotonic()
                    bare = [tokenizer.segmenter.cut(line) for line in raw]
                    seconds = time.monotonic() - started
                    emit(name, "bare segmenter, whole lines", f1(gold, bare), characters / seconds)
                started = time.monotonic()
                units = [
                    coarse_segments(example, line)
                    for line, example in zip(raw, tokenizer.encode_batch(raw), strict=True)
                ]
                seconds = time.monotonic() - started
                emit(
                    name,
                    variant,
                    f1(gold, units),
                    characters / seconds,
                    coarse_units=artifact["sizes"]["coarse_units"],
                    coarse_ratio=artifact["stats"]["corpus"]["coarse_ratio"],
                    build_seconds=round(build_seconds, 1),
                )


def emit(segmenter: str, variant: str, scores: dict, chars_per_second: float, **extra) -> None:
    record = {"segmenter": segmenter, "variant": variant, **scores, "chars_per_second": round(chars_per_second)}
    print(json.dumps({**record, **extra}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
