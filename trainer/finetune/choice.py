"""Multiple choice (RACE, C3, ChID-style cloze): each (context, question + option) is encoded as a pair, the heads
give one score per option, softmax over the options; cross-entropy per head plus λ‖p_fine − p_coarse‖² (paper eq. 2).

Examples may have different numbers of options (C3 has 2-4): missing options get a score of -10⁴ in the batch.
Score: accuracy over examples. Used by trainer.finetune.loop.finetune_sequence as `TASK`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainer.finetune.classify import ClassifyTask, classification_loss, head_outputs

MISSING = -1e4  # the score of an option an example does not have


@dataclass(frozen=True)
class ChoiceExample:
    """One question over a context with its options; label: the index of the right option (-1 when unknown)."""

    context: str
    question: str
    options: tuple[str, ...]
    label: int
    id: str = ""
    line: int = 0


def encode_choices(tokenizer, examples: list[ChoiceExample], max_seq_len: int, split: str = "train") -> list[tuple]:
    """Per example a tuple of ShardExamples [CLS] context [SEP] question option [SEP], one per option, each cut to
    ≤ max_seq_len tokens per side (the longer segment, usually the context, loses its last coarse tokens first)."""
    from trainer.finetune.readers import truncate_aligned

    encoded = []
    for number, example in enumerate(examples):
        encoded.append(
            tuple(
                truncate_aligned(
                    tokenizer.encode_pair(example.context, f"{example.question} {option}".strip()),
                    max_seq_len,
                    key=f"{split}-{number}-{k}",
                )
                for k, option in enumerate(example.options)
            )
        )
    return encoded


def option_scores(flat: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """(Σ counts, 1) scores → (B, max count), MISSING where an example has fewer options."""
    scores = flat.new_full((len(counts), max(counts)), MISSING)
    rows = torch.repeat_interleave(
        torch.arange(len(counts), device=flat.device), torch.tensor(counts, device=flat.device)
    )
    starts = torch.tensor([0, *counts[:-1]], device=flat.device).cumsum(0)
    columns = torch.arange(len(rows), device=flat.device) - starts[rows]
    scores[rows, columns] = flat.squeeze(-1).to(scores.dtype)
    return scores


class ChoiceTask(ClassifyTask):
    name = "choice"
    main_metric = "accuracy"

    @staticmethod
    def labels_of(rows: dict[str, list]) -> None:
        for split, split_rows in rows.items():
            for row in split_rows:
                if not 0 <= row.label < len(row.options):
                    raise ValueError(f"{split} example {row.id or row.line}: answer {row.label} is not an option index")
        return None

    @staticmethod
    def num_outputs(labels) -> int:
        return 1

    @staticmethod
    def encode(tokenizer, rows: list, max_seq_len: int, split: str) -> list:
        return encode_choices(tokenizer, rows, max_seq_len, split)

    @staticmethod
    def gold(rows: list, labels=None) -> list[int]:
        return [row.label for row in rows]

    @staticmethod
    def logits(classifier, examples: list, spec, device) -> dict[str, torch.Tensor]:
        from trainer.masking import pad_examples

        counts = [len(options) for options in examples]
        flat = classifier(pad_examples([option for options in examples for option in options], spec).to(device))
        return {head: option_scores(scores, counts) for head, scores in flat.items()}

    loss = staticmethod(classification_loss)

    @staticmethod
    def predict(classifier, examples, spec, head, batch_size: int = 64, precision: str = "fp32") -> list[int]:
        counts = [len(options) for options in examples]
        flat = head_outputs(
            classifier, [option for options in examples for option in options], spec, head, batch_size, precision
        )
        return option_scores(flat, counts).argmax(-1).tolist() if counts else []

    @staticmethod
    def score(gold: list[int], predicted: list[int], labels=None, positive=None) -> dict:
        from trainer.finetune.metrics import accuracy

        return {"accuracy": accuracy(gold, predicted), "count": len(gold)}


TASK = ChoiceTask()
