"""The English phrase dictionary file: `phrases.tsv`, one `phrase<TAB>n<TAB>count<TAB>score`
per line, best first, phrases as space-joined BERT-normalized words.

`write_phrase_tsv` / `read_phrase_tsv` are the only code that touches the format.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class PhraseEntry:
    phrase: str
    n: int
    count: int
    score: float


def rank_phrases(entries: list[PhraseEntry], limit: int | None = None) -> list[PhraseEntry]:
    """Best first: higher score, then higher count, then the phrase text (a total order)."""
    ranked = sorted(entries, key=lambda e: (-e.score, -e.count, e.phrase))
    return ranked if limit is None else ranked[:limit]


def format_phrase_tsv(entries: list[PhraseEntry]) -> str:
    return "".join(f"{e.phrase}\t{e.n}\t{e.count}\t{e.score:.6f}\n" for e in entries)


def read_phrase_tsv(path: str) -> list[PhraseEntry]:
    """Parse a phrases.tsv file; errors name the file and line."""
    entries = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\n").split("\t")
            try:
                phrase, n, count, score = fields
                entry = PhraseEntry(phrase, int(n), int(count), float(score))
            except ValueError as error:
                raise ValueError(f"{path}:{number}: expected phrase<TAB>n<TAB>count<TAB>score, got {line!r}") from error
            if entry.n != len(phrase.split(" ")):
                raise ValueError(f"{path}:{number}: n={entry.n} but {phrase!r} has other length")
            entries.append(entry)
    return entries
