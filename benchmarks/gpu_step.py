"""GPU pre-training throughput (pairs/s) of the `base` AMBERT, bf16, fed by the real loader and masking collator,
against a single Hugging Face BertForMaskedLM (seq/s) in the same run. For a lent GPU (the `device` tool).

    python -m benchmarks.gpu_step [--steps 30] [--compile]

Shapes (issue 6): seq 128 × batch 256 and seq 512 × batch 64; Chinese vocabulary sizes 21,128 fine / 72,635 coarse.
Targets: ≥ 2,000 pairs/s at seq 128 and ≥ 450 at seq 512 on one H100. One JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch

from benchmarks.bench_train_step import COARSE, FINE, ambert_step, hf_step, make_loader, step_seconds
from benchmarks.synthetic_shards import write_synthetic_shards
from trainer.config import PRESETS, ModelConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model, dynamic=False)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_step: no CUDA device visible; run it on a GPU machine")
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    base = ModelConfig(fine_vocab_size=FINE, coarse_vocab_size=COARSE, **PRESETS["base"]["model"])
    sync = torch.cuda.synchronize
    for seq, batch in ((128, 256), (512, 64)):
        with tempfile.TemporaryDirectory() as tmp:
            data = write_synthetic_shards(
                tmp,
                samples=batch * (args.steps + args.warmup + 4),
                seq_len=seq,
                fine_size=FINE,
                coarse_size=COARSE,
                samples_per_shard=batch * 4,
            )
            runs = [("ambert_eager", ambert_step(base, device, bf16=True), "pairs_per_s")]
            if args.compile:
                runs.append(
                    ("ambert_compiled", ambert_step(base, device, bf16=True, compile_model=True), "pairs_per_s")
                )
            runs.append(("hf_bert_mlm", hf_step(base, device, bf16=True), "seq_per_s"))
            for name, step, unit in runs:
                torch.manual_seed(0)
                loader = make_loader(data, batch, args.workers)
                batches = (b for _, b in zip(range(args.steps + args.warmup), loader, strict=False))
                seconds = step_seconds(step, batches, args.warmup, sync)
                print(
                    json.dumps(
                        {
                            "measure": name,
                            "seq": seq,
                            "batch": batch,
                            unit: round(batch / seconds, 1),
                            "device": torch.cuda.get_device_name(),
                        }
                    ),
                    flush=True,
                )
                del step
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
