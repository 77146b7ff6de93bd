"""`ambert vocab build|publish|pull|info` and `ambert tokenize` (vocab artifacts, tokenization)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from cli.common import BEAM_FLAGS, beam_flags, console, fail, progress

vocab_app = typer.Typer(help="Build, publish, pull and describe versioned vocab artifacts.", no_args_is_help=True)


@vocab_app.command("build", context_settings=BEAM_FLAGS)
def build(
    ctx: typer.Context,
    lang: Annotated[str, typer.Option(help="en (words + phrases) or zh (characters + words).")],
    corpus: Annotated[list[str], typer.Option(help="Corpus file, directory or glob; repeatable.")],
    out: Annotated[str, typer.Option(help="Artifact directory to write.")],
    fine_vocab: Annotated[
        str | None, typer.Option(help="Fine vocab.txt, or 'train' (WordPiece); default: bundled BERT vocab.")
    ] = None,
    fine_size: Annotated[int | None, typer.Option(help="WordPiece vocabulary size with --fine-vocab train.")] = None,
    phrases: Annotated[str | None, typer.Option(help="en: use this phrases.tsv instead of building one.")] = None,
    max_phrases: Annotated[int, typer.Option(help="en: phrases kept (the paper: 77,645).")] = 77_645,
    max_words: Annotated[int, typer.Option(help="zh: words kept (the paper: 72,635).")] = 72_635,
    min_count: Annotated[
        int | None, typer.Option(help="Minimum count of a phrase or word [default: en 5, zh 2].")
    ] = None,
    segmenter: Annotated[
        str,
        typer.Option(
            help="zh: thulac, jieba, pkuseg (an optional extra, see README) or ngram (a word model of the corpus, "
            "estimated from --ngram-initial-segmenter's words)."
        ),
    ] = "thulac",
    ngram_initial_segmenter: Annotated[
        str, typer.Option(help="zh, --segmenter ngram: whose words the word model counts.")
    ] = "thulac",
    user_dict: Annotated[
        str | None, typer.Option(help="zh: a user dictionary for the segmenter (ngram: for its initial one).")
    ] = None,
    kenlm_memory: Annotated[str, typer.Option(help="en: lmplz -S memory limit (e.g. 20%, 2G).")] = "20%",
    kenlm_temp_dir: Annotated[
        str | None,
        typer.Option(
            help="en: lmplz -T directory for KenLM's temporary and ARPA files (default: the system temp dir)."
        ),
    ] = None,
    similar_words: Annotated[
        int, typer.Option(help="Add similar.tsv: up to K similar words per word, from the corpus (0: none).")
    ] = 0,
    similar_words_file: Annotated[
        str | None, typer.Option(help="Add this similar.tsv (word<TAB>similar<TAB>score lines) instead.")
    ] = None,
):
    """Build a vocab artifact: fine + coarse vocabularies, the dictionary, stats (coarse ratio).

    Further flags go to Beam, as for `ambert phrases`.
    """
    from pipelines.files import CorpusError
    from pipelines.kenlm_model import KenLMError
    from pipelines.vocab_build import VocabConfig, build_vocab
    from vocab.artifact import ArtifactError
    from vocab.chinese_segmentation import SegmenterError
    from vocab.similar_words import SimilarWordsError

    try:
        cfg = VocabConfig(
            lang=lang,
            corpus=tuple(corpus),
            out=out.rstrip("/"),
            fine_vocab=fine_vocab,
            fine_size=fine_size,
            phrases=phrases,
            max_phrases=max_phrases,
            max_words=max_words,
            min_count=min_count,
            segmenter=segmenter,
            ngram_initial_segmenter=ngram_initial_segmenter,
            user_dict=user_dict,
            kenlm_memory=kenlm_memory,
            kenlm_temp_dir=kenlm_temp_dir,
            similar_words=similar_words,
            similar_words_file=similar_words_file,
        )
    except ValueError as error:
        fail(str(error))
    try:
        with progress(f"[bold]ambert vocab build[/] ({lang}): running the Beam pipelines…"):
            artifact = build_vocab(cfg, beam_flags(ctx))
    except (CorpusError, KenLMError, ArtifactError, SegmenterError, SimilarWordsError) as error:
        fail(str(error))
    _print_info(cfg.out, artifact)


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
        _print_info(directory, read_artifact(directory))
    except ArtifactError as error:
        fail(str(error))


def _print_info(directory: str, artifact: dict) -> None:
    from rich.table import Table

    stats = artifact.get("stats", {})
    table = Table(title=f"vocab artifact {directory}", show_header=False)
    table.add_row("id", artifact["id"])
    table.add_row("lang", artifact["lang"])
    for name, size in artifact["sizes"].items():
        table.add_row(f"size: {name}", f"{size:,}")
    table.add_row("segmenter", json.dumps(artifact.get("segmenter")))
    if "corpus" in stats:
        ratio, paper = stats["corpus"]["coarse_ratio"], stats["paper_coarse_ratio"]
        table.add_row("coarse ratio", f"{ratio:.1%} (paper {paper:.1%})")
    _add_similar_words(table, directory, artifact)
    console.print(table)


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
