"""The streaming loader on real shard sets: every sample once per epoch over ranks × workers, determinism, exact
resume, fewer shards than slots, refused sets, corrupt shards, resampling."""

from __future__ import annotations

import collections
import io
import itertools
import json
import logging
import pickle
import shutil
import struct
import tarfile
from pathlib import Path

import pytest
import torch
from fsspec.implementations.local import LocalFileOpener, LocalFileSystem

from trainer.data import Segment, Span, batches_taken, deal, pretraining_loader, rounds_before
from trainer.masking import BatchShape, MaskingCollator
from trainer.masking_strategies import Corruption, UnitRules
from vocab.shard_set import ShardSetError, read_manifest, shard_examples


def vocab_id(artifact: Path) -> str:
    return json.loads((artifact / "artifact.json").read_text())["id"]


def loader(
    data: Path,
    artifact: Path,
    *,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 2,
    epoch: int = 0,
    shuffle_buffer: int = 50,
    **options,
):
    return pretraining_loader(
        str(data),
        expect_vocab_id=vocab_id(artifact),
        collator=MaskingCollator(
            Corruption(UnitRules.from_artifact(str(artifact))), 11, epoch, BatchShape.for_run(16, 64, "ambert")
        ),
        batch_size=16,
        num_workers=num_workers,
        shuffle_buffer=shuffle_buffer,
        seed=11,
        epoch=epoch,
        rank=rank,
        world_size=world_size,
        **options,
    )


def keys_of(batches) -> list[str]:
    return [key for batch in batches for key in batch.keys]


def shard_keys(data: Path) -> dict[str, list[str]]:
    names = [shard["name"] for shard in read_manifest(str(data))["shards"]]
    return {name: [example.key for example in shard_examples(str(data / name))] for name in names}


def all_keys(data: Path) -> list[str]:
    return [key for keys in shard_keys(data).values() for key in keys]


def same_batches(these, those) -> bool:
    return len(these) == len(those) and all(
        a.keys == b.keys
        and torch.equal(a.fine_ids, b.fine_ids)
        and torch.equal(a.coarse_ids, b.coarse_ids)
        and torch.equal(a.fine_labels, b.fine_labels)
        for a, b in zip(these, those, strict=True)
    )


def test_every_sample_once_per_epoch_over_two_ranks_of_two_workers_and_ranks_are_disjoint(trainer_data):
    data, vocab = trainer_data["en_shards"], trainer_data["en_vocab"]
    ranks = [list(loader(data, vocab, rank=rank, world_size=2)) for rank in (0, 1)]
    keys = [keys_of(batches) for batches in ranks]
    assert not set(keys[0]) & set(keys[1])
    assert sorted(keys[0] + keys[1]) == sorted(all_keys(data))  # every sample, each exactly once
    assert abs(len(keys[0]) - len(keys[1])) <= 2  # equal stretches per (rank, worker) slot, ±1 sample each
    for batches in ranks:
        assert sum(len(batch) < 16 for batch in batches) <= 2  # a short last batch per worker, kept
        assert all(batch.fine_ids.shape[1] <= 64 for batch in batches)

    again = loader(data, vocab, rank=0, world_size=2)
    assert same_batches(list(pickle.loads(pickle.dumps(again))), ranks[0])  # deterministic, masking too
    other_epoch = keys_of(loader(data, vocab, rank=0, world_size=2, epoch=1))
    assert other_epoch != keys[0]
    assert len(set(other_epoch)) == len(other_epoch)


def test_shard_order_changes_with_the_epoch_and_the_buffer_shuffles(trainer_data):
    data, vocab = trainer_data["en_shards"], trainer_data["en_vocab"]
    shard_of = {key: name for name, keys in shard_keys(data).items() for key in keys}

    def shard_order(epoch: int) -> list[str]:
        keys = keys_of(loader(data, vocab, num_workers=0, epoch=epoch, shuffle_buffer=1))  # no shuffling
        return list(dict.fromkeys(shard_of[key] for key in keys))

    assert sorted(shard_order(0)) == sorted(shard_keys(data)) and shard_order(0) != shard_order(1)
    assert keys_of(loader(data, vocab, num_workers=0, shuffle_buffer=1)) == [
        key for name in shard_order(0) for key in shard_keys(data)[name]
    ]  # no buffer: each shard's samples in order
    shuffled = keys_of(loader(data, vocab, num_workers=0))
    assert shuffled != keys_of(loader(data, vocab, num_workers=0, shuffle_buffer=1))
    assert len(set(shuffled)) == len(all_keys(data))


@pytest.mark.parametrize("num_workers", [0, 3])
def test_skip_batches_resumes_exactly(trainer_data, num_workers):
    data, vocab = trainer_data["en_shards"], trainer_data["en_vocab"]
    full = list(loader(data, vocab, num_workers=num_workers))  # 3 workers: 4/3/3 shards, they run dry unevenly
    assert sum(map(len, full)) == len(all_keys(data))
    for skip in (1, 7, len(full) - 5, len(full) - 1, len(full)):
        assert same_batches(list(loader(data, vocab, num_workers=num_workers, skip_batches=skip)), full[skip:]), skip


def test_rounds_before_follows_the_dataloader_round_robin():
    assert rounds_before(7, [10, 10, 10]) == ([2, 2, 2], 1)
    assert rounds_before(9, [1, 5, 3]) == ([1, 5, 3], 0)  # a round of 3 workers, 2 of 2, 2 of 1
    assert rounds_before(4, [1, 5, 3]) == ([1, 1, 1], 1)
    assert rounds_before(8, [float("inf")] * 2) == ([4, 4], 0)
    assert rounds_before(50, [2, 2]) == ([2, 2], 46)


def test_fewer_shards_than_slots_still_gives_each_slot_its_own_equal_stretch(trainer_data):
    data, vocab = trainer_data["zh_shards"], trainer_data["zh_vocab"]  # 4 shards for 2 ranks × 3 workers
    ranks = [keys_of(loader(data, vocab, rank=rank, world_size=2, num_workers=3)) for rank in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == sorted(all_keys(data))
    assert abs(len(ranks[0]) - len(ranks[1])) <= 3
    full = list(loader(data, vocab, rank=1, world_size=2, num_workers=3))
    assert same_batches(list(loader(data, vocab, rank=1, world_size=2, num_workers=3, skip_batches=4)), full[4:])


def test_deal_cuts_the_work_into_equal_stretches_in_order():
    work = [Span(2, 0, 10), Span(0, 3, 4), Span(1, 0, 7)]
    dealt = deal(work, 3)
    assert [sum(span.size for span in slot) for slot in dealt] == [6, 6, 6]
    assert [span for slot in dealt for span in slot] == [
        Span(2, 0, 6),
        Span(2, 6, 10),
        Span(0, 3, 4),
        Span(1, 0, 1),
        Span(1, 1, 7),
    ]
    assert [sum(span.size for span in slot) for slot in deal(work, 4)] == [4, 5, 4, 5]
    assert batches_taken(7, [10, 10, 10]) == [3, 2, 2] and batches_taken(4, [1, 5, 3]) == [1, 2, 1]


@pytest.mark.parametrize(("before", "after"), [((2, 1), (1, 2)), ((1, 2), (2, 1)), ((1, 1), (2, 3))])
def test_an_epoch_resumed_on_another_layout_reads_each_sample_once(trainer_data, before, after):
    """(ranks, workers) before → after, some batches into the epoch: what the first layout took plus everything
    the second yields from the history is the whole shard set, each sample once; the order of the epoch does not
    depend on the layout, and a second resume on the new layout continues it exactly."""
    data, vocab = trainer_data["en_shards"], trainer_data["en_vocab"]
    (ranks, workers), (new_ranks, new_workers) = before, after
    taken = [
        keys_of(itertools.islice(loader(data, vocab, rank=rank, world_size=ranks, num_workers=workers), 5))
        for rank in range(ranks)
    ]
    history = (Segment(ranks, max(workers, 1), 16, batches=5),)
    rest = [
        list(loader(data, vocab, rank=rank, world_size=new_ranks, num_workers=new_workers, history=history))
        for rank in range(new_ranks)
    ]
    seen = [key for keys in taken for key in keys] + [key for batches in rest for key in keys_of(batches)]
    assert len(seen) == len(set(seen)) and sorted(seen) == sorted(all_keys(data))
    assert max(map(len, rest)) - min(map(len, rest)) <= 1  # equal batch counts across the new ranks
    again = loader(data, vocab, rank=0, world_size=new_ranks, num_workers=new_workers, history=history, skip_batches=3)
    assert same_batches(list(again), rest[0][3:])


def test_refuses_a_foreign_vocab_and_an_unfinished_set(trainer_data, tmp_path):
    with pytest.raises(ShardSetError, match="re-shard"):
        loader(trainer_data["en_shards"], trainer_data["zh_vocab"])
    unfinished = tmp_path / "shards"
    shutil.copytree(trainer_data["zh_shards"], unfinished)
    (unfinished / "manifest.json").unlink()
    with pytest.raises(ShardSetError, match="no manifest.json"):
        loader(unfinished, trainer_data["zh_vocab"])


def member(data: bytes, number: int) -> tarfile.TarInfo:
    return tarfile.open(fileobj=io.BytesIO(data)).getmembers()[number]


def bad_ids(data: bytes) -> bytes:
    """Sample 3's arrays (after its header and document ids) set to 0xff: ids -1, a well-formed tar and sample."""
    start, size = member(data, 3).offset_data, member(data, 3).size
    doc_len, next_len = struct.unpack_from("<II", data, start + 16)
    arrays = start + 24 + doc_len + next_len
    return data[:arrays] + b"\xff" * (start + size - arrays) + data[start + size :]


DAMAGES = {
    "cut between samples": lambda data: data[: member(data, 5).offset],  # a short, well-formed tar
    "ids out of range": bad_ids,
    "truncated": lambda data: data[:5000],
    "junk tail": lambda data: data[:5000] + b"\x00junk" * 100,
    "garbage": lambda data: b"not a tar file " * 1000,
    "garbage inside a sample": lambda data: data[:20000] + bytes(range(256)) * 20 + data[25120:],
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_corrupt_shard_is_skipped_counted_and_named_or_stops_a_strict_loader(trainer_data, tmp_path, caplog, damage):
    data, vocab = tmp_path / "shards", trainer_data["zh_vocab"]
    shutil.copytree(trainer_data["zh_shards"], data)
    damaged = data / "shard-00001.tar"
    damaged.write_bytes(DAMAGES[damage](damaged.read_bytes()))

    lenient = loader(data, vocab)
    with caplog.at_level(logging.WARNING, logger="trainer.data"):
        keys = keys_of(lenient)
    assert list(lenient.corrupt_shards) == ["shard-00001.tar"]
    assert [r.getMessage() for r in caplog.records if "shard-00001.tar" in r.getMessage()], caplog.text
    intact = [
        example.key
        for name in ("shard-00000.tar", "shard-00002.tar", "shard-00003.tar")
        for example in shard_examples(str(data / name))
    ]
    assert (
        len(keys) == len(set(keys))
        and set(intact) <= set(keys)
        and len(keys) < len(all_keys(trainer_data["zh_shards"]))
    )

    with pytest.raises(ShardSetError, match="shard-00001.tar"):  # raised in a worker process, reaches the caller
        list(loader(data, vocab, num_workers=1, strict=True))


def test_resampled_mode_is_endless_and_deterministic(trainer_data):
    data, vocab = trainer_data["zh_shards"], trainer_data["zh_vocab"]  # about 360 samples: 23 batches of 16 an epoch
    first = list(itertools.islice(loader(data, vocab, resampled=True), 60))
    assert len(first) == 60 and all(len(batch) == 16 for batch in first)
    keys = keys_of(first)
    assert len(set(keys)) < len(keys)  # drawn with replacement: samples come back
    assert same_batches(list(itertools.islice(loader(data, vocab, resampled=True), 60)), first)
    assert same_batches(list(itertools.islice(loader(data, vocab, resampled=True, skip_batches=25), 35)), first[25:])
    assert keys_of(itertools.islice(loader(data, vocab, resampled=True, epoch=1), 60)) != keys
    masks: dict[str, set[tuple[int, ...]]] = {}  # a sample drawn again is masked anew (its draw number is new)
    for batch in first:
        for row, key in enumerate(batch.keys):
            masks.setdefault(key, set()).add(tuple(batch.fine_labels[row].tolist()))
    drawn_twice = [key for key in set(keys) if keys.count(key) > 1]
    assert drawn_twice and all(len(masks[key]) == keys.count(key) for key in drawn_twice)


def test_shards_found_corrupt_after_the_last_batch_count_and_resampling_no_shard_stops(trainer_data, tmp_path):
    data = tmp_path / "shards"
    shutil.copytree(trainer_data["zh_shards"], data)
    for shard in data.glob("shard-*.tar"):
        shard.write_bytes(b"not a tar file " * 100)
    nothing = loader(data, trainer_data["zh_vocab"])
    assert list(nothing) == []
    assert sorted(nothing.corrupt_shards) == [f"shard-0000{i}.tar" for i in range(4)]
    with pytest.raises(ShardSetError, match="every shard"):  # rather than drawing broken shards forever
        next(iter(loader(data, trainer_data["zh_vocab"], resampled=True)))


def test_a_shard_set_behind_an_fsspec_url_streams_the_same_batches(trainer_data):
    import fsspec

    data, vocab = trainer_data["zh_shards"], trainer_data["zh_vocab"]
    memory = fsspec.filesystem("memory")
    url = "memory://shard-sets/zh"
    for path in sorted(data.iterdir()):
        memory.pipe(f"{url}/{path.name}", path.read_bytes())
    try:
        remote = list(loader(url, vocab, num_workers=0))
        assert same_batches(remote, list(loader(data, vocab, num_workers=0)))
        assert sorted(keys_of(remote)) == sorted(all_keys(data))
        with pytest.raises(ShardSetError, match="no manifest.json in memory://nowhere"):
            loader("memory://nowhere", vocab, num_workers=0)
    finally:
        memory.rm(url, recursive=True)


class FlakyFileSystem(LocalFileSystem):
    """The local disk behind flaky://, where the 2nd and 3rd read() of every shard (counted over its opens, per
    process) raise TimeoutError, as a gs:// or s3:// read may."""

    protocol = "flaky"
    reads: collections.Counter = collections.Counter()

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(str(path).removeprefix("flaky://"))

    def _open(self, path, mode="rb", **kwargs):
        handle = super()._open(path, mode, **kwargs)
        if path.endswith(".tar"):
            handle.__class__ = _FlakyFile
        return handle


class _FlakyFile(LocalFileOpener):
    def read(self, *args):
        FlakyFileSystem.reads[self.path] += 1
        if FlakyFileSystem.reads[self.path] in (2, 3):
            raise TimeoutError(f"simulated timeout reading {self.path}")
        return super().read(*args)


def test_storage_errors_are_retried_and_never_taken_for_corruption(trainer_data, caplog):
    import fsspec

    fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
    data, vocab = trainer_data["zh_shards"], trainer_data["zh_vocab"]
    names = list(shard_keys(data))
    FlakyFileSystem.reads.clear()
    flaky = loader(f"flaky://{data}", vocab, num_workers=0, read_retries=2, retry_backoff=0.0)
    with caplog.at_level(logging.WARNING, logger="trainer.data"):
        batches = list(flaky)
    assert same_batches(batches, list(loader(data, vocab, num_workers=0)))  # nothing lost, nothing repeated
    assert flaky.corrupt_shards == {} and flaky.read_retries == {name: 2 for name in names}
    assert "storage error reading shard-00000.tar: retried" in caplog.text
    FlakyFileSystem.reads.clear()
    with pytest.raises(ShardSetError, match=r"cannot read .*shard-0000\d.tar after 1 retries .*simulated timeout"):
        list(loader(f"flaky://{data}", vocab, num_workers=0, read_retries=1, retry_backoff=0.0))


class CountingLocalFileSystem(LocalFileSystem):
    """The local disk behind countlocal://, counting the shards opened and the bytes read from them."""

    protocol = "countlocal"
    opened: collections.Counter = collections.Counter()
    bytes_read: collections.Counter = collections.Counter()

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(str(path).removeprefix("countlocal://"))

    def _open(self, path, mode="rb", **kwargs):
        handle = super()._open(path, mode, **kwargs)
        if path.endswith(".tar"):
            type(self).opened[path] += 1
            handle.__class__ = _CountedFile
        return handle


class _CountedFile(LocalFileOpener):
    def read(self, *args):
        data = super().read(*args)
        CountingLocalFileSystem.bytes_read[self.path] += len(data)
        return data


def test_a_resume_seeks_to_its_position_and_reads_no_shard_before_it(trainer_data):
    """Resuming at 10% or 90% of the epoch opens the same few shards and reads about the same bytes (whole shards
    before the position are passed over by the manifest's counts; in the first, one seek to its index's offset)."""
    import fsspec

    fsspec.register_implementation("countlocal", CountingLocalFileSystem, clobber=True)
    data, vocab = trainer_data["en_shards"], trainer_data["en_vocab"]
    largest = max(path.stat().st_size for path in data.glob("shard-*.tar"))
    full = list(loader(data, vocab, num_workers=0))
    read = {}
    for fraction in (0.1, 0.9):
        skip = int(len(full) * fraction)
        CountingLocalFileSystem.opened.clear()
        CountingLocalFileSystem.bytes_read.clear()
        first = next(iter(loader(f"countlocal://{data}", vocab, num_workers=0, skip_batches=skip)))
        assert same_batches([first], full[skip : skip + 1])
        assert len(CountingLocalFileSystem.opened) <= 2, sorted(CountingLocalFileSystem.opened)
        read[fraction] = sum(CountingLocalFileSystem.bytes_read.values())
    assert read[0.9] <= 2 * largest and read[0.1] <= 2 * largest, (read, largest)
    assert len(list(data.glob("shard-*.tar"))) >= 6  # at 90%, reading from the start would open most of them


def test_a_resume_inside_a_shard_seeks_through_its_index_reading_no_header_before_it(trainer_data, tmp_path):
    """The first member of the shard a resume starts in is destroyed: the resume seeks past it by the shard's index
    (shard-NNNNN.idx) and reads the same batch; the same set without indexes (as written before) walks the headers
    from the start, hits the damage and skips the shard."""
    data = tmp_path / "en"
    shutil.copytree(trainer_data["en_shards"], data)
    vocab = trainer_data["en_vocab"]
    full = list(loader(data, vocab, num_workers=0, shuffle_buffer=16))
    owner = {key: name for name, keys in shard_keys(data).items() for key in keys}
    seen: collections.Counter = collections.Counter()
    starts = {}  # batch number → (its shard, the first key's place in that shard's epoch order)
    for number, batch in enumerate(full):
        starts[number] = owner[batch.keys[0]], seen[owner[batch.keys[0]]]
        seen.update(owner[key] for key in batch.keys)
    skip, (name, place) = next((n, start) for n, start in starts.items() if start[1] >= 16 and n > 0)
    with open(data / name, "r+b") as shard:
        shard.write(b"\xff" * tarfile.BLOCKSIZE)  # member 0's header: in block 0, before the resume's block
    resumed = loader(data, vocab, num_workers=0, shuffle_buffer=16, skip_batches=skip)
    assert same_batches([next(iter(resumed))], full[skip : skip + 1]) and resumed.corrupt_shards == {}, place
    manifest = json.loads((data / "manifest.json").read_text())
    for shard in manifest["shards"]:
        del shard["index"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    walked = loader(data, vocab, num_workers=0, shuffle_buffer=16, skip_batches=skip)
    next(iter(walked))
    assert list(walked.corrupt_shards) == [name]


def test_drop_last_yields_only_full_batches_and_skips_by_them(trainer_data):
    """Training keeps one batch shape: with drop_last each worker's short last batch is dropped, and resuming
    after k batches counts full batches only."""
    data, artifact = trainer_data["en_shards"], trainer_data["en_vocab"]
    full = list(loader(data, artifact, drop_last=True))
    assert full and all(len(batch) == 16 for batch in full)
    total = sum(shard["samples"] for shard in read_manifest(str(data), vocab_id(artifact))["shards"])
    assert total - 2 * 16 < 16 * len(full) <= total  # at most one short batch per worker (2) left out
    later = list(loader(data, artifact, drop_last=True, skip_batches=3))
    assert [batch.keys for batch in later] == [batch.keys for batch in full[3:]]
