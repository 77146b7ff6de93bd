"""Scoring candidate phrases with the corpus's KenLM model.

Rule (logs base 10, probabilities from the KenLM model of the normalized corpus):

    dependency_k(w1..wn) = log P(wk | w1..wk-1) - log P(wk)          for k = 2..n
    cohesion(w1..wn)     = min over k of dependency_k
    score                = cohesion * log10(1 + count)

A candidate (2 <= n <= order words, count >= min_count, every word containing a letter: no
numbers or symbol runs such as "00 00" or box-drawing art) is kept when
cohesion >= min_dependency; the best `max_phrases` by score form the dictionary.
Why: the paper keeps phrases "whose frequencies are sufficiently high and whose last words highly
depend on their previous words". dependency_n is exactly that (a pointwise mutual information of
the last word with its context, smoothed by the model), so "new york" (3.8) ranks far above the
much more frequent "of the" (1.1). Asking it of every word, not only the last, stops a phrase
from inheriting the dependency of its tail: "in new york" has a dependent last word only because
"new york" does, while "new" hardly depends on "in", so it is rejected and left-to-right
segmentation keeps "in" apart. The log-count factor prefers, among equally cohesive phrases, the
frequent ones, whose coarse embeddings get enough training data. KenLM's unigram probability is
a Kneser-Ney continuation probability, which further discounts words that follow any context.
"""

from __future__ import annotations

import math
import os
import tempfile

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.accounting import SplitCounters, counter
from vocab.phrase_dictionary import PhraseEntry


def word_dependencies(model, words: list[str]) -> list[float]:
    """[dependency_k for k = 2..n]: how much each word depends on the words before it."""
    import kenlm

    context, scratch, null = kenlm.State(), kenlm.State(), kenlm.State()
    model.NullContextWrite(context)
    model.NullContextWrite(null)
    model.BaseScore(context, words[0], scratch)
    context, scratch = scratch, context
    dependencies = []
    for word in words[1:]:
        conditional = model.BaseScore(context, word, scratch)
        context, scratch = scratch, context
        dependencies.append(conditional - model.BaseScore(null, word, kenlm.State()))
    return dependencies


def is_candidate(ngram: str) -> bool:
    """A phrase candidate: two or more words, each with at least one letter."""
    words = ngram.split(" ")
    return len(words) >= 2 and all(any(ch.isalpha() for ch in word) for word in words)


def score_candidate(model, phrase: str, count: int) -> tuple[float, float]:
    """(cohesion, score) of one candidate phrase, as defined in the module docstring."""
    cohesion = min(word_dependencies(model, phrase.split(" ")))
    return cohesion, cohesion * math.log10(1 + count)


def _local_copy(path: str) -> str:
    """A local file with the content of `path` (itself when already local)."""
    if os.path.exists(path):
        return path
    handle, local = tempfile.mkstemp(prefix="ambert-lm-", suffix=".binary")
    with (
        os.fdopen(handle, "wb") as out,
        FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as source,
    ):
        while chunk := source.read(1 << 20):
            out.write(chunk)
    return local


class _ScoreCandidates(beam.DoFn):
    """Loads the KenLM binary once per worker (on its first element), then scores shards of candidates."""

    def __init__(self, model_path: str, min_dependency: float):
        self._model_path = model_path
        self._min_dependency = min_dependency
        self._model = None

    def process(self, keyed, model_ready):
        # model_ready is a side input only so that scoring waits for the model. The model loads on the first
        # element, once per DoFn instance (a worker), not in setup(): DaskRunner runs setup() before the side input
        # is ready, when lm.binary may not exist yet.
        del model_ready
        if self._model is None:
            import kenlm

            self._model = kenlm.Model(_local_copy(self._model_path))
        _shard, rows = keyed
        kept = []
        candidates = 0
        for ngram, count in rows:
            if not is_candidate(ngram):
                continue
            candidates += 1
            cohesion, score = score_candidate(self._model, ngram, count)
            if cohesion >= self._min_dependency:
                kept.append(PhraseEntry(ngram, ngram.count(" ") + 1, count, round(score, 6)))
        yield counter("phrase_candidates", candidates)
        yield counter("phrases_passing", len(kept))
        yield kept


class ScorePhrases(beam.PTransform):
    """(shard, n-gram rows) → lists of PhraseEntry that pass the thresholds, + counters."""

    def __init__(self, model_path: str, model_ready, min_dependency: float):
        super().__init__()
        self._fn = _ScoreCandidates(model_path, min_dependency)
        self._model_ready = model_ready

    def expand(self, shards):
        return (
            shards
            | "Score" >> beam.ParDo(self._fn, beam.pvalue.AsSingleton(self._model_ready))
            | "SplitCounters" >> SplitCounters()
        )
