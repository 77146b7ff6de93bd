"""Left-to-right phrase segmentation: greedy longest match of dictionary phrases over words.

    PhraseMatcher(["new york", "new york city"]).segment_left_to_right(["in", "new", "york", "city"])
    -> [(0, 1), (1, 4)]
Phrases never contain a punctuation word (entries that do are ignored), so a whole line's words
can be passed at once: no match can cross punctuation.
"""

from __future__ import annotations

from collections.abc import Iterable

from vocab.normalization import is_punctuation

_END = ""  # the key marking "a phrase ends here" in a trie node (never a word: words are non-empty)


class PhraseMatcher:
    """Greedy longest-match phrase segmentation over a fixed set of multi-word phrases.

    Phrases are normalized words joined by single spaces; one-word entries and entries with a
    punctuation word are ignored, so no match ever crosses punctuation.
    Data structure: a word trie of nested dicts. A position whose word starts no phrase costs one
    dict probe; one that does walks the trie as far as the words allow, remembering the last end.
    (Measured faster than a first word -> lengths map plus a set of word tuples: no slicing;
    `phrase_spans` returns only the phrases, which saves a tuple per single word.)
    """

    def __init__(self, phrases: Iterable[str]):
        self._root: dict = {}
        self._count = 0
        for phrase in phrases:
            words = phrase.split(" ")
            if "" in words:
                raise ValueError(f"phrase {phrase!r} is not words joined by single spaces")
            if len(words) < 2 or any(is_punctuation(word) for word in words):
                continue
            node = self._root
            for word in words:
                node = node.setdefault(word, {})
            if _END not in node:
                node[_END] = True
                self._count += 1

    def __len__(self) -> int:
        return self._count

    def phrase_spans(self, words: list[str]) -> list[tuple[int, int]]:
        """The multi-word phrases of a greedy left-to-right longest match, as half-open word spans
        (the words outside them are single-word units). The tokenizer's hot path."""
        spans = []
        root, total, position = self._root, len(words), 0
        while position < total:
            node = root.get(words[position])
            if node is None:  # most words start no phrase: one dict probe
                position += 1
                continue
            following, end = position + 1, 0
            while following < total:
                node = node.get(words[following])
                if node is None:
                    break
                following += 1
                if _END in node:
                    end = following
            if end:
                spans.append((position, end))
                position = end
            else:
                position += 1
        return spans

    def segment_left_to_right(self, words: list[str]) -> list[tuple[int, int]]:
        """Half-open word spans covering `words`: the longest phrase at each position, else one word."""
        spans, position = [], 0
        for start, end in self.phrase_spans(words):
            spans.extend((index, index + 1) for index in range(position, start))
            spans.append((start, end))
            position = end
        spans.extend((index, index + 1) for index in range(position, len(words)))
        return spans
