"""Helpers every `ambert` subcommand shares: the console, clear failures, Beam flags, progress."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

console = Console(stderr=True)

BEAM_FLAGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def beam_flags(ctx: typer.Context) -> list[str]:
    """The extra command-line arguments, which go to Beam; stray words are refused, not dropped."""
    for position, arg in enumerate(ctx.args):
        previous = ctx.args[position - 1] if position else ""
        if not arg.startswith("-") and not (previous.startswith("--") and "=" not in previous):
            fail(
                f"unexpected argument {arg!r}: give each corpus its own --corpus (quote globs), "
                "and pass Beam flags as --flag value or --flag=value"
            )
    return list(ctx.args)


def fail(message: str) -> None:
    """Print a clear error and exit with status 2 (bad input), without a traceback."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True, highlight=False)
    raise typer.Exit(code=2)


def progress(message: str):
    """A live spinner with elapsed time on a terminal; silent when piped or under CI."""
    from contextlib import nullcontext

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if not sys.stderr.isatty():
        return nullcontext()
    spinner = Progress(SpinnerColumn(), TextColumn(message), TimeElapsedColumn(), console=console, transient=True)
    spinner.add_task(message, total=None)
    return spinner
