"""CPU training-step time of `ambert` against a Hugging Face BertForMaskedLM of the same size on the same fine
batches, and the loader's throughput against what the step consumes, in one run.

    .venv/bin/python -m benchmarks.bench_train_step [--hidden 256 --layers 4 --heads 4 --seq 128 --batch 32]

Data: a synthetic shard set (benchmarks/synthetic_shards.py; Chinese vocabulary sizes 21,128 / 72,635) read by the
real loader and masking collator. Targets (issue 6): step ratio ≤ 2.0; loader samples/s per worker ≥ 20× the
samples/s one training process consumes. One JSON line per measurement.
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
from trainer.config import ModelConfig
from trainer.data import pretraining_loader
from trainer.masking import MaskingCollator, MaskingSpec, SpecialIds
from trainer.masking_strategies import Corruption, UnitRules

FINE, COARSE = 21128, 72635


def make_loader(data: str, batch: int, workers: int, epoch: int = 0):
    specials = SpecialIds(**SPECIAL_IDS)
    spec = MaskingSpec(specials, specials, FINE, COARSE)
    return pretraining_loader(
        data,
        expect_vocab_id=VOCAB_ID,
        collator=MaskingCollator(
            Corruption(UnitRules(spec, np.zeros(FINE, dtype=bool), words_from_coarse=True)), 1, epoch
        ),
        batch_size=batch,
        num_workers=workers,
        shuffle_buffer=256,
        seed=1,
        epoch=epoch,
        rank=0,
        world_size=1,
    )


def step_seconds(step, batches, warmup: int, sync=lambda: None) -> float:
    """Median seconds of step(batch) after `warmup` untimed steps."""
    times = []
    for index, batch in enumerate(batches):
        started = time.perf_counter()
        step(batch)
        sync()
        if index >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def ambert_step(model_config: ModelConfig, device, bf16: bool = False, compile_model: bool = False):
    from trainer.model import AmbertModel, parameter_groups

    model = AmbertModel(model_config).to(device).train()
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.01), lr=1e-4, eps=1e-6)
    forward = torch.compile(model, dynamic=False) if compile_model else model

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
    optimizer = torch.optim.AdamW(hf.parameters(), lr=1e-4, eps=1e-6)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    model_config = ModelConfig(
        fine_vocab_size=FINE,
        coarse_vocab_size=COARSE,
        hidden_size=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
        intermediate_size=4 * args.hidden,
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = write_synthetic_shards(
            tmp,
            samples=max(4096, args.batch * 64),
            seq_len=args.seq,
            fine_size=FINE,
            coarse_size=COARSE,
            samples_per_shard=512,
        )
        batches = [b for _, b in zip(range(args.steps + args.warmup), make_loader(data, args.batch, 0), strict=False)]
        device = torch.device("cpu")
        ours = step_seconds(ambert_step(model_config, device), batches, args.warmup)
        theirs = step_seconds(hf_step(model_config, device), batches, args.warmup)
        shape = {
            "hidden": args.hidden,
            "layers": args.layers,
            "seq": args.seq,
            "batch": args.batch,
            "threads": torch.get_num_threads(),
        }
        print(
            json.dumps(
                {
                    "measure": "cpu_step_seconds",
                    **shape,
                    "ambert": round(ours, 4),
                    "hf_bert_mlm": round(theirs, 4),
                    "ratio": round(ours / theirs, 3),
                }
            )
        )
        started, samples = time.perf_counter(), 0
        for batch in make_loader(data, args.batch, 1, epoch=1):
            samples += len(batch)
        loader_rate = samples / (time.perf_counter() - started)
        consumed = args.batch / ours
        print(
            json.dumps(
                {
                    "measure": "loader_vs_step",
                    **shape,
                    "loader_samples_per_s_one_worker": round(loader_rate),
                    "step_consumes_samples_per_s": round(consumed, 1),
                    "ratio": round(loader_rate / consumed, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
