"""Left-to-right phrase segmentation equals a brute-force greedy longest match."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocab.phrase_segmentation import PhraseMatcher

WORDS = ["a", "b", "c", "d"]


def brute_force(phrases: set[str], words: list[str]) -> list[tuple[int, int]]:
    spans, position = [], 0
    while position < len(words):
        best = 1
        for end in range(position + 2, len(words) + 1):
            if " ".join(words[position:end]) in phrases:
                best = end - position
        spans.append((position, position + best))
        position += best
    return spans


@settings(max_examples=300, deadline=None)
@given(
    st.sets(st.lists(st.sampled_from(WORDS), min_size=2, max_size=4).map(" ".join), max_size=12),
    st.lists(st.sampled_from(WORDS), max_size=25),
)
def test_greedy_longest_match(phrases, words):
    matcher = PhraseMatcher(phrases)
    expected = brute_force(phrases, words)
    assert matcher.segment_left_to_right(words) == expected
    assert matcher.phrase_spans(words) == [(start, end) for start, end in expected if end - start > 1]


def test_example():
    matcher = PhraseMatcher(["new york", "new york city", "ice cream", "single"])
    assert len(matcher) == 3  # one-word entries are not phrases
    assert matcher.segment_left_to_right(["in", "new", "york", "city", "new", "york"]) == [(0, 1), (1, 4), (4, 6)]


def test_malformed_phrases_are_refused():
    with pytest.raises(ValueError, match="'new  york' is not words joined by single spaces"):
        PhraseMatcher(["new  york"])


def test_phrases_never_cross_punctuation():
    matcher = PhraseMatcher(["new york", "u . s", "york , city"])
    assert len(matcher) == 1  # entries with punctuation words are ignored
    assert matcher.phrase_spans(["new", ",", "york", "new", "york", ".", "new"]) == [(3, 5)]
