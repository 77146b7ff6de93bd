"""Sequence packing for the shared encoder: the fine and coarse sequences of a batch's examples, first-fit
decreasing into rows of a fixed length, so that the encoder computes (almost) no padding.

    plan = plan_packing(fine_lengths, coarse_lengths, side_lengths=(Lf, Lc), row_len=128, joint=False, rows=12)
    # plan["packed_source"] (rows, row_len): where each packed token comes from in [fine (B·Lf) ; coarse (B·Lc) ; pad]
    # plan["packed_segment"]: the sequence each token belongs to (-1 padding); attention stays within a segment
    # plan["packed_position"]: position ids, restarting at every sequence (and at hybrid's coarse part)
    # plan["fine_packed_at"] (B, Lf), plan["coarse_packed_at"] (B, Lc): where each side's token sits in the rows

ambert: each sequence is its own segment (fine and coarse never attend to each other); hybrid (joint): an
example's [fine ; coarse] is one piece and one segment. Deterministic: the plan depends on the lengths only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PLAN_FIELDS = ("packed_source", "packed_segment", "packed_position", "fine_packed_at", "coarse_packed_at")


def plan_packing(
    fine_lengths: np.ndarray,
    coarse_lengths: np.ndarray,
    side_lengths: tuple[int, int],
    row_len: int,
    joint: bool,
    rows: int | Callable[[int], int] | None = None,
) -> dict[str, np.ndarray]:
    """Placement of every sequence into `rows` rows of `row_len` (None: as many as first-fit decreasing needs; a
    function: rows(needed), e.g. the smallest bucket that fits).

    Raises ValueError when a piece is longer than row_len or the pieces need more rows than `rows`."""
    fine_lengths, coarse_lengths = np.asarray(fine_lengths, np.int64), np.asarray(coarse_lengths, np.int64)
    batch = len(fine_lengths)
    fine_len, coarse_len = side_lengths
    if joint:  # (example, length of fine + coarse)
        pieces = [(i, int(fine_lengths[i] + coarse_lengths[i])) for i in range(batch)]
    else:  # (2 × example + side, length)
        pieces = [
            (2 * i + side, int(lengths[i]))
            for i in range(batch)
            for side, lengths in enumerate((fine_lengths, coarse_lengths))
        ]
    longest = max(length for _, length in pieces)
    if longest > row_len:
        raise ValueError(f"a sequence of {longest} tokens does not fit packed rows of {row_len}")
    free: list[int] = []  # room left per row
    placed = {}
    for piece, length in sorted(pieces, key=lambda item: (-item[1], item[0])):  # first-fit decreasing
        row = next((r for r, room in enumerate(free) if room >= length), None)
        if row is None:
            free.append(row_len)
            row = len(free) - 1
        placed[piece] = (row, row_len - free[row])
        free[row] -= length
    rows = len(free) if rows is None else rows(len(free)) if callable(rows) else rows
    if len(free) > rows:
        raise ValueError(f"the batch needs {len(free)} packed rows of {row_len}, the shape has {rows}")
    pad_source = batch * (fine_len + coarse_len)  # one zero vector after both flattened sides
    source = np.full((rows, row_len), pad_source, np.int64)
    segment = np.full((rows, row_len), -1, np.int64)
    position = np.zeros((rows, row_len), np.int64)
    fine_at = np.zeros((batch, fine_len), np.int64)
    coarse_at = np.zeros((batch, coarse_len), np.int64)
    for i in range(batch):
        f, c = int(fine_lengths[i]), int(coarse_lengths[i])
        if joint:
            (row, start), (coarse_row, coarse_start) = placed[i], (placed[i][0], placed[i][1] + f)
        else:
            (row, start), (coarse_row, coarse_start) = placed[2 * i], placed[2 * i + 1]
        source[row, start : start + f] = i * fine_len + np.arange(f)
        source[coarse_row, coarse_start : coarse_start + c] = batch * fine_len + i * coarse_len + np.arange(c)
        segment[row, start : start + f] = i if joint else 2 * i
        segment[coarse_row, coarse_start : coarse_start + c] = i if joint else 2 * i + 1
        position[row, start : start + f] = np.arange(f)
        position[coarse_row, coarse_start : coarse_start + c] = np.arange(c)
        fine_at[i] = row * row_len + start + np.minimum(np.arange(fine_len), max(f - 1, 0))  # padding: own last token
        coarse_at[i] = coarse_row * row_len + coarse_start + np.minimum(np.arange(coarse_len), max(c - 1, 0))
    return dict(zip(PLAN_FIELDS, (source, segment, position, fine_at, coarse_at), strict=True))
