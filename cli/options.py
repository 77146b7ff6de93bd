"""Command-line options generated from the config dataclasses, and the checks on what is left over.

    @shard_app.command("build", cls=AmbertCommand, context_settings=BEAM_FLAGS)
    @config_options(ShardConfig)
    def build(ctx: typer.Context, config: ShardConfig): ...

Each field of the dataclass becomes `--field-name` (or metadata["flag"]) with the field's default and its
metadata["help"] (a field without a default is a required option; `bool` gives `--x/--no-x`; a tuple gives a
repeatable option that also takes several values: `--corpus A B C`). The command receives the built config, so a
default or a help text is written once, on the dataclass. Flags left over go to Beam only if Beam's
PipelineOptions (runner-specific ones included) defines them; anything else is refused, naming the
closest known flag.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import types
import typing
from typing import Annotated

import typer
from typer.core import TyperCommand

from cli.common import fail

BEAM_FLAGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def config_options(config_class: type):
    """Give a command one option per field of `config_class`; it is called with `config=config_class(...)`."""
    hints = typing.get_type_hints(config_class)
    config_fields = [f for f in dataclasses.fields(config_class) if f.init]

    def decorate(command):
        own_hints = typing.get_type_hints(command, include_extras=True)  # the command's own options, resolved
        own = [
            p.replace(annotation=own_hints.get(p.name, p.annotation))
            for p in inspect.signature(command).parameters.values()
            if p.name != "config"
        ]
        generated = [_parameter(f, hints[f.name]) for f in config_fields]

        @functools.wraps(command)
        def run(**values):
            given = {f.name: _from_cli(values.pop(f.name), hints[f.name]) for f in config_fields}
            try:
                config = config_class(**given)
            except ValueError as error:  # the dataclass's own validation: a user error
                fail(str(error))
            return command(config=config, **values)

        run.__signature__ = inspect.Signature(own + generated)
        run.__annotations__ = {p.name: p.annotation for p in own + generated}
        return run

    return decorate


def _parameter(config_field: dataclasses.Field, hint) -> inspect.Parameter:
    cli_type, required = _cli_type(hint), config_field.default is dataclasses.MISSING
    if config_field.default_factory is not dataclasses.MISSING:
        default = config_field.default_factory()
    else:
        default = ... if required else config_field.default
    if isinstance(default, tuple):
        default = list(default)
    metavar = f"<{typing.get_args(cli_type)[0].__name__}> ..." if typing.get_origin(cli_type) is list else None
    option = typer.Option(
        *([config_field.metadata["flag"]] if "flag" in config_field.metadata else []),
        help=config_field.metadata.get("help", ""),
        show_default=not required and default not in (None, []),
        metavar=metavar,
    )
    return inspect.Parameter(
        config_field.name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[cli_type, option], default=default
    )


def _cli_type(hint):
    """`tuple[str, ...]` → `list[str]` (a repeatable option); `X | None` and plain types as they are."""
    if typing.get_origin(hint) is tuple:
        return list[typing.get_args(hint)[0]]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return inner | None
    return hint


def _from_cli(value, hint):
    """A CLI value as the dataclass field takes it: a tuple for a repeatable option, a path without a trailing /."""
    if typing.get_origin(hint) is tuple and value is not None:
        return tuple(value)
    if hint is str and value.endswith("/") and not value.rstrip("/").endswith(":"):
        return value.rstrip("/") or "/"  # out/shards/ and out/shards name one directory
    return value


class AmbertCommand(TyperCommand):
    """A command whose repeatable options also take several values (`--corpus A B C` = `--corpus A --corpus B ...`)
    and whose left-over flags must be Beam's (`context_settings=BEAM_FLAGS`) or are refused."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._spread_multiple_values(args))

    def _spread_multiple_values(self, args: list[str]) -> list[str]:
        multiple = {name for p in self.params if getattr(p, "multiple", False) for name in p.opts}
        spread, repeating, value_next = [], None, False
        for arg in args:
            if value_next:
                spread.append(arg)
                value_next = False
            elif arg.startswith("-") and arg != "-":
                name = arg.split("=", 1)[0]
                repeating = name if name in multiple and arg != "--" else None
                value_next = repeating is not None and "=" not in arg
                spread.append(arg)
            elif repeating is not None:
                spread += [repeating, arg]  # a further value of the repeatable option before it
            else:
                spread.append(arg)
        return spread

    def invoke(self, ctx: typer.Context):
        if ctx.args:
            ctx.args = check_beam_flags(ctx.args, self._own_flags())
        return super().invoke(ctx)

    def _own_flags(self) -> list[str]:
        return [name for p in self.params for name in (*p.opts, *p.secondary_opts) if name.startswith("--")]


def check_beam_flags(args: list[str], own_flags: list[str]) -> list[str]:
    """`args` if every flag in it is one of Beam's PipelineOptions; else a one-line error naming the closest flag."""
    parser = beam_argument_parser()
    parser.error = lambda message: fail(f"Beam option: {message}")
    _, unknown = parser.parse_known_args(args)
    for arg in unknown:
        if not arg.startswith("-"):
            fail(
                f"unexpected argument {arg!r}: give a value to an option (--corpus A B C takes several), "
                "pass Beam flags as --flag value or --flag=value"
            )
        flag = arg.split("=", 1)[0]
        known = own_flags + [name for action in parser._actions for name in action.option_strings]
        close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see --help for this command's options"
        fail(f"no such option {flag}: {hint} (other flags must be Beam pipeline options)")
    return list(args)


@functools.cache
def beam_argument_parser():
    """An argparse parser of every option Beam's PipelineOptions subclasses define (standard, direct, portable,
    Flink, Spark, Dataflow, Dask, ...), as PipelineOptions itself builds it."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    try:
        import apache_beam.runners.dask.dask_runner  # noqa: F401 - registers DaskOptions
    except ImportError:
        pass
    parser = _BeamArgumentParser(allow_abbrev=False)
    for options_class in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        options_class._add_argparse_args(parser)
    return parser


def config_reference(config_class: type, presets: dict[str, dict] | None = None) -> str:
    """A help epilog listing every SECTION.FIELD of a nested config dataclass: default, preset values, help."""
    lines = ["\b", "Config fields (SECTION.FIELD=VALUE; default, then the presets' values where they differ):"]
    for section in dataclasses.fields(config_class):
        lines.append(f"  {section.name}: {inspect.getdoc(section.default_factory) or ''}".rstrip())
        for entry in dataclasses.fields(section.default_factory):
            presets_set = [
                f"{name} {preset[section.name][entry.name]}"
                for name, preset in (presets or {}).items()
                if entry.name in preset.get(section.name, {})
            ]
            default = entry.default if entry.default is not dataclasses.MISSING else entry.default_factory()
            where = f" [{default!r}" + "".join(f"; {text}" for text in presets_set) + "]"
            lines.append(f"    {section.name}.{entry.name}{where}  {entry.metadata.get('help', '')}")
    return "\n".join(lines)
