"""Dynamic masking for pre-training: the vocabulary's special ids, each example's rng, the collator and padding.

    spec = MaskingSpec.from_artifact("run/vocab", mask_prob=0.15)
    corruption = Corruption.from_config("run/vocab", cfg)       # trainer.masking_strategies: what is chosen, how
    batch = MaskingCollator(corruption, seed, epoch)(examples)  # a trainer.batch.MaskedBatch

The random choices of an example depend only on (seed, epoch, sample key, draw): the same in any worker, on any
rank, after any resume.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch

from trainer.batch import IGNORE, MaskedBatch
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


def pad_examples(
    examples: list[ShardExample],
    spec: MaskingSpec,
    masked: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None = None,
    sop_labels: list[int] | None = None,
) -> MaskedBatch:
    """ShardExamples → MaskedBatch, each side padded to its longest sequence in the batch.

    `masked[i]` is (fine_input, fine_labels, coarse_input, coarse_labels) of example i (pre-training: a
    trainer.masking_strategies.Corruption's); without it the inputs are the ids themselves and every label is IGNORE
    (fine-tuning, evaluation). sop_labels: one per example (IGNORE where it has none), or None without SOP."""
    if not examples:
        raise ValueError("a batch needs at least one example")
    size = len(examples)
    fine_len = max(len(ex.fine_ids) for ex in examples)
    coarse_len = max(len(ex.coarse_ids) for ex in examples)
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
    nsp = [ex.nsp_label if ex.nsp_label >= 0 else IGNORE for ex in examples]
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
        sop_labels=None if sop_labels is None else torch.tensor(sop_labels, dtype=torch.long),
    )


class MaskingCollator:
    """ShardExamples → MaskedBatch: corrupts each example with example_rng(seed, epoch, key, draw) as `corruption`
    says (a trainer.masking_strategies.Corruption: strategy, objective, SOP), pads each side to its longest sequence
    in the batch. Picklable, so it runs inside DataLoader worker processes."""

    def __init__(self, corruption, seed: int, epoch: int) -> None:
        self.corruption, self.seed, self.epoch = corruption, seed, epoch

    def __call__(self, examples: list[ShardExample]) -> MaskedBatch:
        done = [self.corruption(ex, example_rng(self.seed, self.epoch, ex.key, ex.draw)) for ex in examples]
        sop = [label for _, _, label in done] if self.corruption.sop else None
        return pad_examples([ex for ex, _, _ in done], self.corruption.rules.spec, [m for _, m, _ in done], sop)
