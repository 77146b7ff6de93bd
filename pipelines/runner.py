"""Beam pipeline options for every `ambert` pipeline.

Any Beam flag passes through (`--runner DaskRunner --dask_client_address ...`,
`--direct_num_workers 2 --direct_running_mode multi_processing`, Dataflow flags, ...).
Without `--runner` the in-process FnApiRunner runs the pipeline (the DirectRunner would first
try to download Prism). `DaskRunner` is accepted as a short name for Beam's Dask runner. Multi-process
workers (pipelines/beam_worker.py) log at the level of this process's `apache_beam` logger (`ambert -v` shows
them) and print nothing else.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.portability import python_urns
from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner

RUNNER_ALIASES = {"DaskRunner": "apache_beam.runners.dask.dask_runner.DaskRunner"}


def pipeline_options(beam_args: list[str] | None) -> PipelineOptions:
    args = list(beam_args or [])
    if not any(arg.startswith("--default_sdk_harness_log_level") for arg in args):
        # Workers log at this process's level for Beam (`ambert` without -v: CRITICAL, so only with -v).
        level = logging.getLevelName(logging.getLogger("apache_beam").getEffectiveLevel())
        args.append(f"--default_sdk_harness_log_level={level}")
    options = PipelineOptions(args)
    standard = options.view_as(StandardOptions)
    standard.runner = RUNNER_ALIASES.get(standard.runner, standard.runner) or "FnApiRunner"
    return options


def pipeline_runner(options: PipelineOptions):
    """The runner to use: the FnApiRunner handing its worker processes (direct_running_mode multi_processing) the
    worker log level, which it would otherwise not pass on (they then log at INFO); any other runner by name."""
    runner = options.view_as(StandardOptions).runner
    if runner != "FnApiRunner":
        return runner
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner.fn_runner import ExtendedProvisionInfo
    from google.protobuf import struct_pb2

    worker_options = struct_pb2.Struct()
    level = options.get_all_options()["default_sdk_harness_log_level"]
    worker_options.update({"default_sdk_harness_log_level": level})
    info = beam_provision_api_pb2.ProvisionInfo(
        retrieval_token="unused-retrieval-token", pipeline_options=worker_options
    )
    return QuietWorkersFnApiRunner(provision_info=ExtendedProvisionInfo(info))


WORKER_COMMAND = f"{sys.executable} -m pipelines.beam_worker"


class QuietWorkersFnApiRunner(FnApiRunner):
    """The FnApiRunner, its worker processes (direct_running_mode multi_processing) started as pipelines/beam_worker.py
    instead of Beam's `python -m apache_beam.runners.worker.sdk_worker_main`: the same harness, without the two lines
    each worker printed to stderr before it read its log level."""

    def run_via_runner_api(self, pipeline_proto, options):
        for environment in pipeline_proto.components.environments.values():
            if environment.urn == python_urns.SUBPROCESS_SDK:
                environment.payload = WORKER_COMMAND.encode("utf-8")
        return super().run_via_runner_api(pipeline_proto, options)


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
        with beam.Pipeline(runner=pipeline_runner(options), options=options) as pipeline:
            yield pipeline
    finally:
        release_runner_resources(options)
