"""Subcommands of `ambert` (see `ambert --help`); heavy imports happen inside each command."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from cli.common import BEAM_FLAGS, beam_flags, console, fail, progress
from cli.finetune_commands import ablation, evaluate, finetune
from cli.shard_commands import shard_app
from cli.train_commands import export, plot, train
from cli.vocab_commands import tokenize, vocab_app

app = typer.Typer(
    name="ambert",
    help="AMBERT tooling: corpora → phrase dictionaries, vocabularies, shards, models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(vocab_app, name="vocab")
app.command()(tokenize)
app.add_typer(shard_app, name="shard")
app.command(context_settings={"allow_interspersed_args": True})(train)
app.command()(export)
app.command()(finetune)
app.command()(evaluate)
app.command()(ablation)
app.command()(plot)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log Beam's info messages.")] = False):
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().addFilter(_quiet_beam_import_warning)


def _quiet_beam_import_warning(record: logging.LogRecord) -> bool:
    """Drop Beam's import-time note about missing GCP clients: it concerns no ambert feature."""
    return "apitools not found" not in record.getMessage()


@app.command(context_settings=BEAM_FLAGS)
def phrases(
    ctx: typer.Context,
    corpus: Annotated[
        list[str], typer.Option(help="Corpus file, directory or glob (.txt, .jsonl, optionally .gz/.bz2); repeatable.")
    ],
    out: Annotated[str, typer.Option(help="Output directory (local path or Beam-supported URL).")],
    order: Annotated[int, typer.Option(help="Longest n-gram counted and KenLM model order (2-6).")] = 4,
    min_count: Annotated[int, typer.Option(help="Keep n-grams seen at least this often.")] = 5,
    max_phrases: Annotated[int, typer.Option(help="Size of the phrase dictionary (the paper: 77,645).")] = 77_645,
    min_dependency: Annotated[
        float, typer.Option(help="Minimum cohesion (log10) of a phrase; see pipelines/phrase_scoring.py.")
    ] = 1.5,
    num_shards: Annotated[int, typer.Option(help="Number of n-gram Parquet files.")] = 8,
    max_line_bytes: Annotated[int, typer.Option(help="Lines longer than this are dropped as too_long.")] = 1 << 20,
    boundary_word_share: Annotated[
        float, typer.Option(help="Boundary (function) words: the most frequent words making this share of the corpus.")
    ] = 0.4,
    boundary_min_bits: Annotated[
        float,
        typer.Option(help="A frequent word is a boundary word on a side where its neighbour has this entropy (bits)."),
    ] = 4.0,
    boundary_margin: Annotated[
        float, typer.Option(help="Extra cohesion (log10) a phrase needs per edge word that is a boundary word.")
    ] = 1.0,
    min_significance: Annotated[
        float, typer.Option(help="Minimum t-score of a phrase's association (1.96: p < 0.025).")
    ] = 1.96,
    dominance: Annotated[
        float,
        typer.Option(
            help="Drop a phrase when a longer kept phrase starting or ending with it has this share of its count."
        ),
    ] = 0.5,
    kenlm_memory: Annotated[str, typer.Option(help="lmplz -S memory limit (e.g. 20%, 2G).")] = "20%",
    kenlm_temp_dir: Annotated[
        str | None,
        typer.Option(help="lmplz -T directory for KenLM's temporary and ARPA files (default: the system temp dir)."),
    ] = None,
):
    """Build an English phrase dictionary: n-gram Parquet, a KenLM model and phrases.tsv.

    Further flags go to Beam: --direct_num_workers 2 --direct_running_mode multi_processing,
    or --runner DaskRunner --dask_client_address HOST:PORT, or Dataflow/Flink flags.
    """
    from pipelines.files import CorpusError
    from pipelines.kenlm_model import KenLMError
    from pipelines.phrases import PhrasesConfig, run

    try:
        cfg = PhrasesConfig(
            corpus=tuple(corpus),
            out=out.rstrip("/"),
            order=order,
            min_count=min_count,
            max_phrases=max_phrases,
            min_dependency=min_dependency,
            boundary_word_share=boundary_word_share,
            boundary_min_bits=boundary_min_bits,
            boundary_margin=boundary_margin,
            min_significance=min_significance,
            dominance=dominance,
            num_shards=num_shards,
            max_line_bytes=max_line_bytes,
            kenlm_memory=kenlm_memory,
            kenlm_temp_dir=kenlm_temp_dir,
        )
    except ValueError as error:
        fail(str(error))
    try:
        with progress("[bold]ambert phrases[/]: running the Beam pipeline…"):
            stats = run(cfg, beam_flags(ctx))
    except (CorpusError, KenLMError) as error:
        fail(str(error))
    _print_phrase_summary(cfg.out, stats)


def _print_phrase_summary(out: str, stats: dict) -> None:
    lines = stats["lines"]
    dropped = ", ".join(f"{k} {v}" for k, v in lines["dropped"].items()) or "none"
    console.print(
        f"lines read {lines['read']:,}, kept {lines['kept']:,}, dropped: {dropped}; "
        f"tokens {stats['tokens']:,}; phrases {stats['phrases']['passing']:,} passing; "
        f"{stats['timings_seconds']['total']:.1f} s"
    )
    for error in stats["files"]["errors"]:
        console.print(f"[yellow]warning:[/] {error}")
    print(json.dumps({"out": out, "phrases": f"{out}/phrases.tsv", "stats": f"{out}/stats.json"}))


if __name__ == "__main__":  # pragma: no cover
    app()
