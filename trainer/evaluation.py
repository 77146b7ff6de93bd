"""Held-out evaluation of pre-training: a run's own MLM loss (its masking, objective and batch shapes; no dropout) on
a shard set of the same vocab, never trained on.

    heldout = HeldOut.open(cfg, "out/shards-heldout", vocab_dir="out/run/vocab", rank=0, world_size=1)
    record = heldout.evaluate(model, precision)   # {"eval_loss", "eval_fine_loss", "eval_fine_ppl", ...}

The masks come from (EVAL_SEED, epoch 0, sample key) only, so every evaluation of the same weights scores the same
predictions: in a run every run.eval_every steps (`ambert train --eval-data`), after a resume, in the ablation
(trainer/finetune/ablation.py). Losses are means over every predicted position of the set (not per batch); the
last batch of each rank is filled with zero-weight rows (no sample dropped); ranks evaluate their shares and sum.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from trainer.config import TrainConfig
from vocab.shard_set import ShardSetError, read_manifest

EVAL_SEED = 0  # the held-out masks' seed, whatever the run's: evaluations of different runs score the same masks


def heldout_seq_len(shards: str, vocab_id: str, max_position: int) -> int:
    """The held-out set's max_seq_len, after refusing one built with another vocab or longer than the model reads."""
    try:
        manifest = read_manifest(shards, expect_vocab_id=vocab_id)
    except ShardSetError as error:
        raise ShardSetError(f"--eval-data (data.eval_data): {error}") from error
    seq_len = int(manifest["options"]["max_seq_len"])
    if seq_len > max_position:
        raise ShardSetError(
            f"--eval-data {shards} has sequences of up to {seq_len} tokens but model.max_position is {max_position}: "
            "re-shard the held-out set with --max-seq-len at most that"
        )
    return seq_len


@dataclass(frozen=True)
class HeldOut:
    """One rank's share of a held-out shard set, batched and masked as the run's training batches are."""

    shards: str
    loader: object  # trainer.data.PretrainingLoader
    max_batches: int | None  # None: the whole share

    @classmethod
    def open(
        cls,
        cfg: TrainConfig,
        shards: str,
        *,
        vocab_dir: str,
        rank: int,
        world_size: int,
        max_batches: int | None = None,
    ) -> HeldOut:
        """`cfg`: the run's configuration (sized: vocabulary sizes set); vocab_dir: its vocab artifact."""
        from trainer.data import pretraining_loader
        from trainer.masking import BatchShape, MaskingCollator
        from trainer.masking_strategies import Corruption
        from vocab.artifact import verify_artifact

        vocab_id = verify_artifact(vocab_dir)["id"]
        shape = BatchShape.from_config(cfg, heldout_seq_len(shards, vocab_id, cfg.model.max_position))
        loader = pretraining_loader(
            shards,
            expect_vocab_id=vocab_id,
            collator=MaskingCollator(Corruption.from_config(vocab_dir, cfg), EVAL_SEED, 0, shape),
            batch_size=cfg.data.batch_size,
            num_workers=cfg.data.num_workers,
            shuffle_buffer=1,  # no shuffling: the order does not change the sums
            seed=EVAL_SEED,
            epoch=0,
            rank=rank,
            world_size=world_size,
            strict=True,  # a held-out set is small and must be whole
            drop_last=False,  # the last batch keeps its shape with zero-weight filler rows
        )
        return cls(shards, loader, max_batches)

    def evaluate(self, model: torch.nn.Module, precision=None, ddp=None) -> dict[str, float]:
        """eval_loss (fine + coarse), and per side that the model has eval_{side}_loss, _acc, _ppl (exp of the loss)
        and _count (positions predicted), over every rank's share. precision: the run's trainer.train.Precision
        (None: fp32); ddp: trainer.train.Distributed (None: one process). The model is put back in its mode."""
        from trainer.train import Distributed, TrainStats

        ddp = ddp or Distributed(0, 1, next(model.parameters()).device)
        stats, batches, was_training = TrainStats(ddp.device), 0, model.training
        model.eval()
        try:
            with torch.no_grad():
                for batch in self.loader:
                    batch = batch.to(ddp.device, non_blocking=True)
                    with precision.autocast() if precision is not None else nullcontext():
                        output = model(batch)
                    stats.add(output, batch)
                    batches += 1
                    if batches == self.max_batches:
                        break
        finally:
            model.train(was_training)
        read = stats.read(ddp)
        sides = [side for side in ("fine", "coarse") if side in model.sides]
        record = {"eval_loss": sum(read[f"{side}_loss"] for side in sides)}
        for side in sides:
            for name in ("loss", "acc", "count"):
                record[f"eval_{side}_{name}"] = read[f"{side}_{name}"]
            record[f"eval_{side}_ppl"] = math.exp(min(read[f"{side}_loss"], 700.0))
        if not any(record[f"eval_{side}_count"] for side in sides):
            raise ShardSetError(
                f"the held-out set {self.shards} gave no masked position to evaluate: give a larger one"
            )
        return record
