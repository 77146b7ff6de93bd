"""The similar-word table of a vocab artifact, `similar.tsv`: MacBERT's replacements for masked words.

    entries = parse_similar_tsv(text, "similar.tsv")          # [(word, ((similar, score), ...)), ...]
    table = SimilarWordTable.from_artifact("out/vocab-zh")    # token ids, for masking
    table.neighbours[(fine ids of 北京,)] -> ((fine ids, coarse ids) of 上海, ...)

One `word<TAB>similar<TAB>score` per line; a word's lines are consecutive, best first. A word is a unit of
`word_units` (a coarse token, or a WordPiece word cut into several coarse pieces) written as its normalized text;
a similar word always has the same shape (number of fine tokens, number of coarse tokens), so replacing one by
the other keeps the alignment. `ambert vocab build --similar-words K` computes the table (pipelines/similar_words.py)
or takes a user's (`--similar-words-file`); this module is the only code that reads or writes the format.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from vocab.artifact import SIMILAR_WORDS_FILE, SPECIAL_TOKENS, ArtifactError, read_vocab_lines

Entry = tuple[str, tuple[tuple[str, float], ...]]  # (word, ((similar word, score), ...) best first)
Unit = tuple[tuple[int, ...], tuple[int, ...]]  # (fine ids, coarse ids) of one word
Shape = tuple[int, int]  # (fine tokens, coarse tokens) of one word


class SimilarWordsError(ValueError):
    """A similar-word table that is malformed or does not fit the artifact (names the file and line)."""


def word_units(align: np.ndarray, starts_word: np.ndarray) -> np.ndarray:
    """[U, 2] coarse spans [start, end) of an example's words, in order: each coarse token, merged with the
    following ones while their first fine token continues a WordPiece word ("##" pieces of a word that has no
    coarse unit of its own). `starts_word[i]`: fine position i does not continue a word. Coarse units (Chinese
    words, English phrases) lie on word boundaries, so every word is whole on both sides."""
    if len(align) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    starts = np.flatnonzero(starts_word[np.asarray(align)[:, 0]])
    if len(starts) == 0 or starts[0] != 0:
        starts = np.concatenate([[0], starts])
    return np.stack([starts, np.append(starts[1:], len(align))], axis=1).astype(np.int64)


def unit_text(coarse_tokens: Iterable[str]) -> str:
    """The text of a word from its coarse tokens: "##" pieces glued to the previous one (a unit made of
    several whole coarse tokens, which word_units never makes, would be space-joined)."""
    text = ""
    for token in coarse_tokens:
        text = text + token[2:] if token.startswith("##") and text else (f"{text} {token}" if text else token)
    return text


def format_similar_tsv(entries: Iterable[Entry]) -> str:
    """The canonical bytes of a table: scores with 4 decimals, each word's neighbours best first."""
    lines = []
    for word, similar in entries:
        for other, score in similar:
            lines.append(f"{word}\t{other}\t{score:.4f}\n")
    return "".join(lines)


def parse_similar_tsv(text: str, where: str) -> list[Entry]:
    """Parse a table (any line order): lines of one word are gathered in the order the word first appears,
    sorted best first (higher score, then the similar word). Errors name `where` and the line."""
    grouped: dict[str, dict[str, float]] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise SimilarWordsError(f"{where}:{number}: expected word<TAB>similar<TAB>score, got {line[:80]!r}")
        word, other, raw_score = fields
        if not word.strip() or not other.strip() or word != word.strip() or other != other.strip():
            raise SimilarWordsError(f"{where}:{number}: empty word or surrounding spaces in {line[:80]!r}")
        try:
            score = float(raw_score)
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise SimilarWordsError(f"{where}:{number}: score {raw_score!r} is not a finite number")
        if other == word:
            raise SimilarWordsError(f"{where}:{number}: {word!r} is listed as similar to itself")
        neighbours = grouped.setdefault(word, {})
        if other in neighbours:
            raise SimilarWordsError(f"{where}:{number}: {word!r} → {other!r} is listed twice")
        neighbours[other] = score
    return [
        (word, tuple(sorted(neighbours.items(), key=lambda item: (-round(item[1], 4), item[0]))))
        for word, neighbours in grouped.items()
    ]


def read_similar_tsv(path: str) -> list[Entry]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        raise SimilarWordsError(f"{path} is not UTF-8 text: {error}") from error
    return parse_similar_tsv(text, path)


class WordIds:
    """The canonical ids of a word's text, as the multi-grained tokenizer gives them: its fine WordPiece ids, and
    one coarse id when the text is a coarse-vocabulary unit, else its fine pieces (coarse vocab ⊇ fine vocab)."""

    def __init__(self, fine_tokenizer_path: str, coarse_vocab: list[str]):
        from tokenizers import Tokenizer

        self._fine = Tokenizer.from_file(fine_tokenizer_path)
        self._coarse_index = {token: index for index, token in enumerate(coarse_vocab)}
        self._unk = self._coarse_index[SPECIAL_TOKENS["unk"]]
        self._specials = frozenset(SPECIAL_TOKENS.values())

    @classmethod
    def from_artifact(cls, directory: str) -> WordIds:
        return cls(
            os.path.join(directory, "fine", "tokenizer.json"),
            read_vocab_lines(os.path.join(directory, "coarse", "vocab.txt")),
        )

    def normalize(self, word: str) -> str:
        """The text as the tokenizer sees it (lowercased, accents stripped, whitespace collapsed)."""
        return " ".join(self._fine.normalizer.normalize_str(word).split())

    def of(self, words: list[str]) -> list[Unit | None]:
        """(fine ids, coarse ids) of each normalized word; None for a special token, a word with an [UNK] piece
        or none at all."""
        units: list[Unit | None] = []
        for word, encoding in zip(words, self._fine.encode_batch(words, add_special_tokens=False), strict=True):
            fine = tuple(encoding.ids)
            if not fine or self._unk in fine or word in self._specials:
                units.append(None)
                continue
            coarse = self._coarse_index.get(word)
            units.append((fine, (coarse,) if coarse is not None else fine))
        return units


def check_similar_table(entries: list[Entry], word_ids: WordIds, where: str) -> list[Entry]:
    """A user's table, normalized as the tokenizer normalizes text, or SimilarWordsError naming the first word
    that cannot be used: one that has an [UNK] piece, or a similar word of another shape (fine and coarse
    token counts), which would break the alignment of a replaced word."""
    normalized: list[Entry] = []
    seen: dict[str, str] = {}
    for word, similar in entries:
        key = word_ids.normalize(word)
        if key in seen:
            raise SimilarWordsError(f"{where}: {word!r} and {seen[key]!r} are the same word once normalized")
        seen[key] = word
        others = [(word_ids.normalize(other), score) for other, score in similar]
        units = word_ids.of([key, *(other for other, _ in others)])
        if units[0] is None:
            raise SimilarWordsError(f"{where}: {word!r} has a piece outside the fine vocabulary ([UNK])")
        shape = tuple(map(len, units[0]))
        kept: dict[str, float] = {}
        for (other, score), unit, (original, _) in zip(others, units[1:], similar, strict=True):
            if unit is None:
                raise SimilarWordsError(
                    f"{where}: {original!r} (similar to {word!r}) has a piece outside the fine vocabulary ([UNK])"
                )
            if tuple(map(len, unit)) != shape:
                raise SimilarWordsError(
                    f"{where}: {word!r} is {shape[0]} fine / {shape[1]} coarse tokens but {original!r} is "
                    f"{len(unit[0])} / {len(unit[1])}: a similar word must have the same number of tokens"
                )
            if other != key:
                kept.setdefault(other, score)
        normalized.append((key, tuple(sorted(kept.items(), key=lambda item: (-round(item[1], 4), item[0])))))
    return [(word, similar) for word, similar in normalized if similar]


@dataclass(frozen=True)
class SimilarWordTable:
    """A table as token ids, for MacBERT masking (picklable: plain dicts and arrays).

    neighbours: a word's fine ids → its similar words' (fine ids, coarse ids), best first.
    random_units: (fine length, coarse length) → int64 [m, fine length + coarse length], every coarse-vocabulary
    word of that shape (fine ids, then coarse ids), for random replacements; single tokens are whole-word fine
    tokens (no "##", no special or [unused] token). continuation_ids: the "##" fine ids.
    """

    neighbours: dict[tuple[int, ...], tuple[Unit, ...]]
    random_units: dict[Shape, np.ndarray]
    continuation_ids: np.ndarray

    @classmethod
    def from_artifact(cls, directory: str) -> SimilarWordTable:
        """The artifact's similar.tsv (an empty table when it has none) and its random-word pools."""
        fine_vocab = read_vocab_lines(os.path.join(directory, "fine", "vocab.txt"))
        coarse_vocab = read_vocab_lines(os.path.join(directory, "coarse", "vocab.txt"))
        word_ids = WordIds(os.path.join(directory, "fine", "tokenizer.json"), coarse_vocab)
        path = os.path.join(directory, SIMILAR_WORDS_FILE)
        entries = read_similar_tsv(path) if os.path.exists(path) else []
        neighbours: dict[tuple[int, ...], tuple[Unit, ...]] = {}
        for word, similar in entries:
            units = word_ids.of([word, *(other for other, _ in similar)])
            if any(unit is None for unit in units) or units[0][0] in neighbours:
                raise ArtifactError(f"{path}: {word!r} does not fit this artifact's vocabulary; rebuild the artifact")
            neighbours[units[0][0]] = tuple(units[1:])
        return cls(neighbours, _random_units(fine_vocab, coarse_vocab, word_ids), _continuation_ids(fine_vocab))


def _plain(token: str) -> bool:
    """A vocabulary entry that can stand for a word: no special token, [unused…] slot or "##" piece."""
    return not (token.startswith("[") and token.endswith("]")) and not token.startswith("##")


def _continuation_ids(fine_vocab: list[str]) -> np.ndarray:
    return np.asarray([i for i, token in enumerate(fine_vocab) if token.startswith("##")], dtype=np.int64)


def _random_units(
    fine_vocab: list[str], coarse_vocab: list[str], word_ids: WordIds
) -> dict[tuple[int, int], np.ndarray]:
    pools: dict[Shape, list[tuple[int, ...]]] = {
        (1, 1): [(i, i) for i, token in enumerate(fine_vocab) if _plain(token)]
    }
    units = coarse_vocab[len(fine_vocab) :]
    for index, unit in enumerate(word_ids.of(units), len(fine_vocab)):
        if unit is not None and unit[1] == (index,):
            pools.setdefault((len(unit[0]), 1), []).append((*unit[0], index))
    return {shape: np.asarray(rows, dtype=np.int64) for shape, rows in sorted(pools.items())}
