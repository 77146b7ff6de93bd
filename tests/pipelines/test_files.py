"""Corpus file reading: Parquet input (a `text` column) beside text and JSON lines."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.files import ReadFailure, expand_corpus_paths, read_lines, record_format
from tests.pipelines.conftest import run_phrases


def write_parquet(path, texts, column="text"):
    pq.write_table(pa.table({column: pa.array(texts, pa.string()), "id": pa.array(range(len(texts)))}), path)
    return path


def test_parquet_rows_are_lines(tmp_path):
    path = write_parquet(tmp_path / "c.parquet", ["New York is big.", None, "x" * 50, "ok"])
    assert record_format(str(path)) == "parquet" and expand_corpus_paths([str(tmp_path)]) == [str(path)]
    rows = list(read_lines(str(path), max_line_bytes=20))
    assert [(r.number, r.data) for r in rows] == [(1, b"New York is big."), (2, b""), (3, None), (4, b"ok")]


def test_bad_parquet_is_a_read_failure_naming_the_file(tmp_path):
    with pytest.raises(ReadFailure, match=r"no\.parquet: no 'text' column \(columns: body, id\)"):
        list(read_lines(str(write_parquet(tmp_path / "no.parquet", ["a"], column="body")), 100))
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ReadFailure, match="junk.parquet: unreadable Parquet"):
        list(read_lines(str(tmp_path / "junk.parquet"), 100))


def test_phrases_from_parquet_equal_phrases_from_text(en_small_corpus, tmp_path):
    import gzip

    with gzip.open(en_small_corpus, "rt", encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle]
    parquet_dir = tmp_path / "pq"
    parquet_dir.mkdir()
    write_parquet(parquet_dir / "a.parquet", lines[:1000])
    write_parquet(parquet_dir / "b.parquet", lines[1000:])
    (parquet_dir / "broken.parquet").write_bytes(b"junk")
    text = tmp_path / "same.txt"
    text.write_text("\n".join(lines) + "\n")
    from_parquet = run_phrases([parquet_dir], tmp_path / "out-pq", min_count=3)
    from_text = run_phrases([text], tmp_path / "out-txt", min_count=3)
    assert (tmp_path / "out-pq" / "phrases.tsv").read_bytes() == (tmp_path / "out-txt" / "phrases.tsv").read_bytes()
    assert from_parquet["lines"] == from_text["lines"]
    assert from_parquet["files"]["unreadable"] == 1 and "broken.parquet" in from_parquet["files"]["errors"][0]
