"""N-gram counting: equal to a brute-force count, and the same inside a Beam pipeline."""

from __future__ import annotations

from collections import Counter

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.corpus import NormalizedBatch
from pipelines.ngrams import CountNgrams, count_ngrams
from pipelines.runner import pipeline_options
from pipelines.term_counts import shard_of

PUNCT = {",", ".", "!"}


def brute_force(lines: list[str], order: int) -> Counter:
    counts: Counter = Counter()
    for line in lines:
        words = line.split(" ")
        for start in range(len(words)):
            for n in range(1, order + 1):
                gram = words[start : start + n]
                if len(gram) == n and not PUNCT & set(gram):
                    counts[" ".join(gram)] += 1
    return counts


lines_strategy = st.lists(
    st.lists(st.sampled_from(["a", "b", "c", "new", "york", ",", ".", "!"]), min_size=1, max_size=12).map(" ".join),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(lines_strategy, st.integers(min_value=1, max_value=5))
def test_count_ngrams_equals_brute_force(lines, order):
    assert count_ngrams(lines, order) == brute_force(lines, order)


def test_shards_are_stable_hashes():
    assert shard_of("new york", 8) == shard_of("new york", 8)
    assert {shard_of(f"w{i}", 4) for i in range(100)} == {0, 1, 2, 3}


def test_count_ngrams_transform_under_test_pipeline(tmp_path):
    """Each batch's partial counts go to files (one per batch and shard), only their paths cross the shuffle; the
    merged rows and counters are the brute-force counts."""
    batches = [
        NormalizedBatch(("a.txt", 1), ("new york , new york", "of the new york")),
        NormalizedBatch(("a.txt", 3), ("new york",)),
    ]
    expected = brute_force([line for b in batches for line in b.lines], 2)
    kept = sorted((gram, count) for gram, count in expected.items() if count >= 2)
    with TestPipeline(options=pipeline_options([])) as p:
        counts = CountNgrams(order=2, min_count=2, num_shards=3, directory=str(tmp_path / "counts"))
        rows, counters = p | beam.Create(batches) | counts
        flat = rows | beam.FlatMap(lambda keyed: keyed[1])
        assert_that(flat, equal_to(kept), label="rows")
        distinct = (
            counters
            | beam.Filter(lambda c: c.name.startswith("ngrams_distinct."))
            | beam.Map(lambda c: (c.name, c.amount))
            | beam.CombinePerKey(sum)
        )
        expected_distinct = Counter(f"ngrams_distinct.{g.count(' ') + 1}" for g in expected)
        assert_that(distinct, equal_to(sorted(expected_distinct.items())), label="distinct")
    written = sorted(path.name for path in (tmp_path / "counts").iterdir())
    per_batch = [{shard_of(gram, 3) for gram in count_ngrams(b.lines, 2)} for b in batches]
    assert len(written) == sum(len(shards) for shards in per_batch) > len(batches)
    assert all(name.endswith(".pickle") for name in written)


def test_parquet_schema(phrases_run):
    out, _stats = phrases_run
    files = sorted((out / "ngrams").glob("*.parquet"))
    assert [f.name for f in files] == [f"part-{i:05d}-of-00008.parquet" for i in range(8)]
    table = pq.read_table(files[0])
    assert table.column_names == ["ngram", "n", "count"]
    rows = table.to_pylist()
    assert rows == sorted(rows, key=lambda r: (r["ngram"], r["n"], r["count"]))
    assert all(r["count"] >= 3 and r["n"] == r["ngram"].count(" ") + 1 for r in rows)
