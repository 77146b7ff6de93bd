"""The aligned-example codec: byte round trips, deterministic tars readable by plain WebDataset."""

from __future__ import annotations

import io

import numpy as np
import pytest
import webdataset as wds
from hypothesis import given, settings
from hypothesis import strategies as st

from vocab.aligned_codec import (
    CodecError,
    ShardExample,
    alignment_faults,
    decode_example,
    decode_sample,
    encode_example,
    encode_sample,
    write_tar,
)


@st.composite
def shard_examples(draw) -> ShardExample:
    widths = draw(st.lists(st.integers(1, 4), min_size=1, max_size=40))
    fine = sum(widths)
    ends = np.cumsum(widths)
    align = np.stack([ends - widths, ends], axis=1)
    fine_type = np.array(sorted(draw(st.lists(st.integers(0, 1), min_size=fine, max_size=fine))), dtype=np.uint8)
    ids = st.integers(0, 2**31 - 1)

    def offsets(n):
        pairs = draw(st.lists(st.tuples(ids, ids), min_size=n, max_size=n))
        return np.array(pairs, dtype=np.int32).reshape(n, 2)

    key = draw(st.text("0123456789abcdef_-", min_size=1, max_size=20))
    return ShardExample(
        key=key,
        doc_id=draw(st.text(max_size=30)),
        fine_ids=np.array(draw(st.lists(ids, min_size=fine, max_size=fine)), dtype=np.int32),
        coarse_ids=np.array(draw(st.lists(ids, min_size=len(widths), max_size=len(widths))), dtype=np.int32),
        align=align.astype(np.int32),
        fine_type=fine_type,
        coarse_type=fine_type[align[:, 0]],
        fine_offsets=offsets(fine),
        coarse_offsets=offsets(len(widths)),
        nsp_label=draw(st.sampled_from([-1, 0, 1])),
        next_doc_id=draw(st.text(max_size=30)),
    )


def same(a: ShardExample, b: ShardExample) -> bool:
    arrays = ("fine_ids", "coarse_ids", "align", "fine_type", "coarse_type", "fine_offsets", "coarse_offsets")
    return (a.key, a.doc_id, a.nsp_label, a.next_doc_id) == (b.key, b.doc_id, b.nsp_label, b.next_doc_id) and all(
        np.array_equal(getattr(a, name), getattr(b, name)) for name in arrays
    )


@settings(max_examples=150, deadline=None)
@given(shard_examples())
def test_round_trip(example):
    data = encode_example(example)
    assert encode_example(decode_example(data, example.key)) == data
    assert same(decode_sample(encode_sample(example)), example)
    assert alignment_faults(example) == []


@settings(max_examples=60, deadline=None)
@given(shard_examples(), st.data())
def test_truncated_or_damaged_bytes_are_refused_by_name(example, data):
    raw = encode_example(example)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(CodecError, match=f"sample {example.key}"):
        decode_example(raw[:cut], example.key)
    with pytest.raises(CodecError, match="bad magic"):
        decode_example(b"XXXX" + raw[4:], example.key)


@settings(max_examples=20, deadline=None)
@given(st.lists(shard_examples(), min_size=1, max_size=5, unique_by=lambda e: e.key))
def test_tar_is_deterministic_and_readable_by_webdataset(tmp_path_factory, examples):
    first, second = io.BytesIO(), io.BytesIO()
    assert len(write_tar(first, examples)) == len(examples)
    write_tar(second, examples)
    assert first.getvalue() == second.getvalue()
    path = tmp_path_factory.mktemp("tar") / "shard-00000.tar"
    path.write_bytes(first.getvalue())
    read = list(wds.WebDataset(str(path), shardshuffle=False).map(decode_sample))
    assert len(read) == len(examples) and all(same(a, b) for a, b in zip(read, examples, strict=True))


def test_alignment_faults_are_named():
    good = ShardExample(
        "k",
        "d",
        np.arange(3, dtype=np.int32),
        np.arange(2, dtype=np.int32),
        np.array([[0, 1], [1, 3]], dtype=np.int32),
        np.zeros(3, np.uint8),
        np.zeros(2, np.uint8),
        np.zeros((3, 2), np.int32),
        np.zeros((2, 2), np.int32),
    )
    assert alignment_faults(good) == []
    gap = ShardExample(**{**good.__dict__, "align": np.array([[0, 1], [2, 3]], dtype=np.int32)})
    assert any("contiguous" in fault for fault in alignment_faults(gap))
    short = ShardExample(**{**good.__dict__, "align": np.array([[0, 1], [1, 2]], dtype=np.int32)})
    assert any("not [0, 3)" in fault for fault in alignment_faults(short))


def test_bad_keys_are_refused():
    example = ShardExample(
        "a.b",
        "d",
        *(np.zeros(0, np.int32),) * 2,
        np.zeros((0, 2), np.int32),
        *(np.zeros(0, np.uint8),) * 2,
        *(np.zeros((0, 2), np.int32),) * 2,
    )
    with pytest.raises(CodecError, match="without '.'"):
        encode_sample(example)
