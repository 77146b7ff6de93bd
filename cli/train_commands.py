"""`ambert train`, `ambert export` and `ambert plot`: pre-training runs and what comes out of them.

    ambert train --data out/shards-en --vocab out/vocab-en --out out/run --preset tiny optim.max_steps=200
    ambert train --out out/run --resume              ambert train ... --nproc 2   (wraps torchrun)
    ambert train ... --eval-data out/shards-heldout  (eval_* metrics every run.eval_every steps)
    ambert export --format hf out/run out/hf-bert    ambert plot out/run
Torch is imported inside each command, so the rest of `ambert` stays light.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Annotated

import typer

from cli.common import console, fail


def _launch_torchrun(nproc: int) -> None:
    """Re-run this very command under torchrun with N local processes (gloo on CPU, NCCL on GPUs)."""
    import subprocess

    argv, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        argv.append(arg)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "--no-python",
        sys.argv[0],
        *argv,
    ]
    raise typer.Exit(code=subprocess.call(command))


@contextmanager
def training_progress(max_steps: int):
    """A rich progress bar on rank 0 at a terminal; otherwise one line per logged step (trainer.train.print_report)."""
    from trainer.train import print_report

    if not sys.stderr.isatty() or int(os.environ.get("RANK", 0)) != 0:
        yield print_report
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]ambert train[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
    ) as bar:
        task = bar.add_task("", total=max_steps)

        def report(record: dict) -> None:
            if "step" not in record or "eval_loss" in record:  # a note or an evaluation: its line (the bar: steps)
                print_report({name: value for name, value in record.items() if name != "loss"})
            if "loss" not in record:
                return
            bar.update(
                task,
                completed=record["step"],
                description=f"loss {record['loss']:.3f} "
                f"acc {record['fine_acc']:.3f}/{record['coarse_acc']:.3f} {record['tokens_per_s']:.0f} tok/s",
            )

        yield report


def train(
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="Config overrides SECTION.FIELD=VALUE, e.g. optim.lr=3e-4 model.variant=combo data.batch_size=64.",
            show_default=False,
        ),
    ] = None,
    data: Annotated[str | None, typer.Option(help="Shard set directory (from `ambert shard build`).")] = None,
    vocab: Annotated[str | None, typer.Option(help="The vocab artifact the shard set was built with.")] = None,
    eval_data: Annotated[
        str | None,
        typer.Option(
            help="Held-out shard set built with the same vocab: MLM loss, accuracy and perplexity every "
            "run.eval_every steps (data.eval_data; may be added or changed on --resume)."
        ),
    ] = None,
    out: Annotated[str, typer.Option(help="Run directory: config, vocab copy, metrics, checkpoints.")] = "",
    preset: Annotated[str, typer.Option(help="tiny (CPU, tests, demo) or base (paper Table 10).")] = "tiny",
    config: Annotated[str | None, typer.Option(help="TOML or JSON config file applied over the preset.")] = None,
    variant: Annotated[
        str | None, typer.Option(help="ambert | combo | hybrid | bert-fine | bert-coarse (same as model.variant=...).")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Same as optim.max_steps=N.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue RUN from its latest checkpoint.")] = False,
    init_from: Annotated[
        str | None,
        typer.Option(help="Hugging Face BERT directory (config.json, model.safetensors, vocab.txt) to start from."),
    ] = None,
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict/--no-strict",
            help="Stop on a corrupt shard instead of skipping it (data.strict; may change on --resume).",
            show_default=False,
        ),
    ] = None,
    nproc: Annotated[int, typer.Option(help="Local processes; >1 runs this command under torchrun.")] = 1,
):
    """Pre-train AMBERT (or a variant) on a shard set: MLM on both granularities, checkpoints, metrics.

    data.masking: token | word | ngram | ambert | auto (the default: token for bert-fine, ambert for the other
    variants). model.objective: mlm | mac (MacBERT, needs similar words) | perm (PERT). model.sop=true adds
    sentence-order prediction. README: the seeds' models as flags."""
    if nproc > 1 and "RANK" not in os.environ:
        _launch_torchrun(nproc)
    if not out:
        fail("pass --out RUN (the run directory)")
    from trainer.checkpoint import CheckpointError
    from trainer.config import ConfigError, load_config
    from trainer.train import TrainError, resumed_config
    from trainer.train import train as run_training
    from vocab.artifact import ArtifactError
    from vocab.shard_set import ShardSetError

    extra = list(overrides or [])
    if data:
        extra.append(f"data.data={data}")
    if eval_data:
        extra.append(f"data.eval_data={eval_data}")
    if variant:
        extra.append(f"model.variant={variant}")
    if max_steps is not None:
        extra.append(f"optim.max_steps={max_steps}")
    if strict is not None:
        extra.append(f"data.strict={str(strict).lower()}")
    try:
        if resume:
            cfg = resumed_config(out, extra)
        elif not vocab:
            fail("pass --vocab ARTIFACT (the vocab artifact the shard set was built with)")
        elif init_from:
            cfg = config_from_checkpoint(init_from, preset, config, extra)
        else:
            cfg = load_config(preset, config, extra)
        with training_progress(cfg.optim.max_steps) as report:
            last = run_training(cfg, out, vocab_dir=vocab, resume=resume, init_from=init_from, report=report)
    except (ConfigError, TrainError, CheckpointError, ShardSetError, ArtifactError, ValueError) as error:
        fail(str(error))
    if int(os.environ.get("RANK", 0)) == 0:
        console.print(
            f"[bold]ambert train[/]: done at step {last.get('step', 'n/a')}; run in {out} "
            f"(metrics.jsonl, tb/, checkpoints/)",
            soft_wrap=True,
            highlight=False,
        )


def config_from_checkpoint(init_from: str, preset: str, config_file: str | None, overrides: list[str]):
    """The run's config with the encoder geometry of INIT_FROM/config.json (as `from_pretrained` takes it): the preset's
    geometry gives way; a geometry field set in --config or an override must agree with the checkpoint."""
    import json

    from trainer.config import load_config, parse_overrides, read_config_file
    from trainer.hf_interop import HF_CONFIG_FIELDS

    path = os.path.join(init_from, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            checkpoint = json.load(handle)
    except FileNotFoundError:
        fail(
            f"--init-from {init_from}: no config.json there (a Hugging Face BERT directory has config.json, "
            "model.safetensors, vocab.txt)"
        )
    except json.JSONDecodeError as error:
        fail(f"--init-from {init_from}: config.json is not valid JSON ({error})")
    geometry = {ours: checkpoint[theirs] for theirs, ours in HF_CONFIG_FIELDS.items() if theirs in checkpoint}
    explicit = {"override": parse_overrides(overrides).get("model", {})}
    if config_file:
        explicit[config_file] = read_config_file(config_file).get("model", {})
    for source, fields in explicit.items():
        for name in fields.keys() & geometry.keys():
            try:
                agrees = type(geometry[name])(fields[name]) == geometry[name]
            except (TypeError, ValueError):
                agrees = False
            if not agrees:
                fail(
                    f"model.{name}={fields[name]} ({source}) conflicts with --init-from {path}: {name} is "
                    f"{geometry[name]} there; drop model.{name} (the geometry comes from the checkpoint)"
                )
    taken = [
        f"model.{name}={value}" for name, value in geometry.items() if not any(name in e for e in explicit.values())
    ]
    return load_config(preset, config_file, taken + overrides)


def export(
    source: Annotated[str, typer.Argument(help="Run directory, one of its checkpoints, or a `finetune` directory.")],
    out: Annotated[str, typer.Argument(help="Directory to write (replaced if it exists).")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="hf: transformers BertModel / BertForSequenceClassification (the fine side); hf-ambert: the full "
            "AMBERT (both embeddings, encoder, heads), loading with trust_remote_code=True.",
        ),
    ] = "hf",
):
    """Export to Hugging Face: a pre-training run as BertModel (the fine encoder), a fine-tuned classifier as
    BertForSequenceClassification (fine encoder + fine head, i.e. AMBERT-Single); with --format hf-ambert, the full
    model of a run or of any fine-tuned task (classify, regress, choice, span) with its tokenize_ambert.py."""
    if format not in ("hf", "hf-ambert"):
        fail(f"--format {format!r} is not supported; use --format hf or hf-ambert")
    from trainer.checkpoint import CheckpointError, load_run_model
    from trainer.finetune.loop import FINETUNE_JSON, export_hf_classifier
    from trainer.hf_interop import export_hf

    try:
        if format == "hf-ambert":
            from trainer.hf_interop import export_hf_ambert

            kind = export_hf_ambert(source, out) + ", trust_remote_code=True"
        elif os.path.exists(os.path.join(source, FINETUNE_JSON)):
            export_hf_classifier(source, out)
            kind = "BertForSequenceClassification"
        else:
            model, run_dir, source = load_run_model(source)
            vocab = os.path.join(run_dir, "vocab", "fine")
            export_hf(model, out, os.path.join(vocab, "vocab.txt"), os.path.join(vocab, "tokenizer.json"))
            kind = "BertModel"
    except (CheckpointError, ValueError, OSError) as error:
        fail(str(error))
    console.print(f"[bold]ambert export[/]: {source} → {out} (transformers {kind})", highlight=False)


def plot(
    run: Annotated[str, typer.Argument(help="Run directory (reads metrics.jsonl).")],
    out: Annotated[str | None, typer.Option(help="PNG to write (default RUN/curves.png).")] = None,
):
    """Plot a run's training curves (losses, masked accuracy, learning rate, throughput) as a PNG."""
    from trainer.plots import plot_training_curves

    target = out or os.path.join(run, "curves.png")
    try:
        plot_training_curves(os.path.join(run, "metrics.jsonl"), target)
    except (OSError, ValueError) as error:
        fail(str(error))
    console.print(f"[bold]ambert plot[/]: {target}", highlight=False)
