# Beam worker (and launcher) image for ambert pipelines, usable as --sdk_container_image.
# Build from the repository root:
#   docker build -f docker/pipeline.Dockerfile -t REGISTRY/ambert-pipeline:0.1.0 .
FROM apache/beam_python3.11_sdk:2.77.0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# KenLM's lmplz/build_binary are compiled from the kenlm sdist; these are their build needs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        cmake g++ make libboost-program-options-dev libboost-system-dev \
        libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/ambert
COPY pyproject.toml README.md requirements.lock ./
COPY vocab/ vocab/
COPY pipelines/ pipelines/
COPY trainer/ trainer/
COPY cli/ cli/
COPY scripts/build_kenlm.sh scripts/build_kenlm.sh

# Every dependency at requirements.lock's version and sha256 (as `make setup`; torch is the lock's CPU wheel, from
# PyTorch's index, which keeps the worker image small), then the project itself without dependencies.
# KenLM's tools are built in a throw-away cache directory (build_kenlm.sh otherwise keeps a copy in ~/.cache).
RUN pip install --no-cache-dir --require-hashes --extra-index-url https://download.pytorch.org/whl/cpu \
        -r requirements.lock \
    && pip install --no-cache-dir --no-deps . \
    && AMBERT_CACHE_DIR=/tmp/ambert-cache bash scripts/build_kenlm.sh /usr/local \
    && rm -rf /tmp/ambert-cache \
    && lmplz --help 2>&1 | head -n 1

# The Beam SDK image's entrypoint (/opt/apache/beam/boot) stays as it is.
