#!/usr/bin/env bash
# One command for a lent GPU machine (issue 13): `ambert train` on CUDA under torchrun (NCCL, 1 process) with bf16
# and run.compile=true on a small Chinese shard set from data/, an fp16 run (GradScaler), then benchmarks/gpu_step.py.
# Usage: bash benchmarks/gpu_check.sh [OUT_DIR]   (about 10 minutes; JSON lines of gpu_step at the end)
set -euo pipefail
out=${1:-out/gpu-check}
bin=.venv/bin
mkdir -p "$out"
"$bin/ambert" vocab build --lang zh --corpus data/zh --out "$out/vocab-zh"
"$bin/ambert" shard build --vocab "$out/vocab-zh" --corpus data/zh --out "$out/shards-zh" --docs-per-line
for precision in bf16 fp16; do
  rm -rf "$out/run-$precision"
  "$bin/torchrun" --nproc-per-node 1 --no-python "$bin/ambert" train --data "$out/shards-zh" \
    --vocab "$out/vocab-zh" --out "$out/run-$precision" --preset tiny --max-steps 60 run.device=cuda \
    run.compile=true "run.precision=$precision" run.log_every=20
  tail -n 1 "$out/run-$precision/metrics.jsonl"
done
"$bin/python" -m benchmarks.gpu_step --steps 20 --warmup 6
