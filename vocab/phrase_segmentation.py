"""Left-to-right phrase segmentation: greedy longest match of dictionary phrases over words.

    matcher = PhraseMatcher(["new york", "new york city", "ice cream"])
    matcher.segment_left_to_right(["in", "new", "york", "city"]) -> [(0, 1), (1, 4)]

Callers pass punctuation-free runs (vocab.normalization.phrase_segments), so no phrase crosses
punctuation. Data structure: a dict from a phrase's first word to the lengths of the phrases
that start with it (longest first), plus a set of word tuples: at each position only the few
lengths recorded for that word are tried, so segmentation is one dict probe per word and one
set probe per candidate length.
"""

from __future__ import annotations

from collections.abc import Iterable


class PhraseMatcher:
    def __init__(self, phrases: Iterable[str]):
        self._phrases: set[tuple[str, ...]] = set()
        lengths: dict[str, set[int]] = {}
        for phrase in phrases:
            words = tuple(phrase.split(" "))
            if len(words) < 2:
                continue
            self._phrases.add(words)
            lengths.setdefault(words[0], set()).add(len(words))
        self._lengths = {word: sorted(sizes, reverse=True) for word, sizes in lengths.items()}

    def __len__(self) -> int:
        return len(self._phrases)

    def segment_left_to_right(self, words: list[str]) -> list[tuple[int, int]]:
        """Half-open word spans covering `words`: the longest phrase at each position, else one word."""
        spans = []
        position, total = 0, len(words)
        lengths, phrases = self._lengths, self._phrases
        while position < total:
            step = 1
            for size in lengths.get(words[position], ()):
                if position + size <= total and tuple(words[position : position + size]) in phrases:
                    step = size
                    break
            spans.append((position, position + step))
            position += step
        return spans
