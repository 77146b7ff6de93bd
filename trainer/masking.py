"""Dynamic masking for pre-training: the vocabulary's special ids, each example's rng, the collator and padding.

    spec = MaskingSpec.from_artifact("run/vocab", mask_prob=0.15)
    corruption = Corruption.from_config("run/vocab", cfg)       # trainer.masking_strategies: what is chosen, how
    shape = BatchShape.for_run(rows=32, max_seq_len=128, variant="ambert")     # fixed lengths and MLM budget
    batch = MaskingCollator(corruption, seed, epoch, shape)(examples)          # a trainer.batch.MaskedBatch

The random choices of an example depend only on (seed, epoch, sample key, draw): the same in any worker, on any
rank, after any resume. Pre-training batches have static shapes (torch.compile(dynamic=False) compiles one graph
per shape): a fixed number of rows, lengths or packed row counts from a few buckets, a budget of predicted positions
per example and side (Google BERT's max_predictions_per_seq; masked positions over it are left unmasked and
counted), and the batch's predicted positions of each side gathered into a flat list of slots whose count is one
of a few buckets (the MLM heads project only those onto the vocabulary, as MosaicBERT and ModernBERT do).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from trainer.batch import IGNORE, MaskedBatch
from trainer.packing import plan_packing
from vocab.aligned_codec import ShardExample
from vocab.artifact import SPECIAL_TOKENS, ArtifactError, read_vocab_lines


@dataclass(frozen=True)
class SpecialIds:
    """The ids of BERT's special tokens in one vocabulary (fine or coarse)."""

    pad: int
    cls: int
    sep: int
    mask: int
    unk: int

    @classmethod
    def from_vocab(cls, tokens: list[str], where: str) -> SpecialIds:
        index = {token: position for position, token in enumerate(tokens)}
        missing = [token for token in SPECIAL_TOKENS.values() if token not in index]
        if missing:
            raise ArtifactError(f"{where} lacks the special tokens {missing}: rebuild the vocab artifact")
        return cls(**{name: index[token] for name, token in SPECIAL_TOKENS.items()})


@dataclass(frozen=True)
class MaskingSpec:
    """What masking needs to know of a vocab artifact: both sides' special ids and sizes, and the masking rate."""

    fine: SpecialIds
    coarse: SpecialIds
    fine_vocab_size: int
    coarse_vocab_size: int
    mask_prob: float = 0.15  # share of the (non-special) coarse tokens chosen in each example

    def __post_init__(self) -> None:
        if not 0 < self.mask_prob < 1:
            raise ValueError(f"mask_prob {self.mask_prob} must be between 0 and 1")

    @classmethod
    def from_artifact(cls, artifact_dir: str, mask_prob: float = 0.15) -> MaskingSpec:
        """Special ids looked up by token string in the artifact's fine/vocab.txt and coarse/vocab.txt."""
        paths = {side: os.path.join(artifact_dir, side, "vocab.txt") for side in ("fine", "coarse")}
        vocabs = {}
        for side, path in paths.items():
            try:
                vocabs[side] = read_vocab_lines(path)
            except OSError as error:
                raise ArtifactError(
                    f"cannot read {path} ({error.strerror}): is {artifact_dir} a vocab artifact?"
                ) from error
        return cls(
            fine=SpecialIds.from_vocab(vocabs["fine"], paths["fine"]),
            coarse=SpecialIds.from_vocab(vocabs["coarse"], paths["coarse"]),
            fine_vocab_size=len(vocabs["fine"]),
            coarse_vocab_size=len(vocabs["coarse"]),
            mask_prob=mask_prob,
        )


def stable_seed(*parts: int | str) -> int:
    """A 128-bit seed from the sha256 of `parts` (never Python's hash(), which differs between processes)."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:16], "little")


def example_rng(seed: int, epoch: int, key: str, draw: int = 0) -> np.random.Generator:
    """The random generator that masks sample `key` in `epoch`: new choices every epoch, the same on every replay.
    Resampled mode numbers the draws of a sample (ShardExample.draw ≥ 1): a sample drawn twice gets new choices."""
    return np.random.default_rng(stable_seed("mask", seed, epoch, key, *((draw,) if draw else ())))


Masked = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # mask_example's (fine in, labels, coarse in, labels)


def pad_examples(
    examples: list[ShardExample],
    spec: MaskingSpec,
    masked: list[Masked] | None = None,
    sop_labels: list[int] | None = None,
    *,
    fine_len: int | None = None,
    coarse_len: int | None = None,
    rows: int | None = None,
) -> MaskedBatch:
    """ShardExamples → MaskedBatch, each side padded to its longest sequence in the batch (or to fine_len/coarse_len),
    and to `rows` rows by filler rows (one [PAD] token, nothing predicted).

    `masked[i]` is (fine_input, fine_labels, coarse_input, coarse_labels) of example i (pre-training: a
    trainer.masking_strategies.Corruption's); without it the inputs are the ids themselves and every label is IGNORE
    (fine-tuning, evaluation). sop_labels: one per example (IGNORE where it has none), or None without SOP."""
    if not examples:
        raise ValueError("a batch needs at least one example")
    size = rows or len(examples)
    fine_len = fine_len or max(len(ex.fine_ids) for ex in examples)
    coarse_len = coarse_len or max(len(ex.coarse_ids) for ex in examples)
    if size < len(examples):
        raise ValueError(f"{len(examples)} examples do not fit a batch of {size} rows")
    fine_ids = np.full((size, fine_len), spec.fine.pad, dtype=np.int64)
    coarse_ids = np.full((size, coarse_len), spec.coarse.pad, dtype=np.int64)
    fine_type, fine_labels = np.zeros_like(fine_ids), np.full_like(fine_ids, IGNORE)
    coarse_type, coarse_labels = np.zeros_like(coarse_ids), np.full_like(coarse_ids, IGNORE)
    fine_mask, coarse_mask = np.zeros(fine_ids.shape, dtype=bool), np.zeros(coarse_ids.shape, dtype=bool)
    align = np.zeros((size, coarse_len, 2), dtype=np.int64)
    for row, ex in enumerate(examples):
        f, c = len(ex.fine_ids), len(ex.coarse_ids)
        if masked is None:
            fine_ids[row, :f], coarse_ids[row, :c] = ex.fine_ids, ex.coarse_ids
        else:
            fine_ids[row, :f], fine_labels[row, :f], coarse_ids[row, :c], coarse_labels[row, :c] = masked[row]
        fine_type[row, :f], coarse_type[row, :c] = ex.fine_type, ex.coarse_type
        fine_mask[row, :f], coarse_mask[row, :c] = True, True
        align[row, :c] = ex.align
    fine_mask[len(examples) :, 0] = coarse_mask[len(examples) :, 0] = True  # filler rows: no row is all padding
    nsp = [ex.nsp_label if ex.nsp_label >= 0 else IGNORE for ex in examples] + [IGNORE] * (size - len(examples))
    as_tensor = torch.from_numpy
    return MaskedBatch(
        fine_ids=as_tensor(fine_ids),
        fine_type=as_tensor(fine_type),
        fine_mask=as_tensor(fine_mask),
        fine_labels=as_tensor(fine_labels),
        coarse_ids=as_tensor(coarse_ids),
        coarse_type=as_tensor(coarse_type),
        coarse_mask=as_tensor(coarse_mask),
        coarse_labels=as_tensor(coarse_labels),
        align=as_tensor(align),
        nsp_labels=torch.tensor(nsp, dtype=torch.long),
        keys=[ex.key for ex in examples],
        sop_labels=None if sop_labels is None else torch.tensor(sop_labels + [IGNORE] * (size - len(examples))),
    )


def google_max_predictions(max_seq_len: int) -> int:
    """Google BERT's max_predictions_per_seq for a sequence length: 20 at 128, 80 at 512."""
    return max(1, math.ceil(max_seq_len * 5 / 32))


def _buckets(given: tuple[int, ...], largest: int, name: str, what: str, parts: int) -> tuple[int, ...]:
    """`given` sorted, or multiples of largest/parts up to `largest`; refused if none holds `largest`."""
    step = max(1, largest // parts)
    buckets = tuple(sorted(set(given))) or tuple(sorted({*range(step, largest, step), largest}))
    if buckets[-1] < largest:
        raise ValueError(f"{name} {list(given)} has no value of {largest} ({what}): add it")
    return buckets


@dataclass(frozen=True)
class BatchShape:
    """The fixed shapes of pre-training batches: `rows` examples (short batches get filler rows); each side padded to
    the smallest of `lengths` that fits (combo, bert-*) or to max_seq_len (ambert, hybrid: `packed`, where the sides
    are only gathered into packed rows); packed rows of `row_len`, as many as the smallest of `packed_rows` that
    fits; at most `max_predictions` predicted positions per example and side, gathered per side into as many slots
    as the smallest of `prediction_slots` that holds the batch's."""

    rows: int
    max_seq_len: int
    packed: bool
    joint: bool
    lengths: tuple[int, ...]
    packed_rows: tuple[int, ...]
    max_predictions: int
    prediction_slots: tuple[int, ...]

    @classmethod
    def for_run(
        cls,
        rows: int,
        max_seq_len: int,
        variant: str,
        pad_to: tuple[int, ...] = (),
        packed_rows: tuple[int, ...] = (),
        max_predictions: int = 0,
        prediction_slots: tuple[int, ...] = (),
    ) -> BatchShape:
        """The shape of a run's batches (data.batch_size, the shard set's max_seq_len, model.variant, data.pad_to,
        data.packed_rows, data.max_predictions, data.prediction_slots; 0 and () choose the defaults)."""
        packed, joint = variant in ("ambert", "hybrid"), variant == "hybrid"
        most_rows = rows if joint else 2 * rows  # every piece in a row of its own
        budget = max_predictions or google_max_predictions(max_seq_len)
        return cls(
            rows,
            max_seq_len,
            packed,
            joint,
            _buckets(pad_to, max_seq_len, "data.pad_to", "max_seq_len", 8),
            _buckets(packed_rows, most_rows, "data.packed_rows", "a row per sequence", 32),
            budget,
            _buckets(prediction_slots, rows * budget, "data.prediction_slots", "batch_size × max_predictions", 16),
        )

    @classmethod
    def from_config(cls, cfg, max_seq_len: int) -> BatchShape:
        """The shape of a run's batches from its configuration (trainer.config.Config) and shard set."""
        data = cfg.data
        return cls.for_run(
            data.batch_size,
            max_seq_len,
            cfg.model.variant,
            data.pad_to,
            data.packed_rows,
            data.max_predictions,
            data.prediction_slots,
        )

    @property
    def row_len(self) -> int:
        """Positions of a packed row: max_seq_len (ambert), 2 × max_seq_len (hybrid: fine and coarse together)."""
        return (2 if self.joint else 1) * self.max_seq_len

    def fit(self, length: int) -> int:
        """The smallest side length ≥ `length`."""
        return next(bucket for bucket in self.lengths if bucket >= length)

    def fit_rows(self, needed: int) -> int:
        """The smallest packed row count ≥ `needed`."""
        return next(bucket for bucket in self.packed_rows if bucket >= needed)

    def fit_slots(self, needed: int) -> int:
        """The smallest count of prediction slots ≥ `needed`."""
        return next(bucket for bucket in self.prediction_slots if bucket >= needed)


def cap_predictions(example: ShardExample, masked: Masked, budget: int) -> tuple[Masked, tuple[int, int]]:
    """At most `budget` masked positions per side: the first `budget` (in position order) stay, the rest get their
    original ids back and no label. Returns the capped masking and how many positions were unmasked per side."""
    fine_input, fine_labels, coarse_input, coarse_labels = masked
    capped = []
    for inputs, labels, original in (
        (fine_input, fine_labels, example.fine_ids),
        (coarse_input, coarse_labels, example.coarse_ids),
    ):
        over = np.flatnonzero(labels != IGNORE)[budget:]
        inputs[over] = np.asarray(original, dtype=np.int64)[over]
        labels[over] = IGNORE
        capped.append(len(over))
    return (fine_input, fine_labels, coarse_input, coarse_labels), (capped[0], capped[1])


def mlm_targets(
    labels: torch.Tensor, budget: int, slots: int | Callable[[int], int] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dense labels (B, L) with at most `budget` labelled positions per row → (index, labels, weight), each (N,): the
    labelled positions as flat indices into the (B·L) positions, row by row in position order, then unused slots
    (index 0, label IGNORE, weight 0). N = `slots` (a function: slots(labelled), e.g. the smallest bucket that holds
    them; None: B × budget, every row's whole budget)."""
    where = labels != IGNORE
    if int(where.sum(1).max()) > budget:
        raise ValueError(f"a row has more than {budget} masked positions: cap_predictions first")
    flat = where.flatten().nonzero().squeeze(1)
    size = labels.shape[0] * budget if slots is None else slots(len(flat)) if callable(slots) else slots
    if len(flat) > size:
        raise ValueError(f"{len(flat)} masked positions do not fit {size} prediction slots")
    index = torch.zeros(size, dtype=torch.long)
    targets = torch.full((size,), IGNORE, dtype=torch.long)
    weight = torch.zeros(size)
    index[: len(flat)], targets[: len(flat)], weight[: len(flat)] = flat, labels.flatten()[flat], 1.0
    return index, targets, weight


def with_mlm_targets(batch: MaskedBatch, budget: int, slots: int | Callable[[int], int] | None = None) -> MaskedBatch:
    """`batch` with each side's MLM labels as a flat list of prediction slots (mlm_targets)."""
    fine, coarse = (mlm_targets(labels, budget, slots) for labels in (batch.fine_labels, batch.coarse_labels))
    return dataclasses.replace(
        batch,
        **{f"fine_mlm_{part}": tensor for part, tensor in zip(("index", "labels", "weight"), fine, strict=True)},
        **{f"coarse_mlm_{part}": tensor for part, tensor in zip(("index", "labels", "weight"), coarse, strict=True)},
    )


def with_packing(
    batch: MaskedBatch, row_len: int, joint: bool, rows: int | Callable[[int], int] | None = None
) -> MaskedBatch:
    """`batch` with the plan that packs its sequences into `rows` rows of `row_len` (trainer.packing)."""
    plan = plan_packing(
        batch.fine_mask.sum(1).numpy(),
        batch.coarse_mask.sum(1).numpy(),
        (batch.fine_mask.shape[1], batch.coarse_mask.shape[1]),
        row_len,
        joint,
        rows,
    )
    return dataclasses.replace(batch, **{name: torch.from_numpy(array) for name, array in plan.items()})


class MaskingCollator:
    """ShardExamples → MaskedBatch of static shapes: corrupts each example with example_rng(seed, epoch, key, draw)
    as `corruption` says (a trainer.masking_strategies.Corruption: strategy, objective, SOP), caps its predictions
    at the budget (mlm, mac; perm predicts positions, dense), pads and packs to `shape`. Picklable, so it runs
    inside DataLoader worker processes."""

    def __init__(self, corruption, seed: int, epoch: int, shape: BatchShape) -> None:
        self.corruption, self.seed, self.epoch, self.shape = corruption, seed, epoch, shape

    def __call__(self, examples: list[ShardExample]) -> MaskedBatch:
        shape, capped = self.shape, np.zeros(2, dtype=np.int64)
        done = [self.corruption(ex, example_rng(self.seed, self.epoch, ex.key, ex.draw)) for ex in examples]
        examples, masked = [ex for ex, _, _ in done], [m for _, m, _ in done]
        budgeted = self.corruption.objective != "perm"  # perm's labels are source positions: no cap, no gather
        if budgeted:
            for index, ex in enumerate(examples):
                masked[index], counts = cap_predictions(ex, masked[index], shape.max_predictions)
                capped += counts
        if shape.packed:  # the sides are only gathered into the packed rows: their padding costs nothing
            fine_len = coarse_len = shape.max_seq_len
        else:
            fine_len, coarse_len = (
                shape.fit(max(len(getattr(ex, f"{s}_ids")) for ex in examples)) for s in ("fine", "coarse")
            )
        sop = [label for _, _, label in done] if self.corruption.sop else None
        spec = self.corruption.rules.spec
        batch = pad_examples(examples, spec, masked, sop, fine_len=fine_len, coarse_len=coarse_len, rows=shape.rows)
        if budgeted:
            batch = with_mlm_targets(batch, shape.max_predictions, shape.fit_slots)
        if shape.packed:
            batch = with_packing(batch, shape.row_len, shape.joint, shape.fit_rows)
        return dataclasses.replace(batch, capped=torch.from_numpy(capped))
