"""Subcommands of `ambert` (see `ambert --help`); heavy imports happen inside each command."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from cli.common import report_error, verbosity
from cli.finetune_commands import ablation, evaluate, finetune
from cli.options import BEAM_FLAGS, AmbertCommand, config_reference
from cli.phrases_commands import phrases
from cli.shard_commands import shard_app
from cli.train_commands import export, plot, train
from cli.vocab_commands import tokenize, vocab_app
from trainer.config import PRESETS, TrainConfig  # torch-free

app = typer.Typer(
    name="ambert",
    help="AMBERT tooling: corpora → phrase dictionaries, vocabularies, shards, models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command(cls=AmbertCommand, context_settings=BEAM_FLAGS)(phrases)
app.add_typer(vocab_app, name="vocab")
app.command(cls=AmbertCommand)(tokenize)
app.add_typer(shard_app, name="shard")
app.command(
    cls=AmbertCommand,
    context_settings={"allow_interspersed_args": True},
    epilog=config_reference(TrainConfig, PRESETS),
)(train)
app.command(cls=AmbertCommand)(export)
app.command(cls=AmbertCommand)(finetune)
app.command(cls=AmbertCommand)(evaluate)
app.command(cls=AmbertCommand)(ablation)
app.command(cls=AmbertCommand)(plot)


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Beam's and the workers' log messages, and tracebacks.")
    ] = False,
):
    verbosity["verbose"] = verbose
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Beam's own logs (and its workers', pipelines/runner.py) only with -v: a failing step raises, and is reported.
    logging.getLogger("apache_beam").setLevel(level if verbose else logging.CRITICAL)
    logging.getLogger().addFilter(_quiet_beam_import_warning)


def _quiet_beam_import_warning(record: logging.LogRecord) -> bool:
    """Beam logs on the root logger, at import, that the BigQuery clients are missing: no ambert feature uses them."""
    return "apitools not found" not in record.getMessage()


def run() -> None:
    """The `ambert` console script: the app, with user errors in one line and bugs as a hint (traceback under -v)."""
    try:
        app()
    except Exception as error:  # noqa: BLE001 - the last stop: classify and report
        raise SystemExit(report_error(error)) from None


if __name__ == "__main__":  # pragma: no cover
    run()
