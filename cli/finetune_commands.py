"""`ambert finetune` and `ambert evaluate`: fine-tune a pre-trained run on labeled data and score it.

    ambert finetune --task classify --train data/labeled/zh_sentiment_train.tsv.gz --dev ..._dev.tsv.gz \\
        --test ..._test.tsv.gz --init out/run --out out/ft [--predict-from fine]   (fine: AMBERT-Single)
    ambert finetune --task glue/stsb --data glue_data/STS-B --init out/run --out out/stsb   (a named task)
    ambert evaluate --model out/ft --data test.tsv.gz [--png confusion.png] [--json scores.json]
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from cli.common import console, fail
from trainer.finetune.ablation import MODELS  # torch-free


def finetune(
    init: Annotated[str, typer.Option(help="Pre-training run directory or one of its checkpoints.")],
    out: Annotated[str, typer.Option(help="Directory for the fine-tuned model, scores and plots.")],
    task: Annotated[
        str,
        typer.Option(
            help="classify | regress | choice | span (with --train/--dev files), or a named task read from --data "
            "DIR in its own format: clue/tnews clue/iflytek clue/afqmc clue/cmnli clue/csl clue/wsc clue/c3 "
            "clue/chid clue/cmrc2018 glue/cola glue/sst2 glue/mrpc glue/qqp glue/stsb glue/mnli glue/qnli glue/rte "
            "squad1 squad2 race."
        ),
    ] = "classify",
    data: Annotated[str | None, typer.Option(help="A named task's directory (its own train/dev files).")] = None,
    train: Annotated[
        str | None, typer.Option(help="Training file: TSV/JSONL (classify, regress, choice), SQuAD JSON (span).")
    ] = None,
    dev: Annotated[str | None, typer.Option(help="Development file (picks the best epoch).")] = None,
    test: Annotated[str | None, typer.Option(help="Test file, scored with the best epoch.")] = None,
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
    grad_accum: Annotated[int, typer.Option(help="Micro-batches of --batch-size per optimizer step.")] = 1,
    precision: Annotated[str, typer.Option(help="fp32 | bf16 | fp16: autocast mixed precision.")] = "fp32",
    text_field: Annotated[str, typer.Option(help="classify/regress: the text's field or column.")] = "text",
    text_b_field: Annotated[str, typer.Option(help="classify/regress: the second text's field ('' none).")] = "text_b",
    label_field: Annotated[str, typer.Option(help="The label's field (choice: the answer's index or text).")] = "label",
    context_field: Annotated[str, typer.Option(help="choice: the passage's field.")] = "context",
    question_field: Annotated[str, typer.Option(help="choice: the question's field ('' for a cloze).")] = "question",
    options_field: Annotated[str, typer.Option(help="choice: the field of the list of options.")] = "options",
):
    """Fine-tune AMBERT (or a variant): three heads + agreement regularizer (paper eq. 2), for classification,
    regression, multiple choice or span extraction."""
    from trainer.checkpoint import CheckpointError
    from trainer.finetune.loop import FinetuneConfig, finetune_task, task_files
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
        grad_accum=grad_accum,
        precision=precision,
        text_field=text_field,
        text_b_field=text_b_field,
        label_field=label_field,
        context_field=context_field,
        question_field=question_field,
        options_field=options_field,
    )

    def show(record: dict) -> None:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "score"))
        console.print(f"epoch {record['epoch']}: {scores}", highlight=False)

    try:
        record = finetune_task(tuning, init, out, task_files(tuning, data, train, dev, test), report=show)
    except (CheckpointError, LabeledDataError, SquadError, ValueError, OSError) as error:
        fail(str(error))
    for split, scores in record["scores"].items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if isinstance(v, float))
        console.print(
            f"[bold]{split}[/] ({record['head']} head, best epoch {record['best_epoch']}): {shown}", highlight=False
        )
    console.print(f"[bold]ambert finetune[/]: {out} (finetune.json, model.safetensors)", highlight=False)


def evaluate(
    model: Annotated[str, typer.Option(help="Directory written by `ambert finetune`.")],
    data: Annotated[
        str, typer.Option(help="File to score, read as at fine-tuning, or a named task's directory (its dev set).")
    ],
    predict_from: Annotated[
        str | None, typer.Option(help="concat | fine | coarse (default: the head chosen at fine-tuning).")
    ] = None,
    png: Annotated[str | None, typer.Option(help="Confusion matrix PNG (default MODEL/confusion-eval.png).")] = None,
    json_out: Annotated[str | None, typer.Option("--json", help="Also write the scores as JSON here.")] = None,
):
    """The task's metrics of a fine-tuned model on a file (classification: accuracy, macro-F1, Matthews, confusion
    matrix PNG; regression: Pearson/Spearman; choice: accuracy; span: EM/F1, SQuAD 2.0's HasAns/NoAns)."""
    from trainer.finetune.loop import FINETUNE_JSON, evaluate_task
    from trainer.finetune.readers import LabeledDataError
    from trainer.finetune.span_windows import SquadError

    target = png or os.path.join(model, "confusion-eval.png")
    if not os.path.exists(os.path.join(model, FINETUNE_JSON)):
        fail(f"{model} has no {FINETUNE_JSON}: pass a directory written by `ambert finetune`")
    try:
        scores = evaluate_task(model, data, predict_from, target)
    except (LabeledDataError, SquadError, ValueError, OSError) as error:
        fail(str(error))
    if json_out:
        with open(json_out, "w", encoding="utf-8") as handle:
            json.dump(scores, handle, indent=2, ensure_ascii=False)
    shown = ", ".join(f"{name} {value:.4f}" for name, value in scores.items() if isinstance(value, float))
    where = f"; confusion matrix {target}" if "confusion" in scores else ""
    console.print(f"{data} ({scores['head']} head): {shown}{where}", highlight=False)


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
    zh_heldout: Annotated[
        str | None, typer.Option(help="Chinese shard set (same vocab) never pre-trained on: held-out loss.")
    ] = None,
    en_heldout: Annotated[str | None, typer.Option(help="English held-out shard set (same vocab).")] = None,
    steps: Annotated[int, typer.Option(help="Pre-training steps of every variant (the same budget).")] = 300,
    seeds: Annotated[int, typer.Option(help="Fine-tuning seeds per model.")] = 3,
    epochs: Annotated[int, typer.Option(help="Fine-tuning epochs.")] = 3,
    lr: Annotated[float, typer.Option(help="Fine-tuning learning rate.")] = 1e-3,
    models: Annotated[
        str,
        typer.Option(
            help="Comma-separated models: bert (bert-fine + token), bert-wwm (+ word), macbert (+ ngram + mac + SOP; "
            "needs similar words), pert (+ ngram + perm), bert-coarse, ambert, combo, hybrid."
        ),
    ] = ",".join(MODELS),
    controls: Annotated[
        bool, typer.Option(help="Also fine-tune each architecture from random init (the no-pre-training control).")
    ] = True,
    pretrain: Annotated[
        list[str] | None, typer.Option(help="Pre-training override (repeatable), e.g. optim.lr=1e-3.")
    ] = None,
):
    """The seeds' ablation at small scale: tiny pre-training of each model, fine-tuning, mean ± std over seeds."""
    from trainer.checkpoint import CheckpointError
    from trainer.config import ConfigError
    from trainer.finetune.ablation import Language, run_ablation
    from trainer.finetune.loop import FinetuneConfig
    from trainer.finetune.readers import LabeledDataError
    from trainer.train import TrainError
    from vocab.artifact import ArtifactError
    from vocab.shard_set import ShardSetError

    languages = []
    given_languages = (
        ("zh", zh_shards, zh_vocab, zh_labeled, zh_heldout),
        ("en", en_shards, en_vocab, en_labeled, en_heldout),
    )
    for name, shards, vocab, labeled, heldout in given_languages:
        given = [shards, vocab, labeled]
        if any(given) and not all(given):
            fail(f"--{name}-shards, --{name}-vocab and --{name}-labeled go together")
        if heldout and not all(given):
            fail(f"--{name}-heldout needs --{name}-shards, --{name}-vocab and --{name}-labeled")
        if all(given):
            languages.append(Language(name, shards, vocab, labeled, heldout or ""))
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
            models=tuple(m.strip() for m in models.split(",")),
            controls=controls,
            report=show,
        )
    except (
        ArtifactError,
        CheckpointError,
        ConfigError,
        LabeledDataError,
        ShardSetError,
        TrainError,
        ValueError,
        OSError,
    ) as error:
        fail(str(error))
    from trainer.finetune.ablation import results_markdown

    console.print(results_markdown(results), highlight=False, markup=False)
    console.print(f"[bold]ambert ablation[/]: {out}/results.md, results.png, results.json", highlight=False)
