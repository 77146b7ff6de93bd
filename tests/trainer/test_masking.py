"""The collator with the default corruption (ambert masking, mlm): coarse choices and their fine spans, tied 80/10/10,
determinism per (seed, epoch, key, draw), SOP labels, padding."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.batch import IGNORE
from trainer.masking import BatchShape, MaskingCollator, MaskingSpec, SpecialIds, example_rng, google_max_predictions
from trainer.masking_strategies import Corruption, UnitRules
from vocab.aligned_codec import ShardExample, alignment_faults
from vocab.artifact import read_vocab_lines

# Fine and coarse specials at different ids, so that nothing can lean on shared ids.
SPEC = MaskingSpec(
    fine=SpecialIds(pad=0, cls=2, sep=3, mask=4, unk=1),
    coarse=SpecialIds(pad=7, cls=5, sep=6, mask=8, unk=9),
    fine_vocab_size=60,
    coarse_vocab_size=90,
)
CORRUPTION = Corruption(UnitRules(SPEC, np.zeros(60, dtype=bool), words_from_coarse=True))
FINE_WORDS = np.arange(10, 60)  # ids that are no special token on either side
COARSE_WORDS = np.arange(10, 90)


@st.composite
def aligned_examples(draw, min_tokens: int = 0, max_tokens: int = 40, max_pads: int = 3) -> ShardExample:
    """[CLS] A [SEP] (B [SEP]) [PAD]...: each coarse token covers 1-4 fine tokens; specials align one to one."""
    sizes_a = draw(st.lists(st.integers(1, 4), min_size=min_tokens, max_size=max_tokens))
    sizes_b = draw(st.lists(st.integers(1, 4), max_size=max_tokens // 2))
    pads = draw(st.integers(0, max_pads))
    coarse_units = [("cls", 1, 0)] + [("word", n, 0) for n in sizes_a] + [("sep", 1, 0)]
    if sizes_b:
        coarse_units += [("word", n, 1) for n in sizes_b] + [("sep", 1, 1)]
    coarse_units += [("pad", 1, 0)] * pads
    fine_ids, coarse_ids, align, fine_type, coarse_type = [], [], [], [], []
    for kind, width, segment in coarse_units:
        if kind == "word":
            coarse_ids.append(draw(st.sampled_from(COARSE_WORDS.tolist())))
            fine_ids += draw(st.lists(st.sampled_from(FINE_WORDS.tolist()), min_size=width, max_size=width))
        else:
            coarse_ids.append(getattr(SPEC.coarse, kind))
            fine_ids.append(getattr(SPEC.fine, kind))
        align.append((len(fine_ids) - width, len(fine_ids)))
        fine_type += [segment] * width
        coarse_type.append(segment)
    example = ShardExample(
        key=draw(st.text("0123456789abcdef", min_size=4, max_size=16)),
        doc_id="doc",
        fine_ids=np.array(fine_ids, dtype=np.int32),
        coarse_ids=np.array(coarse_ids, dtype=np.int32),
        align=np.array(align, dtype=np.int32).reshape(-1, 2),
        fine_type=np.array(fine_type, dtype=np.uint8),
        coarse_type=np.array(coarse_type, dtype=np.uint8),
        fine_offsets=np.zeros((len(fine_ids), 2), np.int32),
        coarse_offsets=np.zeros((len(coarse_ids), 2), np.int32),
        nsp_label=draw(st.sampled_from([-1, 0, 1])),
    )
    assert alignment_faults(example) == []
    return example


def special_coarse(example: ShardExample) -> np.ndarray:
    return np.isin(example.coarse_ids, (SPEC.coarse.cls, SPEC.coarse.sep, SPEC.coarse.pad))


@settings(max_examples=200, deadline=None)
@given(aligned_examples(), st.integers(0, 2**32), st.integers(0, 5))
def test_chosen_coarse_tokens_and_their_fine_spans_are_masked(example, seed, epoch):
    _, masked, sop_label = CORRUPTION(example, example_rng(seed, epoch, example.key))
    fine_in, fine_labels, coarse_in, coarse_labels = masked
    assert sop_label == IGNORE
    chosen = np.flatnonzero(coarse_labels != IGNORE)
    n = int((~special_coarse(example)).sum())
    assert len(chosen) == (max(1, round(0.15 * n)) if n else 0)
    assert not special_coarse(example)[chosen].any()
    spans = {i for start, end in example.align[chosen] for i in range(start, end)}
    assert set(np.flatnonzero(fine_labels != IGNORE).tolist()) == spans
    for ids, labels, masked, specials, size in (
        (example.fine_ids, fine_labels, fine_in, SPEC.fine, 60),
        (example.coarse_ids, coarse_labels, coarse_in, SPEC.coarse, 90),
    ):
        at = labels != IGNORE
        assert np.array_equal(labels[at], ids[at])  # labels: the original ids
        assert np.array_equal(masked[~at], ids[~at])  # nothing changes elsewhere
        special = {specials.pad, specials.cls, specials.sep, specials.unk}
        assert all(0 <= i < size and i not in special for i in masked[at].tolist())  # [MASK] or a non-special id
    for j in chosen.tolist():  # tied: a coarse token is [MASK] exactly when its fine tokens are
        start, end = example.align[j]
        assert (coarse_in[j] == SPEC.coarse.mask) == bool(np.all(fine_in[start:end] == SPEC.fine.mask))


def test_eighty_ten_ten_on_each_side():
    rng = np.random.default_rng(0)
    spec = MaskingSpec(fine=SPEC.fine, coarse=SPEC.coarse, fine_vocab_size=5000, coarse_vocab_size=9000)
    tallies = {"fine": np.zeros(3), "coarse": np.zeros(3)}  # [MASK], another id, unchanged
    for number in range(400):
        widths = rng.integers(1, 4, size=60)
        ends = np.cumsum(np.concatenate([[1], widths, [1]]))
        fine = np.concatenate([[SPEC.fine.cls], rng.integers(10, 5000, size=ends[-2] - 1), [SPEC.fine.sep]])
        coarse = np.concatenate([[SPEC.coarse.cls], rng.integers(10, 9000, size=60), [SPEC.coarse.sep]])
        example = ShardExample(
            f"k{number}",
            "doc",
            fine,
            coarse,
            np.stack([ends - np.diff(ends, prepend=0), ends], 1),
            np.zeros(len(fine), np.uint8),
            np.zeros(len(coarse), np.uint8),
            np.zeros((len(fine), 2)),
            np.zeros((len(coarse), 2)),
        )
        corruption = Corruption(UnitRules(spec, np.zeros(5000, dtype=bool), words_from_coarse=True))
        fine_in, fine_labels, coarse_in, coarse_labels = corruption(example, example_rng(1, 0, example.key))[1]
        for side, masked, labels, mask_id in (
            ("fine", fine_in, fine_labels, spec.fine.mask),
            ("coarse", coarse_in, coarse_labels, spec.coarse.mask),
        ):
            at = labels != IGNORE
            replaced = (masked[at] != mask_id) & (masked[at] != labels[at])
            tallies[side] += [(masked[at] == mask_id).sum(), replaced.sum(), (masked[at] == labels[at]).sum()]
    for side, counts in tallies.items():
        assert counts.sum() > 3000, side
        assert np.allclose(counts / counts.sum(), [0.8, 0.1, 0.1], atol=0.025), (side, counts / counts.sum())


@settings(max_examples=30, deadline=None)
@given(aligned_examples(min_tokens=30, max_tokens=60))
def test_same_seed_epoch_key_and_draw_give_the_same_masking_and_another_one_another(example):
    def masked(seed, epoch, key, draw=0):
        return np.concatenate(CORRUPTION(example, example_rng(seed, epoch, key, draw))[1])

    assert np.array_equal(masked(7, 2, example.key), masked(7, 2, example.key))
    assert not np.array_equal(masked(7, 2, example.key), masked(7, 3, example.key))
    assert not np.array_equal(masked(7, 2, example.key), masked(8, 2, example.key))
    assert not np.array_equal(masked(7, 2, example.key), masked(7, 2, example.key + "x"))
    assert not np.array_equal(masked(7, 2, example.key, 1), masked(7, 2, example.key, 2))  # resampled redraws


@settings(max_examples=40, deadline=None)
@given(
    st.lists(aligned_examples(), min_size=1, max_size=6, unique_by=lambda ex: ex.key),
    st.sampled_from(["combo", "ambert"]),
)
def test_collator_gives_static_shapes_capped_budgets_and_is_picklable(examples, variant):
    shape = BatchShape.for_run(rows=8, max_seq_len=256, variant=variant, max_predictions=12)
    collator = MaskingCollator(CORRUPTION, seed=3, epoch=1, shape=shape)
    batch = collator(examples)
    assert batch.sop_labels is None
    longest_fine, longest_coarse = (max(len(getattr(ex, f"{s}_ids")) for ex in examples) for s in ("fine", "coarse"))
    if variant == "ambert":  # sides padded to max_seq_len, packed into rows of 256, as many as a bucket (of 1..16)
        fine_len = coarse_len = 256
        assert batch.packed_source.shape == batch.packed_segment.shape == batch.packed_position.shape
        rows, row_len = batch.packed_source.shape
        assert row_len == 256 and rows in shape.packed_rows and shape.packed_rows == tuple(range(1, 17))
        assert batch.fine_packed_at.shape == (8, 256) and batch.coarse_packed_at.shape == (8, 256)
        real = int(batch.fine_mask.sum() + batch.coarse_mask.sum())
        assert int((batch.packed_segment >= 0).sum()) == real  # every real token placed once, filler rows too
        flat_ids = torch.cat([batch.fine_ids.flatten(), batch.coarse_ids.flatten(), torch.tensor([-1])])
        packed_ids = flat_ids[batch.packed_source]
        assert torch.equal(packed_ids.flatten()[batch.fine_packed_at][batch.fine_mask], batch.fine_ids[batch.fine_mask])
        assert torch.equal(
            packed_ids.flatten()[batch.coarse_packed_at][batch.coarse_mask], batch.coarse_ids[batch.coarse_mask]
        )
        assert (packed_ids[batch.packed_segment < 0] == -1).all()
    else:
        fine_len, coarse_len = (-(-longest // 32) * 32 for longest in (longest_fine, longest_coarse))
        assert batch.packed_source is None
    assert batch.fine_ids.shape == batch.fine_type.shape == batch.fine_mask.shape == (8, fine_len)
    assert batch.coarse_ids.shape == batch.coarse_labels.shape == (8, coarse_len)
    assert batch.align.shape == (8, coarse_len, 2) and batch.keys == [ex.key for ex in examples]
    assert batch.fine_ids.dtype == batch.align.dtype == batch.nsp_labels.dtype == torch.long
    assert batch.fine_mask.dtype == torch.bool
    capped = [0, 0]
    kept_flat = {"fine": [], "coarse": []}  # every kept masked position, flat in (rows · side length), in order
    for row, ex in enumerate(examples):
        f, c = len(ex.fine_ids), len(ex.coarse_ids)
        fine_in, fine_labels, coarse_in, coarse_labels = CORRUPTION(ex, example_rng(3, 1, ex.key))[1]
        for index, (side, inputs, labels, original, length, width) in enumerate(
            [
                ("fine", fine_in, fine_labels, ex.fine_ids, f, fine_len),
                ("coarse", coarse_in, coarse_labels, ex.coarse_ids, c, coarse_len),
            ]
        ):
            positions = np.flatnonzero(labels != IGNORE)
            kept, over = positions[:12], positions[12:]  # the budget keeps the first 12, the rest are unmasked
            capped[index] += len(over)
            inputs[over], labels[over] = np.asarray(original)[over], IGNORE
            assert getattr(batch, f"{side}_ids")[row, :length].tolist() == inputs.tolist()
            assert getattr(batch, f"{side}_labels")[row, :length].tolist() == labels.tolist()
            kept_flat[side] += [(row * width + int(at), int(original[at])) for at in kept]
        assert batch.coarse_type[row, :c].tolist() == ex.coarse_type.tolist()
        assert batch.align[row, :c].tolist() == ex.align.tolist()
        assert batch.fine_mask[row].tolist() == [True] * f + [False] * (fine_len - f)
        assert batch.coarse_mask[row].tolist() == [True] * c + [False] * (coarse_len - c)
        assert (batch.fine_ids[row, f:] == SPEC.fine.pad).all() and (batch.coarse_ids[row, c:] == SPEC.coarse.pad).all()
        assert (batch.fine_type[row, f:] == 0).all() and (batch.coarse_type[row, c:] == 0).all()
        assert (batch.fine_labels[row, f:] == IGNORE).all() and (batch.coarse_labels[row, c:] == IGNORE).all()
        assert (batch.align[row, c:] == 0).all()
        assert batch.nsp_labels[row] == (ex.nsp_label if ex.nsp_label >= 0 else IGNORE)
    assert batch.capped.tolist() == capped
    for side, kept in kept_flat.items():  # the batch's predictions gathered into the smallest bucket of slots
        index_, targets, weight = (getattr(batch, f"{side}_mlm_{part}") for part in ("index", "labels", "weight"))
        slots = min(bucket for bucket in shape.prediction_slots if bucket >= max(len(kept), 1))
        assert index_.shape == targets.shape == weight.shape == (slots,) and shape.prediction_slots[-1] == 8 * 12
        assert list(zip(index_[: len(kept)].tolist(), targets[: len(kept)].tolist(), strict=True)) == kept
        assert (index_[len(kept) :] == 0).all() and (targets[len(kept) :] == IGNORE).all()
        assert weight.tolist() == [1.0] * len(kept) + [0.0] * (slots - len(kept))
    filler = slice(len(examples), 8)  # rows without an example: one [PAD], nothing predicted
    assert (batch.fine_mask[filler].sum(1) == 1).all() and (batch.coarse_mask[filler].sum(1) == 1).all()
    assert (batch.fine_mlm_index[batch.fine_mlm_weight > 0] < len(examples) * fine_len).all()  # none in filler rows
    assert (batch.nsp_labels[filler] == IGNORE).all()
    again = pickle.loads(pickle.dumps(collator))(examples)
    assert torch.equal(again.fine_ids, batch.fine_ids) and torch.equal(again.coarse_mlm_index, batch.coarse_mlm_index)


def test_google_budget_default_and_buckets_that_do_not_fit_are_refused():
    assert [google_max_predictions(n) for n in (128, 512)] == [20, 80]
    shape = BatchShape.for_run(rows=4, max_seq_len=128, variant="ambert")
    assert shape.max_predictions == 20 and shape.lengths == tuple(range(16, 129, 16)) and shape.row_len == 128
    assert shape.packed_rows == tuple(range(1, 9)) and BatchShape.for_run(64, 128, "ambert").packed_rows[:2] == (4, 8)
    assert BatchShape.for_run(4, 128, "hybrid").row_len == 256
    assert BatchShape.for_run(4, 128, "bert-fine", pad_to=(128, 64)).lengths == (64, 128)
    with pytest.raises(ValueError, match=r"data\.pad_to \[64\] has no value of 128"):
        BatchShape.for_run(4, 128, "combo", pad_to=(64,))
    with pytest.raises(ValueError, match=r"data\.packed_rows \[4\] has no value of 8"):
        BatchShape.for_run(4, 128, "ambert", packed_rows=(4,))
    assert shape.prediction_slots == tuple(range(5, 81, 5)) and shape.fit_slots(0) == 5 and shape.fit_slots(41) == 45
    with pytest.raises(ValueError, match=r"data\.prediction_slots \[40\] has no value of 80"):
        BatchShape.for_run(4, 128, "ambert", prediction_slots=(40,))


@settings(max_examples=30, deadline=None)
@given(st.lists(aligned_examples(min_tokens=2, max_pads=0), min_size=1, max_size=6, unique_by=lambda ex: ex.key))
def test_collator_with_sop_labels_each_example_and_swaps_only_actual_next_pairs(examples):
    corruption = Corruption(CORRUPTION.rules, sop=True)
    batch = MaskingCollator(corruption, seed=4, epoch=0, shape=BatchShape.for_run(8, 256, "ambert"))(examples)
    for row, ex in enumerate(examples):
        read, _, label = corruption(ex, example_rng(4, 0, ex.key))
        assert int(batch.sop_labels[row]) == label
        has_pair = ex.nsp_label == 0 and bool(np.any(ex.fine_type == 1))
        assert (label != IGNORE) == has_pair
        if label == 1:  # segment B is now the old A and its [SEP]
            assert int(read.fine_type.sum()) == int((ex.fine_type == 0).sum()) - 1
        else:
            assert read is ex
        assert batch.fine_type[row, : len(ex.fine_ids)].tolist() == read.fine_type.tolist()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_spec_from_a_real_artifact(trainer_data, lang):
    artifact = trainer_data[f"{lang}_vocab"]
    spec = MaskingSpec.from_artifact(str(artifact), mask_prob=0.2)
    for side, specials in (("fine", spec.fine), ("coarse", spec.coarse)):
        tokens = read_vocab_lines(str(artifact / side / "vocab.txt"))
        assert [
            tokens[specials.pad],
            tokens[specials.cls],
            tokens[specials.sep],
            tokens[specials.mask],
            tokens[specials.unk],
        ] == ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]
        assert getattr(spec, f"{side}_vocab_size") == len(tokens)
    assert spec.coarse_vocab_size > spec.fine_vocab_size and spec.mask_prob == 0.2
    with pytest.raises(ValueError, match="mask_prob"):
        MaskingSpec.from_artifact(str(artifact), mask_prob=1.5)
