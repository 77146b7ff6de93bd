"""`ambert finetune`, `evaluate` and `ablation`: fine-tune a pre-trained run on labeled data, score it, compare models.

    ambert finetune --task classify --train data/labeled/zh_sentiment_train.tsv.gz --dev ..._dev.tsv.gz \\
        --test ..._test.tsv.gz --init out/run --out out/ft [--predict-from fine]   (fine: AMBERT-Single)
    ambert finetune --task glue/stsb --data glue_data/STS-B --init out/run --out out/stsb   (a named task)
    ambert evaluate --model out/ft --data test.tsv.gz [--png confusion.png] [--json scores.json]
Their options are the fields of trainer/finetune/config.py's dataclasses (cli/options.py makes them flags).
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from cli.common import console, fail
from cli.options import config_options
from trainer.finetune.config import AblationConfig, EvaluateConfig, FinetuneConfig  # torch-free


@config_options(FinetuneConfig)
def finetune(
    config: FinetuneConfig,
    init: Annotated[str, typer.Option(help="Pre-training run directory or one of its checkpoints.")],
    out: Annotated[str, typer.Option(help="Directory for the fine-tuned model, scores and plots.")],
    data: Annotated[str | None, typer.Option(help="A named task's directory (its own train/dev files).")] = None,
    train: Annotated[
        str | None, typer.Option(help="Training file: TSV/JSONL (classify, regress, choice), SQuAD JSON (span).")
    ] = None,
    dev: Annotated[str | None, typer.Option(help="Development file (picks the best epoch).")] = None,
    test: Annotated[str | None, typer.Option(help="Test file, scored with the best epoch.")] = None,
):
    """Fine-tune AMBERT (or a variant): three heads + agreement regularizer (paper eq. 2), for classification,
    regression, multiple choice or span extraction."""
    from trainer.checkpoint import CheckpointError
    from trainer.finetune.loop import finetune_task, task_files
    from trainer.finetune.readers import LabeledDataError
    from trainer.finetune.span_windows import SquadError

    def show(record: dict) -> None:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "score"))
        console.print(f"epoch {record['epoch']}: {scores}", highlight=False)

    try:
        record = finetune_task(config, init, out, task_files(config, data, train, dev, test), report=show)
    except (CheckpointError, LabeledDataError, SquadError, ValueError, OSError) as error:
        fail(str(error))
    for split, scores in record["scores"].items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if isinstance(v, float))
        console.print(
            f"[bold]{split}[/] ({record['head']} head, best epoch {record['best_epoch']}): {shown}", highlight=False
        )
    console.print(f"[bold]ambert finetune[/]: {out} (finetune.json, model.safetensors)", highlight=False)


@config_options(EvaluateConfig)
def evaluate(config: EvaluateConfig):
    """The task's metrics of a fine-tuned model on a file (classification: accuracy, macro-F1, Matthews, confusion
    matrix PNG; regression: Pearson/Spearman; choice: accuracy; span: EM/F1, SQuAD 2.0's HasAns/NoAns)."""
    from trainer.finetune.loop import FINETUNE_JSON, evaluate_task
    from trainer.finetune.readers import LabeledDataError
    from trainer.finetune.span_windows import SquadError

    target = config.png or os.path.join(config.model, "confusion-eval.png")
    if not os.path.exists(os.path.join(config.model, FINETUNE_JSON)):
        fail(f"{config.model} has no {FINETUNE_JSON}: pass a directory written by `ambert finetune`")
    try:
        scores = evaluate_task(config.model, config.data, config.predict_from, target)
    except (LabeledDataError, SquadError, ValueError, OSError) as error:
        fail(str(error))
    if config.json_out:
        with open(config.json_out, "w", encoding="utf-8") as handle:
            json.dump(scores, handle, indent=2, ensure_ascii=False)
    shown = ", ".join(f"{name} {value:.4f}" for name, value in scores.items() if isinstance(value, float))
    where = f"; confusion matrix {target}" if "confusion" in scores else ""
    console.print(f"{config.data} ({scores['head']} head): {shown}{where}", highlight=False)


@config_options(AblationConfig)
def ablation(config: AblationConfig):
    """The seeds' ablation at small scale: tiny pre-training of each model, fine-tuning, mean ± std over seeds."""
    from trainer.checkpoint import CheckpointError
    from trainer.config import ConfigError
    from trainer.finetune.ablation import run_ablation
    from trainer.finetune.readers import LabeledDataError
    from trainer.train import TrainError
    from vocab.artifact import ArtifactError
    from vocab.shard_set import ShardSetError

    def show(line: str) -> None:
        console.print(line, highlight=False)

    try:
        results = run_ablation(
            config.languages,
            config.out,
            steps=config.steps,
            seeds=config.seeds,
            pretrain_overrides=list(config.pretrain),
            tuning=config.tuning,
            models=config.model_keys,
            controls=config.controls,
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
    from trainer.finetune.ablation import results_table

    console.print("\n".join(results_table(results)), highlight=False, markup=False)
    console.print(f"[bold]ambert ablation[/]: {config.out}/results.md, results.png, results.json", highlight=False)
