"""Streaming pre-training batches from a shard set (local or fsspec URL): generator stages over webdataset's tar reader.

    collator = MaskingCollator(corruption, seed, epoch, shape)  # trainer.masking (BatchShape), masking_strategies
    loader = pretraining_loader("out/shards", expect_vocab_id=vocab_id, collator=collator,
                                batch_size=32, num_workers=2, shuffle_buffer=1000, seed=seed, epoch=epoch,
                                rank=rank, world_size=world_size, skip_batches=batches_already_done)
    for batch in loader: ...        # MaskedBatch; loader.corrupt_shards names the shards skipped so far

Each (rank, DataLoader worker) slot reads its own shards, chosen explicitly; shard order, shuffling (within blocks of
shuffle_buffer samples) and masking derive from (seed, epoch, rank, worker, sample key) only, so the same arguments
give the same batches, and a resume seeks to its position instead of reading the samples before it.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import tarfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace

import fsspec
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from webdataset.filters import batched
from webdataset.tariterators import tar_file_iterator

from trainer.batch import MaskedBatch
from trainer.masking import MaskingCollator, stable_seed
from vocab.aligned_codec import FIELD, CodecError, ShardExample, decode_example
from vocab.shard_set import ShardSetError, example_faults, read_manifest, shard_path

log = logging.getLogger(__name__)
RETRIED = "retried"  # the problem of a report that is a storage retry, not corruption
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class Shard:
    name: str
    path: str
    samples: int  # as the manifest says


def rounds_before(skip: int, counts: list[float]) -> tuple[list[int], int]:
    """Where the `skip`-th batch of a DataLoader falls: it takes the next batch of each worker in turn (from worker 0)
    and leaves out a worker once that one runs dry; counts[w]: worker w's batches (inf: endless). Returns each
    worker's batches in the whole rounds before it, and how many batches of the next round precede it."""
    taken = [0] * len(counts)
    while skip > 0:
        active = [w for w, count in enumerate(counts) if taken[w] < count]
        rounds = min(skip // len(active), min(counts[w] - taken[w] for w in active)) if active else 0
        if rounds == 0:
            break
        for w in active:
            taken[w] += rounds
        skip -= rounds * len(active)
    return taken, skip


class ShardStream(IterableDataset):
    """One rank's batches, as (MaskedBatch | None, ((shard name, problem), ...)): each DataLoader worker reads its
    slot's shards, checks, shuffles, skips, batches and masks; corrupt-shard reports ride on the next batch.

    Slots interleave ranks, slot = worker × world_size + rank, so shard i % slots = slot goes to rank i % world_size:
    ranks differ by one shard at most, workers of a rank too."""

    def __init__(
        self,
        shards: list[Shard],
        *,
        max_seq_len: int,
        vocab_sizes: tuple[int, int],
        collator: MaskingCollator,
        batch_size: int,
        num_workers: int,
        shuffle_buffer: int,
        seed: int,
        epoch: int,
        rank: int,
        world_size: int,
        resampled: bool,
        strict: bool,
        skip_batches: int,
        read_retries: int = 5,
        retry_backoff: float = 1.0,
        drop_last: bool = False,
    ) -> None:
        self.shards, self.max_seq_len, self.vocab_sizes, self.collator = shards, max_seq_len, vocab_sizes, collator
        self.batch_size, self.shuffle_buffer, self.seed, self.epoch = batch_size, shuffle_buffer, seed, epoch
        self.rank, self.world_size, self.resampled, self.strict = rank, world_size, resampled, strict
        self.read_retries, self.retry_backoff = read_retries, retry_backoff
        self.drop_last = drop_last
        self.workers = max(num_workers, 1)  # num_workers=0: the main process is this rank's only worker
        self.slots = world_size * self.workers
        self.split_samples = not resampled and len(shards) < self.slots
        counts = [
            math.inf if resampled else (math.floor if drop_last else math.ceil)(self.samples_of(w) / batch_size)
            for w in range(self.workers)
        ]
        rounds, self.discard = rounds_before(skip_batches, counts)  # the workers skip whole rounds of batches,
        self.skip_samples = [batch_size * taken for taken in rounds]  # the loader discards the rest (< 1 round)

    def slot(self, worker: int) -> int:
        return worker * self.world_size + self.rank

    def epoch_order(self) -> list[Shard]:
        """All shards in this epoch's order: a permutation from (seed, epoch), the same on every rank."""
        order = np.random.default_rng(stable_seed("shards", self.seed, self.epoch)).permutation(len(self.shards))
        return [self.shards[i] for i in order]

    def samples_of(self, worker: int) -> int:
        """Samples this rank's `worker` reads in an epoch, by the manifest's counts."""
        if self.split_samples:
            return len(range(self.slot(worker), sum(shard.samples for shard in self.shards), self.slots))
        return sum(shard.samples for shard in self.epoch_order()[self.slot(worker) :: self.slots])

    def shards_of(self, worker: int) -> Iterator[tuple[Shard, int]]:
        """(shard, epoch index of its first sample) for this worker: shard i of the epoch order goes to slot
        i % slots; with fewer shards than slots, every slot reads all; resampled: endless draws with replacement."""
        if self.resampled:
            rng = np.random.default_rng(stable_seed("resample", self.seed, self.epoch, self.rank, worker))
            while True:
                yield self.shards[int(rng.integers(len(self.shards)))], 0
        order = self.epoch_order()
        if self.split_samples:
            yield from zip(order, itertools.accumulate((shard.samples for shard in order), initial=0), strict=False)
        else:
            yield from ((shard, 0) for shard in order[self.slot(worker) :: self.slots])

    def check(self, member: dict) -> ShardExample:
        key, _, suffix = member["fname"].rpartition(".")
        if suffix != FIELD:
            raise CodecError(f"member {member['fname']!r} is not a <key>.{FIELD} file")
        example = decode_example(member["data"], key)
        faults = example_faults(example, self.max_seq_len, *self.vocab_sizes)
        if faults:
            raise CodecError(f"sample {key}: {'; '.join(faults)}")
        return example

    def read(
        self,
        shards: Iterator[tuple[Shard, int]],
        slot: int | None,
        reports: list[tuple[str, str]],
        skip: int = 0,
        worker_slot: int = 0,
    ) -> Iterator[ShardExample]:
        """The checked examples of `shards` (those at epoch index % slots == slot only, unless slot is None), after the
        first `skip` of them: whole shards are passed over by the manifest's counts (not opened), and in the shard
        where reading starts the tar headers before it are walked with seeks (no sample read nor decoded). A corrupt
        shard (bad tar, undecodable or invalid sample, fewer samples than the manifest's) raises ShardSetError when
        strict; else it is reported and reading goes on with the next shard. A storage error (OSError: a timeout, a
        dropped connection) is no corruption: the shard is opened again after a backoff and read on from the member
        where it stopped, up to `read_retries` times in a row (each retry reported as (shard name, RETRIED)).
        Resampled, the examples of the n-th shard drawn carry draw = 1 + n × slots + worker_slot: a sample drawn
        again is masked anew."""
        broken: set[str] = set()
        for number, (shard, start) in enumerate(shards):
            draw = 1 + number * self.slots + worker_slot if self.resampled else 0
            first = 0  # the member where reading starts
            if skip:
                kept = (
                    shard.samples
                    if slot is None
                    else len(range((slot - start) % self.slots, shard.samples, self.slots))
                )
                if skip >= kept:
                    skip -= kept
                    continue
                first = skip if slot is None else (slot - start) % self.slots + skip * self.slots
                skip = 0
            count, failures = first, 0  # count: members passed so far, kept across retries
            while True:
                try:
                    with fsspec.open(shard.path, "rb") as stream:
                        skip_members(stream, count)  # resume, or go on after a storage error
                        for member in tar_file_iterator(stream):
                            if slot is None or (start + count) % self.slots == slot:
                                example = self.check(member)
                                yield replace(example, draw=draw) if draw else example
                            count, failures = count + 1, 0
                    if count != shard.samples:
                        raise CodecError(f"{count} samples, the manifest says {shard.samples} (truncated?)")
                    break
                except (CodecError, tarfile.TarError, FileNotFoundError) as error:  # a missing shard is no hiccup
                    problem = f"{shard.path}, after {count} samples: {error}"
                    if self.strict:
                        raise ShardSetError(
                            f"corrupt shard {problem}. Check the set with `ambert shard verify`; "
                            "without strict (data.strict=false) such a shard is skipped"
                        ) from error
                    reports.append((shard.name, problem))
                    broken.add(shard.name)
                    if self.resampled and len(broken) == len(self.shards):
                        raise ShardSetError(
                            f"every shard of {os.path.dirname(shard.path)} is corrupt (the last: "
                            f"{problem}); rebuild the set with `ambert shard`"
                        ) from error
                    break
                except OSError as error:
                    if failures >= self.read_retries:
                        raise ShardSetError(
                            f"cannot read {shard.path} after {failures} retries (the last error: {error}); check "
                            "the storage, then resume the run (a larger data.read_retries waits longer)"
                        ) from error
                    reports.append((shard.name, RETRIED))
                    time.sleep(min(self.retry_backoff * 2**failures, MAX_BACKOFF_SECONDS))
                    failures += 1

    def __iter__(self) -> Iterator[tuple[MaskedBatch | None, tuple[tuple[str, str], ...]]]:
        info = get_worker_info()
        worker = 0 if info is None else info.id
        reports: list[tuple[str, str]] = []
        skip = self.skip_samples[worker]
        blocks = skip // self.shuffle_buffer  # whole shuffle blocks before the resume point: never read
        slot = self.slot(worker) if self.split_samples else None
        examples = self.read(
            self.shards_of(worker), slot, reports, skip=blocks * self.shuffle_buffer, worker_slot=self.slot(worker)
        )
        examples = block_shuffle(
            examples, self.shuffle_buffer, ("shuffle", self.seed, self.epoch, self.rank, worker), blocks
        )
        examples = itertools.islice(examples, skip - blocks * self.shuffle_buffer, None)  # < one block: never collated
        for group in batched(self.batch_size, collation_fn=None, partial=not self.drop_last)(examples):
            found, reports[:] = tuple(reports), []
            yield self.collator(group), found
        if reports:
            yield None, tuple(reports)


def skip_members(stream, members: int) -> None:
    """Move a tar stream past its first `members` members, reading their 512-byte headers only (data skipped by
    seeking). Shards hold plain USTAR members (vocab/aligned_codec.write_encoded_tar): one header each."""
    for _ in range(members):
        header = stream.read(tarfile.BLOCKSIZE)
        if len(header) < tarfile.BLOCKSIZE:
            raise tarfile.ReadError(f"the shard ends within its first {members} members")
        info = tarfile.TarInfo.frombuf(header, tarfile.ENCODING, "surrogateescape")
        stream.seek(-(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE, os.SEEK_CUR)


def block_shuffle(examples: Iterator, size: int, seed_parts: tuple, first_block: int = 0) -> Iterator:
    """Shuffle within consecutive blocks of `size` (block b permuted by a seed of (seed_parts, b)): where the n-th
    output comes from depends only on n, so a resume can start at any block without reading those before."""
    for number, block in enumerate(batched(size, collation_fn=None, partial=True)(examples), start=first_block):
        random.Random(stable_seed(*seed_parts, number)).shuffle(block)
        yield from block


def _unchanged(item):
    return item


class PretrainingLoader:
    """Iterable over one rank's MaskedBatches through a torch DataLoader (batch_size=None: workers batch).

    corrupt_shards: {shard name: problem} for every corrupt shard skipped since this loader was made; the
    workers report them with their next batch and this process logs a warning for each, once.
    read_retries: {shard name: storage errors retried} (transient; never corruption)."""

    def __init__(self, stream: ShardStream, num_workers: int) -> None:
        self.stream, self.num_workers = stream, num_workers
        self.corrupt_shards: dict[str, str] = {}
        self.read_retries: dict[str, int] = {}

    def __iter__(self) -> Iterator[MaskedBatch]:
        # its own generator: creating workers must not draw from the global RNG (dropout), or resume would differ
        generator = torch.Generator().manual_seed(self.stream.seed)
        batches = iter(
            DataLoader(
                self.stream,
                batch_size=None,
                num_workers=self.num_workers,
                collate_fn=_unchanged,
                generator=generator,
                pin_memory=torch.cuda.is_available(),
            )
        )
        discard = self.stream.discard
        try:
            for batch, reports in batches:
                for name, problem in reports:
                    if problem == RETRIED:
                        self.read_retries[name] = self.read_retries.get(name, 0) + 1
                        log.warning("storage error reading %s: retried", name)
                    elif name not in self.corrupt_shards:
                        log.warning("skipped corrupt shard %s", problem)
                        self.corrupt_shards[name] = problem
                if batch is not None and discard:
                    discard -= 1
                elif batch is not None:
                    yield batch
        finally:  # stop the workers now, also on an error or an abandoned epoch, not whenever garbage is collected
            getattr(batches, "_shutdown_workers", lambda: None)()


def pretraining_loader(
    data: str,
    *,
    expect_vocab_id: str,
    collator: MaskingCollator,
    batch_size: int,
    num_workers: int,
    shuffle_buffer: int,
    seed: int,
    epoch: int,
    rank: int,
    world_size: int,
    resampled: bool = False,
    strict: bool = False,
    skip_batches: int = 0,
    read_retries: int = 5,
    retry_backoff: float = 1.0,
    drop_last: bool = False,
) -> PretrainingLoader:
    """The batches of `rank` (of `world_size`) for `epoch` of the shard set `data` (a directory or an fsspec URL).

    Epoch mode reads each of the slot's shards once (the last batch of each worker may be short, or with drop_last is
    dropped: training keeps its batch shape fixed); resampled mode
    draws shards with replacement forever. The order is fixed by (seed, epoch, rank, world_size, num_workers,
    batch_size, shuffle_buffer): with workers, the DataLoader takes one batch from each in turn.

    Each worker shuffles its samples within consecutive blocks of shuffle_buffer (block_shuffle), so where its n-th
    sample comes from depends on n only. skip_batches=k yields exactly what the same loader yields from its
    (k+1)-th batch on, at a cost that does not grow with k: each worker passes over its whole shuffle blocks before
    the resume point by the manifest's counts (shards not opened, then tar headers walked by seeking in the shard
    where it starts), reads and decodes the rest of one block (< shuffle_buffer samples, never masked nor
    collated), and the loader builds and drops fewer than num_workers batches. The positions come from the
    manifest's sample counts: after a corrupt shard was skipped (strict=False), the position can be off.

    A storage error is retried `read_retries` times in a row, after retry_backoff · 2^n seconds (at most
    MAX_BACKOFF_SECONDS); then ShardSetError stops the run (resume it when the storage is back).
    """
    if (
        batch_size < 1
        or num_workers < 0
        or shuffle_buffer < 1
        or skip_batches < 0
        or read_retries < 0
        or retry_backoff < 0
        or not 0 <= rank < world_size
    ):
        raise ValueError(
            f"pretraining_loader: need batch_size ≥ 1 ({batch_size}), num_workers ≥ 0 ({num_workers}), "
            f"shuffle_buffer ≥ 1 ({shuffle_buffer}), skip_batches ≥ 0 ({skip_batches}), read_retries and "
            f"retry_backoff ≥ 0 ({read_retries}, {retry_backoff}) and "
            f"0 ≤ rank ({rank}) < world_size ({world_size})"
        )
    manifest = read_manifest(data, expect_vocab_id)
    shards = [Shard(entry["name"], shard_path(data, entry["name"]), entry["samples"]) for entry in manifest["shards"]]
    if not shards:
        raise ShardSetError(f"{data} holds no shards: rebuild it with `ambert shard` from a non-empty corpus")
    sizes = manifest["vocab"]["sizes"]
    stream = ShardStream(
        shards,
        max_seq_len=manifest["options"]["max_seq_len"],
        vocab_sizes=(sizes["fine"], sizes["coarse"]),
        collator=collator,
        batch_size=batch_size,
        num_workers=num_workers,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        epoch=epoch,
        rank=rank,
        world_size=world_size,
        resampled=resampled,
        strict=strict,
        skip_batches=skip_batches,
        read_retries=read_retries,
        retry_backoff=retry_backoff,
        drop_last=drop_last,
    )
    if stream.split_samples:
        warnings.warn(
            f"{data}: {len(shards)} shard(s) for {stream.slots} (rank, worker) slots, so every slot reads "
            f"every shard and keeps every {stream.slots}-th sample; for less reading, write more shards "
            "(a smaller samples_per_shard) or use fewer workers",
            stacklevel=2,
        )
    return PretrainingLoader(stream, num_workers)
