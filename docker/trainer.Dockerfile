# Trainer image: `ambert train` under torchrun, on NVIDIA GPUs (NCCL) or CPUs (gloo).
# Build from the repository root:
#   docker build -f docker/trainer.Dockerfile -t REGISTRY/ambert-trainer:0.1.0 .
# Run (one node, every GPU):
#   docker run --gpus all --ipc=host -v /data:/data REGISTRY/ambert-trainer:0.1.0 \
#     --data /data/shards --vocab /data/vocab --out /data/runs/base --preset base
# Multi-node: set NNODES, NODE_RANK and RDZV_ENDPOINT=HOST:PORT on every node (see README).
FROM python:3.11-slim-bookworm
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

WORKDIR /opt/ambert
COPY requirements.lock ./
# torch: the CUDA 12.8 build, at requirements.lock's torch version, from PyTorch's index (the lock holds the CPU
# wheel's hash; the CUDA runtime, cuDNN and NCCL come as that build's own wheels; the host supplies the driver).
# hadolint ignore=DL3013
RUN version=$(sed -n 's/^torch==\([^+ ]*\).*/\1/p' requirements.lock) \
    && test -n "$version" \
    && pip install --no-cache-dir "torch==$version" --index-url https://download.pytorch.org/whl/cu128

COPY pyproject.toml README.md ./
COPY vocab/ vocab/
COPY pipelines/ pipelines/
COPY trainer/ trainer/
COPY cli/ cli/
COPY docker/trainer-entrypoint.sh /usr/local/bin/trainer-entrypoint.sh
# Everything else at the lock's version and sha256 (the lock without its torch entry: it lists every dependency,
# so --no-deps), then the project itself without dependencies.
RUN awk '/^torch==/ { skip = 1; next } skip && /^ / { next } { skip = 0; print }' requirements.lock > /tmp/no-torch.lock \
    && pip install --no-cache-dir --no-deps --require-hashes -r /tmp/no-torch.lock \
    && pip install --no-cache-dir --no-deps . \
    && rm /tmp/no-torch.lock \
    && python -c "import torch, webdataset, safetensors; print('torch', torch.__version__)"

ENV NNODES=1 NODE_RANK=0 NPROC_PER_NODE=gpu RDZV_ENDPOINT="" OMP_NUM_THREADS=4
ENTRYPOINT ["/usr/local/bin/trainer-entrypoint.sh"]
CMD ["--help"]
