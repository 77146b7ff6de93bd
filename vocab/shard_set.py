"""Reading and checking a shard set (DESIGN.md, "Shard set"): manifest, shard hashes, every sample.

urls = shard_urls("out/shards", expect_vocab_id=artifact_id)   # refuses a partial set or a foreign vocab
faults = verify_shard_set("out/shards")       # [] when every shard and sample is sound
`ambert shard verify DIR` and `ambert shard inspect DIR` are the command-line faces of this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vocab.aligned_codec import FIELD, CodecError, ShardExample, alignment_faults, decode_example

MANIFEST = "manifest.json"
INDEX_ENTRY_BYTES = 8  # one little-endian uint64 per member in a shard's index (aligned_codec.member_index)


class ShardSetError(RuntimeError):
    """A shard set that cannot be used: no manifest, a foreign vocab, a damaged shard."""


@dataclass(frozen=True)
class Fault:
    shard: str
    key: str  # "" for a fault of the whole shard
    problem: str

    def __str__(self) -> str:
        return f"{self.shard}{f' sample {self.key}' if self.key else ''}: {self.problem}"


def read_manifest(directory: str, expect_vocab_id: str | None = None) -> dict:
    """manifest.json of a shard set (a local directory or an fsspec URL); refused when absent (an unfinished run)
    or for another vocab."""
    import fsspec

    path = shard_path(directory, MANIFEST)
    try:
        with fsspec.open(path, "r", encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError as error:
        filesystem, root = fsspec.core.url_to_fs(directory)
        if not filesystem.exists(root):
            raise ShardSetError(
                f"no {MANIFEST} in {directory}: there is no such directory; build the shard set with "
                f"`ambert shard build --vocab VOCAB --corpus ... --out {directory}` (or check the path)"
            ) from error
        raise ShardSetError(
            f"no {MANIFEST} in {directory}: the shard set is incomplete (an unfinished `ambert shard build`; rerun it)"
        ) from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ShardSetError(f"{path} is not valid JSON: {error}") from error
    if expect_vocab_id is not None and manifest["vocab"]["id"] != expect_vocab_id:
        raise ShardSetError(
            f"{directory} was written with vocab {manifest['vocab']['id']}, not the given {expect_vocab_id}: "
            "pass --vocab the artifact the shards were built with (or re-shard with this one)"
        )
    return manifest


def shard_path(directory: str, name: str) -> str:
    """`name` inside a shard set given as a local directory or an fsspec URL (memory://, s3://, gs://...)."""
    return f"{directory.rstrip('/')}/{name}" if "://" in directory else os.path.join(directory, name)


def index_name(shard_name: str) -> str:
    """The index file of a shard: shard-NNNNN.tar → shard-NNNNN.idx (its members' byte offsets)."""
    return shard_name.removesuffix(".tar") + ".idx"


def member_offset(index_path: str, member: int) -> int:
    """Byte offset of member number `member` in its shard, from the shard's index file: one ranged read."""
    import fsspec

    with fsspec.open(index_path, "rb") as handle:
        handle.seek(member * INDEX_ENTRY_BYTES)
        entry = handle.read(INDEX_ENTRY_BYTES)
    if len(entry) < INDEX_ENTRY_BYTES:
        raise CodecError(f"{index_path} has no entry for member {member} (a truncated index; rebuild the set)")
    return int.from_bytes(entry, "little")


def shard_urls(directory: str, expect_vocab_id: str | None = None) -> list[str]:
    """The shard paths of a complete shard set, in manifest order, for `webdataset.WebDataset(urls)`."""
    manifest = read_manifest(directory, expect_vocab_id)
    return [shard_path(directory, shard["name"]) for shard in manifest["shards"]]


def shard_examples(path: str) -> Iterator[ShardExample]:
    """Every example of one shard file (a local path or an fsspec URL), in order; CodecError names the
    sample key."""
    for _offset, example in _placed_examples(path):
        yield example


def _placed_examples(path: str) -> Iterator[tuple[int, ShardExample]]:
    """(byte offset of its member's header, example) for every example of one shard, in order."""
    import fsspec

    with fsspec.open(path, "rb") as handle, tarfile.open(fileobj=handle, mode="r:") as tar:
        for member in tar:
            key, _, suffix = member.name.rpartition(".")
            if suffix != FIELD or not member.isfile():
                raise CodecError(f"member {member.name!r} is not a <key>.{FIELD} file")
            yield member.offset, decode_example(tar.extractfile(member).read(), key)


def _file_sha256(path: str) -> str:
    import fsspec

    digest = hashlib.sha256()
    with fsspec.open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def example_faults(example: ShardExample, max_seq_len: int, fine_size: int, coarse_size: int) -> list[str]:
    """Structural faults, lengths over max_seq_len and ids outside the vocabularies."""
    faults = alignment_faults(example)
    for side, ids, size in (("fine", example.fine_ids, fine_size), ("coarse", example.coarse_ids, coarse_size)):
        if len(ids) > max_seq_len:
            faults.append(f"{len(ids)} {side} tokens > max_seq_len {max_seq_len}")
        if len(ids) and (ids.min() < 0 or ids.max() >= size):
            faults.append(f"{side} id outside [0, {size}): {int(ids.min())}..{int(ids.max())}")
    return faults


def _sample_name(shard: str, position: int, example: ShardExample) -> str:
    return f"{shard} sample #{position} (document {example.doc_id})"


def _index_fault(directory: str, shard: dict, offsets: list[int]) -> Fault | None:
    """A shard's index file checked against its members' header offsets (read with its samples)."""
    import fsspec

    if "index" not in shard:  # a set written before shards had indexes: readers walk the tar headers
        return None
    try:
        with fsspec.open(shard_path(directory, shard["index"]), "rb") as handle:
            recorded = np.frombuffer(handle.read(), dtype="<u8").tolist()
    except FileNotFoundError:
        return Fault(shard["name"], "", f"its index {shard['index']} is missing")
    except OSError as error:
        return Fault(shard["name"], "", f"its index {shard['index']} is unreadable: {error}")
    if recorded != offsets:
        return Fault(
            shard["name"],
            "",
            f"its index {shard['index']} does not match the members' offsets ({len(recorded)} entries, "
            f"{len(offsets)} members): a resume would seek to the wrong sample; rebuild the set",
        )
    return None


def _keys_of(path: str) -> dict[str, int]:
    """Member key → its first position in one shard (names only; nothing decoded)."""
    import fsspec

    keys: dict[str, int] = {}
    with fsspec.open(path, "rb") as handle, tarfile.open(fileobj=handle, mode="r:") as tar:
        for position, member in enumerate(tar):
            keys.setdefault(member.name.rpartition(".")[0], position)
    return keys


def verify_shard_set(directory: str, max_faults: int = 20) -> tuple[list[Fault], int]:
    """Check every shard of a set (a local directory or an fsspec URL) against the manifest (sha256, sample
    count, its index of member offsets), every sample (decoding, alignment, lengths, id ranges) and the keys (no
    key twice in the set: a duplicate breaks plain webdataset readers; the fault names both samples). Returns
    (faults, samples checked); stops after `max_faults`. Memory: one shard's keys at a time (shards whose key
    ranges overlap are compared again afterwards)."""
    import fsspec

    manifest = read_manifest(directory)
    fs, root = fsspec.core.url_to_fs(directory)
    present = {posixpath.basename(path.rstrip("/")) for path in fs.ls(root, detail=False)}
    max_seq_len = manifest["options"]["max_seq_len"]
    sizes = manifest["vocab"]["sizes"]
    faults: list[Fault] = []
    checked = 0
    spans: list[tuple[str, str, str]] = []  # (smallest key, largest key, shard name)
    listed = {shard["name"] for shard in manifest["shards"]}
    for name in sorted(present - listed):
        if name.startswith("shard-") and name.endswith(".tar"):
            faults.append(Fault(name, "", "a shard file the manifest does not list"))
    for shard in manifest["shards"]:
        path = shard_path(directory, shard["name"])
        if shard["name"] not in present:
            faults.append(Fault(shard["name"], "", "missing"))
            continue
        if _file_sha256(path) != shard["sha256"]:
            faults.append(Fault(shard["name"], "", "sha256 differs from the manifest's (damaged or replaced)"))
        count = 0
        seen: dict[str, tuple[int, ShardExample]] = {}
        offsets: list[int] = []
        try:
            for offset, example in _placed_examples(path):
                offsets.append(offset)
                for problem in example_faults(example, max_seq_len, sizes["fine"], sizes["coarse"]):
                    faults.append(Fault(shard["name"], example.key, problem))
                if example.key in seen:
                    first, other = seen[example.key]
                    faults.append(
                        Fault(
                            shard["name"],
                            example.key,
                            f"duplicate key: {_sample_name(shard['name'], first, other)} and "
                            f"{_sample_name(shard['name'], count, example)}",
                        )
                    )
                else:
                    seen[example.key] = count, example
                count += 1
        except (CodecError, tarfile.TarError, OSError) as error:
            faults.append(Fault(shard["name"], "", f"unreadable after {count} samples: {error}"))
        else:
            if count != shard["samples"]:
                faults.append(Fault(shard["name"], "", f"{count} samples, the manifest says {shard['samples']}"))
            index_fault = _index_fault(directory, shard, offsets)  # an unreadable shard is reported above
            if index_fault is not None:
                faults.append(index_fault)
        if seen:
            spans.append((min(seen), max(seen), shard["name"]))
        checked += count
        if len(faults) >= max_faults:
            return faults[:max_faults], checked
    faults += _duplicates_across_shards(directory, spans)
    return faults[:max_faults], checked


def _duplicates_across_shards(directory: str, spans: list[tuple[str, str, str]]) -> list[Fault]:
    """Keys two shards share; only shards whose [smallest, largest] key ranges overlap are re-read (in a
    set built by `ambert shard`, shards hold disjoint key ranges, so none is)."""
    faults, active = [], []  # active: the shards before, by smallest key, whose largest key is ≥ this one's smallest
    for lo, hi, name in sorted(spans):
        active = [span for span in active if span[1] >= lo]
        for _lo, _hi, other in active:
            mine, theirs = _keys_of(shard_path(directory, name)), _keys_of(shard_path(directory, other))
            for key in sorted(mine.keys() & theirs.keys()):
                faults.append(
                    Fault(name, key, f"duplicate key: {other} sample #{theirs[key]} and {name} sample #{mine[key]}")
                )
        active.append((lo, hi, name))
    return faults
