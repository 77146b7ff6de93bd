"""`ambert shard build|verify|inspect`: aligned fine/coarse examples in deterministic WebDataset shards.

ambert shard build --vocab out/vocab-en --corpus data/en --out out/shards-en [--no-nsp [--packing full]] [Beam flags]
ambert shard verify out/shards-en;  ambert shard inspect out/shards-en -n 3
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from cli.common import console, fail, progress
from cli.options import BEAM_FLAGS, AmbertCommand, config_options
from pipelines.configs import ShardConfig

shard_app = typer.Typer(
    help="Write, verify and inspect WebDataset shards of aligned examples.", no_args_is_help=True, rich_markup_mode=None
)


@shard_app.command("build", cls=AmbertCommand, context_settings=BEAM_FLAGS)
@config_options(ShardConfig)
def build(ctx: typer.Context, config: ShardConfig):
    """Tokenize documents into aligned fine/coarse examples and write shard-NNNNN.tar + manifest.json.

    Further flags go to Beam, as for `ambert phrases`.
    """
    from pipelines.shards import run

    with progress("[bold]ambert shard build[/]: running the Beam pipeline…"):
        manifest, seconds = run(config, ctx.args)
    documents, totals = manifest["accounting"]["documents"], manifest["totals"]
    dropped = ", ".join(f"{k} {v}" for k, v in documents["dropped"].items()) or "none"
    console.print(
        f"[bold]ambert shard build[/]: documents read {documents['read']:,}, kept {documents['kept']:,}, "
        f"dropped: {dropped}; {totals['samples']:,} samples in {totals['shards']} shards; fill ratio fine "
        f"{totals['fill_ratio']['fine']:.2f}, coarse {totals['fill_ratio']['coarse']:.2f}; {seconds:.1f} s",
        highlight=False,
    )
    for error in manifest["accounting"]["files"]["errors"]:
        console.print(f"[yellow]warning:[/] {escape(error)}", highlight=False)
    print(json.dumps({"out": config.out, "manifest": f"{config.out}/manifest.json", "samples": totals["samples"]}))


@shard_app.command("verify")
def verify(directory: Annotated[str, typer.Argument(help="A shard set directory.")]):
    """Check each shard's sha256, index and every sample (decoding, alignment, lengths, id ranges); exit 1 on faults."""
    from vocab.shard_set import ShardSetError, verify_shard_set

    try:
        faults, checked = verify_shard_set(directory)
    except ShardSetError as error:
        fail(str(error))
    if faults:
        for fault in faults:
            console.print(f"[bold red]fault:[/] {escape(str(fault))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1)
    console.print(f"ok: {checked:,} samples checked in {directory}")


@shard_app.command("inspect")
def inspect(
    directory: Annotated[str, typer.Argument(help="A shard set directory.")],
    n: Annotated[int, typer.Option("-n", help="Samples to show (from the first shard).")] = 3,
    vocab: Annotated[str | None, typer.Option(help="Vocab artifact for token strings (default: ids only).")] = None,
):
    """Show the first samples, a line per segment: each coarse token, and =its·fine·pieces where they differ."""
    from vocab.artifact import ArtifactError, read_artifact, read_vocab_lines
    from vocab.shard_set import ShardSetError, read_manifest, shard_examples

    try:
        manifest = read_manifest(directory)
        fine_vocab = coarse_vocab = None
        if vocab is not None:
            read_manifest(directory, expect_vocab_id=read_artifact(vocab)["id"])
            fine_vocab = read_vocab_lines(f"{vocab}/fine/vocab.txt")
            coarse_vocab = read_vocab_lines(f"{vocab}/coarse/vocab.txt")
    except (ShardSetError, ArtifactError) as error:
        fail(str(error))
    console.print(
        f"{directory}: {manifest['totals']['samples']:,} samples in {manifest['totals']['shards']} shards, "
        f"vocab {manifest['vocab']['id'][:12]}… ({manifest['vocab']['lang']})"
    )
    shown = 0
    for shard in manifest["shards"]:
        for example in shard_examples(f"{directory}/{shard['name']}"):
            if shown == n:
                return
            shown += 1
            label = {-1: "", 0: ", is next", 1: ", random next"}[example.nsp_label]
            console.print(f"{shard['name']} sample {example.key} (doc {example.doc_id}{label})", markup=False)
            name = lambda vocab_lines, i: vocab_lines[i] if vocab_lines else str(i)  # noqa: E731
            segments: dict[int, list[str]] = {}
            for j, (start, end) in enumerate(example.align):
                coarse = name(coarse_vocab, int(example.coarse_ids[j]))
                fine = [name(fine_vocab, int(i)) for i in example.fine_ids[start:end]]
                unit = coarse if fine == [coarse] else f"{coarse}={'·'.join(fine)}"
                segments.setdefault(int(example.coarse_type[j]), []).append(unit)
            for segment, units in segments.items():
                console.print(f"  {'AB'[segment]}: {' '.join(units)}", markup=False, highlight=False)
