"""`ambert phrases`: an English phrase dictionary (n-gram counts on Beam, a KenLM model, scored phrases).

ambert phrases --corpus data/en --out out/phrases [--min-count 3] [Beam flags]
"""

from __future__ import annotations

import json

import typer
from rich.markup import escape

from cli.common import console, progress
from cli.options import config_options
from pipelines.configs import PhrasesConfig


@config_options(PhrasesConfig)
def phrases(ctx: typer.Context, config: PhrasesConfig):
    """Build an English phrase dictionary: n-gram Parquet, a KenLM model and phrases.tsv.

    Further flags go to Beam: --direct_num_workers 2 --direct_running_mode multi_processing,
    or --runner DaskRunner --dask_client_address HOST:PORT, or Dataflow/Flink flags.
    """
    from pipelines.phrases import run

    with progress("[bold]ambert phrases[/]: running the Beam pipeline…"):
        stats = run(config, ctx.args)
    lines = stats["lines"]
    dropped = ", ".join(f"{k} {v}" for k, v in lines["dropped"].items()) or "none"
    console.print(
        f"[bold]ambert phrases[/]: lines read {lines['read']:,}, kept {lines['kept']:,}, dropped: {dropped}; "
        f"tokens {stats['tokens']:,}; phrases {stats['phrases']['passing']:,} passing; "
        f"{stats['timings_seconds']['total']:.1f} s",
        highlight=False,
    )
    for error in stats["files"]["errors"]:
        console.print(f"[yellow]warning:[/] {escape(error)}", highlight=False)
    out = config.out
    print(json.dumps({"out": out, "phrases": f"{out}/phrases.tsv", "stats": f"{out}/stats.json"}))
