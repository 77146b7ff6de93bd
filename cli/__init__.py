"""The `ambert` command: one Typer app, one subcommand per stage.

    ambert --help
    ambert phrases --corpus data/en --out out/phrases

Each subcommand imports its heavy dependencies (Beam, KenLM, torch) only when it runs.
"""

from cli.main import app, run

__all__ = ["app", "run"]
