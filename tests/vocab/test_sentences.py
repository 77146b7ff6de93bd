"""Sentence splitting: known English and Chinese cases, and spans that cover the text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vocab.sentences import split_sentences


def sentences(text):
    return [text[start:end] for start, end in split_sentences(text)]


def test_english_rules():
    text = 'Mr. Smith went home. He said "Hi." Then J. K. Rowling wrote 3 books! Ok? yes'
    assert sentences(text) == ["Mr. Smith went home.", 'He said "Hi."', "Then J. K. Rowling wrote 3 books!", "Ok? yes"]


def test_chinese_rules():
    assert sentences("他走了。你呢？“好的！”他说。最后") == ["他走了。", "你呢？", "“好的！”", "他说。", "最后"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab C.!?。？” \n'\"(")), max_size=60))
def test_spans_cover_every_visible_character_once(text):
    spans = split_sentences(text)
    assert all(a < b for a, b in spans) and all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))
    covered = "".join(text[a:b] for a, b in spans)
    assert "".join(covered.split()) == "".join(text.split())
    assert all(not text[a].isspace() and not text[b - 1].isspace() for a, b in spans)
