"""The one fine-tuning loop and the sequence-level model every task type shares, and saving/loading what it tuned.

    ambert finetune --task classify --train train.tsv --dev dev.tsv --test test.tsv --init RUN --out FT
    ambert evaluate --model FT --data test.tsv          (the task's metrics, confusion matrix PNG)
SequenceClassifier puts linear heads on the pooled [CLS] states: for AMBERT (and combo) one on the fine side, one
on the coarse side and one on their concatenation, trained together with the agreement regularizer of paper eq. 2
(the task modules classify, regress, choice define the losses); prediction comes from the concatenation by default,
`--predict-from fine` is AMBERT-Single (fine encoder only). Single-sided variants (bert-fine, bert-coarse, hybrid)
train one head. `fit` runs the epochs (--grad-accum, --precision, best epoch kept on the CPU, a progress bar).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil

import torch
from torch import nn

from trainer.batch import MaskedBatch
from trainer.config import ModelConfig
from trainer.finetune.config import FinetuneConfig

TWO_SIDED = ("ambert", "combo")
PRECISIONS = ("fp32", "bf16", "fp16")
FINETUNE_JSON, WEIGHTS = "finetune.json", "model.safetensors"


def heads_of(variant: str) -> tuple[str, ...]:
    """The classifier heads a variant has: both sides and their concatenation, or its one side."""
    if variant in TWO_SIDED:
        return ("fine", "coarse", "concat")
    return ("coarse",) if variant == "bert-coarse" else ("fine",)  # hybrid: its first [CLS] is the fine one


def encoder_sides(heads: tuple[str, ...]) -> tuple[str, ...]:
    """The encoder sides that `heads` read (concat reads both; hybrid's encode reads both whatever it is asked)."""
    return tuple(side for side in ("fine", "coarse") if side in heads or "concat" in heads)


def linear_heads(heads: tuple[str, ...], hidden: int, outputs: int, model_config: ModelConfig) -> nn.ModuleDict:
    """One nn.Linear per head (concat: 2 x hidden inputs) to `outputs`, initialised as BERT's: N(0, initializer_range)
    weights, zero biases."""
    layers = nn.ModuleDict({head: nn.Linear(2 * hidden if head == "concat" else hidden, outputs) for head in heads})
    for layer in layers.values():
        nn.init.normal_(layer.weight, std=model_config.initializer_range)
        nn.init.zeros_(layer.bias)
    return layers


class SequenceClassifier(nn.Module):
    """A pre-trained encoder plus linear classifiers on the pooled [CLS] representations (as BERT does)."""

    def __init__(self, encoder: nn.Module, model_config: ModelConfig, num_labels: int, dropout: float):
        super().__init__()
        self.encoder = encoder
        self.variant = model_config.variant
        self.heads = heads_of(self.variant)
        self.num_outputs = num_labels
        self.dropout = nn.Dropout(dropout)
        self.classifiers = linear_heads(self.heads, model_config.hidden_size, num_labels, model_config)

    def forward(self, batch: MaskedBatch, heads: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """{head: logits (B, num_labels)}; `heads=("fine",)` runs the fine encoder only (AMBERT-Single)."""
        heads = heads or self.heads
        encoded = self.encoder.encode(
            batch.fine_ids,
            batch.fine_type,
            batch.fine_mask,
            batch.coarse_ids,
            batch.coarse_type,
            batch.coarse_mask,
            sides=encoder_sides(heads),
        )
        pooled = {"fine": encoded.fine_pooled, "coarse": encoded.coarse_pooled}
        if "concat" in heads:
            pooled["concat"] = torch.cat([pooled["fine"], pooled["coarse"]], dim=-1)  # (B, 2H)
        return {head: self.classifiers[head](self.dropout(pooled[head])) for head in heads}


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
    if record.get("task") == "span":
        raise ValueError(
            f"{directory} holds a span model, not a classifier: `ambert evaluate` scores it; --format hf exports "
            "classifiers only"
        )
    from trainer.finetune.tasks import task_kind

    outputs = task_kind(record.get("task", "classify")).num_outputs(record.get("labels"))
    classifier = SequenceClassifier(AmbertModel(model_config), model_config, outputs, tuning.dropout)
    load_model(classifier, os.path.join(directory, WEIGHTS))
    return classifier.eval(), record


def config_record(model_config: ModelConfig, tuning: FinetuneConfig) -> dict:
    return {"model": dataclasses.asdict(model_config), "finetune": dataclasses.asdict(tuning)}


def batches_of(examples: list, batch_size: int):
    for start in range(0, len(examples), batch_size):
        yield examples[start : start + batch_size]


def autocast(precision: str, device: torch.device):
    """The autocast context of --precision: bf16 / fp16 mixed precision, or nothing for fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def epoch_progress(total: int, description: str):
    """A progress bar over one epoch's optimizer steps on a terminal (stderr); silent when piped or under CI."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    bar = Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    return bar, bar.add_task(description, total=total)


def fit(model: nn.Module, num_train: int, step_loss, dev_score, tuning: FinetuneConfig, report=None):
    """The one fine-tuning loop of every task type: AdamW, linear warm-up and decay, --grad-accum micro-batches,
    --precision autocast (fp16 with a gradient scaler on a GPU), gradient clipping at 1.0, a progress bar per epoch.

    `step_loss(rows)` gives the loss of the training items `rows` (a list of indices); `dev_score()` the dev
    {"score": the number to maximise, ...} after each epoch. The best epoch's weights are kept as a CPU copy (never
    a second copy on the GPU) and loaded back at the end. Returns (best epoch, history)."""
    from trainer.model import parameter_groups
    from trainer.train import lr_lambda

    if tuning.grad_accum < 1:
        raise ValueError(f"--grad-accum {tuning.grad_accum} must be at least 1")
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(parameter_groups(model, tuning.weight_decay), lr=tuning.lr, eps=1e-6, fused=True)
    micro_steps = -(-num_train // tuning.batch_size)
    steps_per_epoch = -(-micro_steps // tuning.grad_accum)
    steps = tuning.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(int(tuning.warmup_ratio * steps), steps))
    scaler = torch.amp.GradScaler(device.type, enabled=tuning.precision == "fp16" and device.type == "cuda")
    best_score, best_state, best_epoch, history = -math.inf, None, 0, []
    for epoch in range(tuning.epochs):
        model.train()
        order = torch.randperm(num_train, generator=torch.Generator().manual_seed(tuning.seed * 1000 + epoch)).tolist()
        chunks = list(batches_of(order, tuning.batch_size))
        total = 0.0
        bar, task = epoch_progress(steps_per_epoch, f"epoch {epoch + 1}/{tuning.epochs}")
        with bar:
            for number, rows in enumerate(chunks):
                with autocast(tuning.precision, device):
                    loss = step_loss(rows)
                group = min(tuning.grad_accum, len(chunks) - number // tuning.grad_accum * tuning.grad_accum)
                scaler.scale(loss.float() / group).backward()  # the mean over the micro-batches of one step
                total += float(loss.detach())
                if (number + 1) % tuning.grad_accum == 0 or number + 1 == len(chunks):
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    scheduler.step()
                    bar.advance(task)
        scores = dev_score()
        history.append({"epoch": epoch + 1, "train_loss": total / max(len(chunks), 1), **scores})
        if report:
            report(history[-1])
        if scores["score"] > best_score:
            best_score, best_epoch = scores["score"], epoch + 1
            best_state = {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}
    model.load_state_dict(best_state)
    return best_epoch, history


def load_pretrained(init: str, tuning: FinetuneConfig):
    """(run directory, checkpoint, model config, tokenizer, masking spec, encoder with the checkpoint's weights)."""
    from trainer.checkpoint import load_weights, locate_run
    from trainer.config import read_config
    from trainer.masking import MaskingSpec
    from trainer.model import AmbertModel
    from vocab.multigrained import MultiGrainedTokenizer

    run_dir, checkpoint = locate_run(init)
    model_config = read_config(os.path.join(run_dir, "config.json")).model
    if tuning.max_seq_len > model_config.max_position:
        raise ValueError(
            f"--max-seq-len {tuning.max_seq_len} exceeds the model's {model_config.max_position} positions: "
            f"pass --max-seq-len {model_config.max_position} or less"
        )
    vocab_dir = os.path.join(run_dir, "vocab")
    torch.manual_seed(tuning.seed)
    encoder = AmbertModel(model_config)
    load_weights(checkpoint, encoder)
    tokenizer = MultiGrainedTokenizer.from_artifact(vocab_dir)
    return run_dir, checkpoint, model_config, tokenizer, MaskingSpec.from_artifact(vocab_dir), encoder


def finetune_sequence(
    kind,
    rows: dict[str, list],
    init: str,
    out: str,
    tuning: FinetuneConfig,
    report=None,
    positive: str | None = None,
) -> dict:
    """Fine-tune a sequence-level task (`kind`: trainer.finetune.classify / regress / choice's TASK) on the rows of
    "train", pick the epoch by "dev", score "dev" (and "test" when given). Writes OUT/model.safetensors,
    finetune.json (task, labels, configs, history, scores), vocab/ and, for classification, confusion-*.png."""
    run_dir, checkpoint, model_config, tokenizer, spec, encoder = load_pretrained(init, tuning)
    head = prediction_head(model_config.variant, tuning.predict_from)
    labels = kind.labels_of(rows)
    encoded = {
        split: kind.encode(tokenizer, split_rows, tuning.max_seq_len, split) for split, split_rows in rows.items()
    }
    gold = {split: kind.gold(split_rows, labels) for split, split_rows in rows.items()}
    classifier = SequenceClassifier(encoder, model_config, kind.num_outputs(labels), tuning.dropout)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # a GPU when there is one
    classifier.to(device)
    targets = kind.targets(gold["train"], device)

    def step_loss(indices):
        logits = kind.logits(classifier, [encoded["train"][i] for i in indices], spec, device)
        return kind.loss(logits, targets[torch.as_tensor(indices, device=device)], tuning.reg_lambda)

    def dev_score():
        predicted = kind.predict(classifier, encoded["dev"], spec, head, precision=tuning.precision)
        scores = kind.score(gold["dev"], predicted, labels, positive)
        return {"score": scores[kind.main_metric], f"dev_{kind.main_metric}": scores[kind.main_metric]}

    best_epoch, history = fit(classifier, len(encoded["train"]), step_loss, dev_score, tuning, report)
    classifier.cpu()  # saved and scored on the CPU: the same numbers on any machine
    record = {
        **config_record(model_config, tuning),
        "task": kind.name,
        "labels": labels,
        "positive": positive,
        "init": os.path.abspath(checkpoint),
        "best_epoch": best_epoch,
        "history": history,
        "head": head,
        "scores": {},
    }
    for split in [s for s in ("dev", "test") if s in encoded]:
        record["scores"][split] = kind.score(
            gold[split], kind.predict(classifier, encoded[split], spec, head), labels, positive
        )
    save_finetuned(out, classifier, record, run_dir)
    for split, scores in record["scores"].items():
        if "confusion" in scores:
            _plot_confusion(scores, scores["labels"], os.path.join(out, f"confusion-{split}.png"), f"{split} ({head})")
    return record


def finetune_classifier(
    train_path: str,
    dev_path: str,
    init: str,
    out: str,
    tuning: FinetuneConfig,
    test_path: str | None = None,
    report=None,
) -> dict:
    """Fine-tune a classifier from labeled files (TSV/JSONL: label, text, optional text_b); see finetune_sequence."""
    from trainer.finetune import classify
    from trainer.finetune.readers import read_labeled

    paths = {"train": train_path, "dev": dev_path, **({"test": test_path} if test_path else {})}
    return finetune_sequence(classify.TASK, {s: read_labeled(p) for s, p in paths.items()}, init, out, tuning, report)


def _plot_confusion(scores: dict, labels: list[str], path: str, title: str) -> None:
    import numpy as np

    from trainer.finetune.metrics import plot_confusion_matrix

    plot_confusion_matrix(np.asarray(scores["confusion"]), labels, path, title)


def evaluate_finetuned(
    directory: str, rows: list, predict_from: str | None = None, png_path: str | None = None, name: str = "eval"
) -> dict:
    """Scores of a model written by finetune_sequence on `rows` (read like its training rows): the task's
    metrics, the head, and a confusion matrix PNG for classification."""
    from trainer.finetune.tasks import task_kind
    from trainer.masking import MaskingSpec
    from vocab.multigrained import MultiGrainedTokenizer

    classifier, record = load_finetuned(directory)
    kind = task_kind(record.get("task", "classify"))
    head = prediction_head(classifier.variant, predict_from or record["head"])
    vocab_dir = os.path.join(directory, "vocab")
    labels = record.get("labels")
    examples = kind.encode(
        MultiGrainedTokenizer.from_artifact(vocab_dir), rows, record["finetune"]["max_seq_len"], "eval"
    )
    gold = kind.gold(rows, labels)
    predicted = kind.predict(classifier, examples, MaskingSpec.from_artifact(vocab_dir), head)
    scores = {**kind.score(gold, predicted, labels, record.get("positive")), "head": head}
    if png_path and "confusion" in scores:
        _plot_confusion(scores, scores["labels"], png_path, f"{name} ({head})")
    return scores


def task_reader(tuning: FinetuneConfig):
    """(kind, reader, positive class) of --task: a named benchmark task, or a generic kind reading --*-field."""
    from trainer.finetune.readers import choice_reader, labeled_reader, named_task, read_labeled

    if tuning.task not in ("classify", "regress", "choice", "span"):
        task = named_task(tuning.task)
        return task.kind, task.read, task.positive
    if tuning.task == "span":
        from trainer.finetune.span_windows import read_squad

        return "span", read_squad, None
    if tuning.task == "choice":
        fields = (tuning.context_field, tuning.question_field, tuning.options_field, tuning.label_field)
        return "choice", choice_reader(*fields), None
    if (tuning.text_field, tuning.text_b_field, tuning.label_field) == ("text", "text_b", "label"):
        return tuning.task, read_labeled, None  # the TSV/JSONL layout of read_labeled (text_b optional)
    return tuning.task, labeled_reader(tuning.text_field, tuning.text_b_field or None, tuning.label_field), None


def task_files(tuning: FinetuneConfig, data: str | None, train: str | None, dev: str | None, test: str | None):
    """{split: path}: a named task's files in --data DIR, or --train/--dev (and --test)."""
    from trainer.finetune.readers import named_task, named_task_files

    if data:
        if tuning.task in ("classify", "regress", "choice", "span"):
            raise ValueError(
                f"--data DIR goes with a named task (clue/tnews, glue/stsb, squad2, race, …), not --task "
                f"{tuning.task}: pass --train and --dev"
            )
        return named_task_files(named_task(tuning.task), data)
    if not (train and dev):
        raise ValueError("pass --train and --dev files (or --data DIR with a named --task)")
    return {"train": train, "dev": dev, **({"test": test} if test else {})}


def finetune_task(tuning: FinetuneConfig, init: str, out: str, files: dict[str, str], report=None) -> dict:
    """Fine-tune --task on {split: path}: span extraction, or a sequence task read by task_reader."""
    kind, read, positive = task_reader(tuning)
    if kind == "span":
        from trainer.finetune.span import finetune_span

        return finetune_span(files["train"], files["dev"], init, out, tuning, files.get("test"), report)
    from trainer.finetune.tasks import task_kind

    rows = {split: read(path) for split, path in files.items()}
    return finetune_sequence(task_kind(kind), rows, init, out, tuning, report, positive)


def evaluate_task(directory: str, data: str, predict_from: str | None = None, png_path: str | None = None) -> dict:
    """The task's metrics of a fine-tuned model on a file, or on the dev file of a named task's directory."""
    from trainer.finetune.readers import NAMED_TASKS

    with open(os.path.join(directory, FINETUNE_JSON), encoding="utf-8") as handle:
        record = json.load(handle)
    tuning = FinetuneConfig(**record["finetune"])
    if os.path.isdir(data) and tuning.task in NAMED_TASKS:  # a benchmark directory: its dev split
        dev = os.path.join(data, NAMED_TASKS[tuning.task].files["dev"])
        data = dev if os.path.exists(dev) else data
    kind, read, _ = task_reader(tuning)
    if kind == "span":
        from trainer.finetune.span import evaluate_span

        return evaluate_span(directory, data, predict_from)
    return evaluate_finetuned(directory, read(data), predict_from, png_path, os.path.basename(data))


def evaluate_classifier(
    directory: str, data_path: str, predict_from: str | None = None, png_path: str | None = None
) -> dict:
    """Scores of a fine-tuned classifier on a labeled file (accuracy, macro-F1, confusion matrix PNG)."""
    from trainer.finetune.readers import read_labeled

    return evaluate_finetuned(directory, read_labeled(data_path), predict_from, png_path, os.path.basename(data_path))


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
