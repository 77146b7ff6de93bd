"""Reading a corpus in splits and moving examples through sorted runs: splits and runs change how the
work is cut up, never which documents or examples there are."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.documents import auto_split_bytes, corpus_splits, documents_of
from pipelines.example_runs import KEY_SPACE, DuplicateKeyError, RunWriter, key_range, merged_key_range, read_index
from pipelines.files import read_lines
from pipelines.shards import shard_groups

LINES = [b"A sentence.", b"two words", b"", b"  ", b"\t \x0c", b"\r", b"x" * 30, b" " * 25, b"  y  ", b"\xff\xfe"]


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.sampled_from(LINES), max_size=40),
    crlf=st.booleans(),
    final_newline=st.booleans(),
    split_bytes=st.integers(1, 60),
    docs_per_line=st.booleans(),
)
def test_documents_of_splits_are_the_documents_of_the_whole_file(
    tmp_path_factory, lines, crlf, final_newline, split_bytes, docs_per_line
):
    path = tmp_path_factory.mktemp("split") / "corpus.txt"
    ending = b"\r\n" if crlf else b"\n"
    path.write_bytes(ending.join(lines) + (ending if final_newline and lines else b""))

    def read(start=0, end=None):
        return list(documents_of(str(path), str(path.parent), docs_per_line, 20, start, end))

    whole = read()
    splits, _ = corpus_splits([str(path)], split_bytes)
    assert [(s.start, s.end) for s in splits][0][0] == 0 and splits[-1].last
    assert [d for split in splits for d in read(split.start, split.end)] == whole
    for document in whole:  # a document id's offset is where its first line starts
        offset = int(document.doc_id.rpartition(":")[2])
        first = next(line for line in read_lines(str(path), 20) if line.offset == offset)
        assert first.data == document.lines[0]


def test_compressed_files_are_one_split(tmp_path):
    import gzip

    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(b"one\n\ntwo\n" * 1000))
    (tmp_path / "b.txt").write_bytes(b"one\n\ntwo\n" * 1000)
    splits, split_bytes = corpus_splits([str(tmp_path / "a.txt.gz"), str(tmp_path / "b.txt")], 1000)
    assert [(s.index, s.path.rsplit("/", 1)[1], s.start, s.end) for s in splits[:3]] == [
        (0, "a.txt.gz", 0, None),
        (1, "b.txt", 0, 1000),
        (2, "b.txt", 1000, 2000),
    ]
    assert len(splits) == 1 + 9 and splits[-1].last and split_bytes == 1000
    assert corpus_splits([str(tmp_path / "b.txt")], 0)[1] == 1 << 20  # auto: 256 pieces, at least 1 MiB each
    assert auto_split_bytes(10 << 30) == 40 << 20 and auto_split_bytes(1 << 40) == 1 << 30


def test_runs_deal_every_example_into_exactly_one_shard(tmp_path):
    """Tasks spill sorted pieces and merge them into one run each; any key range of the runs, merged,
    is exactly the examples in it, in key order."""
    rng = random.Random(4)
    pairs = [(f"{rng.getrandbits(128):032x}", rng.randbytes(rng.randint(0, 300))) for _ in range(2000)]
    records = []
    for task in range(3):
        writer = RunWriter(str(tmp_path / f"{task:06d}.run"), run_bytes=40_000)  # several spills each
        for key, data in pairs[task::3]:
            writer.add(key, data)
        records.append(writer.close())
    assert RunWriter(str(tmp_path / "empty.run"), 100).close() is None
    assert sum(r.count for r in records) == len(pairs) and not list(tmp_path.glob("*.spill"))
    indexes = [read_index(record) for record in records]
    for shards in (1, 3, 7, 200):
        dealt = []
        for shard in range(shards):
            lo, hi = key_range(shard, shards)
            found = list(merged_key_range(records, indexes, lo, hi))
            assert all(lo <= int(key, 16) < hi for key, _ in found)
            dealt += found
        assert dealt == sorted(pairs)


def test_a_duplicate_key_stops_the_build_naming_it(tmp_path):
    writers = [RunWriter(str(tmp_path / f"{task}.run"), run_bytes=1 << 20) for task in range(2)]
    key = "ab" * 16
    writers[0].add(key, b"first")
    writers[1].add(key, b"second")
    records = [writer.close() for writer in writers]
    with pytest.raises(DuplicateKeyError, match=key):
        list(merged_key_range(records, [read_index(r) for r in records], 0, KEY_SPACE))
    writer = RunWriter(str(tmp_path / "one.run"), run_bytes=1 << 20)
    writer.add(key, b"a")
    writer.add(key, b"b")
    with pytest.raises(DuplicateKeyError, match=key):
        writer.close()


def test_shard_groups_bound_the_ranged_reads():
    for runs, shards in ((1, 1), (3, 50), (8, 8), (9, 100), (300, 17), (11_000, 17_000)):
        groups = shard_groups(runs, shards)
        assert [n for first, stop in groups for n in range(first, stop)] == list(range(shards))
        assert runs * len(groups) <= 8 * shards + runs
