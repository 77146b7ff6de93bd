"""Helpers every `ambert` subcommand shares: the console, clear failures, progress, the user/bug split of errors."""

from __future__ import annotations

import sys
import typing

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True, soft_wrap=True)  # a line per message, also when piped
verbosity = {"verbose": False}  # set by `ambert -v`

# Errors that explain a bad input, a missing file or a wrong option: one line, exit status 2, no traceback.
# Named, not imported, so that `import cli` stays free of Beam and torch.
USER_ERRORS = frozenset(
    {
        "pipelines.files.CorpusError",
        "pipelines.kenlm_model.KenLMError",
        "trainer.checkpoint.CheckpointError",
        "trainer.config.ConfigError",
        "trainer.labeled_data.LabeledDataError",
        "trainer.span.SquadError",
        "trainer.train.TrainError",
        "vocab.aligned_codec.CodecError",
        "vocab.artifact.ArtifactError",
        "vocab.chinese_segmentation.SegmenterError",
        "vocab.shard_set.ShardSetError",
        "vocab.similar_words.SimilarWordsError",
    }
)


def fail(message: str) -> typing.NoReturn:
    """Print `error: MESSAGE` (the message verbatim: `[pkuseg]` is not markup) and exit with status 2."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=2)


def is_user_error(error: BaseException) -> bool:
    """A project error that names a bad input (USER_ERRORS), or a file the user named that cannot be used."""
    if isinstance(error, OSError) and error.filename is not None:
        return True
    return any(f"{cls.__module__}.{cls.__qualname__}" in USER_ERRORS for cls in type(error).__mro__)


def report_error(error: Exception) -> int:
    """One line for a user error; for anything else a one-line hint, and the traceback under -v. The exit status."""
    if is_user_error(error):
        console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True, highlight=False)
        return 2
    if verbosity["verbose"]:
        console.print_exception()
    what = f"{type(error).__name__}: {error}"
    hint = "the traceback is above" if verbosity["verbose"] else "rerun with `ambert -v ...` for the traceback"
    console.print(
        f"[bold red]unexpected error[/] {escape(what)} (a bug in ambert, please report it; {hint})",
        soft_wrap=True,
        highlight=False,
    )
    return 1


def progress(message: str):
    """A live spinner with elapsed time on a terminal; silent when piped or under CI."""
    from contextlib import nullcontext

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if not sys.stderr.isatty():
        return nullcontext()
    spinner = Progress(SpinnerColumn(), TextColumn(message), TimeElapsedColumn(), console=console, transient=True)
    spinner.add_task(message, total=None)
    return spinner
