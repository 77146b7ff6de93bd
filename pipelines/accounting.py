"""Data accounting for pipelines: every step reports (counter, amount) pairs as a side output.

Counters travel as ordinary PCollection elements (not Beam metrics) so they are exact on every
runner, Dask included. `WriteCounters` sums them and writes one JSON file for the driver.
"""

from __future__ import annotations

import json

import apache_beam as beam

from pipelines.files import write_atomically

COUNTERS = "counters"  # the tag of the side output that carries (counter, amount) pairs


def counter(name: str, amount: int | float = 1) -> beam.pvalue.TaggedOutput:
    """A side-output element adding `amount` to counter `name`."""
    return beam.pvalue.TaggedOutput(COUNTERS, (name, amount))


class _WriteJson(beam.DoFn):
    def __init__(self, path: str):
        self._path = path

    def process(self, keyed):
        _key, pairs = keyed
        totals = dict(sorted(pairs))
        write_atomically(self._path, json.dumps(totals, indent=1).encode())
        yield self._path


class WriteCounters(beam.PTransform):
    """Sum (counter, amount) pairs from several PCollections and write them as a JSON object."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def expand(self, pcolls):
        return (
            pcolls
            | "Flatten" >> beam.Flatten()
            | "Sum" >> beam.CombinePerKey(sum)
            | "OneKey" >> beam.Map(lambda kv: (None, kv))
            | "Gather" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(_WriteJson(self._path))
        )
