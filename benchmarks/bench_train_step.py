"""CPU training-step time of `ambert` against a Hugging Face BertForMaskedLM of the same size on the same fine
batches (eager and both compiled), the base geometry, the loader against what the step consumes, and the share of
computed token positions that are padding (today's stacked layout against the packed rows), in one run.

    .venv/bin/python -m benchmarks.bench_train_step [--hidden 256 --layers 4 --heads 4 --seq 128 --batch 32]
        [--zh-shards out/demo/shards-zh]     # the padding share on real Chinese shards (`make demo` builds them)

Data: a synthetic shard set (benchmarks/synthetic_shards.py; Chinese vocabulary sizes 21,128 / 72,635) read by the
real loader and masking collator (static shapes, Google's MLM budget). The two steps alternate batch by batch, so
load from other processes hits both alike. Targets (issue 13): step ratio ≤ 1.0 eager and compiled, ≤ 1.6 at the
base geometry (batch 8); padding ≤ 10% of the computed positions; loader samples/s per worker ≥ 20× the samples/s
one training process consumes. One JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np
import torch

from benchmarks.synthetic_shards import SPECIAL_IDS, VOCAB_ID, write_synthetic_shards
from trainer.config import PRESETS, ModelConfig
from trainer.data import pretraining_loader
from trainer.masking import BatchShape, MaskingCollator, MaskingSpec, SpecialIds
from trainer.masking_strategies import Corruption, UnitRules

FINE, COARSE = 21128, 72635


def make_loader(
    data: str, batch: int, workers: int, seq: int, epoch: int = 0, vocab_id: str = VOCAB_ID, corruption=None
) -> object:
    """The real loader and collator; the synthetic set's ambert masking unless `corruption` (a real artifact's)."""
    if corruption is None:
        specials = SpecialIds(**SPECIAL_IDS)
        spec = MaskingSpec(specials, specials, FINE, COARSE)
        corruption = Corruption(UnitRules(spec, np.zeros(FINE, dtype=bool), words_from_coarse=True))
    return pretraining_loader(
        data,
        expect_vocab_id=vocab_id,
        collator=MaskingCollator(corruption, 1, epoch, BatchShape.for_run(batch, seq, "ambert")),
        batch_size=batch,
        num_workers=workers,
        shuffle_buffer=256,
        seed=1,
        epoch=epoch,
        rank=0,
        world_size=1,
        drop_last=True,
    )


def batch_shapes(batch) -> tuple:
    """The tensor shapes of a batch: a compiled step compiles once for each."""
    return tuple(tuple(value.shape) for value in vars(batch).values() if isinstance(value, torch.Tensor))


def alternating_seconds(steps: dict, batches: list, warmup: int, sync=lambda: None) -> dict[str, float]:
    """Median seconds per step of each step function, the functions taking turns on every batch, after a warm-up
    step on the first batch of each shape (packed row counts vary: each is one compiled graph, compiled once)."""
    first_of_shape = {batch_shapes(batch): batch for batch in reversed(batches)}
    for batch in first_of_shape.values():
        for step in steps.values():
            step(batch)
    sync()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for index, batch in enumerate(batches):
        for name, step in steps.items():
            started = time.perf_counter()
            step(batch)
            sync()
            if index >= warmup:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def ambert_step(model_config: ModelConfig, device, bf16: bool = False, compile_model: bool = False):
    from trainer.model import AmbertModel, parameter_groups

    model = AmbertModel(model_config).to(device).train()
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01), lr=1e-4, eps=1e-6, fused=True)
    forward = torch.compile(model, fullgraph=True, dynamic=False) if compile_model else model

    def step(batch):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = forward(batch.to(device, non_blocking=True)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def hf_step(model_config: ModelConfig, device, bf16: bool = False, compile_model: bool = False):
    from transformers import BertConfig, BertForMaskedLM

    hf = (
        BertForMaskedLM(
            BertConfig(
                vocab_size=model_config.fine_vocab_size,
                hidden_size=model_config.hidden_size,
                num_hidden_layers=model_config.num_layers,
                num_attention_heads=model_config.num_heads,
                intermediate_size=model_config.intermediate_size,
                max_position_embeddings=model_config.max_position,
                attn_implementation="sdpa",
            )
        )
        .to(device)
        .train()
    )
    optimizer = torch.optim.AdamW(hf.parameters(), lr=1e-4, eps=1e-6, fused=True)
    forward = torch.compile(hf, dynamic=False) if compile_model else hf

    def step(batch):
        batch = batch.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = forward(
                input_ids=batch.fine_ids,
                attention_mask=batch.fine_mask.long(),
                token_type_ids=batch.fine_type,
                labels=batch.fine_labels,
            ).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def padding_share(batches: list) -> dict[str, float]:
    """Share of the token positions the shared encoder computes that are padding: before, both sides stacked and
    padded to the batch's longest sequence of either side; after, one packed [fine ; coarse] row per example."""
    real = stacked = packed = capped = predicted = 0
    for batch in batches:
        rows = batch.fine_mask.shape[0]
        fine, coarse = batch.fine_mask.sum(1), batch.coarse_mask.sum(1)
        real += int((fine + coarse).sum())
        stacked += 2 * rows * int(max(fine.max(), coarse.max()))
        packed += batch.packed_source.numel()
        capped += int(batch.capped.sum())
        predicted += int(batch.fine_mlm_weight.sum() + batch.coarse_mlm_weight.sum())
    return {
        "padding_share_stacked": round(1 - real / stacked, 4),
        "padding_share_packed": round(1 - real / packed, 4),
        "capped_share_of_masked": round(capped / max(capped + predicted, 1), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--base-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--zh-shards", help="a Chinese shard set (with its vocab at --zh-vocab) for the padding share")
    parser.add_argument("--zh-vocab")
    parser.add_argument("--skip", nargs="*", default=[], choices=["eager", "compiled", "base", "loader"])
    args = parser.parse_args()
    torch.manual_seed(0)
    small = ModelConfig(
        fine_vocab_size=FINE,
        coarse_vocab_size=COARSE,
        hidden_size=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
        intermediate_size=4 * args.hidden,
    )
    base = ModelConfig(fine_vocab_size=FINE, coarse_vocab_size=COARSE, **PRESETS["base"]["model"])
    device = torch.device("cpu")
    common = {"seq": args.seq, "threads": torch.get_num_threads(), "machine": "CPU"}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_synthetic_shards(
            tmp,
            samples=max(4096, args.batch * 64),
            seq_len=args.seq,
            fine_size=FINE,
            coarse_size=COARSE,
            samples_per_shard=512,
        )
        count = args.steps + args.warmup
        batches = [b for _, b in zip(range(count), make_loader(data, args.batch, 0, args.seq), strict=False)]
        print(json.dumps({"measure": "synthetic_batches", **common, **padding_share(batches)}), flush=True)
        runs = [("eager", small, args.batch, False), ("compiled", small, args.batch, True)]
        runs.append(("base", base, args.base_batch, False))
        for name, geometry, batch_size, compiled in runs:
            if name in args.skip:
                continue
            these = (
                batches
                if batch_size == args.batch
                else [b for _, b in zip(range(count), make_loader(data, batch_size, 0, args.seq), strict=False)]
            )
            seconds = alternating_seconds(
                {
                    "ambert": ambert_step(geometry, device, compile_model=compiled),
                    "hf_bert_mlm": hf_step(geometry, device, compile_model=compiled),
                },
                these,
                args.warmup + (2 if compiled else 0),
            )
            print(
                json.dumps(
                    {
                        "measure": f"cpu_step_seconds_{name}",
                        **common,
                        "hidden": geometry.hidden_size,
                        "layers": geometry.num_layers,
                        "batch": batch_size,
                        "ambert": round(seconds["ambert"], 4),
                        "hf_bert_mlm": round(seconds["hf_bert_mlm"], 4),
                        "ratio": round(seconds["ambert"] / seconds["hf_bert_mlm"], 3),
                    }
                ),
                flush=True,
            )
            if name == "eager":
                ours = seconds["ambert"]
        if "loader" not in args.skip and "eager" not in args.skip:
            started, samples = time.perf_counter(), 0
            for batch in make_loader(data, args.batch, 1, args.seq, epoch=1):
                samples += len(batch)
            loader_rate = samples / (time.perf_counter() - started)
            consumed = args.batch / ours
            print(
                json.dumps(
                    {
                        "measure": "loader_vs_step",
                        **common,
                        "loader_samples_per_s_one_worker": round(loader_rate),
                        "step_consumes_samples_per_s": round(consumed, 1),
                        "ratio": round(loader_rate / consumed, 1),
                    }
                ),
                flush=True,
            )
    if args.zh_shards:
        from vocab.artifact import verify_artifact
        from vocab.shard_set import read_manifest

        vocab = args.zh_vocab
        vocab_id = verify_artifact(vocab)["id"]
        seq = int(read_manifest(args.zh_shards, vocab_id)["options"]["max_seq_len"])
        loader = make_loader(
            args.zh_shards, args.batch, 0, seq, vocab_id=vocab_id, corruption=Corruption(UnitRules.from_artifact(vocab))
        )
        real = list(loader)
        print(
            json.dumps(
                {"measure": "zh_shards", "seq": seq, "batch": args.batch, "batches": len(real), **padding_share(real)}
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
