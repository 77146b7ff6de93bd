"""The batch every trainer stage passes around: padded fine and coarse sides with MLM labels.

    batch = collator(examples)            # trainer/masking.py builds it (pre-training)
    out = model(batch)                    # trainer/model.py consumes it
    batch.to(device)

Fine and coarse sides are padded separately: by pad_examples to the longest sequence of each side (fine-tuning),
by the pre-training collator to fixed lengths, with each side's MLM targets as a flat list of prediction slots
(*_mlm_index / *_mlm_labels / *_mlm_weight, (N,), N from a few buckets) and the plan that packs the sequences
into the rows the shared encoder reads (packed_*). Labels are -100 where nothing is predicted (unmasked tokens,
padding, no NSP or SOP).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

IGNORE = -100  # label value ignored by cross-entropy


@dataclass
class MaskedBatch:
    fine_ids: torch.Tensor  # (B, Lf) long, after masking
    fine_type: torch.Tensor  # (B, Lf) long, segment A = 0 / B = 1
    fine_mask: torch.Tensor  # (B, Lf) bool, True at real tokens, False at padding
    fine_labels: torch.Tensor  # (B, Lf) long at chosen positions: the original id (mlm, mac) or, for perm, the
    # position the token now there came from; IGNORE elsewhere
    coarse_ids: torch.Tensor  # (B, Lc)
    coarse_type: torch.Tensor  # (B, Lc)
    coarse_mask: torch.Tensor  # (B, Lc)
    coarse_labels: torch.Tensor  # (B, Lc)
    align: torch.Tensor  # (B, Lc, 2) long: coarse j covers fine align[j,0]:align[j,1]; (0, 0) at padding
    nsp_labels: torch.Tensor  # (B,) long: 1 random next segment, 0 actual next, IGNORE without NSP
    keys: list[str]  # sample keys, for debugging and data-position checks
    sop_labels: torch.Tensor | None = None  # (B,) long: 1 segments swapped, 0 in order, IGNORE; None without SOP
    # pre-training only (trainer.masking.MaskingCollator); None from pad_examples
    fine_mlm_index: torch.Tensor | None = None  # (N,) long: positions predicted, flat in (B·Lf) (0 in unused slots)
    fine_mlm_labels: torch.Tensor | None = None  # (N,) long: their original ids, IGNORE in unused slots
    fine_mlm_weight: torch.Tensor | None = None  # (N,) float: 1 in used slots, 0 in unused ones
    coarse_mlm_index: torch.Tensor | None = None
    coarse_mlm_labels: torch.Tensor | None = None
    coarse_mlm_weight: torch.Tensor | None = None
    capped: torch.Tensor | None = None  # (2,) long: masked (fine, coarse) positions left unmasked over the budget
    # the packing plan of ambert and hybrid (trainer.packing.plan_packing): (rows, R) and (B, Lf) / (B, Lc) long
    packed_source: torch.Tensor | None = None
    packed_segment: torch.Tensor | None = None
    packed_position: torch.Tensor | None = None
    fine_packed_at: torch.Tensor | None = None
    coarse_packed_at: torch.Tensor | None = None

    def _map_tensors(self, change) -> MaskedBatch:
        return dataclasses.replace(
            self,
            **{
                f.name: change(getattr(self, f.name))
                for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), torch.Tensor)
            },
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> MaskedBatch:
        return self._map_tensors(lambda tensor: tensor.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> MaskedBatch:
        """Page-locked copies (DataLoader(pin_memory=True) calls this), so .to("cuda", non_blocking=True) overlaps."""
        return self._map_tensors(torch.Tensor.pin_memory)

    def packing_plan(self) -> dict[str, torch.Tensor] | None:
        """The packed_* fields as the model's `plan`, or None when the collator made none."""
        if self.packed_source is None:
            return None
        names = ("packed_source", "packed_segment", "packed_position", "fine_packed_at", "coarse_packed_at")
        return {name: getattr(self, name) for name in names}

    def loss_totals(self) -> torch.Tensor:
        """(fine, coarse, nsp, sop) float64: what each part of the loss sums over in this batch (trainer.model.PARTS;
        predicted positions of each side, from the MLM weights or, for perm, the dense labels; labelled examples of
        NSP and SOP). Summed over a step's micro-batches and ranks, they normalize its loss once."""

        def side(weight: torch.Tensor | None, labels: torch.Tensor) -> torch.Tensor:
            return weight.sum() if weight is not None else (labels != IGNORE).sum()

        sop = self.sop_labels if self.sop_labels is not None else self.nsp_labels.new_full((1,), IGNORE)
        counts = [
            side(self.fine_mlm_weight, self.fine_labels),
            side(self.coarse_mlm_weight, self.coarse_labels),
            (self.nsp_labels != IGNORE).sum(),
            (sop != IGNORE).sum(),
        ]
        return torch.stack([count.to(torch.float64) for count in counts])

    def __len__(self) -> int:
        """Examples in the batch (filler rows that pad it to a fixed number of rows do not count)."""
        return len(self.keys)
