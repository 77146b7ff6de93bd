"""Regression (STS-B and other similarity scores): one output per head, mean squared error per head plus
λ · (ŷ_fine − ŷ_coarse)² (the agreement regularizer of paper eq. 2 on the predicted values).

Labels are numbers (the label column / field); scores: Pearson, Spearman, MSE (main metric: Pearson).
Used by trainer.finetune.loop.finetune_sequence as `TASK`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainer.finetune.classify import ClassifyTask, head_outputs


def regression_loss(outputs: dict[str, torch.Tensor], targets: torch.Tensor, reg_lambda: float) -> torch.Tensor:
    """Σ_heads MSE(ŷ_head, y) + λ · mean_batch (ŷ_fine − ŷ_coarse)² (when both sides exist); outputs (B, 1)."""
    values = {head: output.float().squeeze(-1) for head, output in outputs.items()}
    loss = sum(F.mse_loss(value, targets) for value in values.values())
    if "fine" in values and "coarse" in values and reg_lambda:
        loss = loss + reg_lambda * (values["fine"] - values["coarse"]).pow(2).mean()
    return loss


class RegressTask(ClassifyTask):
    name = "regress"
    main_metric = "pearson"

    @staticmethod
    def labels_of(rows: dict[str, list]) -> None:
        for split_rows in rows.values():
            RegressTask.gold(split_rows, None)  # every label a number, checked before training starts
        return None

    @staticmethod
    def num_outputs(labels) -> int:
        return 1

    @staticmethod
    def gold(rows: list, labels=None) -> list[float]:
        values = []
        for row in rows:
            try:
                values.append(float(row.label))
            except ValueError:
                raise ValueError(f"line {row.line}: regression label {row.label!r} is not a number") from None
        return values

    @staticmethod
    def targets(gold: list, device) -> torch.Tensor:
        return torch.tensor(gold, dtype=torch.float32, device=device)

    loss = staticmethod(regression_loss)

    @staticmethod
    def predict(classifier, examples, spec, head, batch_size: int = 64, precision: str = "fp32") -> list[float]:
        return head_outputs(classifier, examples, spec, head, batch_size, precision).squeeze(-1).tolist()

    @staticmethod
    def score(gold: list[float], predicted: list[float], labels=None, positive=None) -> dict:
        from trainer.finetune.metrics import regression_report

        return regression_report(gold, predicted)


TASK = RegressTask()
