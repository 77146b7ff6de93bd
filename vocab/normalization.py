"""BERT uncased basic tokenization: the word-level view every English stage shares.

`basic_words(text)` cleans, lowercases, strips accents, isolates CJK characters and splits
punctuation exactly as BERT's BasicTokenizer does (through `tokenizers`' BertNormalizer and
BertPreTokenizer, the implementation Hugging Face's fast BERT tokenizers run).
`phrase_segments(words)` cuts a word list at punctuation: n-grams and phrases never cross it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from tokenizers import normalizers, pre_tokenizers

_NORMALIZER = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
_PRE_TOKENIZER = pre_tokenizers.BertPreTokenizer()


def normalize_text(text: str) -> str:
    """BERT uncased normalization of `text` (clean, CJK spacing, lowercase, strip accents)."""
    return _NORMALIZER.normalize_str(text)


_CLEANER = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)


def clean_text(text: str) -> str:
    """BERT's text cleaning alone: control characters and U+FFFD removed, whitespace → spaces."""
    return _CLEANER.normalize_str(text)


_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_CJK_RUN = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _CJK_RANGES) + "]+")


def cjk_runs(text: str) -> list[tuple[int, int]]:
    """Half-open character spans of the maximal runs of CJK ideographs in `text` (as BERT's
    _is_chinese_char defines them: the characters BERT isolates)."""
    return [match.span() for match in _CJK_RUN.finditer(text)]


def basic_words(text: str) -> list[str]:
    """The words BERT's uncased basic tokenizer produces for `text` (punctuation split off)."""
    return [word for word, _span in _PRE_TOKENIZER.pre_tokenize_str(_NORMALIZER.normalize_str(text))]


@lru_cache(maxsize=4096)
def is_punctuation(word: str) -> bool:
    """True for a single punctuation character as BERT defines it (ASCII symbols count)."""
    if len(word) != 1:
        return False
    cp = ord(word)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(word).startswith("P")


def phrase_segments(words: list[str]) -> list[list[str]]:
    """Split `words` into maximal runs without punctuation (the spans n-grams may cover)."""
    segments: list[list[str]] = []
    current: list[str] = []
    for word in words:
        if is_punctuation(word):
            if current:
                segments.append(current)
                current = []
        else:
            current.append(word)
    if current:
        segments.append(current)
    return segments
