"""Beam pipeline options for every `ambert` pipeline.

Any Beam flag passes through (`--runner DaskRunner --dask_client_address ...`,
`--direct_num_workers 2 --direct_running_mode multi_processing`, Dataflow flags, ...).
Without `--runner` the in-process FnApiRunner runs the pipeline (the DirectRunner would first
try to download Prism). `DaskRunner` is accepted as a short name for Beam's Dask runner.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

RUNNER_ALIASES = {"DaskRunner": "apache_beam.runners.dask.dask_runner.DaskRunner"}


def pipeline_options(beam_args: list[str] | None) -> PipelineOptions:
    args = list(beam_args or [])
    if not any(arg.startswith("--default_sdk_harness_log_level") for arg in args):
        args.append("--default_sdk_harness_log_level=WARNING")  # quiet multi-process workers
    options = PipelineOptions(args)
    standard = options.view_as(StandardOptions)
    standard.runner = RUNNER_ALIASES.get(standard.runner, standard.runner) or "FnApiRunner"
    return options


def release_runner_resources(options: PipelineOptions) -> None:
    """Close the Dask client the DaskRunner opens (it leaves it connected after the run)."""
    if options.view_as(StandardOptions).runner != RUNNER_ALIASES["DaskRunner"]:
        return
    import distributed

    try:
        distributed.default_client().close()
    except ValueError:  # no client left: nothing to release
        return


@contextmanager
def beam_pipeline(beam_args: list[str] | None) -> Iterator[beam.Pipeline]:
    """A Beam pipeline on the options from `beam_args`: it runs when the block ends, then the
    runner's resources are released (whether it succeeded or not)."""
    options = pipeline_options(beam_args)
    try:
        with beam.Pipeline(options=options) as pipeline:
            yield pipeline
    finally:
        release_runner_resources(options)
