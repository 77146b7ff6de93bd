"""Beam pipeline options for every `ambert` pipeline.

Any Beam flag passes through (`--runner DaskRunner --dask_client_address ...`,
`--direct_num_workers 2 --direct_running_mode multi_processing`, Dataflow flags, ...).
Without `--runner` the in-process FnApiRunner runs the pipeline (the DirectRunner would first
try to download Prism).
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions


def pipeline_options(beam_args: list[str] | None) -> PipelineOptions:
    options = PipelineOptions(list(beam_args or []))
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "FnApiRunner"
    return options
