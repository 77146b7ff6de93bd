"""Left-to-right phrase segmentation: greedy longest match of dictionary phrases over words.

    PhraseMatcher(["new york", "new york city"]).segment_left_to_right(["in", "new", "york", "city"])
    -> [(0, 1), (1, 4)]     # callers pass punctuation-free runs (normalization.phrase_segments)
"""

from __future__ import annotations

from collections.abc import Iterable

_END = ""  # the key marking "a phrase ends here" in a trie node (never a word: words are non-empty)


class PhraseMatcher:
    """Greedy longest-match phrase segmentation over a fixed set of multi-word phrases.

    Phrases are normalized words joined by single spaces; one-word entries are ignored. It does
    not look for punctuation: callers pass punctuation-free runs, so no phrase crosses it.
    Data structure: a word trie of nested dicts. A position whose word starts no phrase costs one
    dict probe; one that does walks the trie as far as the words allow, remembering the last end.
    (Measured faster than a first word -> lengths map plus a set of word tuples: no slicing.)
    """

    def __init__(self, phrases: Iterable[str]):
        self._root: dict = {}
        self._count = 0
        for phrase in phrases:
            words = phrase.split(" ")
            if "" in words:
                raise ValueError(f"phrase {phrase!r} is not words joined by single spaces")
            if len(words) < 2:
                continue
            node = self._root
            for word in words:
                node = node.setdefault(word, {})
            if _END not in node:
                node[_END] = True
                self._count += 1

    def __len__(self) -> int:
        return self._count

    def segment_left_to_right(self, words: list[str]) -> list[tuple[int, int]]:
        """Half-open word spans covering `words`: the longest phrase at each position, else one word."""
        total = len(words)
        if total == 1:
            return [(0, 1)]  # a third of real runs (between punctuation marks) are one word
        spans = []
        append, root = spans.append, self._root
        position = 0
        while position < total:
            node = root.get(words[position])
            step = 1
            if node is not None:
                following = position + 1
                while following < total:
                    node = node.get(words[following])
                    if node is None:
                        break
                    following += 1
                    if _END in node:
                        step = following - position
            append((position, position + step))
            position += step
        return spans
