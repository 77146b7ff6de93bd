"""AMBERT and its variants in one file: a BERT encoder shared by fine- and coarse-grained token sequences.

    model = AmbertModel(ModelConfig(variant="ambert", ...)); out = model(batch)   # batch: trainer.batch.MaskedBatch
    out.loss.backward()                 # fine + coarse MLM (perm: pointer) (+ NSP, SOP); only at chosen positions
    enc = model.encode(fine_ids, fine_type, fine_mask, None, None, None, sides=("fine",))   # AMBERT-Single
Variants: ambert (one shared encoder, two word embeddings), combo (two encoders), hybrid (one encoder over the
concatenated sequences), bert-fine / bert-coarse (one granularity). Layout and names follow Hugging Face BertModel;
the encoder arithmetic lives in trainer/ambert_encoder.py, which the hf-ambert export runs too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trainer.ambert_encoder import AmbertBody, init_weights
from trainer.batch import MaskedBatch
from trainer.config import ModelConfig
from trainer.objectives import PointerHead, pair_loss
from trainer.packing import plan_packing


class MLMHead(nn.Module):
    """dense + GELU + LayerNorm, then the decoder tied to the granularity's word embeddings (+ bias)."""

    def __init__(self, cfg: ModelConfig, words: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(words.num_embeddings))
        self.words = words

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (N, H) → (N, V)
        return F.linear(self.LayerNorm(F.gelu(self.dense(hidden))), self.words.weight, self.bias)


@dataclass
class Encoded:
    fine_hidden: torch.Tensor | None  # (B, Lf, H)
    coarse_hidden: torch.Tensor | None  # (B, Lc, H)
    fine_pooled: torch.Tensor | None  # (B, H)
    coarse_pooled: torch.Tensor | None


PARTS = ("fine", "coarse", "nsp", "sop")  # the loss's parts: MLM (or pointer) per side, sentence-pair heads


@dataclass
class PretrainOutput:
    """Per part the model has (of PARTS): the summed loss and what it sums over (fine, coarse: predicted positions;
    nsp, sop: labelled examples); the correct MLM predictions per side. Sums, not means, so that the loss of a step
    over several micro-batches and ranks is normalized once, by the step's totals (normalized_loss)."""

    loss_sums: dict[str, torch.Tensor]
    counts: dict[str, torch.Tensor]  # long, no grad
    fine_correct: torch.Tensor
    coarse_correct: torch.Tensor

    def mean(self, part: str) -> torch.Tensor | None:
        """The part's mean loss over this batch (None when the model has no such part)."""
        if part not in self.loss_sums:
            return None
        return self.loss_sums[part] / self.counts[part].clamp(min=1)

    @property
    def loss(self) -> torch.Tensor:
        """This batch's loss: the sum of the parts' means."""
        return sum(self.mean(part) for part in self.loss_sums)

    def normalized_loss(self, totals: torch.Tensor) -> torch.Tensor:
        """Σ over parts of the summed loss / totals[part] (a tensor ordered as PARTS): the batch's share of a loss
        whose means are taken over a whole step (every micro-batch and rank), not per batch."""
        return sum(self.loss_sums[part] / totals[PARTS.index(part)].clamp(min=1) for part in self.loss_sums)

    fine_loss = property(lambda self: self.mean("fine"))
    coarse_loss = property(lambda self: self.mean("coarse"))
    nsp_loss = property(lambda self: self.mean("nsp"))
    sop_loss = property(lambda self: self.mean("sop"))

    def count(self, part: str) -> torch.Tensor:
        return self.counts.get(part, self.fine_correct.new_zeros(()))

    fine_count = property(lambda self: self.count("fine"))
    coarse_count = property(lambda self: self.count("coarse"))


def packed_plan(fine_mask: torch.Tensor, coarse_mask: torch.Tensor, joint: bool) -> dict[str, torch.Tensor]:
    """The packing plan of a batch that has none (fine-tuning, evaluation): rows as long as the longest piece, as
    many as needed (a host sync; the pre-training collator plans static shapes instead)."""
    fine, coarse = fine_mask.sum(1).cpu().numpy(), coarse_mask.sum(1).cpu().numpy()
    row_len = int((fine + coarse).max()) if joint else int(max(fine.max(), coarse.max()))
    plan = plan_packing(fine, coarse, (fine_mask.shape[1], coarse_mask.shape[1]), row_len, joint)
    return {name: torch.from_numpy(array).to(fine_mask.device) for name, array in plan.items()}


class AmbertModel(AmbertBody, nn.Module):
    """Word embeddings per granularity, the encoder(s) of `cfg.variant` (trainer/ambert_encoder.py), MLM heads (tied
    decoders), PERT pointer heads (objective perm), optional NSP and SOP heads (trainer/objectives.py)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.hidden_size = cfg.hidden_size
        self.build_body(cfg)
        self.mlm_heads = nn.ModuleDict({side: MLMHead(cfg, self.word_embeddings[side]) for side in self.sides})
        if cfg.objective == "perm":  # PERT: where each chosen token came from (the MLM heads stay, unused)
            self.pointer_heads = nn.ModuleDict({side: PointerHead(cfg) for side in self.sides})
        pooled_width = (2 if cfg.variant in ("ambert", "combo") else 1) * cfg.hidden_size
        self.nsp_head = nn.Linear(pooled_width, 2) if cfg.nsp else None
        self.sop_head = nn.Linear(pooled_width, 2) if cfg.sop else None
        self.apply(lambda module: init_weights(module, cfg.initializer_range))

    def encode(
        self,
        fine_ids,
        fine_type,
        fine_mask,
        coarse_ids=None,
        coarse_type=None,
        coarse_mask=None,
        sides: tuple[str, ...] = ("fine", "coarse"),
        pool: bool = True,
        plan: dict[str, torch.Tensor] | None = None,
        picked: dict[str, torch.Tensor] | None = None,
    ) -> Encoded:
        """Hidden states (and with `pool` the pooled [CLS]) of the requested sides that the variant has.

        `sides=("fine",)` on ambert or combo runs the fine path only (coarse inputs may be None). hybrid always reads
        both sequences as one, whatever `sides` asks, and returns both sides. ambert (both sides) and hybrid run the
        encoder once over the sequences packed into rows by `plan` (trainer.packing; the collator's keeps shapes
        static; without one, packed_plan makes one, a host sync). `picked`: per side, (N,) positions, flat in the
        side's (B·L), whose hidden states are all that is returned of it, (N, H) (the MLM targets: the packed rows
        are read there directly, with no copy of the whole side)."""
        inputs = {"fine": (fine_ids, fine_type, fine_mask), "coarse": (coarse_ids, coarse_type, coarse_mask)}
        variant = self.cfg.variant
        wanted = ("fine", "coarse") if variant == "hybrid" else [side for side in sides if side in self.sides]
        for side in wanted:
            if any(t is None for t in inputs[side]):
                raise ValueError(
                    f"{variant} encode of {side} needs {side}_ids, {side}_type and {side}_mask, got None"
                    + (" (hybrid reads fine and coarse as one sequence)" if variant == "hybrid" else "")
                )
        out = Encoded(None, None, None, None)
        if variant in ("ambert", "hybrid") and len(wanted) == 2:  # one encoder pass over both sides, packed
            if plan is None:
                plan = packed_plan(fine_mask, coarse_mask, joint=variant == "hybrid")
            width = self.hidden_size
            words = torch.cat(
                [
                    self.word_embeddings["fine"](fine_ids).flatten(0, 1),
                    self.word_embeddings["coarse"](coarse_ids).flatten(0, 1),
                    self.word_embeddings["fine"].weight.new_zeros(1, width),  # what padding positions read
                ]
            )
            types = torch.cat([fine_type.flatten(), coarse_type.flatten(), fine_type.new_zeros(1)])
            source, segment = plan["packed_source"], plan["packed_segment"]
            keep = (segment[:, :, None] == segment[:, None, :])[:, None]  # (rows, 1, R, R): within a sequence
            hidden = self.encoder(words[source], types[source], keep, plan["packed_position"]).flatten(0, 1)
            for side in wanted:
                at = plan[f"{side}_packed_at"]  # (B, L): where each position of the side sits in the packed rows
                if pool:
                    setattr(out, f"{side}_pooled", self.encoder.pool(hidden[at[:, 0]]))
                setattr(out, f"{side}_hidden", hidden[at if picked is None else at.flatten()[picked[side]]])
            return out
        for side in wanted:
            hidden, pooled = self.encode_side(side, *inputs[side], pool=pool)
            if picked is not None:
                hidden = hidden.flatten(0, 1)[picked[side]]
            setattr(out, f"{side}_hidden", hidden)
            setattr(out, f"{side}_pooled", pooled)
        return out

    def _mlm(self, side: str, picked: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor):
        """(summed cross-entropy, correct, count) over the batch's prediction slots: `picked` (N, H), the hidden
        states encode gathered there (a static gather before the vocabulary projection); zero-weight slots are
        computed and ignored."""
        logits = self.mlm_heads[side](picked).float()  # (N, V)
        losses = F.cross_entropy(logits, labels.clamp(min=0), reduction="none")
        correct = ((logits.argmax(-1) == labels) * weight).sum()
        return (losses * weight).sum(), correct.detach().long(), weight.sum().detach().long()

    def forward(self, batch: MaskedBatch) -> PretrainOutput:
        """Pre-training losses of a collated batch (trainer.masking.MaskingCollator: static shapes throughout)."""
        dense = self.cfg.objective == "perm"  # the pointer reads every position; MLM its budget of positions
        enc = self.encode(
            batch.fine_ids,
            batch.fine_type,
            batch.fine_mask,
            batch.coarse_ids,
            batch.coarse_type,
            batch.coarse_mask,
            pool=self.nsp_head is not None or self.sop_head is not None,  # the pooler feeds only NSP and SOP
            plan=batch.packing_plan(),
            picked=None if dense else {side: getattr(batch, f"{side}_mlm_index") for side in ("fine", "coarse")},
        )
        zero = torch.zeros((), device=batch.fine_ids.device, dtype=torch.long)
        sums, counts, correct = {}, {}, {"fine": zero, "coarse": zero}
        for side in self.sides:
            hidden = getattr(enc, f"{side}_hidden")
            if dense:  # where each chosen token came from
                mask, labels = getattr(batch, f"{side}_mask"), getattr(batch, f"{side}_labels")
                sums[side], correct[side], counts[side] = self.pointer_heads[side].loss(hidden, mask, labels)
            else:
                targets = (getattr(batch, f"{side}_mlm_{part}") for part in ("labels", "weight"))
                sums[side], correct[side], counts[side] = self._mlm(side, hidden, *targets)
        if self.nsp_head is not None or self.sop_head is not None:
            pooled = (
                torch.cat([enc.fine_pooled, enc.coarse_pooled], -1)
                if self.cfg.variant in ("ambert", "combo")
                else enc.fine_pooled
                if enc.fine_pooled is not None
                else enc.coarse_pooled
            )
            if self.nsp_head is not None:
                sums["nsp"], counts["nsp"] = pair_loss(self.nsp_head(pooled), batch.nsp_labels)
            if self.sop_head is not None and batch.sop_labels is not None:
                sums["sop"], counts["sop"] = pair_loss(self.sop_head(pooled), batch.sop_labels)
        return PretrainOutput(sums, counts, correct["fine"], correct["coarse"])


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups as in BERT: no weight decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    norms = {id(m.weight) for m in model.modules() if isinstance(m, nn.LayerNorm)}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if name.endswith("bias") or id(parameter) in norms else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
