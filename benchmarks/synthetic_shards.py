"""A synthetic shard set for training benchmarks: random aligned examples at a given length and vocab sizes.

    manifest_dir = write_synthetic_shards(out_dir, samples=4096, seq_len=128, fine_size=21128, coarse_size=72635)
Each example fills seq_len fine tokens; coarse tokens group 1-3 fine tokens (about 0.6 coarse per fine, as in
Chinese). The manifest has what the trainer's loader reads; the vocab id is "synthetic" (see SPECIAL_IDS).
"""

from __future__ import annotations

import json
import os

import numpy as np

from vocab.aligned_codec import ShardExample, encode_example, member_index, write_encoded_tar
from vocab.shard_set import index_name

SPECIAL_IDS = {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}  # BERT vocabularies' layout
VOCAB_ID = "synthetic"


def synthetic_example(
    rng: np.random.Generator, key: str, seq_len: int, fine_size: int, coarse_size: int
) -> ShardExample:
    inner = seq_len - 2
    groups = []
    while sum(groups) < inner:
        groups.append(int(min(rng.integers(1, 4), inner - sum(groups))))
    starts = np.concatenate([[0], np.cumsum(groups)]) + 1
    align = np.array(
        [[0, 1]] + [[s, e] for s, e in zip(starts[:-1], starts[1:], strict=True)] + [[seq_len - 1, seq_len]],
        dtype=np.int32,
    )
    fine = np.concatenate([[101], rng.integers(1000, fine_size, inner), [102]]).astype(np.int32)
    coarse = np.concatenate([[101], rng.integers(1000, coarse_size, len(groups)), [102]]).astype(np.int32)
    offsets = np.zeros((len(fine), 2), dtype=np.int32)
    return ShardExample(
        key=key,
        doc_id="synthetic",
        fine_ids=fine,
        coarse_ids=coarse,
        align=align,
        fine_type=np.zeros(len(fine), np.uint8),
        coarse_type=np.zeros(len(coarse), np.uint8),
        fine_offsets=offsets,
        coarse_offsets=np.zeros((len(coarse), 2), dtype=np.int32),
    )


def write_synthetic_shards(
    out: str,
    *,
    samples: int,
    seq_len: int,
    fine_size: int,
    coarse_size: int,
    samples_per_shard: int = 1024,
    seed: int = 0,
) -> str:
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    shards = []
    for index, start in enumerate(range(0, samples, samples_per_shard)):
        name = f"shard-{index:05d}.tar"
        keys = [f"s{i:09d}" for i in range(start, min(samples, start + samples_per_shard))]
        with open(os.path.join(out, name), "wb") as handle:
            offsets = write_encoded_tar(
                handle,
                ((key, encode_example(synthetic_example(rng, key, seq_len, fine_size, coarse_size))) for key in keys),
            )
        with open(os.path.join(out, index_name(name)), "wb") as handle:
            handle.write(member_index(offsets))
        shards.append({"name": name, "samples": len(keys), "index": index_name(name)})
    manifest = {
        "schema_version": 1,
        "vocab": {"id": VOCAB_ID, "sizes": {"fine": fine_size, "coarse": coarse_size}},
        "options": {"max_seq_len": seq_len},
        "shards": shards,
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
    return out
