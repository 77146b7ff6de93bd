"""Dynamic multi-grained masking for pre-training: choose coarse tokens, mask them and their fine tokens too.

    spec = MaskingSpec.from_artifact("run/vocab", mask_prob=0.15)
    batch = MaskingCollator(spec, seed, epoch)(examples)      # a trainer.batch.MaskedBatch

"The masked coarse-grained tokens are also masked as fine-grained tokens" (paper, section 4). The random choices
of an example depend only on (seed, epoch, sample key): the same in any worker, on any rank, after any resume.
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


def example_rng(seed: int, epoch: int, key: str) -> np.random.Generator:
    """The random generator that masks sample `key` in `epoch`: new choices every epoch, the same on every replay."""
    return np.random.default_rng(stable_seed("mask", seed, epoch, key))


def _random_ids(rng: np.random.Generator, count: int, vocab_size: int, specials: SpecialIds) -> np.ndarray:
    """`count` ids drawn uniformly from the vocabulary without its special tokens."""
    excluded = sorted({specials.pad, specials.cls, specials.sep, specials.mask, specials.unk})
    ids = rng.integers(0, vocab_size - len(excluded), size=count)
    for special in excluded:  # shift past each excluded id, in increasing order
        ids += ids >= special
    return ids


def _corrupt(
    ids: np.ndarray, positions: np.ndarray, specials: SpecialIds, vocab_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """BERT's 80/10/10 at `positions`: [MASK], a random non-special id, or unchanged. Returns (input, labels)."""
    labels = np.full(len(ids), IGNORE, dtype=np.int64)
    labels[positions] = ids[positions]
    masked = ids.copy()
    draw = rng.random(len(positions))
    masked[positions[draw < 0.8]] = specials.mask
    replaced = positions[(draw >= 0.8) & (draw < 0.9)]
    masked[replaced] = _random_ids(rng, len(replaced), vocab_size, specials)
    return masked, labels


def mask_example(
    example: ShardExample, spec: MaskingSpec, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(fine_input, fine_labels, coarse_input, coarse_labels), int64 arrays of the example's lengths.

    round(mask_prob × n) of the n coarse tokens that are not [CLS]/[SEP]/[PAD] are chosen (at least one when n ≥ 1,
    Python's round), and with each its fine tokens align[j,0]:align[j,1]; each side then gets 80/10/10 on its own.
    """
    fine = np.asarray(example.fine_ids, dtype=np.int64)
    coarse = np.asarray(example.coarse_ids, dtype=np.int64)
    candidates = np.flatnonzero(~np.isin(coarse, (spec.coarse.cls, spec.coarse.sep, spec.coarse.pad)))
    count = max(1, round(spec.mask_prob * len(candidates))) if len(candidates) else 0
    chosen = np.sort(rng.choice(candidates, size=count, replace=False))
    spans = [np.arange(start, end) for start, end in example.align[chosen]]
    fine_positions = np.concatenate(spans) if spans else np.zeros(0, dtype=np.int64)
    coarse_input, coarse_labels = _corrupt(coarse, chosen, spec.coarse, spec.coarse_vocab_size, rng)
    fine_input, fine_labels = _corrupt(fine, fine_positions, spec.fine, spec.fine_vocab_size, rng)
    return fine_input, fine_labels, coarse_input, coarse_labels


def pad_examples(
    examples: list[ShardExample],
    spec: MaskingSpec,
    masked: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> MaskedBatch:
    """ShardExamples → MaskedBatch, each side padded to its longest sequence in the batch.

    `masked[i]` is mask_example's output for example i (pre-training); without it the inputs are the ids themselves
    and every MLM label is IGNORE (fine-tuning, evaluation)."""
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
    )


class MaskingCollator:
    """ShardExamples → MaskedBatch: masks each example with example_rng(seed, epoch, key), pads each side to its
    longest sequence in the batch. Picklable, so it runs inside DataLoader worker processes."""

    def __init__(self, spec: MaskingSpec, seed: int, epoch: int) -> None:
        self.spec, self.seed, self.epoch = spec, seed, epoch

    def __call__(self, examples: list[ShardExample]) -> MaskedBatch:
        masked = [mask_example(ex, self.spec, example_rng(self.seed, self.epoch, ex.key)) for ex in examples]
        return pad_examples(examples, self.spec, masked)
