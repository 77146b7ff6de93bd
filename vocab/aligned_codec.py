"""The byte codec of aligned fine/coarse examples in WebDataset shards (DESIGN.md, "Aligned example").

    sample = encode_sample(ShardExample(key, doc_id, example_arrays...))   # {"__key__": key, "aex": bytes}
    for ex in webdataset.WebDataset(urls).map(decode_sample): ex.fine_ids, ex.align, ...

One tar member per sample, `<key>.aex`: a 24-byte little-endian header, two UTF-8 ids, then
int32 ids / align / offsets and uint8 segment types. The shard writer and every reader use this module only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vocab.multigrained import AlignedExample

MAGIC = b"AEX1"
FIELD = "aex"  # the tar member suffix: <key>.aex
_HEADER = struct.Struct("<4sIIiII")  # magic, Lf, Lc, nsp_label (-1: none), len(doc_id), len(next_doc_id)
_I32 = np.dtype("<i4")
_U8 = np.dtype("u1")


class CodecError(ValueError):
    """Bytes that are not a well-formed aligned example (names the sample key)."""


@dataclass(frozen=True, eq=False)
class ShardExample:
    """One stored example: arrays of an AlignedExample plus where it came from.

    fine_ids/fine_type [Lf], coarse_ids/coarse_type [Lc], align [Lc, 2] (fine positions, half-open),
    fine_offsets [Lf, 2] / coarse_offsets [Lc, 2] (characters in the source document of the
    token's segment: `doc_id` for segment A, `next_doc_id` for segment B when it is not empty).
    nsp_label: 1 when segment B is a random segment, 0 when it is the actual next one, -1 without NSP.
    draw: not stored; the pre-training loader numbers a sample's draws in resampled mode (≥ 1; 0 in epochs), so
    each draw is masked anew.
    """

    key: str
    doc_id: str
    fine_ids: np.ndarray
    coarse_ids: np.ndarray
    align: np.ndarray
    fine_type: np.ndarray
    coarse_type: np.ndarray
    fine_offsets: np.ndarray
    coarse_offsets: np.ndarray
    nsp_label: int = -1
    next_doc_id: str = ""
    draw: int = 0

    def to_aligned_example(self, fine_vocab: list[str], coarse_vocab: list[str]) -> AlignedExample:
        """The vocab/multigrained.py view, with token strings looked up in the artifact's vocabularies."""
        from vocab.multigrained import AlignedExample

        pairs = lambda a: tuple((int(s), int(e)) for s, e in a)  # noqa: E731
        return AlignedExample(
            fine_ids=tuple(int(i) for i in self.fine_ids),
            coarse_ids=tuple(int(i) for i in self.coarse_ids),
            align=pairs(self.align),
            fine_type=tuple(int(t) for t in self.fine_type),
            coarse_type=tuple(int(t) for t in self.coarse_type),
            fine_offsets=pairs(self.fine_offsets),
            coarse_offsets=pairs(self.coarse_offsets),
            fine_tokens=tuple(fine_vocab[i] for i in self.fine_ids),
            coarse_tokens=tuple(coarse_vocab[i] for i in self.coarse_ids),
        )


def encode_example(example: ShardExample) -> bytes:
    """The `.aex` bytes of one example (deterministic: same example, same bytes)."""
    fine, coarse = len(example.fine_ids), len(example.coarse_ids)
    doc, following = example.doc_id.encode("utf-8"), example.next_doc_id.encode("utf-8")
    parts = [_HEADER.pack(MAGIC, fine, coarse, int(example.nsp_label), len(doc), len(following)), doc, following]
    for values, dtype, shape in (
        (example.fine_ids, _I32, (fine,)),
        (example.coarse_ids, _I32, (coarse,)),
        (example.align, _I32, (coarse, 2)),
        (example.fine_offsets, _I32, (fine, 2)),
        (example.coarse_offsets, _I32, (coarse, 2)),
        (example.fine_type, _U8, (fine,)),
        (example.coarse_type, _U8, (coarse,)),
    ):
        array = np.asarray(values, dtype=dtype)
        if array.shape != shape and not (array.size == 0 and np.prod(shape) == 0):
            raise CodecError(f"sample {example.key}: an array has shape {array.shape}, expected {shape}")
        parts.append(array.tobytes())
    return b"".join(parts)


def encode_sample(example: ShardExample) -> dict[str, object]:
    """A WebDataset sample dict: {"__key__": key, "aex": bytes}. Keys must not contain '.' or '/'."""
    if not example.key or "." in example.key or "/" in example.key:
        raise CodecError(f"sample key {example.key!r} must be non-empty, without '.' or '/'")
    return {"__key__": example.key, FIELD: encode_example(example)}


def decode_example(data: bytes, key: str = "") -> ShardExample:
    """`.aex` bytes → ShardExample; CodecError naming `key` when the bytes are malformed."""
    if len(data) < _HEADER.size:
        raise CodecError(f"sample {key}: {len(data)} bytes, shorter than the {_HEADER.size}-byte header")
    magic, fine, coarse, nsp_label, doc_len, next_len = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CodecError(f"sample {key}: bad magic {magic!r}, expected {MAGIC!r} (not an aligned example)")
    expected = _HEADER.size + doc_len + next_len + 4 * (fine + 5 * coarse + 2 * fine) + fine + coarse
    if len(data) != expected:
        raise CodecError(f"sample {key}: {len(data)} bytes, expected {expected} for Lf={fine}, Lc={coarse}")
    position = _HEADER.size
    try:
        doc_id = data[position : position + doc_len].decode("utf-8")
        next_doc_id = data[position + doc_len : position + doc_len + next_len].decode("utf-8")
    except UnicodeDecodeError as error:
        raise CodecError(f"sample {key}: document id is not UTF-8: {error}") from error
    position += doc_len + next_len
    arrays = []
    for dtype, shape in (
        (_I32, (fine,)),
        (_I32, (coarse,)),
        (_I32, (coarse, 2)),
        (_I32, (fine, 2)),
        (_I32, (coarse, 2)),
        (_U8, (fine,)),
        (_U8, (coarse,)),
    ):
        count = int(np.prod(shape))
        arrays.append(np.frombuffer(data, dtype=dtype, count=count, offset=position).reshape(shape))
        position += count * dtype.itemsize
    fine_ids, coarse_ids, align, fine_offsets, coarse_offsets, fine_type, coarse_type = arrays
    return ShardExample(
        key=key,
        doc_id=doc_id,
        fine_ids=fine_ids,
        coarse_ids=coarse_ids,
        align=align,
        fine_type=fine_type,
        coarse_type=coarse_type,
        fine_offsets=fine_offsets,
        coarse_offsets=coarse_offsets,
        nsp_label=nsp_label,
        next_doc_id=next_doc_id,
    )


def decode_sample(sample: dict) -> ShardExample:
    """A raw WebDataset sample (bytes values, as `webdataset.WebDataset(urls)` yields) → ShardExample."""
    key = sample.get("__key__", "")
    if FIELD not in sample:
        members = sorted(k for k in sample if not k.startswith("__"))
        raise CodecError(f"sample {key}: no .{FIELD} member (has {members})")
    return decode_example(sample[FIELD], key)


def alignment_faults(example: ShardExample) -> list[str]:
    """What is wrong with an example's structure (empty when valid): align monotone, contiguous and
    covering every fine position once; segment types 0/1; lengths of the type arrays."""
    faults = []
    fine, coarse = len(example.fine_ids), len(example.coarse_ids)
    if coarse == 0 or fine == 0:
        return ["empty example"]
    starts, ends = example.align[:, 0], example.align[:, 1]
    if starts[0] != 0 or ends[-1] != fine:
        faults.append(f"align covers [{starts[0]}, {ends[-1]}), not [0, {fine})")
    if np.any(ends <= starts):
        faults.append(f"align has an empty or reversed span at coarse {int(np.argmax(ends <= starts))}")
    if coarse > 1 and np.any(starts[1:] != ends[:-1]):
        faults.append(f"align is not contiguous at coarse {int(np.argmax(starts[1:] != ends[:-1])) + 1}")
    if np.any(example.fine_type > 1) or np.any(example.coarse_type > 1):
        faults.append("segment type outside {0, 1}")
    elif not faults and np.any(example.coarse_type != example.fine_type[starts]):
        faults.append("a coarse token's segment type differs from its fine tokens'")
    return faults


def write_tar(fileobj, examples) -> list[int]:
    """Write ShardExamples (in the given order) as a shard; see write_encoded_tar. Returns the members' offsets."""
    return write_encoded_tar(fileobj, ((e.key, encode_example(e)) for e in examples))


def write_encoded_tar(fileobj, samples) -> list[int]:
    """Write (key, `.aex` bytes) pairs as a POSIX tar of `<key>.aex` members with fixed
    mtime/uid/gid/mode/owner names, so equal samples give byte-identical shards. Returns each member's byte
    offset in the file (where its header starts), in order: the content of the shard's index (member_index)."""
    import io
    import tarfile

    offsets: list[int] = []
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key, data in samples:
            if not key or "." in key or "/" in key:
                raise CodecError(f"sample key {key!r} must be non-empty, without '.' or '/'")
            info = tarfile.TarInfo(f"{key}.{FIELD}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            offsets.append(tar.offset)
            tar.addfile(info, io.BytesIO(data))
    return offsets


def member_index(offsets: list[int]) -> bytes:
    """A shard's index file (`shard-NNNNN.idx`): its members' byte offsets as little-endian uint64, one per
    member, so a reader seeks straight to member k (bytes 8k..8k+8) without walking the headers before it."""
    return np.asarray(offsets, dtype="<u8").tobytes()
