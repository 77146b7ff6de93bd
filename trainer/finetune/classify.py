"""Classification, single texts and pairs (TNEWS, AFQMC, CMNLI, SST-2, MRPC, CoLA, …): label ids from the
training set, cross-entropy per head plus λ‖softmax(fine) − softmax(coarse)‖² (paper eq. 2).

Scores: accuracy, macro-F1, Matthews correlation (CoLA), a confusion matrix, and F1 of the positive class when
the task names one (MRPC, QQP). Used by trainer.finetune.loop.finetune_sequence as `TASK`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MAIN_METRIC = "accuracy"


def classification_loss(logits: dict[str, torch.Tensor], labels: torch.Tensor, reg_lambda: float) -> torch.Tensor:
    """Σ_heads cross-entropy + λ · mean_batch ‖softmax(fine) − softmax(coarse)‖² (when both sides exist)."""
    loss = sum(F.cross_entropy(head_logits.float(), labels) for head_logits in logits.values())
    if "fine" in logits and "coarse" in logits and reg_lambda:
        gap = logits["fine"].float().softmax(-1) - logits["coarse"].float().softmax(-1)  # (B, C)
        loss = loss + reg_lambda * gap.pow(2).sum(-1).mean()
    return loss


def heads_for(head: str) -> tuple[str, ...]:
    """The heads to run to predict from `head`: the concatenation needs both sides, fine alone only the fine one."""
    return ("fine", "coarse", "concat") if head == "concat" else (head,)


@torch.no_grad()
def head_outputs(classifier, examples: list, spec, head: str, batch_size: int = 64, precision: str = "fp32"):
    """(N, outputs) float logits of one head over `examples` (ShardExamples), in batches, in eval mode."""
    from trainer.finetune.loop import autocast, batches_of
    from trainer.masking import pad_examples

    classifier.eval()
    device = next(classifier.parameters()).device
    chunks = []
    for chunk in batches_of(examples, batch_size):
        with autocast(precision, device):
            chunks.append(classifier(pad_examples(chunk, spec).to(device), heads=heads_for(head))[head].float().cpu())
    return torch.cat(chunks) if chunks else torch.zeros(0, classifier.num_outputs)


def predict(classifier, examples: list, spec, head: str, batch_size: int = 64, precision: str = "fp32") -> list[int]:
    """Label ids predicted by one head (fine: AMBERT-Single, only the fine encoder runs)."""
    return head_outputs(classifier, examples, spec, head, batch_size, precision).argmax(-1).tolist()


class ClassifyTask:
    name = "classify"
    main_metric = MAIN_METRIC

    @staticmethod
    def labels_of(rows: dict[str, list]) -> list[str]:
        from trainer.finetune.readers import label_vocabulary

        labels = label_vocabulary(rows["train"])
        for split, split_rows in rows.items():
            unknown = sorted({row.label for row in split_rows} - set(labels))
            if unknown:
                raise ValueError(f"{split} set has labels {unknown[:5]} that the training set lacks ({labels})")
        return labels

    @staticmethod
    def num_outputs(labels) -> int:
        return len(labels)

    @staticmethod
    def encode(tokenizer, rows: list, max_seq_len: int, split: str) -> list:
        from trainer.finetune.readers import encode_labeled

        return encode_labeled(tokenizer, rows, max_seq_len, split)

    @staticmethod
    def gold(rows: list, labels: list[str]) -> list[int]:
        index = {label: i for i, label in enumerate(labels)}
        unknown = sorted({row.label for row in rows} - set(index))
        if unknown:
            raise ValueError(f"labels {unknown[:5]} are not among the classifier's labels {labels}")
        return [index[row.label] for row in rows]

    @staticmethod
    def targets(gold: list, device) -> torch.Tensor:
        return torch.tensor(gold, dtype=torch.long, device=device)

    @staticmethod
    def logits(classifier, examples: list, spec, device) -> dict[str, torch.Tensor]:
        from trainer.masking import pad_examples

        return classifier(pad_examples(examples, spec).to(device))

    loss = staticmethod(classification_loss)
    predict = staticmethod(predict)

    @staticmethod
    def score(gold: list[int], predicted: list[int], labels: list[str], positive: str | None = None) -> dict:
        from trainer.finetune.metrics import classification_report

        return classification_report([labels[i] for i in gold], [labels[i] for i in predicted], labels, positive)


TASK = ClassifyTask()
