"""BERT uncased basic tokenization: checked against Google's original algorithm."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from vocab.normalization import basic_words, cjk_runs, is_punctuation, phrase_segments


def google_basic_tokenize(text: str) -> list[str]:
    """BasicTokenizer(do_lower_case=True) of google-research/bert tokenization.py, condensed."""

    def is_control(ch):
        if ch in "\t\n\r":
            return False
        return unicodedata.category(ch).startswith("C")

    def is_whitespace(ch):
        return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"

    def is_cjk(cp):
        return (
            0x4E00 <= cp <= 0x9FFF
            or 0x3400 <= cp <= 0x4DBF
            or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F
            or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F
        )

    def is_punct(ch):
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            continue
        cleaned.append(" " if is_whitespace(ch) else ch)
    spaced = "".join(f" {ch} " if is_cjk(ord(ch)) else ch for ch in cleaned)
    words = []
    for token in spaced.split():
        token = unicodedata.normalize("NFD", token.lower())
        token = "".join(ch for ch in token if unicodedata.category(ch) != "Mn")
        current = ""
        for ch in token:
            if is_punct(ch):
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


def test_known_cases():
    assert basic_words("Héllo, WORLD!  New\tYork\x00 東京 café...") == [
        "hello",
        ",",
        "world",
        "!",
        "new",
        "york",
        "東",
        "京",
        "cafe",
        ".",
        ".",
        ".",
    ]
    assert basic_words("don't") == ["don", "'", "t"]
    assert basic_words(" \t\x07 ") == []


def same_tables(ch: str) -> bool:
    """False for the ~760 characters where `tokenizers` (the implementation the fine tokenizer must
    match) and Python's unicodedata disagree: its own Unicode tables differ on some marks and
    punctuation, and its CJK range starts at U+2B920 where Google's starts at U+2B820."""
    return unicodedata.category(ch) not in ("Cn", "Cs") and basic_words(f"a{ch}b") == google_basic_tokenize(f"a{ch}b")


text_alphabet = st.one_of(
    st.sampled_from(list("abcXYZ ,.!?'-()\t\néÉüñ東京語。，！ＡＢ１２😀\u200b\x07\x00\u0301")),
    st.characters(codec="utf-8").filter(same_tables),
)


def test_known_table_differences():
    assert basic_words("a\U0002b820b") == ["a\U0002b820b"]  # Google's BERT would isolate it as CJK
    assert google_basic_tokenize("a\U0002b820b") == ["a", "\U0002b820", "b"]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=text_alphabet, max_size=40))
def test_matches_google_basic_tokenizer(text):
    assert basic_words(text) == google_basic_tokenize(text)


def test_matches_google_on_real_lines():
    import gzip
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "data" / "en" / "enwiki_sample.txt.gz"
    with gzip.open(sample, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if number == 300:
                break
            assert basic_words(line) == google_basic_tokenize(line), line


def test_phrase_segments_cut_at_punctuation():
    words = basic_words("In New York, the sky (mostly) is grey.")
    assert phrase_segments(words) == [["in", "new", "york"], ["the", "sky"], ["mostly"], ["is", "grey"]]
    assert is_punctuation("$") and is_punctuation("。") and not is_punctuation("a")
    assert not is_punctuation("..")


def runs_char_by_char(text: str, is_cjk) -> list[tuple[int, int]]:
    runs, start = [], None
    for position, ch in enumerate(text + "a"):
        if is_cjk(ch) and start is None:
            start = position
        elif not is_cjk(ch) and start is not None:
            runs.append((start, position))
            start = None
    return runs


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from(
                list("北京 a,\U00020000\U0002b81f\U0002b820\U0002ceaf\U0002ceb0\uf8ff\uf900\ufaff\ufb00\u4dc0")
            ),
            st.characters(codec="utf-8", exclude_categories=("Cs",)),
        ),
        max_size=40,
    )
)
def test_cjk_runs_are_the_characters_bert_isolates(text):
    ranges = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F))
    ranges += ((0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))  # BERT's _is_chinese_char
    assert cjk_runs(text) == runs_char_by_char(text, lambda ch: any(low <= ord(ch) <= high for low, high in ranges))
