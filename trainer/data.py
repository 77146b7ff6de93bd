"""Streaming pre-training batches from a shard set (local or fsspec URL): generator stages over webdataset's tar reader.

    collator = MaskingCollator(corruption, seed, epoch, shape)  # trainer.masking (BatchShape), masking_strategies
    loader = pretraining_loader("out/shards", expect_vocab_id=vocab_id, collator=collator,
                                batch_size=32, num_workers=2, shuffle_buffer=1000, seed=seed, epoch=epoch,
                                rank=rank, world_size=world_size, skip_batches=batches_already_done)
    for batch in loader: ...        # MaskedBatch; loader.corrupt_shards names the shards skipped so far

The epoch's order of samples depends on (seed, epoch, shuffle_buffer) and the manifest only: whole shards in a seeded
order, each shuffled within aligned blocks of shuffle_buffer members. It is cut into equal stretches, one per (rank,
DataLoader worker) slot, so every rank gets the same number of samples (±1); masking derives from (seed, epoch,
sample key). A resume seeks to its position instead of reading the samples before it, and a resume on another number
of ranks or workers (history=the epoch's earlier Segments) goes on with what the epoch has left, each sample once.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import signal
import tarfile
import time
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
from vocab.shard_set import ShardSetError, example_faults, member_offset, read_manifest, shard_path

log = logging.getLogger(__name__)
RETRIED = "retried"  # the problem of a report that is a storage retry, not corruption
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class Shard:
    name: str
    path: str
    samples: int  # as the manifest says
    index: str | None = None  # the path of its index of member offsets (None: a set written without, walked)


@dataclass(frozen=True)
class Span:
    """Samples [lo, hi) of shard number `shard` in its epoch order: the shard's members shuffled within aligned
    blocks of shuffle_buffer (block b holds members [b·buffer, (b+1)·buffer), permuted by a seed of the shard's
    name and b), so any span is read from the blocks it overlaps only."""

    shard: int
    lo: int
    hi: int
    draw: int = 0  # resampled: the examples' draw number (a sample drawn again is masked anew)

    @property
    def size(self) -> int:
        return self.hi - self.lo


@dataclass(frozen=True)
class Segment:
    """A stretch of an epoch read with one layout: world_size ranks × workers loader workers (num_workers=0 counts
    as 1), batches of batch_size, and `batches` batches taken by each rank. A resume on another layout closes the
    current segment; the next one deals what the epoch has left to the new slots."""

    world_size: int
    workers: int
    batch_size: int
    batches: int = 0

    @property
    def slots(self) -> int:
        return self.world_size * self.workers

    def same_layout(self, other: Segment) -> bool:
        return (self.world_size, self.workers, self.batch_size) == (other.world_size, other.workers, other.batch_size)


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


def batches_taken(skip: int, counts: list[float]) -> list[int]:
    """Each worker's batches among the first `skip` a DataLoader yields (rounds_before, the partial round included:
    it goes to the first workers still active)."""
    taken, rest = rounds_before(skip, counts)
    for worker in [w for w, count in enumerate(counts) if taken[w] < count][:rest]:
        taken[worker] += 1
    return taken


def epoch_spans(shards: list[Shard], seed: int, epoch: int) -> list[Span]:
    """The epoch's work, whole shards in an order from (seed, epoch): the same on any number of ranks and workers."""
    order = np.random.default_rng(stable_seed("shards", seed, epoch)).permutation(len(shards))
    return [Span(int(index), 0, shards[index].samples) for index in order]


def deal(spans: list[Span], slots: int) -> list[list[Span]]:
    """Cut the work into `slots` consecutive stretches of equal size (±1 sample): slot s reads the s-th."""
    total = sum(span.size for span in spans)
    bounds = [slot * total // slots for slot in range(slots + 1)]
    dealt: list[list[Span]] = [[] for _ in range(slots)]
    start, slot = 0, 0  # start: the work's index of the current span's first sample
    for span in spans:
        lo = span.lo
        while lo < span.hi:
            while bounds[slot + 1] <= start + (lo - span.lo):
                slot += 1
            hi = min(span.hi, span.lo + bounds[slot + 1] - start)
            dealt[slot].append(Span(span.shard, lo, hi))
            lo = hi
        start += span.size
    return dealt


def without_first(spans, count: int) -> Iterator[Span]:
    """`spans` less their first `count` samples (spans may be endless)."""
    for span in spans:
        if count >= span.size:
            count -= span.size
            continue
        yield replace(span, lo=span.lo + count)
        count = 0


def epoch_work(shards: list[Shard], seed: int, epoch: int, history: tuple[Segment, ...], drop_last: bool) -> list[Span]:
    """What the epoch has left after the segments of `history`: each segment dealt the work left before it to its
    slots (deal), and each slot consumed its batches' samples (batches_taken over each rank's workers); what the
    slots left, in slot order, is the next segment's work. A function of the manifest and the history only."""
    work = epoch_spans(shards, seed, epoch)
    for segment in history:
        dealt = deal(work, segment.slots)
        work = []
        for rank in range(segment.world_size):
            counts = [
                batch_count(sum(span.size for span in dealt[worker * segment.world_size + rank]), segment, drop_last)
                for worker in range(segment.workers)
            ]
            for worker, taken in enumerate(batches_taken(segment.batches, counts)):
                slot = worker * segment.world_size + rank
                dealt[slot] = list(without_first(dealt[slot], taken * segment.batch_size))
        work = [span for slot in dealt for span in slot]
    return work


def batch_count(samples: int, segment: Segment, drop_last: bool) -> int:
    return (samples // segment.batch_size) if drop_last else -(-samples // segment.batch_size)


class ShardStream(IterableDataset):
    """One rank's batches, as (MaskedBatch | None, ((shard name, problem), ...)): each DataLoader worker reads its
    slot's spans, checks, skips, batches and masks; corrupt-shard reports ride on the next batch.

    The epoch's work (epoch_work: whole shards in a seeded order, less what earlier segments consumed) is cut into
    world_size × workers stretches of equal size, slot = worker × world_size + rank reading the slot-th: every
    rank and worker gets the same number of samples (±1), whatever the shard sizes."""

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
        history: tuple[Segment, ...] = (),
        read_retries: int = 5,
        retry_backoff: float = 1.0,
        drop_last: bool = False,
    ) -> None:
        self.shards, self.max_seq_len, self.vocab_sizes, self.collator = shards, max_seq_len, vocab_sizes, collator
        self.batch_size, self.shuffle_buffer, self.seed, self.epoch = batch_size, shuffle_buffer, seed, epoch
        self.rank, self.world_size, self.resampled, self.strict = rank, world_size, resampled, strict
        self.read_retries, self.retry_backoff = read_retries, retry_backoff
        self.drop_last, self.history = drop_last, history
        self.workers = max(num_workers, 1)  # num_workers=0: the main process is this rank's only worker
        self.slots = world_size * self.workers
        layout = Segment(world_size, self.workers, batch_size)
        if resampled:
            self.spans = [[] for _ in range(self.workers)]
            counts = [math.inf] * self.workers
        else:
            dealt = deal(epoch_work(shards, seed, epoch, history, drop_last), self.slots)
            self.spans = [dealt[self.slot(worker)] for worker in range(self.workers)]
            counts = [batch_count(sum(s.size for s in spans), layout, drop_last) for spans in self.spans]
        rounds, self.discard = rounds_before(skip_batches, counts)  # the workers skip whole rounds of batches,
        self.skip_samples = [batch_size * taken for taken in rounds]  # the loader discards the rest (< 1 round)

    def slot(self, worker: int) -> int:
        return worker * self.world_size + self.rank

    def spans_of(self, worker: int) -> Iterator[Span]:
        """This worker's spans; resampled: endless blocks drawn with replacement (a seed per segment, rank, worker),
        the n-th with draw number 1 + n × slots + slot."""
        if not self.resampled:
            yield from self.spans[worker]
            return
        rng = np.random.default_rng(
            stable_seed("resample", self.seed, self.epoch, len(self.history), self.rank, worker)
        )
        for number in itertools.count():
            shard = int(rng.integers(len(self.shards)))
            lo = int(rng.integers(-(-self.shards[shard].samples // self.shuffle_buffer))) * self.shuffle_buffer
            draw = 1 + number * self.slots + self.slot(worker)
            yield Span(shard, lo, min(lo + self.shuffle_buffer, self.shards[shard].samples), draw)

    def check(self, member: dict) -> ShardExample:
        key, _, suffix = member["fname"].rpartition(".")
        if suffix != FIELD:
            raise CodecError(f"member {member['fname']!r} is not a <key>.{FIELD} file")
        example = decode_example(member["data"], key)
        faults = example_faults(example, self.max_seq_len, *self.vocab_sizes)
        if faults:
            raise CodecError(f"sample {key}: {'; '.join(faults)}")
        return example

    def block_order(self, shard: Shard, block: int, size: int) -> list[int]:
        order = list(range(size))
        random.Random(stable_seed("shuffle", self.seed, self.epoch, shard.name, block)).shuffle(order)
        return order

    def read(self, spans: Iterator[Span], reports: list[tuple[str, str]]) -> Iterator[ShardExample]:
        """The checked examples of `spans`. A span is read block by block (a shuffle_buffer of members, permuted
        by block_order), keeping the shard open from one block to the next; the first block is reached by one
        seek to its offset in the shard's index (a set without indexes: by walking tar headers with seeks), and
        only the members a span keeps are decoded. A corrupt shard (bad tar, undecodable or invalid sample,
        fewer samples than the manifest's) raises ShardSetError when strict; else it is reported and its
        remaining spans are skipped. A storage error (OSError: a timeout, a dropped connection) is no
        corruption: the shard is opened again after a backoff and read on from the member where it stopped, up
        to `read_retries` times in a row (each retry reported as (shard name, RETRIED)). Resampled, the examples
        carry their span's draw number."""
        broken: set[str] = set()
        reader = BlockReader(self, reports)
        try:
            for span in spans:
                shard = self.shards[span.shard]
                if shard.name in broken:
                    continue
                try:
                    for block in range(span.lo // self.shuffle_buffer, -(-span.hi // self.shuffle_buffer)):
                        first = block * self.shuffle_buffer
                        members = reader.members(shard, first, min(first + self.shuffle_buffer, shard.samples))
                        for position, index in enumerate(self.block_order(shard, block, len(members)), first):
                            if span.lo <= position < span.hi:
                                example = self.check(members[index])
                                yield replace(example, draw=span.draw) if span.draw else example
                except (CodecError, tarfile.TarError, FileNotFoundError) as error:  # a missing shard is no hiccup
                    reader.close()
                    problem = f"{shard.path}: {error}"
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
        finally:
            reader.close()

    def __iter__(self) -> Iterator[tuple[MaskedBatch | None, tuple[tuple[str, str], ...]]]:
        info = get_worker_info()
        worker = 0 if info is None else info.id
        reports: list[tuple[str, str]] = []
        spans = without_first(self.spans_of(worker), self.skip_samples[worker])  # passed over by counts: not read
        examples = self.read(spans, reports)
        for group in batched(self.batch_size, collation_fn=None, partial=not self.drop_last)(examples):
            found, reports[:] = tuple(reports), []
            yield self.collator(group), found
        if reports:
            yield None, tuple(reports)


class BlockReader:
    """Members [first, stop) of a shard as webdataset dicts, from a stream kept open while reads go on in order."""

    def __init__(self, stream: ShardStream, reports: list[tuple[str, str]]) -> None:
        self.stream, self.reports = stream, reports
        self.shard: Shard | None = None
        self.handle = self.members_iter = None
        self.next = 0  # the member the open stream stands at

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.shard, self.handle, self.members_iter = None, None, None

    def open_at(self, shard: Shard, member: int) -> None:
        self.close()
        self.handle = fsspec.open(shard.path, "rb").open()
        self.shard, self.next = shard, member
        if shard.index is None:
            skip_members(self.handle, member)
        elif member:
            self.handle.seek(member_offset(shard.index, member))
        self.members_iter = tar_file_iterator(self.handle)

    def members(self, shard: Shard, first: int, stop: int) -> list[dict]:
        found: list[dict] = []
        failures = 0
        while len(found) < stop - first:
            try:
                if self.shard is not shard or self.next != first + len(found):
                    self.open_at(shard, first + len(found))
                member = next(self.members_iter, None)
                if member is None:
                    raise CodecError(f"{self.next} samples, the manifest says {shard.samples} (truncated?)")
                found.append(member)
                self.next, failures = self.next + 1, 0
            except OSError as error:
                if isinstance(error, FileNotFoundError):
                    raise
                self.close()
                if failures >= self.stream.read_retries:
                    raise ShardSetError(
                        f"cannot read {shard.path} after {failures} retries (the last error: {error}); check "
                        "the storage, then resume the run (a larger data.read_retries waits longer)"
                    ) from error
                self.reports.append((shard.name, RETRIED))
                time.sleep(min(self.stream.retry_backoff * 2**failures, MAX_BACKOFF_SECONDS))
                failures += 1
        return found


def skip_members(stream, members: int) -> None:
    """Move a tar stream past its first `members` members, reading their 512-byte headers only (data skipped by
    seeking). Shards hold plain USTAR members (vocab/aligned_codec.write_encoded_tar): one header each."""
    for _ in range(members):
        header = stream.read(tarfile.BLOCKSIZE)
        if len(header) < tarfile.BLOCKSIZE:
            raise tarfile.ReadError(f"the shard ends within its first {members} members")
        info = tarfile.TarInfo.frombuf(header, tarfile.ENCODING, "surrogateescape")
        stream.seek(-(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE, os.SEEK_CUR)


def _unchanged(item):
    return item


def _leave_stop_signals_to_the_trainer(_worker_id: int) -> None:
    """A loader worker ignores SIGTERM / SIGUSR1: `scancel`, a container stop or `kill -- -PGID` signal the whole
    process group, and the trainer (trainer.train.StopSignal) finishes its step and checkpoints before the loader
    shuts its workers down; a worker killed first would end the run with an error and no checkpoint. A worker
    whose trainer dies exits by itself (torch's worker loop watches its parent)."""
    for number in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(number, signal.SIG_IGN)


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
                worker_init_fn=_leave_stop_signals_to_the_trainer,
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
    history: tuple[Segment, ...] = (),
    read_retries: int = 5,
    retry_backoff: float = 1.0,
    drop_last: bool = False,
) -> PretrainingLoader:
    """The batches of `rank` (of `world_size`) for `epoch` of the shard set `data` (a directory or an fsspec URL).

    Epoch mode reads what the epoch has left once (the last batch of each worker may be short, or with drop_last is
    dropped: training keeps its batch shape fixed); resampled mode draws blocks of shards with replacement forever.
    The epoch's order of samples is fixed by (seed, epoch, shuffle_buffer) and the manifest, not by the layout:
    whole shards in a seeded order, each shuffled within aligned blocks of shuffle_buffer members. The rank's
    batches follow from that order and the layout (world_size, num_workers, batch_size): the work is cut into one
    equal stretch per (rank, worker) slot, and the DataLoader takes one batch from each worker in turn.

    skip_batches=k yields exactly what the same loader yields from its (k+1)-th batch on, at a cost that does not
    grow with k: each worker passes over its samples before the resume point by the manifest's counts (shards not
    opened, one seek by the shard's index to the block where it starts), reads the rest of one block (< shuffle_buffer
    samples, decoding only those it keeps), and the loader builds and drops fewer than num_workers batches.

    history: the earlier segments of this epoch read with other layouts (a run resumed on another number of ranks
    or workers, see Segment): the epoch goes on with what they left, no sample repeated nor lost, dealt to this
    layout's slots. The positions come from the manifest's sample counts: after a corrupt shard was skipped
    (strict=False), the position can be off.

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
    shards = [
        Shard(
            entry["name"],
            shard_path(data, entry["name"]),
            entry["samples"],
            shard_path(data, entry["index"]) if "index" in entry else None,
        )
        for entry in manifest["shards"]
    ]
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
        history=history,
        read_retries=read_retries,
        retry_backoff=retry_backoff,
        drop_last=drop_last,
    )
    return PretrainingLoader(stream, num_workers)
