"""similar.tsv: the format, words as units of both sides, a user's table checked against the artifact, the id."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.vocab.conftest import BERT, build_en
from vocab.artifact import ArtifactError, read_artifact, read_vocab_lines, verify_artifact
from vocab.multigrained import MultiGrainedTokenizer
from vocab.similar_words import (
    SimilarWordsError,
    SimilarWordTable,
    WordIds,
    check_similar_table,
    format_similar_tsv,
    parse_similar_tsv,
    unit_text,
    word_units,
)


def test_format_round_trip_and_order():
    text = "cat\tdog\t0.5\ncat\tcow\t0.9\nred\tblue\t0.25\ncat\tant\t0.9\n"
    entries = parse_similar_tsv(text, "t.tsv")
    assert entries == [("cat", (("ant", 0.9), ("cow", 0.9), ("dog", 0.5))), ("red", (("blue", 0.25),))]
    assert parse_similar_tsv(format_similar_tsv(entries), "again") == entries
    assert format_similar_tsv(entries).splitlines()[0] == "cat\tant\t0.9000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cat\tdog\n", "t.tsv:1: expected word<TAB>similar<TAB>score"),
        ("cat\tdog\t0.5\ncat\tcat\t1\n", "t.tsv:2: 'cat' is listed as similar to itself"),
        ("cat\tdog\tnan\n", "t.tsv:1: score 'nan' is not a finite number"),
        ("cat\tdog\thigh\n", "t.tsv:1: score 'high' is not a finite number"),
        ("cat\tdog\t1\ncat\tdog\t2\n", "t.tsv:2: 'cat' → 'dog' is listed twice"),
        (" cat\tdog\t1\n", "t.tsv:1: empty word or surrounding spaces"),
    ],
)
def test_malformed_tables_are_refused_with_the_line(text, message):
    with pytest.raises(SimilarWordsError, match=message):
        parse_similar_tsv(text, "t.tsv")


def test_words_are_whole_on_both_sides(en_artifact):
    tokenizer = MultiGrainedTokenizer.from_artifact(str(en_artifact))
    continues = np.asarray([t.startswith("##") for t in read_vocab_lines(str(en_artifact / "fine" / "vocab.txt"))])
    example = tokenizer.encode("They love New York and unaffable ice cream.")
    units = word_units(np.asarray(example.align), ~continues[np.asarray(example.fine_ids)])
    texts = [unit_text(example.coarse_tokens[start:end]) for start, end in units]
    assert texts == ["[CLS]", "they", "love", "new york", "and", "unaffable", "ice cream", ".", "[SEP]"]
    assert units[5, 1] - units[5, 0] == 3  # un ##aff ##able: three coarse pieces, one word


def test_user_table_is_normalized_and_checked_against_the_vocabulary(en_artifact):
    ids = WordIds.from_artifact(str(en_artifact))
    good = parse_similar_tsv("New York\tice cream\t0.5\ncat\tDog\t0.7\ncat\tcow\t0.2\n", "u.tsv")
    assert check_similar_table(good, ids, "u.tsv") == [
        ("new york", (("ice cream", 0.5),)),
        ("cat", (("dog", 0.7), ("cow", 0.2))),
    ]
    wrong_shape = parse_similar_tsv("new york\tboston\t0.5\n", "u.tsv")  # a phrase (2 fine, 1 coarse) vs a word
    with pytest.raises(SimilarWordsError, match="'new york' is 2 fine / 1 coarse tokens but 'boston' is 1 / 1"):
        check_similar_table(wrong_shape, ids, "u.tsv")
    pieces = parse_similar_tsv("unaffable\tnew york\t0.5\n", "u.tsv")  # 3 fine pieces, 3 coarse pieces
    with pytest.raises(SimilarWordsError, match="is 3 fine / 3 coarse tokens but 'new york' is 2 / 1"):
        check_similar_table(pieces, ids, "u.tsv")
    unknown = parse_similar_tsv("cat\t\u2603\u2603\t0.5\n", "u.tsv")
    with pytest.raises(SimilarWordsError, match="outside the fine vocabulary"):
        check_similar_table(unknown, ids, "u.tsv")
    duplicate = parse_similar_tsv("Cat\tdog\t0.5\ncat\tcow\t0.5\n", "u.tsv")
    with pytest.raises(SimilarWordsError, match="'cat' and 'Cat' are the same word once normalized"):
        check_similar_table(duplicate, ids, "u.tsv")


def test_similar_words_are_in_the_artifact_id_and_load_as_ids(tmp_path):
    table = format_similar_tsv([("new york", (("ice cream", 0.5), ("sir john", 0.25))), ("cat", (("dog", 0.5),))])
    plain = build_en(tmp_path / "plain")
    with_table = build_en(tmp_path / "with", table.encode())
    other = build_en(tmp_path / "other", table.replace("0.5000", "0.4000").encode())
    assert len({plain, with_table, other}) == 3
    assert "similar.tsv" in read_artifact(str(tmp_path / "with"))["files"]
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "with", copy)
    (copy / "similar.tsv").write_text(table.replace("dog", "cow"))
    with pytest.raises(ArtifactError, match="similar.tsv does not match its sha256"):
        verify_artifact(str(copy))

    loaded = SimilarWordTable.from_artifact(str(tmp_path / "with"))
    vocab = read_vocab_lines(str(tmp_path / "with" / "coarse" / "vocab.txt"))
    fine = {token: index for index, token in enumerate(read_vocab_lines(str(BERT / "uncased_30522.txt")))}
    new_york = (fine["new"], fine["york"])
    assert loaded.neighbours[new_york] == (
        ((fine["ice"], fine["cream"]), (vocab.index("ice cream"),)),
        ((fine["sir"], fine["john"]), (vocab.index("sir john"),)),
    )
    assert loaded.neighbours[(fine["cat"],)] == (((fine["dog"],), (fine["dog"],)),)
    phrases_of_two = loaded.random_units[(2, 1)]
    assert {tuple(row) for row in phrases_of_two} >= {(*new_york, vocab.index("new york"))}
    singles = loaded.random_units[(1, 1)][:, 0]
    assert fine["[MASK]"] not in singles and fine["##ing"] not in singles and fine["[unused1]"] not in singles
    assert fine["##ing"] in loaded.continuation_ids and fine["cat"] not in loaded.continuation_ids
    assert SimilarWordTable.from_artifact(str(tmp_path / "plain")).neighbours == {}
