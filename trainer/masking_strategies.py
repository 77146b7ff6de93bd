"""The seeds' masking strategies and corruptions, as pure numpy functions of one aligned example and an rng.

    rules = UnitRules.from_artifact("run/vocab", tie_coarse=True)       # special ids, "##" flags, language
    rng = example_rng(seed, epoch, key, draw)                           # trainer.masking: the same on every replay
    chosen = STRATEGIES["ngram"](example, rules, rng)                   # Selection: words, their spans, n-grams
    fine_in, fine_labels, coarse_in, coarse_labels = corrupt_bert(example, chosen, rules, rng)   # MLM, tied 80/10/10
    corrupt_mac(example, chosen, rules, SimilarWordTable.from_artifact("run/vocab"), rng)        # MacBERT
    permute_chosen(example, chosen, rng)                                                           # PERT
    sentence_order(example, rng)                                                                   # SOP pairs
    corruption = Corruption.from_config("run/vocab", cfg)      # all of it, as a TrainConfig says (the collator's)

Strategies: `token` (BERT: fine tokens), `word` (whole-word masking: Chinese words are coarse units, English words a
WordPiece word and its "##" pieces), `ngram` (n = 1..4 words with p 0.4/0.3/0.2/0.1: MacBERT, PERT) and `ambert`
(coarse units; `ambert-ngram`: n-grams of them). Each keeps mask_prob of the tokens (coarse tokens for `ambert`) as the
target. With tie_coarse (a model reading both sides) a chosen unit always spans whole coarse tokens, and each
corruption decides once per unit for both sides: no side shows what the other must predict. Specials and [UNK] are
never chosen.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from trainer.batch import IGNORE
from trainer.masking import MaskingSpec, SpecialIds
from vocab.aligned_codec import ShardExample
from vocab.artifact import SIMILAR_WORDS_FILE, ArtifactError, read_artifact, read_vocab_lines
from vocab.similar_words import SimilarWordTable, word_units

NGRAM_PROBS = (0.4, 0.3, 0.2, 0.1)  # n = 1, 2, 3, 4 words (MacBERT, PERT)
MASK, RANDOM = 0.8, 0.9  # BERT: [MASK] below 0.8, a random token below 0.9, else unchanged
KEEP_ORDER = 0.1  # PERT: share of the chosen positions that keep their token


@dataclass(frozen=True)
class UnitRules:
    """What strategies need to know of the vocab artifact and the model.

    is_continuation[id]: fine token `id` is a "##" piece. words_from_coarse: a word is a coarse unit (Chinese; an
    English word is a WordPiece word). tie_coarse: the model reads both sides, so every chosen unit is made of
    whole coarse tokens and its coarse tokens are corrupted with its fine tokens (False for bert-fine)."""

    spec: MaskingSpec
    is_continuation: np.ndarray
    words_from_coarse: bool
    tie_coarse: bool = True

    @cached_property
    def never_chosen(self) -> tuple[np.ndarray, np.ndarray]:
        """[vocab] bool per side: [PAD], [CLS], [SEP], [MASK], [UNK]."""
        return tuple(
            np.isin(np.arange(size), _specials(ids))
            for ids, size in (
                (self.spec.fine, self.spec.fine_vocab_size),
                (self.spec.coarse, self.spec.coarse_vocab_size),
            )
        )

    @cached_property
    def random_pool(self) -> tuple[np.ndarray, np.ndarray]:
        """The ids a random replacement draws from, per side: every id but the special ones."""
        return tuple(np.flatnonzero(~never) for never in self.never_chosen)

    @classmethod
    def from_artifact(cls, artifact_dir: str, mask_prob: float = 0.15, tie_coarse: bool = True) -> UnitRules:
        lang = read_artifact(artifact_dir)["lang"]
        fine_vocab = read_vocab_lines(os.path.join(artifact_dir, "fine", "vocab.txt"))
        return cls(
            spec=MaskingSpec.from_artifact(artifact_dir, mask_prob),
            is_continuation=np.asarray([token.startswith("##") for token in fine_vocab]),
            words_from_coarse=lang == "zh",
            tie_coarse=tie_coarse,
        )


@dataclass(frozen=True)
class Selection:
    """The chosen units of one example, in order: unit k covers fine positions fine[k, 0]:fine[k, 1] and coarse
    positions coarse[k, 0]:coarse[k, 1] (the coarse tokens wholly inside it; every one it touches when tied).
    Units of one n-gram share a group: a corruption decides once per group."""

    fine: np.ndarray  # [K, 2] int64
    coarse: np.ndarray  # [K, 2] int64
    group: np.ndarray  # [K] int64, 0..G-1 in order

    @property
    def fine_positions(self) -> np.ndarray:
        return _positions(self.fine)

    @property
    def coarse_positions(self) -> np.ndarray:
        return _positions(self.coarse)


def _positions(spans: np.ndarray) -> np.ndarray:
    """The positions start..end-1 of every span, in order."""
    lengths = spans[:, 1] - spans[:, 0]
    offsets = np.cumsum(lengths) - lengths
    return (np.arange(int(lengths.sum())) + np.repeat(spans[:, 0] - offsets, lengths)).astype(np.int64)


# -- units ---------------------------------------------------------------------------------------------------------
def _coarse_spans_inside(align: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """[U, 2] coarse spans of the coarse tokens lying wholly inside each fine span."""
    first = np.searchsorted(align[:, 0], fine[:, 0], side="left")
    last = np.searchsorted(align[:, 1], fine[:, 1], side="right")
    return np.stack([first, np.maximum(first, last)], axis=1)


def _fine_spans_of(align: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    return np.stack([align[coarse[:, 0], 0], align[coarse[:, 1] - 1, 1]], axis=1)


def units(example: ShardExample, rules: UnitRules, level: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fine spans [U, 2], coarse spans [U, 2], candidate [U] bool) of the example's units at `level`: "token"
    (fine tokens), "word" or "coarse" (coarse tokens), in order. Tied, a unit is made of whole coarse tokens (a
    token's unit is its coarse token; words are vocab.similar_words.word_units). A candidate has no special
    token and no [UNK] on either side."""
    align = np.asarray(example.align, dtype=np.int64)
    fine_ids = np.asarray(example.fine_ids, dtype=np.int64)
    if level == "coarse" or (level == "token" and rules.tie_coarse):
        coarse = np.stack([np.arange(len(align)), np.arange(1, len(align) + 1)], axis=1)
        fine = align
    elif level == "word" and (rules.words_from_coarse or rules.tie_coarse):
        coarse = word_units(align, ~rules.is_continuation[fine_ids])
        fine = _fine_spans_of(align, coarse)
    elif level in ("token", "word"):
        starts = np.ones(len(fine_ids), dtype=bool) if level == "token" else ~rules.is_continuation[fine_ids]
        begin = np.flatnonzero(starts | (np.arange(len(fine_ids)) == 0))
        fine = np.stack([begin, np.append(begin[1:], len(fine_ids))], axis=1)
        coarse = _coarse_spans_inside(align, fine)
    else:
        raise ValueError(f"unit level {level!r} is not token, word or coarse")
    return fine, coarse, _candidates(example, rules, fine, coarse)


def _specials(ids: SpecialIds) -> list[int]:
    return sorted({ids.pad, ids.cls, ids.sep, ids.mask, ids.unk})


def _candidates(example: ShardExample, rules: UnitRules, fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    never_fine, never_coarse = rules.never_chosen
    bad_fine = np.concatenate([[0], np.cumsum(never_fine[np.asarray(example.fine_ids)])])
    bad_coarse = np.concatenate([[0], np.cumsum(never_coarse[np.asarray(example.coarse_ids)])])
    return (bad_fine[fine[:, 1]] == bad_fine[fine[:, 0]]) & (bad_coarse[coarse[:, 1]] == bad_coarse[coarse[:, 0]])


# -- choosing ------------------------------------------------------------------------------------------------------
def choose_spans(
    fine: np.ndarray,
    coarse: np.ndarray,
    candidate: np.ndarray,
    sizes: np.ndarray,
    mask_prob: float,
    rng: np.random.Generator,
    ngram_probs: tuple[float, ...] = (1.0,),
    limit: int | None = None,
) -> Selection:
    """Spans of n consecutive free candidate units (n drawn from ngram_probs, then a start uniformly among the
    places where n fit) until their sizes reach the target max(1, round(mask_prob × candidate size)). A span
    passing the target is taken when that ends nearer the target than stopping short, so the chosen n-grams keep
    ngram_probs (no bias to short ones); the first span is cut to the target, so a unit is chosen whenever one is
    a candidate. The total never exceeds `limit` (e.g. the model's max predictions)."""
    free, unit_sizes = candidate.tolist(), sizes.tolist()
    count = len(free)
    target = max(1, round(mask_prob * int(sizes[candidate].sum()))) if any(free) else 0
    if limit is not None:
        target = min(target, limit)
    thresholds = (np.cumsum(ngram_probs) / sum(ngram_probs)).tolist()
    uniforms = rng.random(4 * count + 64).tolist()  # one stream: an n, then starts until one fits
    chosen: list[tuple[int, int]] = []  # (first unit, n)
    total, draw = 0, 0
    while total < target and draw < len(uniforms) - 1:
        n = bisect.bisect_right(thresholds, uniforms[draw]) + 1 if len(thresholds) > 1 else 1
        draw += 1
        for _ in range(2 * count):  # rejection: a uniform start among the places where n units are free
            if draw == len(uniforms):
                break
            start = int(uniforms[draw] * count)
            draw += 1
            if start + n <= count and all(free[start : start + n]):
                break
        else:
            continue  # no place for n units: draw n again
        if draw == len(uniforms):
            break
        size = sum(unit_sizes[start : start + n])
        while not chosen and n > 1 and size > target:
            n, size = n - 1, size - unit_sizes[start + n - 1]
        if chosen and total + size - target > target - total:
            break  # stopping short is nearer the target than taking this span
        if limit is not None and total + size > limit:
            continue
        free[start : start + n] = [False] * n
        chosen.append((start, n))
        total += size
    if not chosen and target:  # every draw of the stream missed (few free units among many): the first that fits
        fits = [unit for unit, size in enumerate(unit_sizes) if free[unit] and (limit is None or size <= limit)]
        chosen += [(fits[0], 1)] if fits else []
    chosen.sort()
    index = np.asarray([first + k for first, n in chosen for k in range(n)], dtype=np.int64)
    group = np.asarray([number for number, (_, n) in enumerate(chosen) for _ in range(n)], dtype=np.int64)
    return Selection(fine[index].reshape(-1, 2), coarse[index].reshape(-1, 2), group)


def choose_tokens(
    example: ShardExample, rules: UnitRules, rng: np.random.Generator, limit: int | None = None
) -> Selection:
    """`token`: mask_prob of the fine tokens, each on its own (tied: with its whole coarse token)."""
    fine, coarse, candidate = units(example, rules, "token")
    return choose_spans(fine, coarse, candidate, fine[:, 1] - fine[:, 0], rules.spec.mask_prob, rng, limit=limit)


def choose_words(
    example: ShardExample, rules: UnitRules, rng: np.random.Generator, limit: int | None = None
) -> Selection:
    """`word`: whole words until mask_prob of the fine tokens are chosen (Chinese-BERT-wwm, BERT-wwm)."""
    fine, coarse, candidate = units(example, rules, "word")
    return choose_spans(fine, coarse, candidate, fine[:, 1] - fine[:, 0], rules.spec.mask_prob, rng, limit=limit)


def choose_ngrams(
    example: ShardExample, rules: UnitRules, rng: np.random.Generator, limit: int | None = None
) -> Selection:
    """`ngram`: n-grams of whole words, n = 1..4 with p 0.4/0.3/0.2/0.1, until mask_prob of the fine tokens."""
    fine, coarse, candidate = units(example, rules, "word")
    sizes = fine[:, 1] - fine[:, 0]
    return choose_spans(fine, coarse, candidate, sizes, rules.spec.mask_prob, rng, NGRAM_PROBS, limit)


def choose_coarse_units(
    example: ShardExample, rules: UnitRules, rng: np.random.Generator, limit: int | None = None, ngram: bool = False
) -> Selection:
    """`ambert`: mask_prob of the coarse tokens (round, at least one) and their fine tokens (paper section 4);
    with `ngram`, n-grams of coarse tokens (p 0.4/0.3/0.2/0.1). `limit` counts coarse tokens."""
    fine, coarse, candidate = units(example, rules, "coarse")
    probs = NGRAM_PROBS if ngram else (1.0,)
    return choose_spans(fine, coarse, candidate, np.ones(len(fine), np.int64), rules.spec.mask_prob, rng, probs, limit)


def choose_coarse_ngrams(
    example: ShardExample, rules: UnitRules, rng: np.random.Generator, limit: int | None = None
) -> Selection:
    """`ambert-ngram`: `ambert` with n-grams of coarse tokens (n = 1..4, p 0.4/0.3/0.2/0.1)."""
    return choose_coarse_units(example, rules, rng, limit, ngram=True)


STRATEGIES: dict[str, Callable[..., Selection]] = {
    "token": choose_tokens,
    "word": choose_words,
    "ngram": choose_ngrams,
    "ambert": choose_coarse_units,
    "ambert-ngram": choose_coarse_ngrams,
}


# -- corruptions ---------------------------------------------------------------------------------------------------
def random_ids(rng: np.random.Generator, count: int, pool: np.ndarray) -> np.ndarray:
    """`count` ids drawn uniformly from `pool` (UnitRules.random_pool: no special token, no [UNK])."""
    return pool[rng.integers(len(pool), size=count)]


def _labels(ids: np.ndarray, positions: np.ndarray) -> np.ndarray:
    labels = np.full(len(ids), IGNORE, dtype=np.int64)
    labels[positions] = ids[positions]
    return labels


def _group_draws(selection: Selection, rng: np.random.Generator) -> np.ndarray:
    """One uniform draw per chosen unit, shared by the units of a group."""
    groups = int(selection.group[-1]) + 1 if len(selection.group) else 0
    return rng.random(groups)[selection.group]


def corrupt_bert(
    example: ShardExample, selection: Selection, rules: UnitRules, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(fine_input, fine_labels, coarse_input, coarse_labels): BERT's 80/10/10 ([MASK], random tokens, unchanged),
    decided once per unit group for both sides. Labels hold the original ids at the chosen positions."""
    fine = np.asarray(example.fine_ids, dtype=np.int64)
    coarse = np.asarray(example.coarse_ids, dtype=np.int64)
    fine_input, coarse_input = fine.copy(), coarse.copy()
    draws = _group_draws(selection, rng)
    labels = []
    for ids, spans, specials, pool in (
        (fine_input, selection.fine, rules.spec.fine, rules.random_pool[0]),
        (coarse_input, selection.coarse, rules.spec.coarse, rules.random_pool[1]),
    ):
        positions = _positions(spans)
        labels.append(_labels(ids, positions))
        draw = np.repeat(draws, spans[:, 1] - spans[:, 0])  # each position gets its unit's draw
        ids[positions[draw < MASK]] = specials.mask
        replaced = positions[(draw >= MASK) & (draw < RANDOM)]
        ids[replaced] = random_ids(rng, len(replaced), pool)
    return fine_input, labels[0], coarse_input, labels[1]


def random_word(
    table: SimilarWordTable, original: tuple[int, ...], coarse_length: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(fine ids, coarse ids) of a random word with as many fine tokens as `original` (its fine ids), other than
    it: a coarse-vocabulary word of that shape when coarse_length is 1 (or 0: the coarse side is not used); for a
    word of "##" pieces (coarse_length == fine length), or when the vocabulary has no other word of that length,
    a whole-word token followed by "##" pieces, which are their own coarse tokens (or, for one coarse token, a
    random coarse unit)."""
    length = len(original)
    pool = table.random_units.get((length, 1)) if coarse_length <= 1 else None
    for _ in range(10 if pool is not None else 0):  # the original is rarely drawn, rarely twice
        row = pool[rng.integers(len(pool))]
        if tuple(row[:length].tolist()) != original:
            return row[:length], row[length:]
    singles = table.random_units[(1, 1)][:, 0]
    pieces = table.continuation_ids if len(table.continuation_ids) else singles
    while True:
        fine = np.concatenate(
            [singles[rng.integers(len(singles), size=1)], pieces[rng.integers(len(pieces), size=length - 1)]]
        )
        if tuple(fine.tolist()) != original:
            break
    if coarse_length != 1 or length == 1:
        return fine, fine
    units = np.concatenate(
        [rows[:, -1] for (size, coarse), rows in table.random_units.items() if coarse == 1 and size > 1]
    )
    return fine, units[rng.integers(len(units), size=1)]


def corrupt_mac(
    example: ShardExample,
    selection: Selection,
    rules: UnitRules,
    table: SimilarWordTable,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MacBERT's "MLM as correction": per unit group, 80% every word becomes a similar word (the table's, chosen
    uniformly; a random word when it has none), 10% a random word, 10% unchanged; never [MASK]. A replacement has
    the word's numbers of fine and coarse tokens and differs from it. Same outputs as corrupt_bert."""
    fine = np.asarray(example.fine_ids, dtype=np.int64)
    coarse = np.asarray(example.coarse_ids, dtype=np.int64)
    fine_input, coarse_input = fine.copy(), coarse.copy()
    draws = _group_draws(selection, rng)
    for (f0, f1), (c0, c1), draw in zip(selection.fine.tolist(), selection.coarse.tolist(), draws, strict=True):
        if draw >= RANDOM:
            continue
        original = tuple(fine[f0:f1].tolist())
        similar = table.neighbours.get(original, ()) if draw < MASK else ()
        similar = [unit for unit in similar if c1 == c0 or len(unit[1]) == c1 - c0]
        if similar:
            new_fine, new_coarse = similar[rng.integers(len(similar))]
        else:
            new_fine, new_coarse = random_word(table, original, c1 - c0, rng)
        fine_input[f0:f1] = new_fine
        if c1 > c0:
            coarse_input[c0:c1] = new_coarse
    return (
        fine_input,
        _labels(fine, selection.fine_positions),
        coarse_input,
        _labels(coarse, selection.coarse_positions),
    )


def permute(ids: np.ndarray, positions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """PERT on one side: (input, targets). Each chosen position keeps its token with probability 0.1; the others
    trade tokens among themselves (a random derangement). targets[p] = the position the token now at p came from
    (p itself when kept), IGNORE where nothing was chosen."""
    ids = np.asarray(ids, dtype=np.int64)
    targets = np.full(len(ids), IGNORE, dtype=np.int64)
    targets[positions] = positions
    moving = positions[rng.random(len(positions)) >= KEEP_ORDER]
    if len(moving) >= 2:
        while True:
            order = rng.permutation(len(moving))
            if not np.any(order == np.arange(len(moving))):
                break
        targets[moving] = moving[order]
    return ids[np.where(targets == IGNORE, np.arange(len(ids)), targets)], targets


def permute_chosen(
    example: ShardExample, selection: Selection, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(fine_input, fine_targets, coarse_input, coarse_targets): `permute` on each side's chosen positions."""
    fine_input, fine_targets = permute(example.fine_ids, selection.fine_positions, rng)
    coarse_input, coarse_targets = permute(example.coarse_ids, selection.coarse_positions, rng)
    return fine_input, fine_targets, coarse_input, coarse_targets


# -- sentence order --------------------------------------------------------------------------------------------------
def sentence_order(example: ShardExample, rng: np.random.Generator) -> tuple[ShardExample, int]:
    """Sentence-order prediction (ALBERT, MacBERT): (example, label). A pair whose segment B is A's actual next text
    (nsp_label 0) is swapped to [CLS] B [SEP] A [SEP] half of the time (label 1; types, alignment, offsets and
    document ids follow) or kept (label 0). Any other example is returned as it is, label IGNORE."""
    if example.nsp_label != 0 or not np.any(example.fine_type == 1):
        return example, IGNORE
    if rng.random() >= 0.5:
        return example, 0
    fine_order, coarse_order, first_fine, first_coarse = _swapped_orders(example)
    widths = (example.align[:, 1] - example.align[:, 0])[coarse_order]
    ends = np.cumsum(widths)
    fine_type = np.zeros(len(fine_order), dtype=example.fine_type.dtype)
    coarse_type = np.zeros(len(coarse_order), dtype=example.coarse_type.dtype)
    fine_type[first_fine:], coarse_type[first_coarse:] = 1, 1
    swapped = ShardExample(
        key=example.key,
        doc_id=example.next_doc_id or example.doc_id,
        fine_ids=example.fine_ids[fine_order],
        coarse_ids=example.coarse_ids[coarse_order],
        align=np.stack([ends - widths, ends], axis=1).astype(example.align.dtype),
        fine_type=fine_type,
        coarse_type=coarse_type,
        fine_offsets=example.fine_offsets[fine_order],
        coarse_offsets=example.coarse_offsets[coarse_order],
        nsp_label=example.nsp_label,
        next_doc_id=example.doc_id if example.next_doc_id else "",
        draw=example.draw,
    )
    return swapped, 1


def _swapped_orders(example: ShardExample) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Index orders of both sides for [CLS] B [SEP] A [SEP] and where the new segment B (old A + its [SEP]) starts."""
    orders, starts = [], []
    for types in (np.asarray(example.fine_type), np.asarray(example.coarse_type)):
        b_start = int(np.argmax(types == 1))  # old B: b_start .. end-1 (its [SEP] last); old A: 1 .. b_start-2
        end = len(types)
        orders.append(
            np.concatenate([[0], np.arange(b_start, end - 1), [b_start - 1], np.arange(1, b_start - 1), [end - 1]])
        )
        starts.append(1 + (end - 1 - b_start) + 1)
    return orders[0], orders[1], starts[0], starts[1]


# -- one example, as a run is configured -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Corruption:
    """What pre-training does to one example: SOP swap (sop), the strategy's choice, the objective's corruption.

    corruption(example, rng) → (example, (fine_input, fine_labels, coarse_input, coarse_labels), sop_label): the
    example as the model reads it (swapped by SOP), and labels that hold the original ids (mlm, mac) or the source
    positions (perm) at the chosen positions. Picklable (DataLoader workers)."""

    rules: UnitRules
    strategy: str = "ambert"
    objective: str = "mlm"
    sop: bool = False
    similar: SimilarWordTable | None = None  # mac only

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"masking strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if self.objective not in ("mlm", "mac", "perm"):
            raise ValueError(f"objective {self.objective!r} is not mlm, mac or perm")
        if self.objective == "mac" and self.similar is None:
            raise ValueError("the mac objective needs a SimilarWordTable")

    @classmethod
    def from_config(cls, artifact_dir: str, cfg) -> Corruption:
        """The corruption of a trainer.config.TrainConfig over the vocab artifact `artifact_dir`."""
        from trainer.config import masking_of

        similar = None
        if cfg.model.objective == "mac":
            if not os.path.exists(os.path.join(artifact_dir, SIMILAR_WORDS_FILE)):
                raise ArtifactError(
                    f"model.objective=mac needs similar words, and {artifact_dir} has no {SIMILAR_WORDS_FILE}: "
                    "rebuild the vocab with `ambert vocab build --similar-words 10` (or --similar-words-file FILE)"
                )
            similar = SimilarWordTable.from_artifact(artifact_dir)
        return cls(
            rules=UnitRules.from_artifact(
                artifact_dir, cfg.data.mask_prob, tie_coarse=cfg.model.variant != "bert-fine"
            ),
            strategy=masking_of(cfg),
            objective=cfg.model.objective,
            sop=cfg.model.sop,
            similar=similar,
        )

    def __call__(
        self, example: ShardExample, rng: np.random.Generator
    ) -> tuple[ShardExample, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], int]:
        sop_label = IGNORE
        if self.sop:
            example, sop_label = sentence_order(example, rng)
        chosen = STRATEGIES[self.strategy](example, self.rules, rng)
        if self.objective == "perm":
            return example, permute_chosen(example, chosen, rng), sop_label
        if self.objective == "mac":
            return example, corrupt_mac(example, chosen, self.rules, self.similar, rng), sop_label
        return example, corrupt_bert(example, chosen, self.rules, rng), sop_label
