"""GPU pre-training throughput (pairs/s) of the `base` AMBERT, bf16, eager and compiled, fed by the real loader and
masking collator, against Hugging Face BertForMaskedLM base (seq/s) in the same run. For a lent GPU machine.

    python -m benchmarks.gpu_step [--steps 30] [--no-compile]
    bash benchmarks/gpu_check.sh      # this, plus `ambert train` on CUDA: NCCL (1 process), bf16, run.compile=true

Shapes (issue 13): seq 128 × batch 256 and seq 512 × batch 64; Chinese vocabulary sizes 21,128 fine / 72,635
coarse. Targets: ≥ 2,000 pairs/s at seq 128 and ≥ 450 at seq 512 on an H100-class card, and AMBERT pairs/s ≥ 0.9×
HF BERT-base seq/s in the same run. One JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch

from benchmarks.bench_train_step import COARSE, FINE, alternating_seconds, ambert_step, hf_step, make_loader
from benchmarks.synthetic_shards import write_synthetic_shards
from trainer.config import PRESETS, ModelConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-compile", action="store_true", help="eager only")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_step: no CUDA device visible; run it on a GPU machine")
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    base = ModelConfig(fine_vocab_size=FINE, coarse_vocab_size=COARSE, **PRESETS["base"]["model"])
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
            loader = make_loader(data, batch, args.workers, seq)
            batches = [b for _, b in zip(range(args.steps + args.warmup), loader, strict=False)]
            for compiled in (False,) if args.no_compile else (False, True):
                torch.manual_seed(0)
                steps = {
                    "ambert": ambert_step(base, device, bf16=True, compile_model=compiled),
                    "hf_bert_mlm": hf_step(base, device, bf16=True, compile_model=compiled),
                }
                seconds = alternating_seconds(steps, batches, args.warmup, torch.cuda.synchronize)
                print(
                    json.dumps(
                        {
                            "measure": "gpu_step_compiled" if compiled else "gpu_step_eager",
                            "seq": seq,
                            "batch": batch,
                            "ambert_pairs_per_s": round(batch / seconds["ambert"], 1),
                            "hf_bert_mlm_seq_per_s": round(batch / seconds["hf_bert_mlm"], 1),
                            "ratio": round(seconds["hf_bert_mlm"] / seconds["ambert"], 3),
                            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
                            "device": torch.cuda.get_device_name(),
                        }
                    ),
                    flush=True,
                )
                del steps
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
