"""Fine-tuning a pre-trained AMBERT (or variant) for classification and sentence pairs, and predicting with it.

    ambert finetune --task classify --train train.tsv --dev dev.tsv --test test.tsv --init RUN --out FT
    ambert evaluate --model FT --data test.tsv          (accuracy, macro-F1, confusion matrix PNG)
AMBERT's objective (paper eq. 2): cross-entropy of the fine [CLS] classifier, of the coarse [CLS] classifier and of
the classifier on their concatenation, plus λ‖ŷ_fine − ŷ_coarse‖² (agreement of the two predicted distributions).
Prediction comes from the concatenation by default; `--predict-from fine` is AMBERT-Single (fine encoder only).
Single-sided variants (bert-fine, bert-coarse, hybrid) train one classifier with plain cross-entropy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from trainer.batch import MaskedBatch
from trainer.config import ModelConfig

TWO_SIDED = ("ambert", "combo")
FINETUNE_JSON, WEIGHTS = "finetune.json", "model.safetensors"


@dataclass(frozen=True)
class FinetuneConfig:
    task: str = field(
        default="classify",
        metadata={"help": "classify (TSV/JSONL: label, text, optional text_b) or span (SQuAD-format JSON)."},
    )
    epochs: int = field(default=3, metadata={"help": "Passes over the training file."})
    batch_size: int = field(default=32, metadata={"help": "Examples per step."})
    lr: float = field(default=5e-5, metadata={"help": "Peak learning rate (linear warm-up, then decay)."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Share of the steps spent warming up."})
    weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW weight decay (not on biases and LayerNorm weights)."}
    )
    max_seq_len: int = field(default=128, metadata={"help": "Tokens per side; longer texts are cut."})
    seed: int = field(default=1, metadata={"help": "Seed of the classifier init, dropout and data order."})
    reg_lambda: float = field(
        default=1.0, metadata={"help": "λ of the fine/coarse agreement regularizer (paper eq. 2: 1.0; 0.0 for RACE)."}
    )
    predict_from: str = field(
        default="concat",
        metadata={"help": "concat | fine | coarse: the classifier that predicts (fine = AMBERT-Single)."},
    )
    dropout: float = field(default=0.1, metadata={"help": "Dropout of the classifier input."})
    doc_stride: int = field(default=64, metadata={"help": "span: step between context windows (fine tokens)."})
    max_answer_len: int = field(default=30, metadata={"help": "span: longest answer (fine tokens)."})


def heads_of(variant: str) -> tuple[str, ...]:
    """The classifier heads a variant has: both sides and their concatenation, or its one side."""
    if variant in TWO_SIDED:
        return ("fine", "coarse", "concat")
    return ("coarse",) if variant == "bert-coarse" else ("fine",)  # hybrid: its first [CLS] is the fine one


class SequenceClassifier(nn.Module):
    """A pre-trained encoder plus linear classifiers on the pooled [CLS] representations (as BERT does)."""

    def __init__(self, encoder: nn.Module, model_config: ModelConfig, num_labels: int, dropout: float):
        super().__init__()
        self.encoder = encoder
        self.variant = model_config.variant
        self.heads = heads_of(self.variant)
        hidden = model_config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.classifiers = nn.ModuleDict(
            {head: nn.Linear(2 * hidden if head == "concat" else hidden, num_labels) for head in self.heads}
        )
        for layer in self.classifiers.values():
            nn.init.normal_(layer.weight, std=model_config.initializer_range)
            nn.init.zeros_(layer.bias)

    def forward(self, batch: MaskedBatch, heads: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """{head: logits (B, num_labels)}; `heads=("fine",)` runs the fine encoder only (AMBERT-Single)."""
        heads = heads or self.heads
        sides = tuple(side for side in ("fine", "coarse") if side in heads or "concat" in heads)
        if self.variant == "hybrid":
            sides = ("fine", "coarse")  # one encoder over both sequences
        encoded = self.encoder.encode(
            batch.fine_ids,
            batch.fine_type,
            batch.fine_mask,
            batch.coarse_ids,
            batch.coarse_type,
            batch.coarse_mask,
            sides=sides,
        )
        pooled = {"fine": encoded.fine_pooled, "coarse": encoded.coarse_pooled}
        if "concat" in heads:
            pooled["concat"] = torch.cat([pooled["fine"], pooled["coarse"]], dim=-1)  # (B, 2H)
        return {head: self.classifiers[head](self.dropout(pooled[head])) for head in heads}


def classification_loss(logits: dict[str, torch.Tensor], labels: torch.Tensor, reg_lambda: float) -> torch.Tensor:
    """Σ_heads cross-entropy + λ · mean_batch ‖softmax(fine) − softmax(coarse)‖² (when both sides exist)."""
    loss = sum(F.cross_entropy(head_logits, labels) for head_logits in logits.values())
    if "fine" in logits and "coarse" in logits and reg_lambda:
        gap = logits["fine"].softmax(-1) - logits["coarse"].softmax(-1)  # (B, C)
        loss = loss + reg_lambda * gap.pow(2).sum(-1).mean()
    return loss


def prediction_head(variant: str, predict_from: str) -> str:
    heads = heads_of(variant)
    if predict_from in heads:
        return predict_from
    if len(heads) == 1:
        return heads[0]  # a single-sided model predicts from its one classifier
    raise ValueError(f"--predict-from {predict_from!r} is not one of {', '.join(heads)} for variant {variant}")


def save_finetuned(out: str, classifier: SequenceClassifier, record: dict, run_dir: str) -> None:
    """FT/model.safetensors + finetune.json (labels, configs, scores) + vocab/, written beside and moved in."""
    from safetensors.torch import save_model

    from trainer.staged_output import staged_directory

    with staged_directory(out) as staging:
        save_model(classifier, os.path.join(staging, WEIGHTS))
        with open(os.path.join(staging, FINETUNE_JSON), "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, ensure_ascii=False)
        shutil.copytree(os.path.join(run_dir, "vocab"), os.path.join(staging, "vocab"))


def load_finetuned(directory: str) -> tuple[SequenceClassifier, dict]:
    """(classifier in eval mode, its finetune.json) from a directory written by save_finetuned."""
    from safetensors.torch import load_model

    from trainer.model import AmbertModel

    path = os.path.join(directory, FINETUNE_JSON)
    if not os.path.exists(path):
        raise ValueError(f"{directory} has no {FINETUNE_JSON}: pass a directory written by `ambert finetune`")
    with open(path, encoding="utf-8") as handle:
        record = json.load(handle)
    model_config = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in record["model"].items()})
    tuning = FinetuneConfig(**record["finetune"])
    classifier = SequenceClassifier(AmbertModel(model_config), model_config, len(record["labels"]), tuning.dropout)
    load_model(classifier, os.path.join(directory, WEIGHTS))
    return classifier.eval(), record


def config_record(model_config: ModelConfig, tuning: FinetuneConfig) -> dict:
    return {"model": dataclasses.asdict(model_config), "finetune": dataclasses.asdict(tuning)}


def batches_of(examples: list, batch_size: int):
    for start in range(0, len(examples), batch_size):
        yield examples[start : start + batch_size]


@torch.no_grad()
def predict(
    classifier: SequenceClassifier,
    examples: list,
    spec,
    head: str,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> list[int]:
    """Label ids predicted by one head (fine: AMBERT-Single, only the fine encoder runs)."""
    from trainer.masking import pad_examples

    classifier.eval()
    device = device or next(classifier.parameters()).device
    heads = ("fine", "coarse", "concat") if head == "concat" else (head,)
    predicted = []
    for chunk in batches_of(examples, batch_size):
        logits = classifier(pad_examples(chunk, spec).to(device), heads=heads)[head]
        predicted.extend(logits.argmax(-1).tolist())
    return predicted


def finetune_classifier(
    train_path: str,
    dev_path: str,
    init: str,
    out: str,
    tuning: FinetuneConfig,
    test_path: str | None = None,
    report=None,
) -> dict:
    """Fine-tune from a pre-training run (or one of its checkpoints); keep the epoch with the best dev accuracy.

    Writes OUT/model.safetensors, finetune.json (labels, configs, dev/test scores), vocab/ and confusion PNGs.
    """
    from trainer.checkpoint import load_weights, locate_run
    from trainer.config import read_config
    from trainer.finetune.readers import encode_labeled, label_vocabulary, read_labeled
    from trainer.masking import MaskingSpec, pad_examples
    from trainer.model import AmbertModel, parameter_groups
    from trainer.train import lr_lambda
    from vocab.multigrained import MultiGrainedTokenizer

    run_dir, checkpoint = locate_run(init)
    model_config = read_config(os.path.join(run_dir, "config.json")).model
    if tuning.max_seq_len > model_config.max_position:
        raise ValueError(
            f"--max-seq-len {tuning.max_seq_len} exceeds the model's {model_config.max_position} positions"
        )
    head = prediction_head(model_config.variant, tuning.predict_from)
    vocab_dir = os.path.join(run_dir, "vocab")
    tokenizer = MultiGrainedTokenizer.from_artifact(vocab_dir)
    spec = MaskingSpec.from_artifact(vocab_dir)
    splits = {"train": read_labeled(train_path), "dev": read_labeled(dev_path)}
    if test_path:
        splits["test"] = read_labeled(test_path)
    labels = label_vocabulary(splits["train"])
    index = {label: i for i, label in enumerate(labels)}
    for split, rows in splits.items():
        unknown = sorted({row.label for row in rows} - set(index))
        if unknown:
            raise ValueError(f"{split} set has labels {unknown[:5]} that the training set lacks ({labels})")
    encoded = {split: encode_labeled(tokenizer, rows, tuning.max_seq_len, split) for split, rows in splits.items()}
    gold = {split: [index[row.label] for row in rows] for split, rows in splits.items()}

    torch.manual_seed(tuning.seed)
    encoder = AmbertModel(model_config)
    load_weights(checkpoint, encoder)
    classifier = SequenceClassifier(encoder, model_config, len(labels), tuning.dropout)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # a GPU when there is one
    classifier.to(device)
    optimizer = torch.optim.AdamW(parameter_groups(classifier, tuning.weight_decay), lr=tuning.lr, eps=1e-6)
    steps = tuning.epochs * -(-len(encoded["train"]) // tuning.batch_size)
    warmup = int(tuning.warmup_ratio * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup, steps))
    targets = torch.tensor(gold["train"], device=device)
    best = (-1.0, None, -1)
    history = []
    for epoch in range(tuning.epochs):
        classifier.train()
        shuffled = torch.Generator().manual_seed(tuning.seed * 1000 + epoch)
        order = torch.randperm(len(encoded["train"]), generator=shuffled).to(device)
        total, count = 0.0, 0
        for start in range(0, len(order), tuning.batch_size):
            rows = order[start : start + tuning.batch_size]
            batch = pad_examples([encoded["train"][i] for i in rows.tolist()], spec).to(device)
            loss = classification_loss(classifier(batch), targets[rows], tuning.reg_lambda)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(classifier.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total, count = total + float(loss.detach()), count + 1
        predicted = predict(classifier, encoded["dev"], spec, head)
        dev_accuracy = sum(p == g for p, g in zip(predicted, gold["dev"], strict=True)) / max(len(predicted), 1)
        history.append({"epoch": epoch + 1, "train_loss": total / max(count, 1), "dev_accuracy": dev_accuracy})
        if report:
            report(history[-1])
        if dev_accuracy > best[0]:
            best = (dev_accuracy, {k: v.detach().clone() for k, v in classifier.state_dict().items()}, epoch + 1)
    classifier.load_state_dict(best[1])
    classifier.cpu()  # saved and scored on the CPU: the same numbers on any machine
    record = {
        **config_record(model_config, tuning),
        "labels": labels,
        "init": os.path.abspath(checkpoint),
        "best_epoch": best[2],
        "history": history,
        "head": head,
        "scores": {},
    }
    for split in [s for s in ("dev", "test") if s in encoded]:
        record["scores"][split] = score_predictions(
            gold[split], predict(classifier, encoded[split], spec, head), labels
        )
    save_finetuned(out, classifier, record, run_dir)
    for split, scores in record["scores"].items():
        _plot_confusion(scores, labels, os.path.join(out, f"confusion-{split}.png"), f"{split} ({head})")
    return record


def score_predictions(gold: list[int], predicted: list[int], labels: list[str]) -> dict:
    from trainer.finetune.metrics import classification_report

    return classification_report([labels[i] for i in gold], [labels[i] for i in predicted], labels)


def _plot_confusion(scores: dict, labels: list[str], path: str, title: str) -> None:
    import numpy as np

    from trainer.finetune.metrics import plot_confusion_matrix

    plot_confusion_matrix(np.asarray(scores["confusion"]), labels, path, title)


def evaluate_classifier(
    directory: str, data_path: str, predict_from: str | None = None, png_path: str | None = None
) -> dict:
    """Scores of a fine-tuned classifier on a labeled file (accuracy, macro-F1, confusion matrix PNG)."""
    from trainer.finetune.readers import encode_labeled, read_labeled
    from trainer.masking import MaskingSpec
    from vocab.multigrained import MultiGrainedTokenizer

    classifier, record = load_finetuned(directory)
    head = prediction_head(classifier.variant, predict_from or record["head"])
    vocab_dir = os.path.join(directory, "vocab")
    rows = read_labeled(data_path)
    labels = record["labels"]
    unknown = sorted({row.label for row in rows} - set(labels))
    if unknown:
        raise ValueError(f"{data_path} has labels {unknown[:5]} the classifier does not know ({labels})")
    examples = encode_labeled(
        MultiGrainedTokenizer.from_artifact(vocab_dir), rows, record["finetune"]["max_seq_len"], "eval"
    )
    gold = [labels.index(row.label) for row in rows]
    scores = score_predictions(gold, predict(classifier, examples, MaskingSpec.from_artifact(vocab_dir), head), labels)
    scores["head"] = head
    if png_path:
        _plot_confusion(scores, labels, png_path, f"{os.path.basename(data_path)} ({head})")
    return scores


def export_hf_classifier(directory: str, out: str) -> None:
    """A fine-tuned classifier's fine encoder + fine head as a transformers BertForSequenceClassification directory.

    It predicts like `--predict-from fine` (AMBERT-Single); bert-fine models export their one head the same way.
    """
    from safetensors.torch import save_file

    from trainer.hf_interop import hf_config, hf_state_dict
    from trainer.staged_output import staged_directory

    classifier, record = load_finetuned(directory)
    if "fine" not in classifier.heads or classifier.variant == "hybrid":
        raise ValueError(
            f"{directory} is a {classifier.variant} classifier without a fine-only head; "
            "only ambert, combo and bert-fine classifiers export as BertForSequenceClassification"
        )
    labels = record["labels"]
    config = {
        **hf_config(classifier.encoder),
        "architectures": ["BertForSequenceClassification"],
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
        "num_labels": len(labels),
        "classifier_dropout": None,
    }
    head = classifier.classifiers["fine"]
    weights = {
        **{f"bert.{name}": tensor for name, tensor in hf_state_dict(classifier.encoder).items()},
        "classifier.weight": head.weight,
        "classifier.bias": head.bias,
    }
    with staged_directory(out) as staging:
        save_file(
            {name: tensor.detach().contiguous() for name, tensor in weights.items()},
            os.path.join(staging, "model.safetensors"),
            metadata={"format": "pt"},
        )
        with open(os.path.join(staging, "config.json"), "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2, ensure_ascii=False)
        for name in ("vocab.txt", "tokenizer.json"):
            shutil.copy(os.path.join(directory, "vocab", "fine", name), os.path.join(staging, name))
