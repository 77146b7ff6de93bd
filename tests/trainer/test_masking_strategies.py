"""Masking strategies and corruptions (trainer/masking_strategies.py): hypothesis invariants on aligned examples
of a small synthetic vocabulary (whole-word tokens, "##" pieces, coarse units over several words, [UNK]), and
shares and distributions over many examples."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.vocab.conftest import build_en, build_zh
from trainer.batch import IGNORE
from trainer.masking import MaskingSpec, SpecialIds, example_rng
from trainer.masking_strategies import (
    NGRAM_PROBS,
    STRATEGIES,
    UnitRules,
    choose_coarse_units,
    choose_ngrams,
    choose_spans,
    choose_tokens,
    corrupt_bert,
    corrupt_mac,
    permute_chosen,
    random_word,
    sentence_order,
    units,
)
from vocab.aligned_codec import ShardExample, alignment_faults
from vocab.multigrained import MultiGrainedTokenizer
from vocab.similar_words import SimilarWordTable

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
WHOLE = range(5, 105)  # whole-word fine tokens
PIECES = range(105, 205)  # "##" fine tokens
UNITS = range(205, 305)  # coarse units (a Chinese word, an English phrase) over 2-3 whole-word tokens
SPECIALS = SpecialIds(pad=PAD, cls=CLS, sep=SEP, mask=MASK, unk=UNK)
SPEC = MaskingSpec(fine=SPECIALS, coarse=SPECIALS, fine_vocab_size=205, coarse_vocab_size=305)
IS_CONTINUATION = np.isin(np.arange(205), PIECES)


def rules(words_from_coarse: bool = False, tie_coarse: bool = True) -> UnitRules:
    return UnitRules(SPEC, IS_CONTINUATION, words_from_coarse=words_from_coarse, tie_coarse=tie_coarse)


def build_example(segments: list[list[tuple]], key: str = "k", nsp_label: int = -1) -> ShardExample:
    """segments of elements: ("unit", id, [whole ids]) one coarse token over whole words; ("word", [ids]) a
    WordPiece word, each piece its own coarse token; ("unk",)."""
    fine, coarse, align, fine_type, coarse_type = [CLS], [CLS], [(0, 1)], [0], [0]

    def add(fine_ids, coarse_id, segment):
        align.append((len(fine), len(fine) + len(fine_ids)))
        fine.extend(fine_ids)
        fine_type.extend([segment] * len(fine_ids))
        coarse.append(coarse_id)
        coarse_type.append(segment)

    for segment, elements in enumerate(segments):
        for element in elements:
            if element[0] == "unit":
                add(element[2], element[1], segment)
            elif element[0] == "word":
                for piece in element[1]:
                    add([piece], piece, segment)
            else:
                add([UNK], UNK, segment)
        add([SEP], SEP, segment)
    offsets = np.zeros((len(fine), 2), dtype=np.int32)
    return ShardExample(
        key=key,
        doc_id="d",
        fine_ids=np.asarray(fine, dtype=np.int32),
        coarse_ids=np.asarray(coarse, dtype=np.int32),
        align=np.asarray(align, dtype=np.int32),
        fine_type=np.asarray(fine_type, dtype=np.uint8),
        coarse_type=np.asarray(coarse_type, dtype=np.uint8),
        fine_offsets=offsets,
        coarse_offsets=np.zeros((len(coarse), 2), dtype=np.int32),
        nsp_label=nsp_label,
    )


element = st.one_of(
    st.tuples(st.just("unit"), st.sampled_from(UNITS), st.lists(st.sampled_from(WHOLE), min_size=2, max_size=3)),
    st.builds(
        lambda first, rest: ("word", [first, *rest]),
        st.sampled_from(WHOLE),
        st.lists(st.sampled_from(PIECES), max_size=3),
    ),
    st.just(("unk",)),
)
examples = st.builds(
    build_example,
    st.lists(st.lists(element, min_size=1, max_size=40), min_size=1, max_size=2),
    st.text("abc", min_size=1, max_size=4),
)


def random_example(rng: np.random.Generator, words: int = 80, key: str = "k") -> ShardExample:
    """A long example of `words` elements: 60% one-token words, 15% words of 2-3 pieces, 20% units, 5% [UNK]."""
    elements = []
    for _ in range(words):
        roll = rng.random()
        if roll < 0.6:
            elements.append(("word", [int(rng.choice(WHOLE))]))
        elif roll < 0.75:
            elements.append(("word", [int(rng.choice(WHOLE)), *rng.choice(PIECES, size=rng.integers(1, 3)).tolist()]))
        elif roll < 0.95:
            elements.append(("unit", int(rng.choice(UNITS)), rng.choice(WHOLE, size=rng.integers(2, 4)).tolist()))
        else:
            elements.append(("unk",))
    return build_example([elements], key)


MANY = [random_example(np.random.default_rng(number), key=f"ex{number}") for number in range(600)]


def word_starts(example: ShardExample) -> set[int]:
    return {i for i, token in enumerate(example.fine_ids) if not IS_CONTINUATION[token]}


def coarse_of(example: ShardExample) -> np.ndarray:
    """The coarse token of each fine position."""
    return np.repeat(np.arange(len(example.align)), example.align[:, 1] - example.align[:, 0])


@settings(max_examples=60, deadline=None)
@given(examples, st.sampled_from(sorted(STRATEGIES)), st.booleans(), st.booleans(), st.integers(0, 2**32))
def test_chosen_units_are_whole_and_never_special(example, strategy, words_from_coarse, tie, seed):
    chosen = STRATEGIES[strategy](example, rules(words_from_coarse, tie), np.random.default_rng(seed))
    fine, coarse = chosen.fine_positions, chosen.coarse_positions
    assert len(set(fine.tolist())) == len(fine) and np.all(np.diff(fine) > 0)  # disjoint, in order
    assert not np.isin(example.fine_ids[fine], (PAD, UNK, CLS, SEP, MASK)).any()
    assert not np.isin(example.coarse_ids[coarse], (PAD, UNK, CLS, SEP, MASK)).any()
    candidates = ~np.isin(example.coarse_ids, (UNK, CLS, SEP))
    assert (len(fine) > 0) == bool(candidates.any())  # something is chosen whenever something can be
    inside = set(fine.tolist())
    for (f0, f1), (c0, c1) in zip(chosen.fine.tolist(), chosen.coarse.tolist(), strict=True):
        assert all(example.align[c, 0] >= f0 and example.align[c, 1] <= f1 for c in range(c0, c1))
    if strategy in ("word", "ngram"):  # whole words: a chosen span starts and ends on word boundaries
        starts = word_starts(example) | {len(example.fine_ids)}
        assert all(f0 in starts and f1 in starts for f0, f1 in chosen.fine.tolist())
    if tie or strategy.startswith("ambert") or (strategy != "token" and words_from_coarse):  # whole coarse tokens
        touched = set(coarse_of(example)[fine].tolist())
        assert touched == set(coarse.tolist())
        assert inside == {p for c in touched for p in range(*example.align[c])}


def test_shares_of_chosen_tokens_and_units():
    for strategy, tie in (("token", False), ("token", True), ("word", False), ("word", True), ("ngram", True)):
        shares = []
        for example in MANY[:300]:
            chosen = STRATEGIES[strategy](example, rules(tie_coarse=tie), example_rng(1, 0, example.key))
            candidates = np.sum(~np.isin(example.fine_ids, (UNK, CLS, SEP)))
            shares.append(len(chosen.fine_positions) / candidates)
        assert abs(np.mean(shares) - 0.15) < 0.006, (strategy, tie, np.mean(shares))
    for example in MANY[:100]:  # ambert: exactly round(15%) of the coarse candidates, as trainer.masking did
        chosen = choose_coarse_units(example, rules(), example_rng(1, 0, example.key))
        candidates = int(np.sum(~np.isin(example.coarse_ids, (UNK, CLS, SEP))))
        assert len(chosen.coarse_positions) == max(1, round(0.15 * candidates))
        chosen = choose_tokens(example, rules(tie_coarse=False), example_rng(1, 0, example.key))
        assert len(chosen.fine_positions) == max(1, round(0.15 * np.sum(~np.isin(example.fine_ids, (UNK, CLS, SEP)))))


def test_one_free_unit_among_many_is_always_chosen():
    """Hypothesis found it: n-gram draws whose random starts all missed the one free unit chose nothing."""
    fine = np.stack([np.arange(7), np.arange(1, 8)], axis=1)
    candidate = np.zeros(7, dtype=bool)
    candidate[4] = True
    for seed in range(300):
        chosen = choose_spans(fine, fine, candidate, np.ones(7, dtype=np.int64), 0.15, np.random.default_rng(seed),
                              NGRAM_PROBS)  # fmt: skip
        assert chosen.fine.tolist() == [[4, 5]], seed


@pytest.mark.parametrize("words_from_coarse", [False, True])
def test_ngram_lengths_follow_the_distribution(words_from_coarse):
    lengths = collections.Counter()
    for example in MANY:
        chosen = choose_ngrams(example, rules(words_from_coarse), example_rng(2, 0, example.key))
        lengths.update(collections.Counter(chosen.group.tolist()).values())
    total = sum(lengths.values())
    observed = [lengths[n] / total for n in (1, 2, 3, 4)]
    assert total > 3000 and max(abs(o - p) for o, p in zip(observed, NGRAM_PROBS, strict=True)) < 0.03, observed
    coarse_lengths = collections.Counter()
    for example in MANY[:300]:
        chosen = choose_coarse_units(example, rules(), example_rng(2, 0, example.key), ngram=True)
        coarse_lengths.update(collections.Counter(chosen.group.tolist()).values())
    assert set(coarse_lengths) == {1, 2, 3, 4} and coarse_lengths[1] > coarse_lengths[2] > coarse_lengths[4]


def test_bert_corruption_is_tied_across_sides():
    kinds = collections.Counter()
    for example in MANY[:300]:
        rng = example_rng(3, 0, example.key)
        chosen = STRATEGIES["word"](example, rules(), rng)
        fine_input, fine_labels, coarse_input, coarse_labels = corrupt_bert(example, chosen, rules(), rng)
        assert np.array_equal(np.flatnonzero(fine_labels != IGNORE), chosen.fine_positions)
        assert np.array_equal(fine_labels[chosen.fine_positions], example.fine_ids[chosen.fine_positions])
        assert np.array_equal(np.flatnonzero(coarse_labels != IGNORE), chosen.coarse_positions)
        unchosen = np.ones(len(fine_input), dtype=bool)
        unchosen[chosen.fine_positions] = False
        assert np.array_equal(fine_input[unchosen], example.fine_ids[unchosen])
        for (f0, f1), (c0, c1) in zip(chosen.fine.tolist(), chosen.coarse.tolist(), strict=True):
            fine_masked, coarse_masked = fine_input[f0:f1] == MASK, coarse_input[c0:c1] == MASK
            fine_kept = np.array_equal(fine_input[f0:f1], example.fine_ids[f0:f1])
            coarse_kept = np.array_equal(coarse_input[c0:c1], example.coarse_ids[c0:c1])
            assert fine_masked.all() == coarse_masked.all() and fine_masked.any() == fine_masked.all()
            assert not (fine_masked.all() and coarse_kept) and not (coarse_masked.all() and fine_kept)
            kinds["mask" if fine_masked.all() else "kept" if fine_kept and coarse_kept else "random"] += 1
            assert not np.isin(fine_input[f0:f1], (PAD, UNK, CLS, SEP)).any()
    total = sum(kinds.values())
    assert abs(kinds["mask"] / total - 0.8) < 0.02 and abs(kinds["random"] / total - 0.1) < 0.02, kinds


def table_of_similar_words() -> SimilarWordTable:
    """Whole tokens 5..53 each with two similar whole tokens (never a ## piece); pools of shape (n, 1)."""
    neighbours = {(token,): (((token + 50,), (token + 50,)), ((token + 51,), (token + 51,))) for token in range(5, 54)}
    rng = np.random.default_rng(0)
    pools = {(1, 1): np.stack([np.arange(5, 105)] * 2, axis=1)}
    for length in (2, 3):
        pools[(length, 1)] = np.concatenate([rng.choice(WHOLE, size=(100, length)), np.arange(205, 305)[:, None]], 1)
    return SimilarWordTable(neighbours, pools, np.arange(105, 205))


@settings(max_examples=40, deadline=None)
@given(examples, st.booleans(), st.integers(0, 2**32))
def test_mac_replacements_differ_keep_lengths_and_never_mask(example, tie, seed):
    rng = np.random.default_rng(seed)
    chosen = choose_ngrams(example, rules(tie_coarse=tie), rng)
    fine_input, fine_labels, coarse_input, _ = corrupt_mac(
        example, chosen, rules(tie_coarse=tie), table_of_similar_words(), rng
    )
    assert len(fine_input) == len(example.fine_ids) and len(coarse_input) == len(example.coarse_ids)
    assert MASK not in fine_input and MASK not in coarse_input
    assert not np.isin(fine_input, (PAD,)).any()
    for (f0, f1), (c0, c1) in zip(chosen.fine.tolist(), chosen.coarse.tolist(), strict=True):
        replaced = not np.array_equal(fine_input[f0:f1], example.fine_ids[f0:f1])
        coarse_changed = not np.array_equal(coarse_input[c0:c1], example.coarse_ids[c0:c1])
        assert replaced == coarse_changed or c0 == c1  # tied: both sides replaced, or neither
        if replaced:
            assert not IS_CONTINUATION[fine_input[f0]] or IS_CONTINUATION[example.fine_ids[f0]]


def test_mac_uses_the_table_80_percent_and_random_words_otherwise():
    table, used, others = table_of_similar_words(), 0, collections.Counter()
    for example in MANY[:300]:
        rng = example_rng(4, 0, example.key)
        chosen = STRATEGIES["word"](example, rules(), rng)
        fine_input, _, coarse_input, _ = corrupt_mac(example, chosen, rules(), table, rng)
        for (f0, f1), (c0, c1) in zip(chosen.fine.tolist(), chosen.coarse.tolist(), strict=True):
            original = tuple(example.fine_ids[f0:f1].tolist())
            new = tuple(fine_input[f0:f1].tolist())
            if original in table.neighbours:
                similar = {fine for fine, _ in table.neighbours[original]}
                used += new in similar
                others["similar" if new in similar else "kept" if new == original else "random"] += 1
            elif new != original and c1 - c0 == 1 and f1 - f0 > 1:  # a unit: another unit of its length
                assert coarse_input[c0] in table.random_units[(f1 - f0, 1)][:, -1]
    total = sum(others.values())
    assert total > 300 and abs(others["similar"] / total - 0.8) < 0.05 and abs(others["kept"] / total - 0.1) < 0.04


@settings(max_examples=60, deadline=None)
@given(examples, st.integers(0, 2**32))
def test_perm_targets_are_a_permutation_of_the_chosen_positions(example, seed):
    rng = np.random.default_rng(seed)
    chosen = choose_ngrams(example, rules(), rng)
    fine_input, targets, coarse_input, coarse_targets = permute_chosen(example, chosen, rng)
    positions = chosen.fine_positions
    assert np.array_equal(np.flatnonzero(targets != IGNORE), positions)
    assert np.array_equal(np.sort(targets[positions]), positions)
    assert np.array_equal(fine_input[positions], example.fine_ids[targets[positions]])
    assert np.array_equal(np.sort(coarse_targets[chosen.coarse_positions]), chosen.coarse_positions)
    assert np.array_equal(np.sort(coarse_input), np.sort(example.coarse_ids))


def test_perm_keeps_about_ten_percent_in_place():
    kept = chosen_total = 0
    for example in MANY:
        rng = example_rng(5, 0, example.key)
        chosen = choose_ngrams(example, rules(), rng)
        _, targets, _, _ = permute_chosen(example, chosen, rng)
        kept += int(np.sum(targets[chosen.fine_positions] == chosen.fine_positions))
        chosen_total += len(chosen.fine_positions)
    assert abs(kept / chosen_total - 0.1) < 0.02, kept / chosen_total


def test_redraws_differ_and_draw_zero_is_the_epoch_rng():
    example = MANY[0]
    first = choose_ngrams(example, rules(), example_rng(7, 2, example.key, 0))
    again = choose_ngrams(example, rules(), example_rng(7, 2, example.key))
    redraw = choose_ngrams(example, rules(), example_rng(7, 2, example.key, 1))
    assert np.array_equal(first.fine, again.fine)
    assert not np.array_equal(first.fine_positions, redraw.fine_positions)
    assert (
        len(
            {tuple(choose_ngrams(example, rules(), example_rng(7, 2, example.key, d)).fine_positions) for d in range(5)}
        )
        == 5
    )


def test_sentence_order_swaps_whole_segments():
    example = build_example(
        [[("word", [5, 105]), ("unit", 205, [6, 7])], [("word", [8]), ("unk",), ("word", [9])]], nsp_label=0
    )
    results = [sentence_order(example, example_rng(1, 0, "k", draw)) for draw in range(40)]
    assert {label for _, label in results} == {0, 1}
    swapped = next(ex for ex, label in results if label == 1)
    assert swapped.fine_ids.tolist() == [CLS, 8, UNK, 9, SEP, 5, 105, 6, 7, SEP]
    assert swapped.coarse_ids.tolist() == [CLS, 8, UNK, 9, SEP, 5, 105, 205, SEP]
    assert swapped.fine_type.tolist() == [0] * 5 + [1] * 5 and swapped.coarse_type.tolist() == [0] * 5 + [1] * 4
    assert swapped.align.tolist()[-2:] == [[7, 9], [9, 10]] and not alignment_faults(swapped)
    back, label = sentence_order(swapped, next(example_rng(1, 0, "k", d) for d in range(40) if results[d][1] == 1))
    assert label == 1 and np.array_equal(back.fine_ids, example.fine_ids) and np.array_equal(back.align, example.align)
    assert (
        sentence_order(build_example([[("word", [5])], [("word", [6])]], nsp_label=1), example_rng(1, 0, "k"))[1]
        == IGNORE
    )


def test_random_words_differ_from_the_original_even_without_another_of_their_shape():
    table = table_of_similar_words()
    lonely = SimilarWordTable({}, {**table.random_units, (2, 1): np.asarray([[5, 6, 205]])}, table.continuation_ids)
    rng = np.random.default_rng(0)
    for _ in range(200):
        fine, coarse = random_word(lonely, (5, 6), 1, rng)  # the only unit of two tokens is the original
        assert tuple(fine.tolist()) != (5, 6) and len(fine) == 2 and not IS_CONTINUATION[fine[0]]
        assert len(coarse) == 1 and coarse[0] in UNITS
        fine, coarse = random_word(table, (7, 107, 108), 3, rng)  # a word of pieces: pieces as coarse tokens
        assert (
            tuple(fine.tolist()) != (7, 107, 108) and np.array_equal(fine, coarse) and IS_CONTINUATION[fine[1:]].all()
        )
        fine, _ = random_word(table, (9,), 1, rng)
        assert fine.tolist() != [9] and fine[0] in WHOLE


def as_shard_example(aligned, key: str = "k") -> ShardExample:
    arrays = {name: np.asarray(getattr(aligned, name)) for name in ("fine_ids", "coarse_ids", "align")}
    return ShardExample(
        key=key,
        doc_id="d",
        fine_type=np.asarray(aligned.fine_type, dtype=np.uint8),
        coarse_type=np.asarray(aligned.coarse_type, dtype=np.uint8),
        fine_offsets=np.asarray(aligned.fine_offsets),
        coarse_offsets=np.asarray(aligned.coarse_offsets),
        **arrays,
    )


def test_words_of_real_artifacts(tmp_path):
    build_en(tmp_path / "en")
    build_zh(tmp_path / "zh")
    english = MultiGrainedTokenizer.from_artifact(str(tmp_path / "en"))
    example = as_shard_example(english.encode("The unaffable man loves New York ice cream, at least."))
    tokens = english.encode("The unaffable man loves New York ice cream, at least.").fine_tokens

    def words(rules: UnitRules) -> list[str]:
        fine, _, candidate = units(example, rules, "word")
        return [" ".join(tokens[a:b]) for (a, b), keep in zip(fine.tolist(), candidate, strict=True) if keep]

    untied = UnitRules.from_artifact(str(tmp_path / "en"), tie_coarse=False)
    assert not untied.words_from_coarse and words(untied)[:6] == [
        "the",
        "una ##ffa ##ble",
        "man",
        "loves",
        "new",
        "york",
    ]
    tied = UnitRules.from_artifact(str(tmp_path / "en"))
    assert words(tied)[:8] == ["the", "una ##ffa ##ble", "man", "loves", "new york", "ice cream", ",", "at least"]
    chinese = MultiGrainedTokenizer.from_artifact(str(tmp_path / "zh"))
    aligned = chinese.encode("我们在北京发展经济")
    rules = UnitRules.from_artifact(str(tmp_path / "zh"), tie_coarse=False)
    fine, _, _ = units(as_shard_example(aligned), rules, "word")
    assert rules.words_from_coarse and ["".join(aligned.fine_tokens[a:b]) for a, b in fine.tolist()][1:-1] == [
        "我们",
        "在",
        "北京",
        "发展",
        "经济",
    ]
