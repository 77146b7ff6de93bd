"""Scoring candidate phrases with the corpus's KenLM model and its n-gram counts.

Statistics (logs base 10): the KenLM model of the normalized corpus, the n-gram counts (the
Parquet rows) and, by a shard-to-shard join of those rows, the counts of each candidate's first
word, last word, prefix w1..wn-1 and suffix w2..wn; N is the number of counted words.

    forward_k  = log P(wk | w1..wk-1) - log P(wk)                  for k = 2..n  (KenLM)
    backward   = log P(w1 | w2..wn) - log P(w1) = log (c N / (c(w1) c(suffix)))   (counts)
    cohesion   = min(forward_2, ..., forward_n, backward)
    t-score    = min over the splits (prefix | wn), (w1 | suffix) of (c - c(left) c(right) / N) / sqrt(c)
    score      = cohesion * log10(1 + count)

A candidate (2 <= n <= order words, count >= min_count, every word containing a letter: no
numbers or symbol runs such as "00 00" or box-drawing art) is kept when
1. cohesion >= min_dependency;
2. cohesion >= min_dependency + boundary_margin when its first or its last word is a boundary
   word, + 2 * boundary_margin when both are: boundary words are the most frequent words of the
   corpus that together make `boundary_word_share` of its words (the, of, can, be, his, ...) and
   whose neighbour on the phrase's side (the next word for w1, the previous one for wn) has at
   least `boundary_min_bits` of entropy (from the bigram counts);
3. t-score >= min_significance;
and of two kept phrases where one is the prefix or the suffix of the other, the shorter is dropped
when the longer one accounts for at least `dominance` of its occurrences. The best `max_phrases`
by score form the dictionary.

Why. The paper keeps phrases "whose frequencies are sufficiently high and whose last words highly
depend on their previous words": forward_n is exactly that (a pointwise mutual information of the
last word with its context, smoothed by the model), so "new york" (3.3 on the 31 MB benchmark
corpus) ranks far above the much more frequent "of the" (1.1). Asking it of every word, not only
the last, stops a phrase from inheriting the dependency of its tail. The backward dependency asks
the same of the first word (does w1 predict the rest?): "in new york" has dependent later words
only because "new york" does, while "in" hardly predicts "new york", and a determiner precedes
almost anything ("the lord" 1.2 backward although "lord" depends on "the"). It comes from exact
counts (every sub-n-gram of a kept n-gram is kept), which spares a second, right-to-left lmplz
run. Neither rejects collocations of closed-class words, which are strongly mutually dependent
("can be" 2.5 forward, 1.6 backward; "has been" 2.9, 2.2) but are not lexical units, so rule 2
asks a phrase that starts or ends with a function word to be far more cohesive. Function words
are the most frequent words of any English corpus (Zipf: on the 31 MB corpus 79 word types make
40% of the words, nearly all of them closed-class), and they combine with almost any word. The
entropy of the neighbour only exempts a frequent word whose neighbour on that side is nearly fixed
(under 4 bits, 16 equally likely words: "new" before "york" in a small corpus); it does not
separate function words from frequent content words, whose contexts are as varied ("device" 10.6
bits to the right, "can" 6.3, "the" 11.5 on the 31 MB corpus). Rule 3 asks the association to be
statistically significant (a t-score of 1.96: p < 0.025, one-sided) from exact counts, so that a
few chance co-occurrences of rare words are not enough whatever their dependency; at the default
minimum count of 5 it rarely bites, below it (--min-count 2, 3) it does. The
dominance rule keeps "grand theft auto" and drops "grand theft" when nearly every "grand theft"
is followed by "auto": left-to-right longest match would almost never use the shorter entry,
which only takes a dictionary slot. The defaults (min_dependency 1.0, boundary_margin 1.5) ask a
phrase with a boundary edge for 2.5 and one of content words for 1.0: on the 31 MB corpus,
lowering min_dependency from 1.5 with the boundary bar fixed left the top 1,000 (WordNet
precision, share of closed-class edges) unchanged and raised the dictionary from 15,154 to
25,720 phrases (benchmarks/README.md); the added phrases rank low and are mostly transparent
collocations ("error code", "king of judah", "find out"). The log-count factor prefers, among equally cohesive phrases,
the frequent ones, whose coarse embeddings get enough training data.
"""

from __future__ import annotations

import math
import os
import tempfile

import apache_beam as beam

from pipelines.accounting import SplitCounters, counter
from pipelines.files import open_to_read
from pipelines.term_counts import shard_of
from vocab.phrase_dictionary import PhraseEntry


def word_dependencies(model, words: list[str]) -> list[float]:
    """[dependency_k for k = 2..n]: how much each word depends on the words before it (in the
    model's direction: pass the words reversed to a right-to-left model)."""
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


def edge_subgrams(ngram: str) -> tuple[str, str, str, str]:
    """(first word, prefix w1..wn-1, suffix w2..wn, last word) of an n-gram of 2+ words."""
    words = ngram.split(" ")
    return words[0], " ".join(words[:-1]), " ".join(words[1:]), words[-1]


def backward_dependency(count: int, subgram_counts: dict[str, int], phrase: str, tokens: int) -> float:
    """log P(w1 | w2..wn) - log P(w1), from counts: how much the first word predicts the rest."""
    first, _prefix, suffix, _last = edge_subgrams(phrase)
    return math.log10(count * tokens / (subgram_counts[first] * subgram_counts[suffix]))


def cohesion(model, count: int, subgram_counts: dict[str, int], phrase: str, tokens: int) -> float:
    """The least of the forward dependencies and the backward one (module docstring)."""
    forward = word_dependencies(model, phrase.split(" "))
    return min(*forward, backward_dependency(count, subgram_counts, phrase, tokens))


def t_score(count: int, subgram_counts: dict[str, int], phrase: str, tokens: int) -> float:
    """The least t-score of the splits (prefix | last word) and (first word | suffix)."""
    first, prefix, suffix, last = edge_subgrams(phrase)
    expected = max(subgram_counts[prefix] * subgram_counts[last], subgram_counts[first] * subgram_counts[suffix])
    return (count - expected / tokens) / math.sqrt(count)


def context_entropies(unigram_counts: dict[str, int], bigram_counts: list[tuple[str, int]]) -> dict[str, tuple]:
    """{word: (left, right)}: the entropy in bits of the word before and of the word after each
    word, from the kept bigrams; pruned bigram occurrences count as distinct (the most varied case)."""
    sums: dict[str, tuple[list, list]] = {word: ([], []) for word in unigram_counts}
    for bigram, count in bigram_counts:
        first, last = bigram.split(" ")
        contribution = count * math.log2(count)
        if first in sums:
            sums[first][1].append(contribution)
        if last in sums:
            sums[last][0].append(contribution)
    entropies = {}
    for word, (left, right) in sums.items():
        total = unigram_counts[word]
        entropies[word] = tuple(math.log2(total) - math.fsum(side) / total for side in (left, right))
    return entropies


def boundary_words(
    unigram_counts: dict[str, int], entropies: dict[str, tuple], share: float, min_bits: float
) -> tuple[frozenset[str], frozenset[str]]:
    """(words that may not start a phrase, words that may not end one) without the extra cohesion:
    of the most frequent words that together make `share` of all counted words (ties by the word),
    those whose following (resp. preceding) word has at least `min_bits` of entropy."""
    total = sum(unigram_counts.values())
    frequent, covered = [], 0
    for word, count in sorted(unigram_counts.items(), key=lambda item: (-item[1], item[0])):
        if covered >= share * total:
            break
        frequent.append(word)
        covered += count
    starts = frozenset(word for word in frequent if entropies[word][1] >= min_bits)
    ends = frozenset(word for word in frequent if entropies[word][0] >= min_bits)
    return starts, ends


def required_cohesion(
    phrase: str, boundary: tuple[frozenset, frozenset], min_dependency: float, margin: float
) -> float:
    """Rules 1 and 2: the cohesion a phrase needs, given which of its edge words are boundary words."""
    words = phrase.split(" ")
    starts, ends = boundary
    return min_dependency + margin * ((words[0] in starts) + (words[-1] in ends))


def drop_dominated(entries: list[PhraseEntry], dominance: float) -> list[PhraseEntry]:
    """Entries without those whose occurrences are mostly inside a longer kept phrase of which
    they are the prefix or the suffix (count(longer) >= dominance * count(shorter))."""
    counts = {entry.phrase: entry.count for entry in entries}
    dominated = set()
    for entry in entries:
        if entry.n < 3:
            continue
        _first, prefix, suffix, _last = edge_subgrams(entry.phrase)
        for shorter in (prefix, suffix):
            if shorter in counts and entry.count >= dominance * counts[shorter]:
                dominated.add(shorter)
    return [entry for entry in entries if entry.phrase not in dominated]


class PhraseRules:
    """The thresholds of the scoring rules (PhrasesConfig's fields of the same names)."""

    def __init__(
        self,
        min_dependency: float,
        boundary_word_share: float,
        boundary_min_bits: float,
        boundary_margin: float,
        min_significance: float,
    ):
        self.min_dependency = min_dependency
        self.boundary_word_share = boundary_word_share
        self.boundary_min_bits = boundary_min_bits
        self.boundary_margin = boundary_margin
        self.min_significance = min_significance


def _local_copy(path: str) -> str:
    """A local file with the content of `path` (itself when already local)."""
    if os.path.exists(path):
        return path
    handle, local = tempfile.mkstemp(prefix="ambert-lm-", suffix=".binary")
    with os.fdopen(handle, "wb") as out, open_to_read(path) as source:
        while chunk := source.read(1 << 20):
            out.write(chunk)
    return local


# -- word statistics: the boundary words and the number of counted words ---------------------
class _WordRows(beam.DoFn):
    def process(self, keyed):
        _shard, rows = keyed
        yield None, [(ngram, count) for ngram, count in rows if ngram.count(" ") <= 1]


class _BoundaryWords(beam.DoFn):
    def __init__(self, share: float, min_bits: float):
        self._share = share
        self._min_bits = min_bits

    def process(self, keyed):
        _key, lists = keyed
        rows = sorted(row for rows in lists for row in rows)  # one order whatever the workers
        unigrams = {ngram: count for ngram, count in rows if " " not in ngram}
        entropies = context_entropies(unigrams, [row for row in rows if " " in row[0]])
        yield {
            "tokens": sum(unigrams.values()),
            "boundary": boundary_words(unigrams, entropies, self._share, self._min_bits),
        }


class ComputeWordStatistics(beam.PTransform):
    """(shard, n-gram rows) → one dict: tokens (counted words), boundary (boundary_words' pair)."""

    def __init__(self, boundary_word_share: float, boundary_min_bits: float):
        super().__init__()
        self._fn = _BoundaryWords(boundary_word_share, boundary_min_bits)

    def expand(self, shards):
        every = shards.pipeline | "NoneYet" >> beam.Create([(None, [])])
        return (
            (shards | "WordRows" >> beam.ParDo(_WordRows()), every)
            | "WithEmpty" >> beam.Flatten()
            | "Gather" >> beam.GroupByKey()
            | "Boundary" >> beam.ParDo(self._fn)
        )


# -- the shard-to-shard join: counts of each candidate's edge sub-n-grams ---------------------
class _RequestSubgrams(beam.DoFn):
    """(shard, rows) → (shard, ("rows", rows)) and, for every shard holding edge sub-n-grams of its
    candidates, (that shard, ("need", shard, sorted sub-n-grams))."""

    def __init__(self, num_shards: int):
        self._num_shards = num_shards

    def process(self, keyed):
        shard, rows = keyed
        yield shard, ("rows", shard, rows)
        wanted: list[set[str]] = [set() for _ in range(self._num_shards)]
        for ngram, _count in rows:
            if is_candidate(ngram):
                for sub in edge_subgrams(ngram):
                    wanted[shard_of(sub, self._num_shards)].add(sub)
        for target, subs in enumerate(wanted):
            if subs:
                yield target, ("need", shard, sorted(subs))


class _AnswerRequests(beam.DoFn):
    """A shard's rows and the requests for its n-grams → (asking shard, ("counts", {sub: count})),
    and the rows passed on to their own shard."""

    def process(self, keyed):
        shard, messages = keyed
        rows = next(rows for kind, _source, rows in messages if kind == "rows")
        yield shard, ("rows", rows)
        counts = dict(rows)
        for kind, source, subs in messages:
            if kind == "need":
                yield source, ("counts", {sub: counts[sub] for sub in subs})


def _with_subgram_counts(keyed):
    shard, messages = keyed
    rows, counts = [], {}
    for kind, payload in messages:
        if kind == "rows":
            rows = payload
        else:
            counts.update(payload)
    return shard, rows, counts


class JoinSubgramCounts(beam.PTransform):
    """(shard, rows) → (shard, rows, {edge sub-n-gram of its candidates: count}). Only dicts per
    pair of shards cross the shuffles, never an element per n-gram."""

    def __init__(self, num_shards: int):
        super().__init__()
        self._num_shards = num_shards

    def expand(self, shards):
        return (
            shards
            | "Request" >> beam.ParDo(_RequestSubgrams(self._num_shards))
            | "GroupRequests" >> beam.GroupByKey()
            | "Answer" >> beam.ParDo(_AnswerRequests())
            | "GroupAnswers" >> beam.GroupByKey()
            | "Merge" >> beam.Map(_with_subgram_counts)
        )


# -- scoring ------------------------------------------------------------------------------------
class _ScoreCandidates(beam.DoFn):
    """Loads the KenLM binary once per worker (on its first element), then scores shards of candidates."""

    def __init__(self, model_path: str, rules: PhraseRules):
        self._model_path = model_path
        self._rules = rules
        self._model = None

    def process(self, joined, model_ready, word_statistics):
        # model_ready is a side input only so that scoring waits for the model. The model loads on the first
        # element, once per DoFn instance (a worker), not in setup(): DaskRunner runs setup() before the side input
        # is ready, when lm.binary may not exist yet.
        del model_ready
        if self._model is None:
            import kenlm

            self._model = kenlm.Model(_local_copy(self._model_path))
        rules, boundary, tokens = self._rules, word_statistics["boundary"], word_statistics["tokens"]
        _shard, rows, subgram_counts = joined
        kept = []
        candidates = rejected_boundary = rejected_significance = 0
        for ngram, count in rows:
            if not is_candidate(ngram):
                continue
            candidates += 1
            value = cohesion(self._model, count, subgram_counts, ngram, tokens)
            if value < rules.min_dependency:
                continue
            if value < required_cohesion(ngram, boundary, rules.min_dependency, rules.boundary_margin):
                rejected_boundary += 1
                continue
            if t_score(count, subgram_counts, ngram, tokens) < rules.min_significance:
                rejected_significance += 1
                continue
            kept.append(PhraseEntry(ngram, ngram.count(" ") + 1, count, round(value * math.log10(1 + count), 6)))
        yield counter("phrase_candidates", candidates)
        yield counter("phrases_rejected.boundary_word", rejected_boundary)
        yield counter("phrases_rejected.not_significant", rejected_significance)
        yield counter("phrases_passing", len(kept))
        yield kept


class ScorePhrases(beam.PTransform):
    """(shard, n-gram rows) → lists of PhraseEntry that pass the rules, + counters."""

    def __init__(self, model_path: str, model_ready, rules: PhraseRules, num_shards: int):
        super().__init__()
        self._fn = _ScoreCandidates(model_path, rules)
        self._model_ready = model_ready
        self._num_shards = num_shards
        self._rules = rules

    def expand(self, shards):
        statistics = shards | "WordStatistics" >> ComputeWordStatistics(
            self._rules.boundary_word_share, self._rules.boundary_min_bits
        )
        return (
            shards
            | "JoinSubgramCounts" >> JoinSubgramCounts(self._num_shards)
            | "Score"
            >> beam.ParDo(self._fn, beam.pvalue.AsSingleton(self._model_ready), beam.pvalue.AsSingleton(statistics))
            | "SplitCounters" >> SplitCounters()
        )
