"""The pre-training heads beside MLM: PERT's pointer head and the sentence-pair heads (NSP, SOP).

    head = PointerHead(cfg)                                   # model.objective=perm (trainer/model.py builds it)
    summed, correct, count = head.loss(hidden, mask, targets)  # targets: source positions, IGNORE elsewhere
    summed, count = pair_loss(pair_head(pooled), labels)      # NSP or SOP: cross-entropy where labelled

PERT (Cui et al. 2022) permutes the chosen positions of the input and predicts, for each, the position its token
came from: a pointer over the sequence's real positions (scaled dot products of a query and a key projection of the
last hidden states), the loss on the chosen positions only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.batch import IGNORE
from trainer.config import ModelConfig


class PointerHead(nn.Module):
    """For each chosen position p: logits over the positions q of its sequence, query(h_p) · key(h_q) / √H."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.scale = 1 / math.sqrt(cfg.hidden_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """(N, L) float logits at the N positions where `where` (B, L) is True; padding (mask False) never chosen."""
        scores = torch.matmul(self.query(hidden), self.key(hidden).transpose(1, 2)).float() * self.scale  # (B, L, L)
        scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
        return scores[where]

    def loss(
        self, hidden: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(summed cross-entropy over the chosen positions, correct pointers, chosen positions)."""
        where = targets != IGNORE
        logits = self(hidden, mask, where)
        wanted = targets[where]
        loss = F.cross_entropy(logits, wanted, reduction="sum")
        return loss, (logits.argmax(-1) == wanted).sum().detach(), where.sum().detach()


def pair_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed cross-entropy of a sentence-pair head (NSP, SOP) over the examples that have a label, their count)."""
    summed = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE, reduction="sum")
    return summed, (labels != IGNORE).sum().detach()
