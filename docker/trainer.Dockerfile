# Trainer image: `ambert train` under torchrun, on NVIDIA GPUs (NCCL) or CPUs (gloo).
# Build from the repository root:
#   docker build -f docker/trainer.Dockerfile -t REGISTRY/ambert-trainer:0.1.0 .
# Run (one node, every GPU):
#   docker run --gpus all --ipc=host -v /data:/data REGISTRY/ambert-trainer:0.1.0 \
#     --data /data/shards --vocab /data/vocab --out /data/runs/base --preset base
# Multi-node: set NNODES, NODE_RANK and RDZV_ENDPOINT=HOST:PORT on every node (see README).
FROM python:3.11-slim-bookworm
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The CUDA 12.8 build of torch brings the CUDA runtime, cuDNN and NCCL as wheels; the host supplies the driver.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128

WORKDIR /opt/ambert
COPY pyproject.toml README.md ./
COPY vocab/ vocab/
COPY pipelines/ pipelines/
COPY trainer/ trainer/
COPY cli/ cli/
COPY docker/trainer-entrypoint.sh /usr/local/bin/trainer-entrypoint.sh
# The project's dependencies are pinned in pyproject.toml (torch is already satisfied by the CUDA wheel).
RUN pip install --no-cache-dir . \
    && python -c "import torch, webdataset, safetensors; print('torch', torch.__version__)"

ENV NNODES=1 NODE_RANK=0 NPROC_PER_NODE=gpu RDZV_ENDPOINT="" OMP_NUM_THREADS=4
ENTRYPOINT ["/usr/local/bin/trainer-entrypoint.sh"]
CMD ["--help"]
