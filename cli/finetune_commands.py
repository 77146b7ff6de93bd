"""`ambert finetune` and `ambert evaluate`: fine-tune a pre-trained run on labeled data and score it.

    ambert finetune --task classify --train data/labeled/zh_sentiment_train.tsv.gz --dev ..._dev.tsv.gz \\
        --test ..._test.tsv.gz --init out/run --out out/ft [--predict-from fine]   (fine: AMBERT-Single)
    ambert evaluate --model out/ft --data test.tsv.gz [--png confusion.png]
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from cli.common import console, fail
from trainer.config import VARIANTS  # torch-free


def finetune(
    train: Annotated[str, typer.Option(help="Training file: TSV or JSONL with label, text, optional text_b.")],
    dev: Annotated[str, typer.Option(help="Development file (picks the best epoch).")],
    init: Annotated[str, typer.Option(help="Pre-training run directory or one of its checkpoints.")],
    out: Annotated[str, typer.Option(help="Directory for the fine-tuned model, scores and plots.")],
    test: Annotated[str | None, typer.Option(help="Test file, scored with the best epoch.")] = None,
    task: Annotated[
        str, typer.Option(help="classify (TSV/JSONL: label, text, optional text_b) or span (SQuAD-format JSON).")
    ] = "classify",
    epochs: Annotated[int, typer.Option(help="Passes over the training file.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Examples per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (linear warm-up 10%, then decay).")] = 5e-5,
    max_seq_len: Annotated[int, typer.Option(help="Tokens per side; longer texts are cut.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the classifier init, dropout and data order.")] = 1,
    reg_lambda: Annotated[float, typer.Option(help="λ of the fine/coarse agreement regularizer.")] = 1.0,
    predict_from: Annotated[
        str, typer.Option(help="concat | fine | coarse: the classifier that predicts (fine = AMBERT-Single).")
    ] = "concat",
    doc_stride: Annotated[int, typer.Option(help="span: step between context windows (fine tokens).")] = 64,
    max_answer_len: Annotated[int, typer.Option(help="span: longest answer (fine tokens).")] = 30,
):
    """Fine-tune AMBERT (or a variant) for classification: three heads + agreement regularizer (paper eq. 2)."""
    if task not in ("classify", "span"):
        fail(f"--task {task!r} is not one of classify, span")
    from trainer.checkpoint import CheckpointError
    from trainer.finetune.loop import FinetuneConfig, finetune_classifier
    from trainer.finetune.readers import LabeledDataError
    from trainer.finetune.span_windows import SquadError

    tuning = FinetuneConfig(
        task=task,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        max_seq_len=max_seq_len,
        seed=seed,
        reg_lambda=reg_lambda,
        predict_from=predict_from,
        doc_stride=doc_stride,
        max_answer_len=max_answer_len,
    )
    if task == "span":
        from trainer.finetune.span import finetune_span

        try:
            record = finetune_span(
                train,
                dev,
                init,
                out,
                tuning,
                report=lambda r: console.print(
                    f"epoch {r['epoch']}: loss {r['loss']:.4f}, dev EM {r['exact_match']:.2f}, F1 {r['f1']:.2f}",
                    highlight=False,
                ),
            )
        except (CheckpointError, SquadError, ValueError, OSError) as error:
            fail(str(error))
        dev_scores = record["scores"]["dev"]
        console.print(
            f"[bold]ambert finetune --task span[/]: dev EM {dev_scores['exact_match']:.2f}, "
            f"F1 {dev_scores['f1']:.2f}; {out} (finetune.json, dev_predictions.json)",
            highlight=False,
        )
        return

    def show(record: dict) -> None:
        console.print(
            f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}, "
            f"dev accuracy {record['dev_accuracy']:.4f}",
            highlight=False,
        )

    try:
        record = finetune_classifier(train, dev, init, out, tuning, test_path=test, report=show)
    except (CheckpointError, LabeledDataError, ValueError, OSError) as error:
        fail(str(error))
    for split, scores in record["scores"].items():
        console.print(
            f"[bold]{split}[/] ({record['head']} head, best epoch {record['best_epoch']}): accuracy "
            f"{scores['accuracy']:.4f}, macro-F1 {scores['macro_f1']:.4f}",
            highlight=False,
        )
    console.print(f"[bold]ambert finetune[/]: {out} (finetune.json, confusion-*.png)", highlight=False)


def evaluate(
    model: Annotated[str, typer.Option(help="Directory written by `ambert finetune`.")],
    data: Annotated[str, typer.Option(help="Labeled file to score (TSV or JSONL).")],
    predict_from: Annotated[
        str | None, typer.Option(help="concat | fine | coarse (default: the head chosen at fine-tuning).")
    ] = None,
    png: Annotated[str | None, typer.Option(help="Confusion matrix PNG (default MODEL/confusion-eval.png).")] = None,
    json_out: Annotated[str | None, typer.Option("--json", help="Also write the scores as JSON here.")] = None,
):
    """Accuracy, macro-F1 and a confusion matrix of a fine-tuned classifier on a labeled file."""
    from trainer.finetune.loop import evaluate_classifier
    from trainer.finetune.readers import LabeledDataError

    target = png or os.path.join(model, "confusion-eval.png")
    try:
        scores = evaluate_classifier(model, data, predict_from, target)
    except (LabeledDataError, ValueError, OSError) as error:
        fail(str(error))
    if json_out:
        with open(json_out, "w", encoding="utf-8") as handle:
            json.dump(scores, handle, indent=2, ensure_ascii=False)
    console.print(
        f"{data} ({scores['head']} head): accuracy {scores['accuracy']:.4f}, "
        f"macro-F1 {scores['macro_f1']:.4f}; confusion matrix {target}",
        highlight=False,
    )


def ablation(
    out: Annotated[str, typer.Option(help="Directory for pre-training runs, fine-tuned models and results.")],
    zh_shards: Annotated[str | None, typer.Option(help="Chinese shard set.")] = None,
    zh_vocab: Annotated[str | None, typer.Option(help="Its vocab artifact.")] = None,
    zh_labeled: Annotated[
        str | None, typer.Option(help="Prefix of PREFIX_train/dev/test.tsv.gz, e.g. data/labeled/zh_sentiment.")
    ] = None,
    en_shards: Annotated[str | None, typer.Option(help="English shard set.")] = None,
    en_vocab: Annotated[str | None, typer.Option(help="Its vocab artifact.")] = None,
    en_labeled: Annotated[str | None, typer.Option(help="Prefix of the English labeled files.")] = None,
    steps: Annotated[int, typer.Option(help="Pre-training steps of every variant (the same budget).")] = 300,
    seeds: Annotated[int, typer.Option(help="Fine-tuning seeds per model.")] = 3,
    epochs: Annotated[int, typer.Option(help="Fine-tuning epochs.")] = 3,
    lr: Annotated[float, typer.Option(help="Fine-tuning learning rate.")] = 1e-3,
    variants: Annotated[str, typer.Option(help="Comma-separated variants.")] = ",".join(VARIANTS),
    pretrain: Annotated[
        list[str] | None, typer.Option(help="Pre-training override (repeatable), e.g. optim.lr=1e-3.")
    ] = None,
):
    """The paper's ablation at small scale: tiny pre-training of each variant, fine-tuning, mean ± std over seeds."""
    from trainer.checkpoint import CheckpointError
    from trainer.config import ConfigError
    from trainer.finetune.ablation import Language, run_ablation
    from trainer.finetune.loop import FinetuneConfig
    from trainer.finetune.readers import LabeledDataError
    from trainer.train import TrainError
    from vocab.shard_set import ShardSetError

    languages = []
    given_languages = (("zh", zh_shards, zh_vocab, zh_labeled), ("en", en_shards, en_vocab, en_labeled))
    for name, shards, vocab, labeled in given_languages:
        given = [shards, vocab, labeled]
        if any(given) and not all(given):
            fail(f"--{name}-shards, --{name}-vocab and --{name}-labeled go together")
        if all(given):
            languages.append(Language(name, shards, vocab, labeled))
    if not languages:
        fail("give at least one language: --zh-shards/--zh-vocab/--zh-labeled or the --en-* ones")
    tuning = FinetuneConfig(epochs=epochs, lr=lr)

    def show(line: str) -> None:
        console.print(line, highlight=False)

    try:
        results = run_ablation(
            languages,
            out,
            steps=steps,
            seeds=seeds,
            pretrain_overrides=list(pretrain or []),
            tuning=tuning,
            variants=tuple(v.strip() for v in variants.split(",")),
            report=show,
        )
    except (CheckpointError, ConfigError, LabeledDataError, ShardSetError, TrainError, ValueError, OSError) as error:
        fail(str(error))
    from trainer.finetune.ablation import results_markdown

    console.print(results_markdown(results), highlight=False, markup=False)
    console.print(f"[bold]ambert ablation[/]: {out}/results.md, results.png, results.json", highlight=False)
