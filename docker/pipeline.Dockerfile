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
COPY pyproject.toml README.md ./
COPY vocab/ vocab/
COPY pipelines/ pipelines/
COPY trainer/ trainer/
COPY cli/ cli/
COPY scripts/build_kenlm.sh scripts/build_kenlm.sh

# torch is a declared dependency of the package; the CPU wheel keeps the worker image small.
# The project's own dependencies are pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir ".[dask]" \
    && bash scripts/build_kenlm.sh /usr/local \
    && lmplz --help 2>&1 | head -n 1

# The Beam SDK image's entrypoint (/opt/apache/beam/boot) stays as it is.
