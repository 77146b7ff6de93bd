"""Regenerate the bundled labeled samples from ../shared/data/labeled (deterministic, byte-identical output).

    .venv/bin/python data/labeled/make_samples.py [--source ../shared/data/labeled] [--out data/labeled]

zh_sentiment_*: the first 2,000 / 500 / 500 rows of the train / dev / test files (already ordered by sha256 of
the text there, so a head is a uniform sample). en_reuters_grain_*: both ModApte files pooled, exact duplicate
texts dropped, split by sha256(text) mod 6 (0-3 train, 4 dev, 5 test) and ordered by that hash.
en_grain_balanced_*: each en_reuters_grain split's "grain" rows and as many other rows (the first in hash order),
ordered by that hash: a task whose majority class is 50%.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ZH_COUNTS = {"train": 2000, "dev": 500, "test": 500}
EN_BUCKETS = {0: "train", 1: "train", 2: "train", 3: "train", 4: "dev", 5: "test"}


def read_rows(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


def write_rows(path: Path, rows: list[str]) -> None:
    """gzip -9 -n equivalent (no name, mtime 0), written to a temporary name and renamed."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buffer, mtime=0) as handle:
        handle.write("".join(row + "\n" for row in rows).encode("utf-8"))
    staging = path.with_name(path.name + ".tmp")
    staging.write_bytes(buffer.getvalue())
    os.replace(staging, path)


def text_hash(row: str) -> bytes:
    return hashlib.sha256(row.split("\t", 1)[1].encode("utf-8")).digest()


def reuters_splits(rows: list[str]) -> dict[str, list[str]]:
    """Pooled rows → {split: rows}, duplicates of a text dropped (they all carry the same label here)."""
    unique = {row.split("\t", 1)[1]: row for row in rows}
    splits: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for row in sorted(unique.values(), key=text_hash):
        splits[EN_BUCKETS[int.from_bytes(text_hash(row)[:8], "big") % 6]].append(row)
    return splits


def balanced(rows: list[str]) -> list[str]:
    """All label-1 rows and as many label-0 rows (the first in hash order), ordered by the hash."""
    positive = [row for row in rows if row.startswith("1\t")]
    negative = [row for row in rows if row.startswith("0\t")][: len(positive)]
    return sorted(positive + negative, key=text_hash)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "labeled")
    parser.add_argument("--out", type=Path, default=REPO / "data" / "labeled")
    args = parser.parse_args()
    for split, count in ZH_COUNTS.items():
        rows = read_rows(args.source / f"zh_sentiment_{split}.tsv.gz")[:count]
        write_rows(args.out / f"zh_sentiment_{split}.tsv.gz", rows)
        print(f"zh_sentiment_{split}.tsv.gz: {len(rows)} rows")
    pooled = [row for split in ("train", "test") for row in read_rows(args.source / f"en_reuters_grain_{split}.tsv.gz")]
    splits = reuters_splits(pooled)
    print(f"en_reuters_grain: {len(pooled)} rows, {len(pooled) - sum(map(len, splits.values()))} duplicates dropped")
    for split, rows in splits.items():
        write_rows(args.out / f"en_reuters_grain_{split}.tsv.gz", rows)
        print(f"en_reuters_grain_{split}.tsv.gz: {len(rows)} rows")
        write_rows(args.out / f"en_grain_balanced_{split}.tsv.gz", balanced(rows))
        print(f"en_grain_balanced_{split}.tsv.gz: {len(balanced(rows))} rows")


if __name__ == "__main__":
    main()
