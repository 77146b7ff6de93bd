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
import os
import time
from dataclasses import dataclass, field

import apache_beam as beam

from pipelines.accounting import WriteCounters, counter, with_prefix
from pipelines.corpus import NormalizeLines, ReadCorpus
from pipelines.files import clear_previous_outputs, delete_paths, expand_corpus_paths, read_bytes, write_atomically
from pipelines.kenlm_model import TrainKenLM, WriteNormalizedCorpus
from pipelines.ngrams import CountNgrams, WriteNgramParquet
from pipelines.phrase_scoring import PhraseRules, ScorePhrases, drop_dominated
from pipelines.runner import beam_pipeline
from vocab.phrase_dictionary import format_phrase_tsv, rank_phrases

_LOG = logging.getLogger(__name__)
MAX_KENLM_ORDER = 6  # the pip kenlm module and our lmplz are built with KENLM_MAX_ORDER=6


@dataclass(frozen=True)
class PhrasesConfig:
    corpus: tuple[str, ...] = field(
        metadata={"help": "Corpus files, directories or globs (.txt, .jsonl, optionally .gz/.bz2, .parquet)."}
    )
    out: str = field(metadata={"help": "Output directory (local path or Beam-supported URL)."})
    order: int = field(default=4, metadata={"help": "Longest n-gram counted and KenLM model order (2-6)."})
    min_count: int = field(default=5, metadata={"help": "Keep n-grams seen at least this often."})
    max_phrases: int = field(default=77_645, metadata={"help": "Size of the phrase dictionary (the paper: 77,645)."})
    min_dependency: float = field(
        default=1.5, metadata={"help": "Minimum cohesion (log10) of a phrase; see pipelines/phrase_scoring.py."}
    )
    boundary_word_share: float = field(
        default=0.4,
        metadata={"help": "Boundary (function) words: the most frequent words making this share of the corpus."},
    )
    boundary_min_bits: float = field(
        default=4.0,
        metadata={"help": "A frequent word is a boundary word on a side where its neighbour has this entropy (bits)."},
    )
    boundary_margin: float = field(
        default=1.0, metadata={"help": "Extra cohesion (log10) a phrase needs per edge word that is a boundary word."}
    )
    min_significance: float = field(
        default=1.96, metadata={"help": "Minimum t-score of a phrase's association (1.96: p < 0.025)."}
    )
    dominance: float = field(
        default=0.5,
        metadata={
            "help": "Drop a phrase when a longer kept phrase starting or ending with it has this share of its count."
        },
    )
    num_shards: int = field(default=8, metadata={"help": "Number of n-gram Parquet files."})
    batch_bytes: int = field(default=1 << 20, metadata={"help": "Bytes of corpus lines read per batch by each worker."})
    max_line_bytes: int = field(default=1 << 20, metadata={"help": "Lines longer than this are dropped as too_long."})
    kenlm_memory: str = field(default="20%", metadata={"help": "lmplz -S memory limit (e.g. 20%, 2G)."})
    kenlm_temp_dir: str | None = field(
        default=None,
        metadata={"help": "lmplz -T directory for KenLM's temporary and ARPA files (default: the system temp dir)."},
    )

    def __post_init__(self):
        if not 2 <= self.order <= MAX_KENLM_ORDER:
            raise ValueError(f"--order must be between 2 and {MAX_KENLM_ORDER}, got {self.order}")
        if self.min_count < 1 or self.max_phrases < 1 or self.num_shards < 1:
            raise ValueError("--min-count, --max-phrases and --num-shards must be positive")
        if not 0 <= self.boundary_word_share < 1 or not 0 < self.dominance <= 1:
            raise ValueError("--boundary-word-share must be in [0, 1) and --dominance in (0, 1]")
        if self.kenlm_temp_dir is not None and not os.path.isdir(self.kenlm_temp_dir):
            raise ValueError(f"--kenlm-temp-dir {self.kenlm_temp_dir} is not a directory: create it or drop the flag")

    @property
    def work_dir(self) -> str:
        return f"{self.out}/.work"


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
    rows, count_counters = normalized | "CountNgrams" >> CountNgrams(cfg.order, cfg.min_count, cfg.num_shards)
    ngram_files = rows | "WriteNgramParquet" >> WriteNgramParquet(f"{cfg.out}/ngrams", cfg.num_shards)
    corpus_shards = normalized | "WriteNormalizedCorpus" >> WriteNormalizedCorpus(
        f"{cfg.work_dir}/corpus", cfg.num_shards
    )
    models, kenlm_counters = corpus_shards | "TrainKenLM" >> TrainKenLM(
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
