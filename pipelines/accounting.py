"""Data accounting for pipelines: every step reports `Count(name, amount)` elements.

Counters travel in the main output as ordinary elements (not Beam metrics, not tagged side
outputs, which Beam's DaskRunner does not separate), so they are exact on every runner.
`SplitCounters` separates them from the data; `WriteCounters` sums them into one JSON file.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import apache_beam as beam

from pipelines.files import write_atomically


class Count(NamedTuple):
    """An element adding `amount` to counter `name`."""

    name: str
    amount: int | float


def counter(name: str, amount: int | float = 1) -> Count:
    return Count(name, amount)


def _is_count(element) -> bool:
    return isinstance(element, Count)


class SplitCounters(beam.PTransform):
    """A PCollection mixing data and Count elements → (data, Count elements)."""

    def expand(self, mixed):
        data = mixed | "Data" >> beam.Filter(lambda element: not _is_count(element))
        return data, mixed | "Counters" >> beam.Filter(_is_count)


def with_prefix(counters: dict, prefix: str) -> dict:
    """The counters named `prefix` + name, as {name: amount} sorted by name (e.g. drop reasons)."""
    return dict(sorted((k[len(prefix) :], v) for k, v in counters.items() if k.startswith(prefix)))


class _WriteJson(beam.DoFn):
    def __init__(self, path: str):
        self._path = path

    def process(self, keyed):
        _key, pairs = keyed
        totals = dict(sorted(pairs))
        write_atomically(self._path, json.dumps(totals, indent=1).encode())
        yield self._path


class WriteCounters(beam.PTransform):
    """Sum the Count elements of several PCollections and write them as one JSON object."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def expand(self, pcolls):
        return (
            pcolls
            | "Flatten" >> beam.Flatten()
            | "AsPairs" >> beam.Map(lambda count: (count.name, count.amount))
            | "Sum" >> beam.CombinePerKey(sum)
            | "OneKey" >> beam.Map(lambda kv: (None, kv))
            | "Gather" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(_WriteJson(self._path))
        )
