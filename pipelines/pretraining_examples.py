"""Turning tokenized documents into pre-training examples: plain Python, called by pipelines/shards.py.

    segments = [segment_of(encoded_sentence, start) ...]; examples = pair_examples(pool, seed, max_seq_len)

Sentence pairs follow Google BERT's create_pretraining_data.py (short_seq_prob, 50% random next
segment, truncate_seq_pair), but cut only between coarse tokens so both granularities stay aligned.
All randomness comes from hashes of (seed, document id), never from arrival order.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import numpy as np

from vocab.aligned_codec import ShardExample

SHORT_SEQ_PROB = 0.1
RANDOM_NEXT_PROB = 0.5


@dataclass(frozen=True, eq=False)
class Segment:
    """Tokens of one or more sentences, without [CLS]/[SEP]. coarse_ends[j]: fine end of coarse token j
    (coarse tokens are contiguous from fine position 0). Offsets are characters into the document."""

    fine_ids: np.ndarray  # [Lf] int32
    coarse_ids: np.ndarray  # [Lc] int32
    coarse_ends: np.ndarray  # [Lc] int32
    fine_offsets: np.ndarray  # [Lf, 2] int32
    coarse_offsets: np.ndarray  # [Lc, 2] int32

    def __len__(self) -> int:
        return len(self.fine_ids)  # fine length ≥ coarse length: the binding limit

    def coarse_slice(self, start: int, stop: int) -> Segment:
        """Coarse tokens [start, stop) with their fine tokens."""
        fine_start = int(self.coarse_ends[start - 1]) if start else 0
        fine_stop = int(self.coarse_ends[stop - 1]) if stop else 0
        return Segment(
            self.fine_ids[fine_start:fine_stop],
            self.coarse_ids[start:stop],
            self.coarse_ends[start:stop] - fine_start,
            self.fine_offsets[fine_start:fine_stop],
            self.coarse_offsets[start:stop],
        )


def segment_of(example, shift: int) -> Segment | None:
    """An AlignedExample of one sentence ([CLS] text [SEP]) → its Segment with offsets shifted by
    `shift` characters; None when the sentence has no tokens."""
    if len(example.coarse_ids) <= 2:
        return None
    align = np.asarray(example.align[1:-1], dtype=np.int32)
    return Segment(
        fine_ids=np.asarray(example.fine_ids[1:-1], dtype=np.int32),
        coarse_ids=np.asarray(example.coarse_ids[1:-1], dtype=np.int32),
        coarse_ends=align[:, 1] - 1,
        fine_offsets=np.asarray(example.fine_offsets[1:-1], dtype=np.int32).reshape(-1, 2) + shift,
        coarse_offsets=np.asarray(example.coarse_offsets[1:-1], dtype=np.int32).reshape(-1, 2) + shift,
    )


def truncate_segment(segment: Segment, max_tokens: int) -> Segment:
    """The longest prefix of whole coarse tokens with at most `max_tokens` fine tokens."""
    keep = int(np.searchsorted(segment.coarse_ends, max_tokens, side="right"))
    return segment if keep == len(segment.coarse_ids) else segment.coarse_slice(0, keep)


def concat(segments: list[Segment]) -> Segment:
    if len(segments) == 1:
        return segments[0]
    ends, base = [], 0
    for segment in segments:
        ends.append(segment.coarse_ends + base)
        base += len(segment)
    return Segment(
        np.concatenate([s.fine_ids for s in segments]),
        np.concatenate([s.coarse_ids for s in segments]),
        np.concatenate(ends),
        np.concatenate([s.fine_offsets for s in segments]),
        np.concatenate([s.coarse_offsets for s in segments]),
    )


def truncate_pair(a: Segment, b: Segment, max_tokens: int, rng: random.Random) -> tuple[Segment, Segment, bool]:
    """Google's truncate_seq_pair at coarse granularity: drop a whole coarse token from the front or
    back (50/50) of the longer segment until both fit together. Returns (a, b, truncated)."""
    spans = [[0, len(a.coarse_ids)], [0, len(b.coarse_ids)]]
    lengths = [len(a), len(b)]
    segments = (a, b)
    truncated = False
    while lengths[0] + lengths[1] > max_tokens:
        side = 0 if lengths[0] > lengths[1] else 1
        if spans[side][1] - spans[side][0] <= 1:  # one coarse token left there: trim the other side
            side = 1 - side
            if spans[side][1] - spans[side][0] <= 1:
                break  # cannot fit (the caller drops and counts the pair)
        segment, span = segments[side], spans[side]
        truncated = True
        if rng.random() < 0.5:
            first = span[0]
            lengths[side] -= int(segment.coarse_ends[first]) - (int(segment.coarse_ends[first - 1]) if first else 0)
            span[0] += 1
        else:
            last = span[1] - 1
            lengths[side] -= int(segment.coarse_ends[last]) - (int(segment.coarse_ends[last - 1]) if last else 0)
            span[1] -= 1
    return a.coarse_slice(*spans[0]), b.coarse_slice(*spans[1]), truncated


def stable_hash(*parts: object) -> bytes:
    return hashlib.sha256("\x00".join(str(part) for part in parts).encode("utf-8")).digest()


def document_rng(seed: int, doc_id: str) -> random.Random:
    return random.Random(int.from_bytes(stable_hash("rng", seed, doc_id)[:8], "little"))


def example_key(seed: int, doc_id: str, index: int) -> str:
    """The sample key: 32 hex digits (128 bits) of a hash of (seed, document, index), so 10¹¹ examples
    collide with a chance below 10⁻¹⁶; also the order in a shard."""
    return stable_hash("key", seed, doc_id, index).hex()[:32]


def assemble(
    key: str,
    doc_id: str,
    a: Segment,
    b: Segment | None,
    cls_id: int,
    sep_id: int,
    nsp_label: int = -1,
    next_doc_id: str = "",
) -> ShardExample:
    """[CLS] a [SEP] (b [SEP]) at both granularities; segment type 1 for b and its [SEP]."""
    return assemble_pieces(
        key, doc_id, [a] if b is None else [a, b], [0] if b is None else [0, 1], cls_id, sep_id, nsp_label, next_doc_id
    )


def assemble_pieces(
    key: str,
    doc_id: str,
    pieces: list[Segment],
    types: list[int],
    cls_id: int,
    sep_id: int,
    nsp_label: int = -1,
    next_doc_id: str = "",
) -> ShardExample:
    """[CLS] piece [SEP] piece [SEP] … at both granularities, each piece and its [SEP] of its segment type."""
    special = lambda token: np.array([token], dtype=np.int32)  # noqa: E731
    none = np.zeros((1, 2), dtype=np.int32)
    parts_fine, parts_coarse, parts_ends = [special(cls_id)], [special(cls_id)], [np.array([1], dtype=np.int32)]
    parts_fo, parts_co = [none], [none]
    types_f, types_c = [np.zeros(1, np.uint8)], [np.zeros(1, np.uint8)]
    base = 1
    for segment, kind in zip(pieces, types, strict=True):
        fine, coarse = len(segment) + 1, len(segment.coarse_ids) + 1  # the segment and its [SEP]
        parts_fine += [segment.fine_ids, special(sep_id)]
        parts_coarse += [segment.coarse_ids, special(sep_id)]
        parts_ends += [segment.coarse_ends + base, np.array([base + fine], dtype=np.int32)]
        parts_fo += [segment.fine_offsets, none]
        parts_co += [segment.coarse_offsets, none]
        types_f.append(np.full(fine, kind, np.uint8))
        types_c.append(np.full(coarse, kind, np.uint8))
        base += fine
    ends = np.concatenate(parts_ends).astype(np.int32)
    align = np.stack([np.concatenate([[0], ends[:-1]]), ends], axis=1).astype(np.int32)
    return ShardExample(
        key=key,
        doc_id=doc_id,
        fine_ids=np.concatenate(parts_fine),
        coarse_ids=np.concatenate(parts_coarse),
        align=align,
        fine_type=np.concatenate(types_f),
        coarse_type=np.concatenate(types_c),
        fine_offsets=np.concatenate(parts_fo),
        coarse_offsets=np.concatenate(parts_co),
        nsp_label=nsp_label,
        next_doc_id=next_doc_id,
    )


class FullSentencePacker:
    """Without NSP, RoBERTa's FULL-SENTENCES packing: sentences flow across document boundaries into
    [CLS] doc-a sentences [SEP] doc-b sentences [SEP] … filled to max_seq_len fine tokens (short by less than one
    coarse token and a [SEP]; the last example of a task may be shorter); a sentence that does not fit is cut
    between coarse tokens and goes on in the next example. An example's doc_id (and key) is that of the
    document its first token comes from; the offsets of each piece point into its own document;
    next_doc_id names the document of its last piece.

        packer = FullSentencePacker(seed, max_seq_len, cls_id, sep_id)
        examples = packer.add(doc_id, segments) ...; examples += packer.close()
    """

    def __init__(self, seed: int, max_seq_len: int, cls_id: int, sep_id: int):
        self._seed, self._limit, self._ids = seed, max_seq_len - 1, (cls_id, sep_id)  # [CLS] is not in the limit
        self._pieces: list[tuple[str, list[Segment]]] = []  # (document, its segments in this example)
        self._length = 0  # fine tokens of the pieces and their [SEP]s
        self._started = ("", 0)  # (document, examples started in it): keys are (seed, document, n)

    def add(self, doc_id: str, segments: list[Segment]) -> list[ShardExample]:
        done: list[ShardExample] = []
        for segment in segments:
            while len(segment.coarse_ids):
                opened = bool(self._pieces) and self._pieces[-1][0] == doc_id
                room = self._limit - self._length - (0 if opened else 1)  # a new piece needs its [SEP]
                keep = int(np.searchsorted(segment.coarse_ends, room, side="right")) if room > 0 else 0
                if keep == 0:  # not one more coarse token fits
                    if not self._pieces:
                        raise ValueError(f"{doc_id}: a segment of {len(segment)} tokens was not truncated to fit")
                    done.append(self._finish())
                    continue
                if not opened:
                    self._pieces.append((doc_id, []))
                    self._length += 1
                head = segment.coarse_slice(0, keep)
                self._pieces[-1][1].append(head)
                self._length += len(head)
                segment = segment.coarse_slice(keep, len(segment.coarse_ids))
        return done

    def close(self) -> list[ShardExample]:
        return [self._finish()] if self._pieces else []

    def _finish(self) -> ShardExample:
        first, last = self._pieces[0][0], self._pieces[-1][0]
        number = self._started[1] if self._started[0] == first else 0  # examples start in document order
        self._started = (first, number + 1)
        example = assemble_pieces(
            example_key(self._seed, first, number),
            first,
            [concat(segments) for _doc, segments in self._pieces],
            [0] * len(self._pieces),
            *self._ids,
            next_doc_id=last if last != first else "",
        )
        self._pieces, self._length = [], 0
        return example


def contiguous_examples(
    doc_id: str, segments: list[Segment], seed: int, max_seq_len: int, cls_id: int, sep_id: int
) -> list[ShardExample]:
    """Without NSP: consecutive sentences packed greedily into [CLS] text [SEP] of ≤ max_seq_len tokens
    (segments must already be truncated to max_seq_len - 2)."""
    limit = max_seq_len - 2
    examples, chunk, length = [], [], 0
    for segment in [*segments, None]:
        if chunk and (segment is None or length + len(segment) > limit):
            examples.append(
                assemble(example_key(seed, doc_id, len(examples)), doc_id, concat(chunk), None, cls_id, sep_id)
            )
            chunk, length = [], 0
        if segment is not None:
            chunk.append(segment)
            length += len(segment)
    return examples


def pair_examples(
    doc_id: str,
    segments: list[Segment],
    pool: dict[str, list[Segment]],
    seed: int,
    max_seq_len: int,
    cls_id: int,
    sep_id: int,
    pool_ids: list[str] | None = None,
) -> tuple[list[ShardExample], int]:
    """BERT's create_instances_from_document for one document; `pool` (document id → segments, the
    document itself included; `pool_ids`: its sorted keys, if at hand) supplies random next segments.
    Returns (examples, pairs truncated, pairs dropped as unfittable)."""
    rng = document_rng(seed, doc_id)
    others = pool_ids if pool_ids is not None else sorted(pool)
    max_tokens = max_seq_len - 3
    target = max_tokens if rng.random() >= SHORT_SEQ_PROB else rng.randint(2, max_tokens)
    examples, truncated, dropped = [], 0, 0
    chunk, length, i = [], 0, 0
    while i < len(segments):
        chunk.append(segments[i])
        length += len(segments[i])
        if i == len(segments) - 1 or length >= target:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            tokens_a = concat(chunk[:a_end])
            if len(chunk) == 1 or rng.random() < RANDOM_NEXT_PROB:
                label, b_target = 1, target - len(tokens_a)
                random_doc = doc_id
                for _ in range(10):
                    random_doc = others[rng.randint(0, len(others) - 1)]
                    if random_doc != doc_id:
                        break
                source = pool[random_doc]
                start = rng.randint(0, len(source) - 1)
                picked, picked_length = [], 0
                for segment in source[start:]:
                    picked.append(segment)
                    picked_length += len(segment)
                    if picked_length >= b_target:
                        break
                tokens_b, next_doc = concat(picked), random_doc
                i -= len(chunk) - a_end  # put the unused segments back
            else:
                label, tokens_b, next_doc = 0, concat(chunk[a_end:]), doc_id
            tokens_a, tokens_b, cut = truncate_pair(tokens_a, tokens_b, max_tokens, rng)
            truncated += cut
            if len(tokens_a) + len(tokens_b) <= max_tokens:
                examples.append(
                    assemble(
                        example_key(seed, doc_id, len(examples)),
                        doc_id,
                        tokens_a,
                        tokens_b,
                        cls_id,
                        sep_id,
                        label,
                        next_doc,
                    )
                )
            else:
                dropped += 1
            chunk, length = [], 0
        i += 1
    return examples, truncated, dropped
