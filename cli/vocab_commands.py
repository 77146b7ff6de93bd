"""`ambert vocab build|publish|pull|info` and `ambert tokenize` (vocab artifacts, tokenization)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from cli.common import console, fail, progress
from cli.options import BEAM_FLAGS, AmbertCommand, config_options
from pipelines.configs import VocabConfig

vocab_app = typer.Typer(
    help="Build, publish, pull and describe versioned vocab artifacts.", no_args_is_help=True, rich_markup_mode=None
)


@vocab_app.command("build", cls=AmbertCommand, context_settings=BEAM_FLAGS)
@config_options(VocabConfig)
def build(ctx: typer.Context, config: VocabConfig):
    """Build a vocab artifact: fine + coarse vocabularies, the dictionary, stats (coarse ratio).

    Further flags go to Beam, as for `ambert phrases`.
    """
    from pipelines.vocab_build import build_vocab

    with progress(f"[bold]ambert vocab build[/] ({config.lang}): running the Beam pipelines…"):
        artifact = build_vocab(config, ctx.args)
    sizes = ", ".join(f"{name} {size:,}" for name, size in artifact["sizes"].items())
    stats = artifact.get("stats", {})
    ratio = ""
    if "corpus" in stats:
        ratio = f"; coarse ratio {stats['corpus']['coarse_ratio']:.1%} (paper {stats['paper_coarse_ratio']:.1%})"
    console.print(
        f"[bold]ambert vocab build[/] ({config.lang}): {config.out}, id {artifact['id'][:12]}…; {sizes}{ratio} "
        f"(all of it: ambert vocab info {config.out})",
        highlight=False,
    )


@vocab_app.command("publish")
def publish(
    directory: Annotated[str, typer.Argument(help="A built artifact directory.")],
    url: Annotated[str, typer.Argument(help="Destination (path, file://, s3://, gs://): written to URL/ID.")],
):
    """Publish an artifact under URL/ID (content-addressed, atomic, idempotent)."""
    from vocab.artifact import ArtifactError
    from vocab.artifact import publish as publish_artifact

    try:
        print(publish_artifact(directory, url))
    except ArtifactError as error:
        fail(str(error))


@vocab_app.command("pull")
def pull(
    url: Annotated[str, typer.Argument(help="URL/ID of a published artifact, or URL holding exactly one.")],
    directory: Annotated[str, typer.Argument(help="Where to put the verified artifact.")],
):
    """Pull an artifact, verifying every file's sha256; a tampered or partial one is refused."""
    from vocab.artifact import ArtifactError
    from vocab.artifact import pull as pull_artifact

    try:
        print(pull_artifact(url, directory))
    except ArtifactError as error:
        fail(str(error))


@vocab_app.command("info")
def info(directory: Annotated[str, typer.Argument(help="An artifact directory.")]):
    """Print an artifact's summary: id, language, sizes, segmenter, coarse ratio, a sample of similar words."""
    from vocab.artifact import ArtifactError, read_artifact

    try:
        artifact = read_artifact(directory)
    except ArtifactError as error:
        fail(str(error))
    _print_info(directory, artifact, Console())


def _print_info(directory: str, artifact: dict, output: Console) -> None:
    """The artifact's summary table (`vocab info`), on `output`: stdout."""
    from rich.table import Table

    stats = artifact.get("stats", {})
    table = Table(title=f"vocab artifact {directory}", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # the whole id, also at 80 columns
    table.add_row("id", artifact["id"])
    table.add_row("lang", artifact["lang"])
    for name, size in artifact["sizes"].items():
        table.add_row(f"size: {name}", f"{size:,}")
    table.add_row("segmenter", json.dumps(artifact.get("segmenter")))
    if "corpus" in stats:
        ratio, paper = stats["corpus"]["coarse_ratio"], stats["paper_coarse_ratio"]
        table.add_row("coarse ratio", f"{ratio:.1%} (paper {paper:.1%})")
    _add_similar_words(table, directory, artifact)
    output.print(table)


def _add_similar_words(table, directory: str, artifact: dict, sample: int = 5, shown: int = 5) -> None:
    """The table's size and the neighbours of its `sample` most frequent words with a letter (not punctuation)."""
    import os

    from vocab.artifact import SIMILAR_WORDS_FILE
    from vocab.similar_words import read_similar_tsv

    if SIMILAR_WORDS_FILE not in artifact["files"]:
        return
    entries = read_similar_tsv(os.path.join(directory, SIMILAR_WORDS_FILE))
    source = artifact.get("stats", {}).get("similar_words", {}).get("source", "?")
    table.add_row("similar words", f"{len(entries):,} words ({source})")
    words = [(word, similar) for word, similar in entries if any(character.isalpha() for character in word)]
    for word, similar in words[:sample]:
        table.add_row(f"  {word}", ", ".join(f"{other} {score:.2f}" for other, score in similar[:shown]))


def tokenize(
    vocab: Annotated[str, typer.Option(help="Vocab artifact directory.")],
    format: Annotated[str, typer.Option("--format", help="json (fine, coarse, align) or segments.")] = "json",
    segmenter: Annotated[
        str | None, typer.Option(help="zh: segmenter to use; refused unless it is the artifact's.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Lines encoded per batch.")] = 256,
):
    """Tokenize stdin lines with a vocab artifact, one output line per input line."""
    from vocab.artifact import ArtifactError
    from vocab.chinese_segmentation import SegmenterError
    from vocab.multigrained import MultiGrainedTokenizer, coarse_segments

    if format not in ("json", "segments"):
        fail(f"--format must be json or segments, got {format!r}")
    try:
        tokenizer = MultiGrainedTokenizer.from_artifact(vocab, segmenter=segmenter)
    except (ArtifactError, SegmenterError, OSError) as error:
        fail(str(error))

    def emit(lines: list[str]) -> None:
        for text, example in zip(lines, tokenizer.encode_batch(lines), strict=True):
            if format == "json":
                record = {
                    "fine": example.fine_tokens,
                    "coarse": example.coarse_tokens,
                    "align": [list(pair) for pair in example.align],
                }
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                sys.stdout.write(" ".join(coarse_segments(example, text)) + "\n")

    batch: list[str] = []
    for line in sys.stdin:
        batch.append(line.rstrip("\n"))
        if len(batch) == batch_size:
            emit(batch)
            batch = []
    if batch:
        emit(batch)
