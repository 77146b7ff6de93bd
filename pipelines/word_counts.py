"""Counting Chinese words with a word segmenter (vocab.chinese_segmentation) on Beam.

The segmenter runs only on maximal runs of CJK ideographs (vocab.normalization.cjk_runs), so a
word never straddles a Latin word, a digit or punctuation; words of `min_length` or more
characters are counted (2 for the dictionary, 1 for the ngram segmenter's word model). The
segmenter loads once per worker (TermCounter.setup). Used by `ambert vocab build`.
"""

from __future__ import annotations

from collections import Counter

from pipelines.term_counts import CountTerms, TermCounter
from vocab.normalization import cjk_runs


class WordCounter(TermCounter):
    """Counts segmented words (`min_length`+ CJK characters) of cleaned-text batches."""

    name = "words"

    def __init__(self, segmenter: str, segmenter_options: dict, min_length: int = 2):
        self.segmenter = segmenter
        self.segmenter_options = dict(segmenter_options)
        self.min_length = min_length
        self._cut = None

    def setup(self) -> None:
        from vocab.chinese_segmentation import make_segmenter

        self._cut = make_segmenter(self.segmenter, **self.segmenter_options).cut

    def count(self, batch) -> Counter[str]:
        if self._cut is None:
            self.setup()
        counts: Counter[str] = Counter()
        for line in batch.lines:
            for start, end in cjk_runs(line):
                counts.update(word for word in self._cut(line[start:end]) if len(word) >= self.min_length)
        return counts

    def __getstate__(self):
        return {**self.__dict__, "_cut": None}


def CountWords(  # noqa: N802
    segmenter: str, segmenter_options: dict, min_count: int, num_shards: int, directory: str, min_length: int = 2
) -> CountTerms:
    """Cleaned-text NormalizedBatch → (shard, sorted [(word, count)]) with count ≥ min_count; partial counts under
    `directory`."""
    return CountTerms(WordCounter(segmenter, segmenter_options, min_length), min_count, num_shards, directory)
