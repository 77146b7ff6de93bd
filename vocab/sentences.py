"""Splitting a document into sentences (English and Chinese rules), as character spans.

    split_sentences("Mr. Smith went home. 他走了。你呢？") -> [(0, 20), (21, 25), (25, 28)]

Chinese: a sentence ends after 。！？；…, or ! ? directly before a Chinese character (closing quotes
and brackets stay with the sentence).
English: after . ! ? (plus closing quotes/brackets) when whitespace and an upper-case letter,
digit or opening quote follow, except after common abbreviations and single initials.
Spans exclude surrounding whitespace and cover every non-space character once.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "no",
    "fig",
    "inc",
    "ltd",
    "co",
    "corp",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "gen",
    "gov",
    "sen",
    "rep",
    "capt",
    "col",
    "lt",
    "sgt",
    "mt",
    "u.s",
}
_CLOSERS = "\"'”’」』）)]》"
_CJK_END = re.compile(r"(?:[。！？；…]+|[!?]+(?=[\u3400-\u9fff]))[" + re.escape(_CLOSERS) + r"]*")
_EN_END = re.compile(r"[.!?]+[" + re.escape(_CLOSERS) + r"]*(?=\s+[\"'“‘(\[A-Z0-9])")


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the '.' at `dot` ends an abbreviation or a single initial ("J.")."""
    start = dot
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start:dot].lstrip("(\"'“‘").lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _boundaries(text: str) -> list[int]:
    ends = {m.end() for m in _CJK_END.finditer(text)}
    for match in _EN_END.finditer(text):
        if text[match.start()] == "." and match.end() - match.start() == 1 and _is_abbreviation(text, match.start()):
            continue
        ends.add(match.end())
    return sorted(ends)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Half-open character spans of the sentences of `text`, whitespace trimmed."""
    spans = []
    start = 0
    for end in [*_boundaries(text), len(text)]:
        left, right = start, end
        while left < right and text[left].isspace():
            left += 1
        while right > left and text[right - 1].isspace():
            right -= 1
        if left < right:
            spans.append((left, right))
        start = end
    return spans
