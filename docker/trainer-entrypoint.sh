#!/usr/bin/env bash
# Entry point of docker/trainer.Dockerfile: `ambert train "$@"` under torchrun.
# NPROC_PER_NODE (gpu = one process per visible GPU, or a number), NNODES, NODE_RANK, RDZV_ENDPOINT (HOST:PORT,
# needed when NNODES > 1) come from the environment; every argument goes to `ambert train`.
set -euo pipefail
nnodes=${NNODES:-1}
nproc=${NPROC_PER_NODE:-gpu}
if [[ $nproc == gpu ]] && ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  nproc=1  # no GPU visible: one CPU process (gloo)
fi
if [[ "$*" == "--help" || "$*" == "-h" ]]; then
  exec ambert train --help
fi
if (( nnodes > 1 )); then
  if [[ -z ${RDZV_ENDPOINT:-} ]]; then
    echo "trainer-entrypoint: NNODES=$nnodes needs RDZV_ENDPOINT=HOST:PORT (the same on every node)" >&2
    exit 2
  fi
  exec torchrun --nnodes "$nnodes" --node-rank "${NODE_RANK:-0}" --nproc-per-node "$nproc" \
    --rdzv-backend c10d --rdzv-endpoint "$RDZV_ENDPOINT" --no-python ambert train "$@"
fi
exec torchrun --standalone --nproc-per-node "$nproc" --no-python ambert train "$@"
