"""The Chinese word dictionary file: `words.tsv`, one `word<TAB>count` per line, most frequent
first (ties by the word). `format_word_tsv` / `read_word_tsv` are the only code for the format.
"""

from __future__ import annotations


def rank_words(counts: list[tuple[str, int]], limit: int | None = None) -> list[tuple[str, int]]:
    ranked = sorted(counts, key=lambda item: (-item[1], item[0]))
    return ranked if limit is None else ranked[:limit]


def format_word_tsv(words: list[tuple[str, int]]) -> str:
    return "".join(f"{word}\t{count}\n" for word, count in words)


def read_word_tsv(path: str) -> list[tuple[str, int]]:
    """Parse a words.tsv file; errors name the file and line."""
    words = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 2 or not fields[0] or not fields[1].isdigit():
                raise ValueError(f"{path}:{number}: expected word<TAB>count, got {line!r}")
            words.append((fields[0], int(fields[1])))
    return words
