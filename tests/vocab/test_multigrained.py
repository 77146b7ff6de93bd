"""MultiGrainedTokenizer: alignment invariants, Hugging Face equality, mixed text, real text."""

from __future__ import annotations

import gzip
import importlib.util
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers.implementations import BertWordPieceTokenizer
from transformers import BertTokenizerFast, PreTrainedTokenizerFast

from vocab.artifact import ArtifactError, read_vocab_lines
from vocab.chinese_segmentation import SegmenterError, make_segmenter
from vocab.multigrained import (
    AlignedExample,
    MultiGrainedTokenizer,
    Span,
    coarse_segments,
    split_out_of_vocabulary,
)
from vocab.normalization import basic_words, cjk_runs, clean_text, phrase_segments

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def en(en_artifact):
    return MultiGrainedTokenizer.from_artifact(str(en_artifact))


@pytest.fixture(scope="module")
def zh(zh_artifact):
    return MultiGrainedTokenizer.from_artifact(str(zh_artifact))


def bert_tokenizer_fast(vocab_path: Path) -> BertTokenizerFast:
    """transformers' BertTokenizerFast on a vocab.txt. In transformers 5 `vocab_file=` is silently
    ignored (a 5-token vocabulary results): the vocabulary has to be passed as `vocab=`."""
    lines = read_vocab_lines(str(vocab_path))
    tokenizer = BertTokenizerFast(vocab={token: index for index, token in enumerate(lines)}, do_lower_case=True)
    assert len(tokenizer) == len(lines) and tokenizer.convert_tokens_to_ids("[CLS]") == lines.index("[CLS]")
    return tokenizer


@pytest.fixture(scope="module")
def references(en_artifact, zh_artifact):
    """Hugging Face tokenizers on the same vocabularies, each built independently of the artifact's
    tokenizer.json (BertWordPieceTokenizer, BertTokenizerFast) but the last (the file itself)."""
    return {
        lang: (
            BertWordPieceTokenizer(str(artifact / "fine" / "vocab.txt"), lowercase=True),
            bert_tokenizer_fast(artifact / "fine" / "vocab.txt"),
            PreTrainedTokenizerFast(tokenizer_file=str(artifact / "fine" / "tokenizer.json")),
        )
        for lang, artifact in (("en", en_artifact), ("zh", zh_artifact))
    }


def in_vocabulary_words(words: list[str], vocabulary) -> list[str]:
    """The segmenter's words with every word of 2+ characters outside `vocabulary` split by
    split_out_of_vocabulary (the same characters, in order)."""
    result: list[str] = []
    for word in words:
        if len(word) > 1 and word not in vocabulary:
            result.extend(split_out_of_vocabulary(word, vocabulary))
        else:
            result.append(word)
    return result


class SlowReferenceTokenizer(MultiGrainedTokenizer):
    """The coarse pass as it was before its rewrite for speed (one Python step per fine token),
    kept to check that the fast one produces identical encodings."""

    # -- coarse units -----------------------------------------------------------------------
    def _groups(
        self, text: str, tokens: list[str], offsets: list[Span], word_starts: list[int]
    ) -> list[tuple[int, int, str]]:
        """The coarse units that are one coarse token, as (first word, end word, token), in order;
        every word outside them falls back to its fine pieces."""
        if self.lang == "en":
            return self._phrase_groups(text, tokens, word_starts)
        return self._word_groups(text, offsets, word_starts)

    def _phrase_groups(self, text: str, tokens: list[str], word_starts: list[int]) -> list[tuple[int, int, str]]:
        if "[UNK]" in tokens[word_starts[0] : word_starts[-1]]:  # an [UNK] hides its word: normalize again
            words = basic_words(text)
            if len(words) != len(word_starts) - 1:
                raise ArtifactError(
                    f"the fine tokenizer and BERT normalization disagree on {text[:80]!r}: is "
                    "fine/tokenizer.json the BERT uncased pipeline?"
                )
        else:  # a word is its pieces joined (WordPiece never splits elsewhere)
            words = [
                tokens[a] if b - a == 1 else tokens[a] + "".join(t[2:] for t in tokens[a + 1 : b])
                for a, b in zip(word_starts, word_starts[1:], strict=False)
            ]
        # one call per text: phrases hold no punctuation word, so no match crosses punctuation
        groups = [(start, end, " ".join(words[start:end])) for start, end in self.matcher.phrase_spans(words)]
        return groups

    def _word_groups(self, text: str, offsets: list[Span], word_starts: list[int]) -> list[tuple[int, int, str]]:
        runs = cjk_runs(text)
        if not runs:
            return []
        starts = {offsets[first][0]: index for index, first in enumerate(word_starts[:-1])}
        ends = {offsets[following - 1][1]: index for index, following in enumerate(word_starts[1:])}
        groups = []
        for run_start, run_end in runs:
            run = text[run_start:run_end]
            words = self.segmenter.cut(run)
            if "".join(words) != run:
                raise SegmenterError(
                    f"segmenter {self.segmenter.name} lost or changed characters of {run[:80]!r}: "
                    "its pieces must join back to the input"
                )
            position = run_start
            for word in in_vocabulary_words(words, self.coarse_index):
                start, position = position, position + len(word)
                if len(word) > 1:
                    first, last = starts.get(start), ends.get(position)
                    if first is not None and last is not None and first <= last:  # on fine word boundaries
                        groups.append((first, last + 1, word))
        return groups

    def _build(self, texts: list[str], encoding) -> AlignedExample:
        # read each Encoding property once: every access builds a new Python list
        ids, tokens, types = encoding.ids, encoding.tokens, encoding.type_ids
        offsets, word_ids, sequence_ids = encoding.offsets, encoding.word_ids, encoding.sequence_ids
        coarse_ids: list[int] = []
        coarse_tokens: list[str] = []
        align: list[Span] = []
        coarse_type: list[int] = []
        coarse_offsets: list[Span] = []

        def fallback(start: int, end: int) -> None:  # one coarse token per fine token
            coarse_ids.extend(ids[start:end])
            coarse_tokens.extend(tokens[start:end])
            align.extend(zip(range(start, end), range(start + 1, end + 1), strict=True))
            coarse_type.extend(types[start:end])
            coarse_offsets.extend(offsets[start:end])

        total, position = len(ids), 0
        while position < total:
            sequence = sequence_ids[position]
            if sequence is None:  # [CLS] / [SEP]: one-to-one, offsets (0, 0)
                fallback(position, position + 1)
                position += 1
                continue
            end = position + 1
            while end < total and sequence_ids[end] == sequence:
                end += 1
            # fine positions [position, end) hold text `sequence`; word k is [word_starts[k], word_starts[k+1])
            word_starts = [p for p in range(position, end) if p == position or word_ids[p] != word_ids[p - 1]]
            word_starts.append(end)
            cursor = position
            for first, last, unit in self._groups(texts[sequence], tokens, offsets, word_starts):
                start, stop = word_starts[first], word_starts[last]
                fallback(cursor, start)
                coarse_ids.append(self.coarse_index[unit])
                coarse_tokens.append(unit)
                align.append((start, stop))
                coarse_type.append(types[start])
                coarse_offsets.append((offsets[start][0], offsets[stop - 1][1]))
                cursor = stop
            fallback(cursor, end)
            position = end
        return AlignedExample(
            fine_ids=tuple(ids),
            coarse_ids=tuple(coarse_ids),
            align=tuple(align),
            fine_type=tuple(types),
            coarse_type=tuple(coarse_type),
            fine_offsets=tuple(offsets),
            coarse_offsets=tuple(coarse_offsets),
            fine_tokens=tuple(tokens),
            coarse_tokens=tuple(coarse_tokens),
        )


def test_bert_tokenizer_fast_vocab_file_pitfall(en_artifact):
    ignored = BertTokenizerFast(vocab_file=str(en_artifact / "fine" / "vocab.txt"))
    assert len(ignored) < 100  # if this starts failing, transformers honours vocab_file again


def check_example(example, text, text_b=None):
    """Alignment and offset invariants; for a pair, offsets of segment 1 point into `text_b`."""
    fine, align = example.fine_ids, example.align
    assert len(example.coarse_ids) == len(align) == len(example.coarse_type) == len(example.coarse_offsets)
    assert len(fine) == len(example.fine_type) == len(example.fine_offsets) == len(example.fine_tokens)
    assert align[0] == (0, 1) and align[-1][1] == len(fine)
    for (start, end), (next_start, _) in zip(align, align[1:], strict=False):
        assert start < end == next_start  # monotone, contiguous, each fine token exactly once
    sources = (text, text_b)
    for types, offsets in ((example.fine_type, example.fine_offsets), (example.coarse_type, example.coarse_offsets)):
        for segment, (start, end) in zip(types, offsets, strict=True):
            assert 0 <= start <= end <= len(sources[segment])
    for j, (start, end) in enumerate(align):
        source = sources[example.coarse_type[j]]
        if example.coarse_offsets[j] == (0, 0) and example.coarse_tokens[j] in ("[CLS]", "[SEP]"):
            assert end - start == 1 and example.fine_tokens[start] == example.coarse_tokens[j]
            assert example.coarse_ids[j] == fine[start]
            continue
        assert example.fine_tokens[start] not in ("[CLS]", "[SEP]") or example.fine_offsets[start] != (0, 0)
        pieces = example.fine_offsets[start:end]
        assert example.coarse_offsets[j] == (pieces[0][0], pieces[-1][1])
        surface = "".join(source[a:b] for a, b in pieces)
        between = "".join(
            source[left_end:right_start] for (_, left_end), (right_start, _) in zip(pieces, pieces[1:], strict=False)
        )
        assert clean_text(between).strip() == ""  # only what BERT drops lies between a unit's pieces
        assert len(surface) + len(between) == len(source[pieces[0][0] : pieces[-1][1]])
        if end - start == 1:
            assert example.coarse_ids[j] == fine[start] and example.coarse_tokens[j] == example.fine_tokens[start]
        assert len({example.fine_type[k] for k in range(start, end)} | {example.coarse_type[j]}) == 1


def reference_units(tokenizer, text: str) -> list[str]:
    """The coarse units that become one coarse token, straight from the rules: English phrases
    matched left to right in punctuation-free runs of BERT words; Chinese words of 2+ characters
    in the coarse vocabulary, from the segmenter on CJK runs (out-of-vocabulary words split)."""
    if tokenizer.lang == "en":
        return [
            " ".join(run[a:b])
            for run in phrase_segments(basic_words(text))
            for a, b in tokenizer.matcher.segment_left_to_right(run)
            if b - a > 1
        ]
    return [
        word
        for a, b in cjk_runs(text)
        for word in in_vocabulary_words(tokenizer.segmenter.cut(text[a:b]), tokenizer.coarse_index)
        if len(word) > 1
    ]


def grouped_units(example) -> list[str]:
    return [token for token, (a, b) in zip(example.coarse_tokens, example.align, strict=True) if b - a > 1]


def test_english_phrases(en):
    text = "I live in New  York City, and ate ice-cream and Ice Cream, unaffable 東京 😀!"
    example = en.encode(text)
    assert "new york city" in example.coarse_tokens and "ice cream" in example.coarse_tokens
    assert "ice" in example.coarse_tokens  # "ice-cream" crosses punctuation: no phrase
    assert coarse_segments(example, text) == [
        "I",
        "live",
        "in",
        "New_York_City",
        ",",
        "and",
        "ate",
        "ice",
        "-",
        "cream",
        "and",
        "Ice_Cream",
        ",",
        "unaffable",
        "東",
        "京",
        "😀",
        "!",
    ]
    check_example(example, text)


def test_chinese_words(zh):
    text = "我们在北京天安门, iPhone12 很好用！中国人民２０２０年。"
    example = zh.encode(text)
    assert {"我们", "北京", "天安门", "中国", "人民"} <= set(example.coarse_tokens)
    assert coarse_segments(example, text)[:5] == ["我们", "在", "北京", "天安门", ","]
    assert "iPhone12" in coarse_segments(example, text)
    check_example(example, text)


def test_pairs_have_segment_types(en):
    example = en.encode_pair("New York is big.", "Ice cream!")
    assert example.coarse_tokens == ("[CLS]", "new york", "is", "big", ".", "[SEP]", "ice cream", "!", "[SEP]")
    assert example.coarse_type == (0, 0, 0, 0, 0, 0, 1, 1, 1)
    assert example.fine_type == (0,) * 7 + (1,) * 4


mixed = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("New York ice cream at least as well 北京天安门我们中国人民的 ,.!?'-\t\n Ａ１😀é")),
        st.sampled_from(
            [
                "\u0301",
                "\x07",
                "\u200b",
                "\u2028",
                "\x00",
                "\ufffd",
                "\u3000",
                "\uf900",
                "\U00020000",
                "\U0002b820",
                "ﬁ",
                "Ⅻ",
                "한",
                "ي",
                "🏽",
                "\u00ad",
                "\r",
            ]
        ),
        st.characters(codec="utf-8").filter(lambda ch: unicodedata.category(ch) not in ("Cn", "Cs")),
    ),
    max_size=60,
)


@pytest.fixture(scope="module")
def slow_references(en, zh):
    return {t.lang: SlowReferenceTokenizer(t.lang, t.fine, t.coarse_vocab, t.matcher, t.segmenter) for t in (en, zh)}


@settings(max_examples=250, deadline=None)
@given(mixed)
def test_properties_and_hugging_face_equality(en, zh, references, slow_references, text):
    for lang, tokenizer in (("en", en), ("zh", zh)):
        example = tokenizer.encode(text)
        check_example(example, text)
        wordpiece, bert_fast, from_file = references[lang]
        assert list(example.fine_ids) == wordpiece.encode(text).ids
        assert list(example.fine_ids) == bert_fast(text)["input_ids"] == from_file(text)["input_ids"]
        assert tokenizer.encode_batch([text, "x"]) == [example, tokenizer.encode("x")]
        assert example == slow_references[lang]._build([text], tokenizer.fine.encode(text))
        if not any(0x2B820 <= ord(ch) < 0x2B920 for ch in text):  # where tokenizers' CJK range differs
            assert grouped_units(example) == reference_units(tokenizer, text)


@settings(max_examples=60, deadline=None)
@given(mixed, mixed)
def test_pairs_properties_and_hugging_face_equality(en, zh, references, slow_references, text_a, text_b):
    for lang, tokenizer in (("en", en), ("zh", zh)):
        example = tokenizer.encode_pair(text_a, text_b)
        check_example(example, text_a, text_b)
        assert example == slow_references[lang]._build([text_a, text_b], tokenizer.fine.encode(text_a, text_b))
        reference = references[lang][0].encode(text_a, text_b)
        assert (list(example.fine_ids), list(example.fine_type)) == (reference.ids, reference.type_ids)
        if text_b:  # transformers encodes text_pair="" as no pair at all
            assert list(example.fine_ids) == references[lang][1](text_a, text_b)["input_ids"]
        first_sep = example.coarse_tokens.index("[SEP]")
        assert example.coarse_type == (0,) * (first_sep + 1) + (1,) * (len(example.coarse_ids) - first_sep - 1)


def real_lines(name: str, count: int) -> list[str]:
    with gzip.open(REPO / "data" / name, "rt", encoding="utf-8") as handle:
        return [line.rstrip("\n") for _, line in zip(range(count), handle, strict=False)]


SAMPLES = [("en", f"en/{p.name}") for p in sorted((REPO / "data" / "en").glob("*.txt.gz"))] + [
    ("zh", "zh/pku199801_sample.txt.gz")
]


@pytest.mark.parametrize("lang,sample", SAMPLES)
def test_real_text(en, zh, references, lang, sample):
    tokenizer = {"en": en, "zh": zh}[lang]
    lines = real_lines(sample, 300)
    examples = tokenizer.encode_batch(lines)
    wordpiece, bert_fast, _ = references[lang]
    for text, example, reference in zip(lines, examples, wordpiece.encode_batch(lines), strict=True):
        check_example(example, text)
        assert list(example.fine_ids) == reference.ids
    assert bert_fast(lines)["input_ids"] == [list(e.fine_ids) for e in examples]
    assert examples[:50] == [tokenizer.encode(text) for text in lines[:50]]
    assert [grouped_units(e) for e in examples] == [reference_units(tokenizer, text) for text in lines]
    multi = sum(1 for e in examples for start, end in e.align if end - start > 1)
    assert multi > 0  # some phrases / words were found


@pytest.mark.parametrize("lang,sample", SAMPLES)
def test_the_fast_coarse_pass_encodes_as_the_slow_reference(en, zh, lang, sample):
    tokenizer = {"en": en, "zh": zh}[lang]
    slow = SlowReferenceTokenizer(
        tokenizer.lang, tokenizer.fine, tokenizer.coarse_vocab, tokenizer.matcher, tokenizer.segmenter
    )
    lines = real_lines(sample, 300)
    assert tokenizer.encode_batch(lines) == [slow._build([text], tokenizer.fine.encode(text)) for text in lines]
    pairs = list(zip(lines[::2], lines[1::2], strict=False))
    assert [tokenizer.encode_pair(a, b) for a, b in pairs] == [
        slow._build([a, b], tokenizer.fine.encode(a, b)) for a, b in pairs
    ]


def test_a_different_segmenter_is_refused(zh_artifact, en_artifact):
    with pytest.raises(SegmenterError, match="built with jieba; refusing to tokenize with pkuseg"):
        MultiGrainedTokenizer.from_artifact(str(zh_artifact), segmenter="pkuseg")
    with pytest.raises(SegmenterError, match="English artifacts use no word segmenter"):
        MultiGrainedTokenizer.from_artifact(str(en_artifact), segmenter="jieba")


def test_segmenter_objects_are_checked_against_the_artifact(zh_artifact):
    with pytest.raises(SegmenterError, match="refusing to tokenize with .*'hmm': False"):
        MultiGrainedTokenizer.from_artifact(str(zh_artifact), segmenter=make_segmenter("jieba", hmm=False))
    same = make_segmenter("jieba")
    tokenizer = MultiGrainedTokenizer.from_artifact(str(zh_artifact), segmenter=same)
    assert tokenizer.segmenter is same and "北京" in tokenizer.encode("我们在北京").coarse_tokens


def test_a_tampered_artifact_is_not_loaded(en_artifact, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(en_artifact, copy)
    with open(copy / "coarse" / "vocab.txt", "ab") as handle:
        handle.write(b"extra\n")
    with pytest.raises(ArtifactError, match="coarse/vocab.txt does not match its sha256"):
        MultiGrainedTokenizer.from_artifact(str(copy))


def test_out_of_vocabulary_words_split_into_vocabulary_words():
    vocabulary = {"国家", "主席", "发表", "新年"}
    assert split_out_of_vocabulary("国家主席", vocabulary) == ["国家", "主席"]
    assert split_out_of_vocabulary("江泽民", vocabulary) == ["江", "泽", "民"]
    assert split_out_of_vocabulary("ABC", {"AB", "BC"}) == ["AB", "C"]  # a tie keeps the longer first piece
    assert split_out_of_vocabulary("ABCD", {"BC", "AB", "CD"}) == ["AB", "CD"]  # the fewest pieces
    words = ["我们", "国家主席", "江泽民", "发表", "新年讲话"]
    assert in_vocabulary_words(words, vocabulary | {"我们"}) == [
        "我们",
        "国家",
        "主席",
        "江",
        "泽",
        "民",
        "发表",
        "新年",
        "讲",
        "话",
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("国家主席江泽民发表新年讲话")), max_size=12),
    st.sets(st.text(alphabet=st.sampled_from(list("国家主席江泽民")), min_size=2, max_size=4)),
)
def test_the_split_never_loses_characters(word, vocabulary):
    pieces = split_out_of_vocabulary(word, vocabulary)
    assert "".join(pieces) == word
    assert all(len(piece) == 1 or piece in vocabulary for piece in pieces)


def test_an_out_of_vocabulary_word_keeps_alignment(zh):
    text = "国家主席江泽民发表新年讲话，中国人民今天发展经济。"  # the segmenter's 国家主席 is not a coarse unit
    example = zh.encode(text)
    check_example(example, text)
    assert "中国" in example.coarse_tokens and "".join(coarse_segments(example, text)) == text


def test_edge_texts(en, zh):
    for tokenizer in (en, zh):
        for text in ("", " ", "\x00\x07", "a" * 150, "北" * 300, "[CLS] [SEP]"):
            example = tokenizer.encode(text)
            check_example(example, text)
    assert en.encode("").coarse_tokens == ("[CLS]", "[SEP]")
    assert en.encode("[SEP]").coarse_tokens == ("[CLS]", "[", "sep", "]", "[SEP]")  # text is never a special


@pytest.mark.skipif(importlib.util.find_spec("pkuseg") is None, reason="pkuseg is an optional extra")
def test_a_pkuseg_artifact(tmp_path):
    from tests.vocab.conftest import BERT, WORDS
    from vocab.artifact import write_artifact
    from vocab.chinese_segmentation import segmenter_spec
    from vocab.word_dictionary import format_word_tsv

    pkuseg = make_segmenter("pkuseg")
    write_artifact(
        str(tmp_path / "zh"),
        lang="zh",
        fine_vocab_lines=read_vocab_lines(str(BERT / "chinese_21128.txt")),
        coarse_units=WORDS,
        dictionary_file_name="words.tsv",
        dictionary_bytes=format_word_tsv([(w, 5) for w in WORDS]).encode(),
        segmenter_spec=segmenter_spec(pkuseg),
        created_from={},
        stats={},
    )
    with pytest.raises(SegmenterError, match="built with pkuseg; refusing to tokenize with jieba"):
        MultiGrainedTokenizer.from_artifact(str(tmp_path / "zh"), segmenter="jieba")
    tokenizer = MultiGrainedTokenizer.from_artifact(str(tmp_path / "zh"), segmenter=pkuseg)
    text = "我们在北京天安门, iPhone12 很好用！中国人民２０２０年。"
    example = tokenizer.encode(text)
    check_example(example, text)
    assert {"我们", "北京", "天安门"} <= set(example.coarse_tokens)
    assert grouped_units(example) == reference_units(tokenizer, text)
