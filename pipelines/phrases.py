"""The English phrase-dictionary pipeline: raw text → n-gram Parquet → KenLM model → phrases.tsv.

    ambert phrases --corpus data/en --out out/phrases [--order 4] [--min-count 5] [Beam flags]

Outputs in OUT: ngrams/*.parquet (ngram, n, count), lm.arpa, lm.binary, phrases.tsv
(phrase, n, count, score; best first; scoring rules in pipelines/phrase_scoring.py) and
stats.json, written last: its presence marks a complete run. Re-running overwrites safely.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import apache_beam as beam

from pipelines.accounting import WriteCounters, counter, with_prefix
from pipelines.configs import PhrasesConfig
from pipelines.corpus import NormalizeLines, ReadCorpus
from pipelines.files import clear_previous_outputs, delete_paths, expand_corpus_paths, read_bytes, write_atomically
from pipelines.kenlm_model import TrainKenLM, WriteNormalizedCorpus
from pipelines.ngrams import CountNgrams, WriteNgramParquet
from pipelines.phrase_scoring import PhraseRules, ScorePhrases, drop_dominated
from pipelines.runner import beam_pipeline
from vocab.phrase_dictionary import format_phrase_tsv, rank_phrases

_LOG = logging.getLogger(__name__)


class _WritePhrases(beam.DoFn):
    def __init__(self, path: str, max_phrases: int, dominance: float):
        self._path = path
        self._max_phrases = max_phrases
        self._dominance = dominance

    def process(self, keyed):
        _key, lists = keyed
        passing = sorted(entry for entries in lists for entry in entries)
        kept = drop_dominated(passing, self._dominance)
        ranked = rank_phrases(kept, self._max_phrases)
        write_atomically(self._path, format_phrase_tsv(ranked).encode("utf-8"))
        yield counter("phrases_rejected.dominated", len(passing) - len(kept))
        yield counter("phrases_written", len(ranked))


class BuildPhraseDictionary(beam.PTransform):
    """Lists of passing PhraseEntry → phrases.tsv with the best `max_phrases` of those no longer
    phrase dominates; yields Counts."""

    def __init__(self, path: str, max_phrases: int, dominance: float):
        super().__init__()
        self._fn = _WritePhrases(path, max_phrases, dominance)

    def expand(self, phrase_lists):
        every = phrase_lists.pipeline | "NoneYet" >> beam.Create([(None, [])])
        return (
            (phrase_lists | "OneKey" >> beam.Map(lambda entries: (None, entries)), every)
            | "WithEmpty" >> beam.Flatten()
            | "Gather" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(self._fn)
        )


def build_pipeline(p: beam.Pipeline, cfg: PhrasesConfig, corpus_files: list[str]) -> None:
    """Wire the stages: read → normalize → count/write n-grams → KenLM → score → dictionary."""
    batches, read_counters = p | "ReadCorpus" >> ReadCorpus(corpus_files, cfg.batch_bytes, cfg.max_line_bytes)
    normalized, normalize_counters = batches | "NormalizeLines" >> NormalizeLines()
    rows, count_counters = normalized | "CountNgrams" >> CountNgrams(
        cfg.order, cfg.min_count, cfg.num_shards, f"{cfg.work_dir}/counts"
    )
    ngram_files = rows | "WriteNgramParquet" >> WriteNgramParquet(f"{cfg.out}/ngrams", cfg.num_shards)
    normalized_files = normalized | "WriteNormalizedCorpus" >> WriteNormalizedCorpus(f"{cfg.work_dir}/corpus")
    models, kenlm_counters = normalized_files | "TrainKenLM" >> TrainKenLM(
        cfg.order,
        f"{cfg.out}/lm.arpa",
        f"{cfg.out}/lm.binary",
        memory=cfg.kenlm_memory,
        temp_dir=cfg.kenlm_temp_dir,
    )
    rules = PhraseRules(
        cfg.min_dependency, cfg.boundary_word_share, cfg.boundary_min_bits, cfg.boundary_margin, cfg.min_significance
    )
    phrase_lists, score_counters = rows | "ScorePhrases" >> ScorePhrases(
        f"{cfg.out}/lm.binary", models, rules, cfg.num_shards
    )
    dictionary = phrase_lists | "BuildPhraseDictionary" >> BuildPhraseDictionary(
        f"{cfg.out}/phrases.tsv", cfg.max_phrases, cfg.dominance
    )
    # The counters file is the one sink every branch feeds (some runners, Dask among them,
    # execute only what the last transform depends on).
    (
        read_counters,
        normalize_counters,
        count_counters,
        ngram_files,
        kenlm_counters,
        score_counters,
        dictionary,
    ) | "WriteCounters" >> WriteCounters(f"{cfg.work_dir}/counters.json")


def summarize(
    counters: dict, cfg: PhrasesConfig, corpus_files: list[str], seconds: float, beam_args: list[str]
) -> dict:
    """The stats.json document from the pipeline's counters."""
    return {
        "files": {
            "given": len(corpus_files),
            "read": counters.get("files_read", 0),
            "unreadable": counters.get("files_unreadable", 0),
            "errors": sorted(k.split(": ", 1)[1] for k in counters if k.startswith("read_error: ")),
        },
        "lines": {
            "read": counters.get("lines_read", 0),
            "kept": counters.get("lines_kept", 0),
            "dropped": with_prefix(counters, "lines_dropped."),
        },
        "tokens": counters.get("tokens", 0),
        "ngrams_distinct": with_prefix(counters, "ngrams_distinct."),
        "ngrams_kept": with_prefix(counters, "ngrams_kept."),
        "phrases": {
            "candidates": counters.get("phrase_candidates", 0),
            "passing": counters.get("phrases_passing", 0),
            "rejected": with_prefix(counters, "phrases_rejected."),
            "written": counters.get("phrases_written", 0),
        },
        "timings_seconds": {
            "total": round(seconds, 3),
            "kenlm": counters.get("seconds.kenlm", 0.0),
        },
        "options": {
            **{k: v for k, v in dataclasses.asdict(cfg).items() if k != "corpus"},
            "corpus": list(cfg.corpus),
            "corpus_files": corpus_files,
            "beam_args": beam_args,
        },
    }


def run(cfg: PhrasesConfig, beam_args: list[str] | None = None) -> dict:
    """Run the whole pipeline; returns the stats.json content (also written to OUT)."""
    corpus_files = expand_corpus_paths(list(cfg.corpus))
    clear_previous_outputs(cfg.out, "stats.json", (".work/**", "ngrams/*"))
    started = time.monotonic()
    with beam_pipeline(beam_args) as pipeline:
        build_pipeline(pipeline, cfg, corpus_files)
    counters = json.loads(read_bytes(f"{cfg.work_dir}/counters.json"))
    stats = summarize(counters, cfg, corpus_files, time.monotonic() - started, list(beam_args or []))
    delete_paths([cfg.work_dir])
    write_atomically(f"{cfg.out}/stats.json", json.dumps(stats, indent=2).encode())
    return stats
